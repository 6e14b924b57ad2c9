// AlignedBuffer's allocation (core/aligned_buffer.h): zeroed, 64-byte aligned, and 2 MiB aligned (advised as
// huge pages) from 2 MiB up unless BERTFIT_HUGE_PAGES=0. Whether the kernel backs a region with huge pages
// depends on its THP mode, so that is not asserted; what the code controls is.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "core/aligned_buffer.h"

namespace bertfit {
namespace {

bool all_zero(const AlignedBuffer<float>& b) {
  for (size_t i = 0; i < b.size(); ++i)
    if (b[i] != 0.0f) return false;
  return true;
}

uintptr_t address(const AlignedBuffer<float>& b) {
  return reinterpret_cast<uintptr_t>(b.data());
}

// The kernel's THP mode: "always", "madvise" or "never" (the bracketed word), "" if unknown.
// AnonHugePages (kB) of the mapping holding p, from /proc/self/smaps; -1 if not found.
long huge_kb(const void* p) {
  std::ifstream f("/proc/self/smaps");
  const uintptr_t x = reinterpret_cast<uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(f, line)) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = lo <= x && x < hi;
      continue;
    }
    if (inside && line.rfind("AnonHugePages:", 0) == 0) return std::stol(line.substr(14));
  }
  return -1;
}

TEST(AlignedBuffer, SmallBuffersAre64ByteAlignedAndZero) {
  for (size_t n : {1, 15, 16, 1000, 262143}) {  // up to just under 1 MiB
    AlignedBuffer<float> b(n);
    EXPECT_EQ(address(b) % 64, 0u) << n;
    EXPECT_TRUE(all_zero(b)) << n;
  }
}

TEST(AlignedBuffer, LargeBuffersAreHugePageAlignedAndZero) {
  unsetenv("BERTFIT_HUGE_PAGES");
  const size_t n = (size_t{2} << 20) / sizeof(float) + 7;  // just over 2 MiB: rounded up to 4 MiB
  AlignedBuffer<float> b(n);
  EXPECT_EQ(address(b) % (size_t{2} << 20), 0u);
  EXPECT_TRUE(all_zero(b));
  b[n - 1] = 1.0f;  // the whole size is usable
  b.resize(n);      // and comes back zeroed
  EXPECT_TRUE(all_zero(b));
}

// In the "madvise" mode (Debian's default) only advised regions get huge pages: with BERTFIT_HUGE_PAGES=0 the
// buffer's mapping has none. (With the advice it usually has some, but the kernel may fall back to 4 KiB
// pages when memory is fragmented, so that is not asserted.)
TEST(AlignedBuffer, HugePagesCanBeTurnedOff) {
  setenv("BERTFIT_HUGE_PAGES", "0", 1);
  AlignedBuffer<float> b((size_t{8} << 20) / sizeof(float));
  unsetenv("BERTFIT_HUGE_PAGES");
  EXPECT_EQ(address(b) % 64, 0u);
  EXPECT_TRUE(all_zero(b));
  const std::string mode = transparent_huge_page_mode();
  if (mode != "madvise") GTEST_SKIP() << "THP mode '" << mode << "': nothing to tell apart";
  EXPECT_EQ(huge_kb(b.data()), 0);
}

// The bracketed word of the kernel's file ("always [madvise] never"), or "" without the file.
TEST(AlignedBuffer, TransparentHugePageModeIsTheKernelsChoice) {
  const std::string mode = transparent_huge_page_mode();
  if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) {
    EXPECT_EQ(mode, "");
    return;
  }
  EXPECT_TRUE(mode == "always" || mode == "madvise" || mode == "never") << "'" << mode << "'";
}

}  // namespace
}  // namespace bertfit
