#include "core/aligned_buffer.h"

#include "bertfit/error.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace bertfit {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;

// BERTFIT_HUGE_PAGES=0 turns them off; read at each large allocation (a handful per run), so a process can
// compare the two (a benchmark driver does).
bool huge_pages_wanted() {
  const char* v = std::getenv("BERTFIT_HUGE_PAGES");
  return !(v && v[0] == '0' && v[1] == '\0');
}
}  // namespace

void check_huge_pages_setting() {
  const char* v = std::getenv("BERTFIT_HUGE_PAGES");
  if (v && *v && std::string(v) != "0" && std::string(v) != "1")
    throw ConfigError(std::string("BERTFIT_HUGE_PAGES=") + v + ": expected 0 (off) or 1 (on, the default)");
}

std::string transparent_huge_page_mode() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(f, line);
  const size_t a = line.find('['), b = line.find(']');
  return a == std::string::npos || b == std::string::npos || b < a ? "" : line.substr(a + 1, b - a - 1);
}

std::string huge_pages_description() {
  if (!huge_pages_wanted()) return "off (BERTFIT_HUGE_PAGES=0): 4 KiB pages";
  std::string mode = transparent_huge_page_mode();
  if (mode.empty()) mode = "unknown";
  return "buffers of 2 MiB or more advised as transparent huge pages (the kernel's mode: " + mode +
         (mode == "never" ? ", so none are granted" : "") + "; BERTFIT_HUGE_PAGES=0 turns it off)";
}

void* allocate_zeroed(size_t bytes) {
  bytes = (bytes + 63) / 64 * 64;
  void* p = nullptr;
#ifdef __linux__
  if (bytes >= kHugePage && huge_pages_wanted()) {
    bytes = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    p = std::aligned_alloc(kHugePage, bytes);
    // Advice only: with transparent huge pages off (or "never") nothing changes; an error is ignored too.
    if (p) (void)madvise(p, bytes, MADV_HUGEPAGE);
  }
#endif
  if (!p) p = std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, bytes);  // after the advice: the first touch faults the region in as huge pages
  return p;
}

}  // namespace bertfit
