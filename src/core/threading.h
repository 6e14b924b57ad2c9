// bertfit's own thread pool: every parallel loop and parallel GEMM of the library runs on it.
//
// Why not OpenMP: libgomp's waiting is one process-wide choice made before main (OMP_WAIT_POLICY,
// GOMP_SPINCOUNT), and neither choice is good both on a quiet machine and on a shared one
// (core/wait_policy.h). The pool waits adaptively. Its shape is OpenMP's: the calling thread is thread 0 of
// a team, the other threads are long-lived workers, a region ends when every thread of the team is done,
// regions inside a region run serially in the calling thread (so a GEMM called from a parallel loop is
// single-threaded there), and results never depend on the number of threads (each kernel's contract).
//
// OpenBLAS (the reference and BERTFIT_GEMM=openblas) keeps its own OpenMP threads; set_num_threads sets
// both. It is only ever called outside our regions.
#pragma once

#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace bertfit {

// Below this many elements of work a kernel runs serially: starting and joining a parallel region costs a
// few microseconds (tens when a worker sleeps, more when the cores are shared), more than 32k elementwise
// operations take. Tiny models (tests, the small shapes of the heads) would otherwise spend most of their
// time in the pool.
constexpr int64_t kParallelMinWork = 32768;

// Sets the thread count for our kernels and for OpenBLAS. n <= 0: all cores. The default is OpenMP's
// (OMP_NUM_THREADS if set, else all cores).
void set_num_threads(int n);
int num_threads();
// "OpenBLAS 0.3.21 ... USE_OPENMP ..." as the library reports itself (to prove which BLAS is linked).
const char* blas_config();

// A non-owning reference to a callable: the pool's hot path passes one per region without allocating. The
// callable must outlive the call it is passed to (always the case for a lambda argument).
template <class Sig>
class FunctionRef;
template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT(google-explicit-constructor): a lambda converts as it does to std::function
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* obj, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(obj))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(obj_, std::forward<Args>(args)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

struct PoolState;

// The threads running one region, as seen by one of them.
class Team {
 public:
  Team(int thread, int size, PoolState* pool) : thread_(thread), size_(size), pool_(pool) {}
  int thread() const { return thread_; }
  int size() const { return size_; }
  // Every thread of the team reaches it before any goes on (a no-op for a team of one). Every thread must
  // call it the same number of times; a body that calls it must not throw.
  void barrier() const;
  // This thread's share of [begin, end): contiguous, the shares in thread order, sizes differing by at most
  // one (OpenMP's schedule(static) up to where the remainder goes).
  std::pair<int64_t, int64_t> share(int64_t begin, int64_t end) const {
    const int64_t n = end - begin;
    return {begin + n * thread_ / size_, begin + n * (thread_ + 1) / size_};
  }

 private:
  int thread_, size_;
  PoolState* pool_;
};

// Runs body(team) on every thread of a team of `threads` (0: num_threads()); returns when all are done. A
// team of one (the calling thread alone, no pool involved) when `parallel` is false, when called inside a
// region, or while another thread of the program has the pool. An exception thrown by a body is rethrown
// here (the first one, after every thread is done).
void parallel_region(FunctionRef<void(const Team&)> body, bool parallel = true, int threads = 0);

// for (i = begin; i < end; ++i) f(i), split statically over the team (`#pragma omp parallel for
// schedule(static) if (parallel)`).
template <class F>
void parallel_for(int64_t begin, int64_t end, bool parallel, F&& f) {
  if (end <= begin) return;
  parallel_region(
      [&](const Team& team) {
        const auto [b, e] = team.share(begin, end);
        for (int64_t i = b; i < e; ++i) f(i);
      },
      parallel && end - begin > 1);
}

// The same with chunks of `chunk` iterations handed out in order as threads ask (schedule(dynamic, chunk)):
// for loops whose iterations differ in cost.
void parallel_for_dynamic(int64_t begin, int64_t end, int64_t chunk, bool parallel,
                          FunctionRef<void(int64_t)> f, int threads = 0);

// Whether the calling thread is inside a region of more than one thread, and its index there (0 outside).
bool in_parallel();
int thread_index();

}  // namespace bertfit
