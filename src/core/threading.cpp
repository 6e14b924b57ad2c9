#include "core/threading.h"

#include <omp.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/wait_policy.h"

extern "C" {
void openblas_set_num_threads(int);
char* openblas_get_config(void);
}

namespace bertfit {

// The pool: workers 1..n-1 (the caller of a region is thread 0). Each worker waits on its own word, so a
// region wakes only the workers of its team; the caller waits for `pending` to reach zero on `done`.
struct PoolState {
  struct alignas(64) Worker {
    WaitWord go;  // incremented by the caller for each region this worker is in
    std::thread thread;
  };
  std::mutex owner;                              // held by the thread running a region for its whole length
  std::vector<std::unique_ptr<Worker>> workers;  // grows, never shrinks (idle workers sleep)

  // The current region, written by its caller before any `go` is raised (release), read after.
  const FunctionRef<void(const Team&)>* body = nullptr;
  int team_size = 1;

  alignas(64) std::atomic<int> pending{0};
  WaitWord done;
  // Barrier: arrivals in this phase, and the phase number that waiters watch.
  alignas(64) std::atomic<int> arrived{0};
  WaitWord phase;

  std::mutex error_mutex;
  std::exception_ptr error;
};

namespace {

std::atomic<int> g_threads{0};  // 0: not set yet (OpenMP's default)
thread_local bool t_in_parallel = false;
thread_local int t_index = 0;

// Created by the first region (under g_pool_create) and never destroyed: workers sleep in it until the
// process exits (no join at static destruction, when other statics a late region might use are gone).
std::atomic<PoolState*> g_pool{nullptr};
std::mutex g_pool_create;

// A child of fork() has the pool's memory but none of its workers: it starts a pool of its own on its first
// region (the old one is left as it is; its mutex may be held by a thread the child does not have).
void forget_pool_in_child() {
  g_pool.store(nullptr, std::memory_order_relaxed);
}

PoolState& pool() {
  PoolState* p = g_pool.load(std::memory_order_acquire);
  if (p) return *p;
  std::lock_guard<std::mutex> lock(g_pool_create);
  p = g_pool.load(std::memory_order_acquire);
  if (!p) {
    static const bool registered = pthread_atfork(nullptr, nullptr, forget_pool_in_child) == 0;
    (void)registered;
    p = new PoolState;
    g_pool.store(p, std::memory_order_release);
  }
  return *p;
}

void run_body(PoolState& p, int index) {
  t_in_parallel = true;
  t_index = index;
  try {
    (*p.body)(Team(index, p.team_size, &p));
  } catch (...) {
    std::lock_guard<std::mutex> lock(p.error_mutex);
    if (!p.error) p.error = std::current_exception();
  }
  t_in_parallel = false;
  t_index = 0;
}

void worker_loop(PoolState* p, PoolState::Worker* self, int index) {
  uint32_t seen = 0;
  for (;;) {
    wait_for_change(self->go, seen);
    seen = self->go.value.load(std::memory_order_acquire);
    run_body(*p, index);
    if (p->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      p->done.value.fetch_add(1, std::memory_order_seq_cst);
      wake_all(p->done);
    }
  }
}

void run_serial(FunctionRef<void(const Team&)> body) {
  body(Team(0, 1, nullptr));
}

}  // namespace

void Team::barrier() const {
  if (size_ <= 1) return;
  PoolState& p = *pool_;
  const uint32_t phase = p.phase.value.load(std::memory_order_acquire);
  if (p.arrived.fetch_add(1, std::memory_order_acq_rel) == size_ - 1) {
    p.arrived.store(0, std::memory_order_relaxed);  // before the phase moves: no one arrives until it does
    p.phase.value.fetch_add(1, std::memory_order_seq_cst);
    wake_all(p.phase);
  } else {
    wait_for_change(p.phase, phase);
  }
}

void set_num_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  g_threads.store(n, std::memory_order_relaxed);
  omp_set_num_threads(n);  // OpenBLAS's OpenMP build follows the OpenMP thread count
  openblas_set_num_threads(n);
}

int num_threads() {
  const int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
}

const char* blas_config() {
  return openblas_get_config();
}

bool in_parallel() {
  return t_in_parallel;
}

int thread_index() {
  return t_index;
}

void parallel_region(FunctionRef<void(const Team&)> body, bool parallel, int threads) {
  const int size = threads > 0 ? threads : num_threads();
  if (!parallel || size <= 1 || t_in_parallel) return run_serial(body);
  PoolState& p = pool();
  std::unique_lock<std::mutex> lock(p.owner, std::try_to_lock);
  if (!lock.owns_lock()) return run_serial(body);  // another thread's region: same results, one thread
  wait_policy();  // read the settings here, where an invalid one can be thrown to the caller
  while (static_cast<int>(p.workers.size()) < size - 1) {
    auto w = std::make_unique<PoolState::Worker>();
    w->thread = std::thread(worker_loop, &p, w.get(), static_cast<int>(p.workers.size()) + 1);
    w->thread.detach();
    p.workers.push_back(std::move(w));
  }
  p.body = &body;
  p.team_size = size;
  p.error = nullptr;
  p.pending.store(size - 1, std::memory_order_relaxed);
  const uint32_t done = p.done.value.load(std::memory_order_relaxed);
  for (int w = 0; w < size - 1; ++w) {
    p.workers[w]->go.value.fetch_add(1, std::memory_order_seq_cst);
    wake_all(p.workers[w]->go);
  }
  run_body(p, 0);
  wait_for_change(p.done, done);
  if (p.error) std::rethrow_exception(p.error);
}

void parallel_for_dynamic(int64_t begin, int64_t end, int64_t chunk, bool parallel,
                          FunctionRef<void(int64_t)> f, int threads) {
  if (end <= begin) return;
  chunk = std::max<int64_t>(chunk, 1);
  std::atomic<int64_t> next{begin};
  parallel_region(
      [&](const Team&) {
        for (;;) {
          const int64_t b = next.fetch_add(chunk, std::memory_order_relaxed);
          if (b >= end) break;
          const int64_t e = std::min(end, b + chunk);
          for (int64_t i = b; i < e; ++i) f(i);
        }
      },
      parallel && end - begin > 1, threads);
}

}  // namespace bertfit
