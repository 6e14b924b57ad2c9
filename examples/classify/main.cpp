// classify MODEL_DIR TEXT...: the label, its probability and the top-3 labels of each text, with a model
// fine-tuned by `bertfit finetune`, through the installed C++ API. Build it with CMake
// (find_package(bertfit), see CMakeLists.txt) or pkg-config:
//   g++ main.cpp $(pkg-config --cflags --libs bertfit) -o classify
#include <bertfit/classifier.h>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR TEXT...\n", argv[0]);
    return 2;
  }
  try {
    const bertfit::TextClassifier clf(argv[1]);
    const std::vector<std::string> texts(argv + 2, argv + argc);
    const auto results = clf.classify(texts, 3);
    for (size_t i = 0; i < texts.size(); ++i) {
      std::printf("%s\t%.6f", results[i].label.c_str(), static_cast<double>(results[i].probability));
      for (const auto& t : results[i].top)
        std::printf("\t%s=%.6f", t.label.c_str(), static_cast<double>(t.probability));
      std::printf("\n");
    }
  } catch (const bertfit::Error& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 1;
  }
  return 0;
}
