// A scoped-timer profile of one step: where the time goes, kernel group by kernel group.
//
//   BERTFIT_PROFILE_SCOPE("gemm.qkv.fwd");          // wall time of the enclosing block (main thread only)
//   BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/softmax");  // thread time inside a parallel region
//
// Cost when disabled: one load of a global flag and a predictable branch per scope (a scope guards kernels of
// microseconds to seconds; no clock is read, nothing is written). Names are string literals; each call site
// registers its slot once (a function-local static). Wall scopes must be opened on the thread that calls the
// model (outside parallel regions); they may nest, and the report counts only the innermost ("leaf") time
// towards the kernel total. Thread scopes "parent/child" accumulate per-thread time of phases inside a
// parallel region whose wall time is the scope "parent"; the report splits the parent's wall time among its
// children in proportion to their thread time.
#pragma once

#include <chrono>
#include <string>

namespace bertfit {

namespace profiler_detail {
extern bool g_enabled;
}

class Profiler {
 public:
  static bool enabled() { return profiler_detail::g_enabled; }
  static void enable(bool on);
  // Clears every accumulated time (slots stay registered).
  static void reset();
  // The slot of a name (registered on first use; thread-safe).
  static int slot(const char* name);
  static void add_wall(int slot, double seconds);
  static void add_thread(int slot, double seconds);  // from any thread of a parallel region
  // Entered/left by wall scopes: tracks nesting so that parents are not counted as kernels.
  static void enter(int slot);
  static void leave(int slot);
  // A table: each slot's time, calls and share of step_seconds, then the sums per group (the name up to the
  // first '.'), and the step time not covered by any leaf scope.
  static std::string report(double step_seconds);
};

class ProfileScope {
 public:
  explicit ProfileScope(int slot) : slot_(Profiler::enabled() ? slot : -1) {
    if (slot_ >= 0) {
      Profiler::enter(slot_);
      t0_ = std::chrono::steady_clock::now();
    }
  }
  ~ProfileScope() {
    if (slot_ >= 0) {
      Profiler::add_wall(slot_,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
      Profiler::leave(slot_);
    }
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  int slot_;
  std::chrono::steady_clock::time_point t0_{};
};

class ProfileThreadScope {
 public:
  explicit ProfileThreadScope(int slot) : slot_(Profiler::enabled() ? slot : -1) {
    if (slot_ >= 0) t0_ = std::chrono::steady_clock::now();
  }
  ~ProfileThreadScope() {
    if (slot_ >= 0)
      Profiler::add_thread(slot_,
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
  }
  ProfileThreadScope(const ProfileThreadScope&) = delete;
  ProfileThreadScope& operator=(const ProfileThreadScope&) = delete;

 private:
  int slot_;
  std::chrono::steady_clock::time_point t0_{};
};

}  // namespace bertfit

#define BERTFIT_PROFILE_CAT2(a, b) a##b
#define BERTFIT_PROFILE_CAT(a, b) BERTFIT_PROFILE_CAT2(a, b)
#define BERTFIT_PROFILE_SCOPE(name)                                                                     \
  static const int BERTFIT_PROFILE_CAT(bertfit_prof_slot_, __LINE__) = ::bertfit::Profiler::slot(name); \
  ::bertfit::ProfileScope BERTFIT_PROFILE_CAT(bertfit_prof_scope_,                                      \
                                              __LINE__)(BERTFIT_PROFILE_CAT(bertfit_prof_slot_, __LINE__))
#define BERTFIT_PROFILE_THREAD_SCOPE(name)                                                              \
  static const int BERTFIT_PROFILE_CAT(bertfit_prof_slot_, __LINE__) = ::bertfit::Profiler::slot(name); \
  ::bertfit::ProfileThreadScope BERTFIT_PROFILE_CAT(                                                    \
      bertfit_prof_scope_, __LINE__)(BERTFIT_PROFILE_CAT(bertfit_prof_slot_, __LINE__))
// One profiled statement (or braced block): BERTFIT_TIMED("gemm.qkv.fwd", linear_forward(...));
#define BERTFIT_TIMED(name, ...) \
  do {                           \
    BERTFIT_PROFILE_SCOPE(name); \
    __VA_ARGS__;                 \
  } while (0)
