// Helpers shared by the io tests: temporary directories, file bytes, and "expect a FormatError whose message
// contains all of these fragments" (tests check that errors name the file and the problem).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace bertfit::test {

inline std::string temp_dir(const std::string& tag) {
  // One directory per test and process (emptied first): the same test run at once from two checkouts (or two
  // ctest runs) must not share it.
  auto base = std::filesystem::temp_directory_path() /
              ("bertfit-io-" + tag + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
               "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  return base.string();
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
inline void write_text(const std::string& path, const std::string& s) {
  std::ofstream f(path, std::ios::binary);
  f << s;
}
inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Runs fn, expects an exception of type E whose what() contains every fragment.
template <typename E>
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& f : fragments)
      EXPECT_NE(msg.find(f), std::string::npos) << "missing \"" << f << "\" in: " << msg;
    return;
  }
  ADD_FAILURE() << "no exception thrown";
}

}  // namespace bertfit::test
