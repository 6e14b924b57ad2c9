// The thread pool (core/threading.h) and its waiting (core/wait_policy.h): every index once, the barrier's
// phases, regions inside regions, callers on several threads, exceptions, and the adaptive policy's
// contention signal. Every test runs under each wait policy where the policy could change the outcome.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/threading.h"
#include "core/wait_policy.h"

namespace bertfit {
namespace {

struct PolicyCase {
  WaitPolicy policy;
  int64_t spin_ns;
  const char* name;
};
const PolicyCase kPolicies[] = {{WaitPolicy::ADAPTIVE, 100'000, "adaptive"},
                                {WaitPolicy::PASSIVE, 0, "passive"},
                                {WaitPolicy::ACTIVE, 100'000, "active"},
                                {WaitPolicy::ACTIVE, 0, "active, no spin"}};

// Restores the defaults after each test (other tests in this binary expect them).
class ThreadPool : public ::testing::Test {
 protected:
  void TearDown() override {
    set_num_threads(saved_threads_);
    set_wait_policy(WaitPolicy::ADAPTIVE, 100'000);
  }
  int saved_threads_ = num_threads();
};

TEST_F(ThreadPool, ParallelForVisitsEveryIndexOnce) {
  for (const PolicyCase& pc : kPolicies) {
    set_wait_policy(pc.policy, pc.spin_ns);
    for (int threads : {1, 2, 3, 5}) {
      set_num_threads(threads);
      for (int64_t n : {0, 1, 2, 3, 7, 1000}) {
        SCOPED_TRACE(std::string(pc.name) + ", threads " + std::to_string(threads) + ", n " +
                     std::to_string(n));
        std::vector<std::atomic<int>> seen_static(static_cast<size_t>(n)),
            seen_dynamic(static_cast<size_t>(n));
        parallel_for(0, n, true, [&](int64_t i) { seen_static[static_cast<size_t>(i)].fetch_add(1); });
        parallel_for_dynamic(0, n, 3, true,
                             [&](int64_t i) { seen_dynamic[static_cast<size_t>(i)].fetch_add(1); });
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(seen_static[static_cast<size_t>(i)].load(), 1) << i;
          ASSERT_EQ(seen_dynamic[static_cast<size_t>(i)].load(), 1) << i;
        }
      }
    }
  }
}

TEST_F(ThreadPool, SharesAreContiguousInThreadOrderAndBalanced) {
  for (int size : {1, 2, 3, 4, 7})
    for (int64_t n : {0, 1, 5, 6, 100}) {
      int64_t next = 10;
      for (int t = 0; t < size; ++t) {
        const auto [b, e] = Team(t, size, nullptr).share(10, 10 + n);
        EXPECT_EQ(b, next);
        EXPECT_LE(e - b, n / size + 1);
        EXPECT_GE(e - b, n / size);
        next = e;
      }
      EXPECT_EQ(next, 10 + n);
    }
}

TEST_F(ThreadPool, EveryThreadOfTheTeamRunsTheBodyOnceWithItsIndex) {
  for (int threads : {2, 3, 4}) {
    std::vector<std::atomic<int>> ran(static_cast<size_t>(threads));
    std::atomic<int> size_seen{0};
    parallel_region(
        [&](const Team& team) {
          ran[static_cast<size_t>(team.thread())].fetch_add(1);
          size_seen.store(team.size());
          EXPECT_EQ(thread_index(), team.thread());
          EXPECT_TRUE(in_parallel());
        },
        true, threads);
    EXPECT_EQ(size_seen.load(), threads);
    for (int t = 0; t < threads; ++t) EXPECT_EQ(ran[static_cast<size_t>(t)].load(), 1) << t;
    EXPECT_FALSE(in_parallel());
    EXPECT_EQ(thread_index(), 0);
  }
}

// Each thread writes its slot, waits at the barrier, and checks that every slot holds this round's value; a
// second barrier keeps a fast thread from overwriting its slot before a slow one has read it. A barrier that
// let any thread through early fails the check; one that lost a wake-up hangs (ctest's timeout).
TEST_F(ThreadPool, BarrierSeparatesPhases) {
  for (const PolicyCase& pc : kPolicies) {
    set_wait_policy(pc.policy, pc.spin_ns);
    for (int threads : {2, 3, 4}) {
      SCOPED_TRACE(std::string(pc.name) + ", threads " + std::to_string(threads));
      constexpr int kRounds = 2000;
      std::vector<std::atomic<int>> slot(static_cast<size_t>(threads));
      std::atomic<int> errors{0};
      parallel_region(
          [&](const Team& team) {
            for (int r = 1; r <= kRounds; ++r) {
              slot[static_cast<size_t>(team.thread())].store(r, std::memory_order_relaxed);
              team.barrier();
              for (int t = 0; t < team.size(); ++t)
                if (slot[static_cast<size_t>(t)].load(std::memory_order_relaxed) != r) errors.fetch_add(1);
              team.barrier();
            }
          },
          true, threads);
      EXPECT_EQ(errors.load(), 0);
    }
  }
}

TEST_F(ThreadPool, ManyShortRegionsInARow) {
  for (const PolicyCase& pc : kPolicies) {
    set_wait_policy(pc.policy, pc.spin_ns);
    set_num_threads(2);
    int64_t total = 0;
    std::vector<int64_t> out(64);
    for (int r = 0; r < 5000; ++r) {
      parallel_for(0, 64, true, [&](int64_t i) { out[static_cast<size_t>(i)] = i + r; });
      total += out[static_cast<size_t>(r % 64)];
    }
    int64_t expect = 0;
    for (int r = 0; r < 5000; ++r) expect += r % 64 + r;
    EXPECT_EQ(total, expect) << pc.name;
  }
}

TEST_F(ThreadPool, RegionInsideARegionRunsInTheCallingThread) {
  std::vector<int> inner_size(4, -1), inner_index(4, -1);
  parallel_region(
      [&](const Team& team) {
        parallel_region([&](const Team& inner) {
          inner_size[static_cast<size_t>(team.thread())] = inner.size();
          inner_index[static_cast<size_t>(team.thread())] = thread_index();
        });
      },
      true, 4);
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(inner_size[static_cast<size_t>(t)], 1);
    EXPECT_EQ(inner_index[static_cast<size_t>(t)], t);  // the outer region's thread, as its scratch slot
  }
}

// Two program threads using the pool at once: one of them gets it, the other runs its region alone; both get
// every index exactly once.
TEST_F(ThreadPool, CallersOnSeveralThreads) {
  set_num_threads(2);
  std::atomic<int> failures{0};
  auto caller = [&](int seed) {
    for (int r = 0; r < 300; ++r) {
      std::vector<int> v(257, 0);
      parallel_for(0, 257, true, [&](int64_t i) { v[static_cast<size_t>(i)] += seed + static_cast<int>(i); });
      for (int i = 0; i < 257; ++i)
        if (v[static_cast<size_t>(i)] != seed + i) failures.fetch_add(1);
    }
  };
  std::thread a(caller, 1), b(caller, 1000), c(caller, 5000);
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(ThreadPool, AnExceptionInAWorkerReachesTheCaller) {
  for (int thrower : {0, 1}) {
    EXPECT_THROW(parallel_region(
                     [&](const Team& team) {
                       if (team.thread() == thrower) throw std::runtime_error("body failed");
                     },
                     true, 2),
                 std::runtime_error);
  }
  // The pool is usable afterwards.
  std::atomic<int> ran{0};
  parallel_region([&](const Team&) { ran.fetch_add(1); }, true, 2);
  EXPECT_EQ(ran.load(), 2);
}

// A child of fork() (a test's crash simulation, a user's multiprocessing) has none of the parent's workers:
// its regions must start workers of its own, not wait for the parent's.
TEST_F(ThreadPool, AForkedChildRunsRegions) {
  set_num_threads(2);
  std::atomic<int> ran{0};
  parallel_region([&](const Team&) { ran.fetch_add(1); }, true, 2);  // the parent's pool exists
  ASSERT_EQ(ran.load(), 2);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::atomic<int> child_ran{0};
    parallel_region([&](const Team&) { child_ran.fetch_add(1); }, true, 2);
    _exit(child_ran.load() == 2 ? 0 : 1);
  }
  // A child waiting for the parent's workers hangs: give it 30 s (it needs milliseconds), then fail.
  int status = 0;
  pid_t done = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "the forked child's region never finished";
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// The adaptive policy's signal: with three busy threads per core, every thread of ours spends most of its
// time runnable but not running, far above the 10% the policy takes as "shared". (The opposite, a quiet
// machine read as quiet, cannot be asserted here: ctest runs other tests on the same cores.)
TEST_F(ThreadPool, AdaptiveWaitingSeesOversubscribedCores) {
  if (!run_delay_available()) GTEST_SKIP() << "/proc/thread-self/schedstat is not readable here";
  set_wait_policy(WaitPolicy::ADAPTIVE, 100'000);
  set_num_threads(2);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::atomic<bool> stop{false};
  std::vector<std::thread> hogs;
  for (unsigned i = 0; i < 3 * cores; ++i)
    hogs.emplace_back([&] {
      volatile double x = 1;
      while (!stop.load(std::memory_order_relaxed)) x = x * 1.0000001;
    });
  bool seen = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::vector<float> v(1 << 16);
  while (!seen && std::chrono::steady_clock::now() < until) {
    parallel_for(0, static_cast<int64_t>(v.size()), true, [&](int64_t i) { v[static_cast<size_t>(i)] += 1; });
    seen = cores_considered_shared();
  }
  stop = true;
  for (auto& h : hogs) h.join();
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace bertfit
