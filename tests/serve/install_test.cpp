// The installed library from outside the source tree: `cmake --install` into a fresh prefix, then the example
// program (examples/classify, copied out) built against it with find_package(bertfit) and with pkg-config,
// and both builds print the C++ API's own results for a model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bertfit/classifier.h"
#include "serve_test_util.h"

namespace bertfit {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs a shell command with its output in `log`; true when it exits 0.
bool run(const std::string& cmd, const std::string& log) {
  return std::system((cmd + " > " + log + " 2>&1").c_str()) == 0;
}

TEST(Install, AnOutsideProgramBuildsWithFindPackageAndPkgConfig) {
  // Under /tmp, not the build tree: nothing of the source or build tree is on the example's include path.
  char tmpl[] = "/tmp/bertfit-install-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string work = tmpl;
  const std::string prefix = work + "/prefix";
  ASSERT_TRUE(run("cmake --install " + std::string(BERTFIT_BINARY_DIR) + " --prefix " + prefix,
                  work + "/install.log"))
      << slurp(work + "/install.log");
  for (const char* f : {"include/bertfit/classifier.h", "include/bertfit/error.h", "lib/libbertfit.a",
                        "lib/cmake/bertfit/bertfitConfig.cmake", "lib/pkgconfig/bertfit.pc", "bin/bertfit"})
    EXPECT_TRUE(fs::exists(prefix + "/" + f)) << f;
  fs::copy(std::string(BERTFIT_SOURCE_DIR) + "/examples/classify", work + "/src",
           fs::copy_options::recursive);

  // 1. CMake: find_package(bertfit).
  ASSERT_TRUE(run("cmake -S " + work + "/src -B " + work +
                      "/build-cmake -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" + prefix +
                      " && cmake --build " + work + "/build-cmake",
                  work + "/cmake.log"))
      << slurp(work + "/cmake.log");
  // 2. pkg-config.
  ASSERT_TRUE(run("PKG_CONFIG_PATH=" + prefix + "/lib/pkgconfig g++ -O1 " + work + "/src/main.cpp -o " +
                      work + "/classify-pc $(PKG_CONFIG_PATH=" + prefix +
                      "/lib/pkgconfig pkg-config --cflags --libs bertfit)",
                  work + "/pkgconfig.log"))
      << slurp(work + "/pkgconfig.log");

  const std::string model = test::make_classifier_dir(test::unique_dir("install"));
  const std::vector<std::string> texts = {"the movie was very good", "awful", "i liked it"};
  std::string expected;
  const TextClassifier clf(model);
  for (const auto& r : clf.classify(texts, 3)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s\t%.6f", r.label.c_str(), static_cast<double>(r.probability));
    expected += buf;
    for (const auto& t : r.top) {
      std::snprintf(buf, sizeof buf, "\t%s=%.6f", t.label.c_str(), static_cast<double>(t.probability));
      expected += buf;
    }
    expected += "\n";
  }
  std::string args = model;
  for (const auto& t : texts) args += " '" + t + "'";
  for (const std::string& exe : {work + "/build-cmake/classify", work + "/classify-pc"}) {
    ASSERT_TRUE(run(exe + " " + args, work + "/out.txt")) << exe << "\n" << slurp(work + "/out.txt");
    EXPECT_EQ(slurp(work + "/out.txt"), expected) << exe;
  }
  // A bad directory is the library's error, reported by the program, exit 1.
  EXPECT_FALSE(run(work + "/classify-pc /nonexistent-model text", work + "/err.txt"));
  EXPECT_NE(slurp(work + "/err.txt").find("classify: "), std::string::npos);
  fs::remove_all(work);
}

}  // namespace
}  // namespace bertfit
