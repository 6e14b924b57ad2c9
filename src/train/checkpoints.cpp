#include "train/checkpoints.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "bertfit/io/checkpoint.h"

namespace fs = std::filesystem;

namespace bertfit {

std::string find_latest_checkpoint(const std::string& output_dir) {
  int64_t best = -1;
  std::string path;
  if (!fs::is_directory(output_dir)) return "";
  for (const auto& e : fs::directory_iterator(output_dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("checkpoint-", 0) != 0 || !e.is_directory()) continue;
    try {
      const int64_t step = std::stoll(name.substr(11));
      if (step > best) best = step, path = e.path().string();
    } catch (const std::exception&) {
    }
  }
  return path;
}

// Deletes the oldest checkpoints beyond the limit, never the best one.
void rotate_checkpoints(const std::string& output_dir, int limit, const std::string& best) {
  if (limit <= 0) return;
  std::vector<std::pair<int64_t, std::string>> cks;
  for (const auto& e : fs::directory_iterator(output_dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("checkpoint-", 0) != 0 || !e.is_directory()) continue;
    try {
      cks.emplace_back(std::stoll(name.substr(11)), e.path().string());
    } catch (const std::exception&) {
    }
  }
  std::sort(cks.begin(), cks.end());
  // The newest checkpoint is never deleted either (it is the one to resume from): with limit 1 and a best
  // checkpoint that is not the newest, both stay, as HF's Trainer does.
  int64_t excess = static_cast<int64_t>(cks.size()) - limit;
  for (size_t i = 0; i + 1 < cks.size(); ++i) {
    const std::string& path = cks[i].second;
    if (excess <= 0) break;
    if (fs::path(path) == fs::path(best)) continue;
    fs::remove_all(path);
    --excess;
  }
}

void load_weights_into(BertModel& m, const std::string& dir) {
  const Checkpoint ckpt = Checkpoint::open(dir);
  std::vector<ExpectedTensor> expected;
  for (const ParamEntry& e : m.table().entries())
    expected.push_back({e.name, e.shape, m.params() + e.offset, false});
  load_into(ckpt, m.prefix(), expected);
}

}  // namespace bertfit
