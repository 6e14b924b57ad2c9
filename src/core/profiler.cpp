// Profiler storage: a fixed table of slots (names registered once per call site), wall-time accumulators for
// the model thread, and per-thread accumulators padded to cache lines for scopes inside parallel regions.
#include "core/profiler.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <vector>
#include "core/threading.h"

namespace bertfit {

namespace profiler_detail {
bool g_enabled = false;
}

namespace {

constexpr int kMaxSlots = 128;
constexpr int kMaxThreads = 64;

struct Slot {
  std::string name;
  double wall = 0;
  long calls = 0;
  bool has_children = false;  // another wall scope was opened inside it: not a leaf
};

struct alignas(64) ThreadRow {
  double t[kMaxSlots] = {};
};

std::mutex g_mutex;
std::vector<Slot> g_slots;
ThreadRow g_thread[kMaxThreads];
std::vector<int> g_stack;  // open wall scopes (the model's thread only)

}  // namespace

void Profiler::enable(bool on) {
  profiler_detail::g_enabled = on;
}

void Profiler::reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (Slot& s : g_slots) {
    s.wall = 0;
    s.calls = 0;
    s.has_children = false;
  }
  for (ThreadRow& r : g_thread) std::fill(r.t, r.t + kMaxSlots, 0.0);
  g_stack.clear();
}

int Profiler::slot(const char* name) {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (size_t i = 0; i < g_slots.size(); ++i)
    if (g_slots[i].name == name) return static_cast<int>(i);
  if (g_slots.size() == kMaxSlots) return kMaxSlots - 1;  // table full: lump the rest together (never crash)
  g_slots.push_back(Slot{name});
  return static_cast<int>(g_slots.size() - 1);
}

void Profiler::add_wall(int slot, double seconds) {
  g_slots[slot].wall += seconds;
  g_slots[slot].calls += 1;
}

void Profiler::add_thread(int slot, double seconds) {
  const int t = thread_index();
  if (t < kMaxThreads) g_thread[t].t[slot] += seconds;
}

void Profiler::enter(int slot) {
  if (!g_stack.empty()) g_slots[g_stack.back()].has_children = true;
  g_stack.push_back(slot);
}

void Profiler::leave(int slot) {
  if (!g_stack.empty() && g_stack.back() == slot) g_stack.pop_back();
}

std::string Profiler::report(double step_seconds) {
  std::lock_guard<std::mutex> lock(g_mutex);
  struct Row {
    std::string name;
    double sec;
    long calls;
  };
  std::vector<Row> rows;
  // Thread-time children "parent/child": share out the parent's wall time.
  std::map<std::string, double> child_thread_sum;
  std::vector<double> thread_time(g_slots.size(), 0.0);
  for (size_t i = 0; i < g_slots.size(); ++i) {
    for (const ThreadRow& r : g_thread) thread_time[i] += r.t[i];
    const size_t slash = g_slots[i].name.find('/');
    if (slash != std::string::npos) child_thread_sum[g_slots[i].name.substr(0, slash)] += thread_time[i];
  }
  double leaf_total = 0;
  for (size_t i = 0; i < g_slots.size(); ++i) {
    const Slot& s = g_slots[i];
    const size_t slash = s.name.find('/');
    if (slash == std::string::npos) {
      if (s.calls == 0) continue;
      if (!s.has_children) {
        rows.push_back({s.name, s.wall, s.calls});
        leaf_total += s.wall;
      } else {
        rows.push_back({s.name + " [total]", s.wall, -2});  // an enclosing scope: shown, not summed
      }
      continue;
    }
    const std::string parent = s.name.substr(0, slash);
    double parent_wall = 0;
    for (const Slot& p : g_slots)
      if (p.name == parent) parent_wall = p.wall;
    const double denom = child_thread_sum[parent];
    if (thread_time[i] > 0 && denom > 0) rows.push_back({s.name, parent_wall * thread_time[i] / denom, -1});
  }
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "profile of one step: %.1f ms\n%-36s %10s %7s %7s\n", step_seconds * 1e3,
                "scope (a/b: share of a's wall time)", "ms", "share", "calls");
  out += line;
  std::vector<Row> sorted = rows;
  std::sort(sorted.begin(), sorted.end(), [](const Row& a, const Row& b) { return a.name < b.name; });
  for (const Row& r : sorted) {
    if (r.calls == -2)
      std::snprintf(line, sizeof line, "%-36s %10.2f %6.1f%%\n", r.name.c_str(), r.sec * 1e3,
                    100.0 * r.sec / step_seconds);
    else if (r.calls >= 0)
      std::snprintf(line, sizeof line, "%-36s %10.2f %6.1f%% %7ld\n", r.name.c_str(), r.sec * 1e3,
                    100.0 * r.sec / step_seconds, r.calls);
    else
      std::snprintf(line, sizeof line, "  %-34s %10.2f %6.1f%%\n", r.name.c_str(), r.sec * 1e3,
                    100.0 * r.sec / step_seconds);
    out += line;
  }
  // Groups: the leaf scopes summed by the name up to the first '.' (gemm, attention, layernorm, ...).
  std::map<std::string, double> groups;
  for (const Row& r : rows)
    if (r.calls >= 0) groups[r.name.substr(0, r.name.find('.'))] += r.sec;
  std::vector<std::pair<std::string, double>> g(groups.begin(), groups.end());
  std::sort(g.begin(), g.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  out += "groups (leaf scopes by first name component):\n";
  for (const auto& [name, sec] : g) {
    std::snprintf(line, sizeof line, "  %-34s %10.2f %6.1f%%\n", name.c_str(), sec * 1e3,
                  100.0 * sec / step_seconds);
    out += line;
  }
  std::snprintf(line, sizeof line, "  %-34s %10.2f %6.1f%%\n", "(not covered by a scope)",
                (step_seconds - leaf_total) * 1e3, 100.0 * (step_seconds - leaf_total) / step_seconds);
  out += line;
  return out;
}

}  // namespace bertfit
