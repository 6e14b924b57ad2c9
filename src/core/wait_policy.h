// How bertfit's threads wait for each other: spin briefly while the cores are ours, sleep at once while
// something else wants them.
//
// A thread that spins while it waits answers in well under a microsecond, but it holds a core. On a quiet
// machine that core had nothing better to do, and a short spin saves the futex wake-up (several microseconds
// per parallel region: 4-10% of a batch-1 inference on two cores). When other processes share the cores the
// spin takes their time slice and ours: batch-1 inference ran up to 35% slower with a 1,000-iteration spin
// and 2.5-3x slower with libgomp's default (docs/benchmarks.md). So the adaptive policy (the default) spins
// only while the machine is not oversubscribed, and it measures that directly: the kernel's count of the
// time each of our threads spent runnable but not running (/proc/thread-self/schedstat's run delay). On a
// quiet machine that is under 1% of the time; with other runnable threads on our cores it is tens of
// percent. A thread that sees more than 10% in its last window (or sees itself descheduled in the middle of
// a spin) makes every thread wait passively for the next 50 ms.
#pragma once

#include <atomic>
#include <cstdint>

namespace bertfit {

enum class WaitPolicy {
  ADAPTIVE,  // spin up to the budget while the machine is not oversubscribed, then sleep (default)
  PASSIVE,   // sleep at once
  ACTIVE,    // always spin up to the budget, then sleep
};

// BERTFIT_WAIT_POLICY=adaptive|passive|active and BERTFIT_SPIN_US=N (the spin budget, microseconds), read
// once. Invalid values are an error (named) at the first parallel region.
WaitPolicy wait_policy();
int64_t spin_budget_ns();
// "adaptive (spin 100 us while the cores are not shared)" and the like, for `bertfit info`.
const char* wait_policy_description();
// For tests and benchmarks: overrides the environment.
void set_wait_policy(WaitPolicy policy, int64_t spin_ns);

// A 32-bit word that threads wait on, and the number of them asleep on it (so that a wake-up costs a system
// call only when somebody sleeps). Cache-line aligned: the words of different waiters never share a line.
struct alignas(64) WaitWord {
  std::atomic<uint32_t> value{0};
  std::atomic<int32_t> sleepers{0};
};

// Returns once w.value != old (acquire): spins per the policy, then sleeps on the futex.
void wait_for_change(WaitWord& w, uint32_t old);
// Call after changing w.value by a sequentially consistent operation (the sleeper protocol's other half):
// wakes every sleeper.
void wake_all(WaitWord& w);

// For tests: whether the adaptive policy considers the cores shared now (a thread found them so within the
// last 50 ms), and whether this thread can read its run delay at all (without it the adaptive policy waits
// passively).
bool cores_considered_shared();
bool run_delay_available();

}  // namespace bertfit
