#include "core/wait_policy.h"

#include <fcntl.h>
#include <immintrin.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "bertfit/error.h"

namespace bertfit {

namespace {

// Default spin budget: long enough to cover the gaps between the parallel regions of a forward pass (the
// serial work between two GEMMs of a small batch is tens of microseconds), short enough that an idle server
// sleeps at once for any human-scale pause. Swept on a quiet AMD EPYC (Zen 5), inference at batch 1
// (bench/engine/waiting.sh --spins, docs/benchmarks.md): mini 20-1000 us all within 5% of each other (passive
// 20% slower); BERT-base 100 and 300 us within 2%, 20 us 10% slower (nearly passive's 13%).
constexpr int64_t kDefaultSpinNs = 100'000;
// Contention: run delay above this fraction of a window (10%; a quiet machine shows under 1%, a shared one
// 30-50%, docs/benchmarks.md), looked at no more often than every kWindowNs per thread (a look is one pread,
// about 2-3 us), and acted on for kContendedNs.
constexpr int64_t kWindowNs = 10'000'000;
constexpr int64_t kDelayFractionDivisor = 10;
constexpr int64_t kContendedNs = 50'000'000;
// Two clock reads of a spin are at most a few microseconds apart (32 pauses); a gap this long means the
// thread was descheduled mid-spin: someone else wanted the core.
constexpr int64_t kPreemptedGapNs = 50'000;

struct Settings {
  WaitPolicy policy = WaitPolicy::ADAPTIVE;
  int64_t spin_ns = kDefaultSpinNs;
  std::string description;
};

std::once_flag g_settings_once;
Settings g_settings;
std::atomic<bool> g_overridden{false};
std::atomic<int> g_override_policy{0};
std::atomic<int64_t> g_override_spin{0};
std::atomic<int64_t> g_contended_until{0};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void describe(Settings& s) {
  char buf[160];
  switch (s.policy) {
    case WaitPolicy::PASSIVE:
      std::snprintf(buf, sizeof buf, "passive (sleep at once)");
      break;
    case WaitPolicy::ACTIVE:
      std::snprintf(buf, sizeof buf, "active (spin %lld us, then sleep)",
                    static_cast<long long>(s.spin_ns / 1000));
      break;
    case WaitPolicy::ADAPTIVE:
      std::snprintf(buf, sizeof buf, "adaptive (spin %lld us while the cores are not shared, else sleep)",
                    static_cast<long long>(s.spin_ns / 1000));
      break;
  }
  s.description = buf;
}

void load_settings() {
  Settings s;
  if (const char* p = std::getenv("BERTFIT_WAIT_POLICY"); p && *p) {
    const std::string v = p;
    if (v == "adaptive")
      s.policy = WaitPolicy::ADAPTIVE;
    else if (v == "passive" || v == "PASSIVE")
      s.policy = WaitPolicy::PASSIVE;
    else if (v == "active" || v == "ACTIVE")
      s.policy = WaitPolicy::ACTIVE;
    else
      throw ConfigError("BERTFIT_WAIT_POLICY=" + v + ": expected adaptive, passive or active");
  }
  if (const char* p = std::getenv("BERTFIT_SPIN_US"); p && *p) {
    char* end = nullptr;
    errno = 0;
    const long long us = std::strtoll(p, &end, 10);
    if (errno != 0 || end == p || *end != '\0' || us < 0 || us > 10'000'000)
      throw ConfigError(std::string("BERTFIT_SPIN_US=") + p + ": expected microseconds, 0 to 10000000");
    s.spin_ns = us * 1000;
  }
  describe(s);
  g_settings = s;
}

const Settings& settings() {
  std::call_once(g_settings_once, load_settings);
  return g_settings;
}

// This thread's view of /proc/thread-self/schedstat ("<on-cpu ns> <run-delay ns> <slices>"), kept open.
struct RunDelay {
  int fd = -2;  // -2: not opened yet; -1: not available here
  int64_t last_check = 0, last_delay = 0;
  bool last_window_quiet = true;  // optimistic until the first window is measured
  ~RunDelay() {
    if (fd >= 0) close(fd);
  }
  // Run delay in ns, or -1 where the kernel does not report it.
  int64_t read_delay() {
    if (fd == -2) fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[96];
    const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = '\0';
    long long on_cpu = 0, delay = 0;
    if (std::sscanf(buf, "%lld %lld", &on_cpu, &delay) != 2) return -1;
    return delay;
  }
};

thread_local RunDelay t_run_delay;

void mark_contended(int64_t now) {
  g_contended_until.store(now + kContendedNs, std::memory_order_relaxed);
  t_run_delay.last_window_quiet = false;
}

// Whether to skip the spin now: this thread's last window (its run delay, looked at once per window) was not
// quiet, or any thread found the cores shared within the last kContendedNs. The first keeps a thread passive
// under lasting contention between the second's periods: it spins again only after a window that was quiet.
bool cores_shared(int64_t now) {
  RunDelay& rd = t_run_delay;
  if (now - rd.last_check >= kWindowNs) {
    const int64_t delay = rd.read_delay();
    if (delay < 0) return true;  // no measure: never spin on a guess
    const int64_t window = now - rd.last_check;
    const bool first = rd.last_check == 0;
    const bool contended = !first && (delay - rd.last_delay) * kDelayFractionDivisor > window;
    rd.last_check = now;
    rd.last_delay = delay;
    rd.last_window_quiet = !contended;
    if (contended) mark_contended(now);
  }
  return !rd.last_window_quiet || now < g_contended_until.load(std::memory_order_relaxed);
}

long futex(std::atomic<uint32_t>* addr, int op, uint32_t val) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), op, val, nullptr, nullptr, 0);
}

}  // namespace

WaitPolicy wait_policy() {
  if (g_overridden.load(std::memory_order_acquire))
    return static_cast<WaitPolicy>(g_override_policy.load(std::memory_order_relaxed));
  return settings().policy;
}

int64_t spin_budget_ns() {
  if (g_overridden.load(std::memory_order_acquire)) return g_override_spin.load(std::memory_order_relaxed);
  return settings().spin_ns;
}

const char* wait_policy_description() {
  return settings().description.c_str();
}

void set_wait_policy(WaitPolicy policy, int64_t spin_ns) {
  g_override_policy.store(static_cast<int>(policy), std::memory_order_relaxed);
  g_override_spin.store(spin_ns, std::memory_order_relaxed);
  g_overridden.store(true, std::memory_order_release);
}

void wait_for_change(WaitWord& w, uint32_t old) {
  if (w.value.load(std::memory_order_acquire) != old) return;
  const WaitPolicy policy = wait_policy();
  const int64_t budget = policy == WaitPolicy::PASSIVE ? 0 : spin_budget_ns();
  if (budget > 0) {
    const int64_t start = now_ns();
    if (policy == WaitPolicy::ACTIVE || !cores_shared(start)) {
      int64_t prev = start;
      for (;;) {
        for (int i = 0; i < 32; ++i) {
          if (w.value.load(std::memory_order_acquire) != old) return;
          _mm_pause();
        }
        const int64_t t = now_ns();
        if (t - prev > kPreemptedGapNs) {
          if (policy == WaitPolicy::ADAPTIVE) mark_contended(t);
          break;
        }
        if (t - start > budget) break;
        prev = t;
      }
    }
  }
  // Sleep. The sleeper count is raised before the last look at the word (both sequentially consistent), so a
  // waker that changed the word and then saw no sleeper cannot have been missed: this look sees its change.
  w.sleepers.fetch_add(1, std::memory_order_seq_cst);
  while (w.value.load(std::memory_order_seq_cst) == old) futex(&w.value, FUTEX_WAIT_PRIVATE, old);
  w.sleepers.fetch_sub(1, std::memory_order_relaxed);
}

void wake_all(WaitWord& w) {
  if (w.sleepers.load(std::memory_order_seq_cst) > 0) futex(&w.value, FUTEX_WAKE_PRIVATE, INT_MAX);
}

bool cores_considered_shared() {
  return now_ns() < g_contended_until.load(std::memory_order_relaxed);
}

bool run_delay_available() {
  return t_run_delay.read_delay() >= 0;
}

}  // namespace bertfit
