#include "train/checkpoints.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <vector>

#include "bertfit/io/checkpoint.h"
#include "bertfit/io/safetensors.h"

namespace fs = std::filesystem;

namespace bertfit {

namespace {

constexpr char kPrefix[] = "checkpoint-";
constexpr size_t kPrefixLen = sizeof(kPrefix) - 1;

// "<digits>" of at most 18 characters (always fits in int64), else -1.
int64_t parse_digits(const std::string& s) {
  if (s.empty() || s.size() > 18) return -1;
  int64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// The staging name of a save by process `pid`: "checkpoint-<N>.tmp-<pid>" (io/checkpoint.cpp save_model_dir
// names a new directory's so). Fills the checkpoint's own name and the pid.
bool parse_staging(const std::string& name, std::string* checkpoint, int64_t* pid) {
  const size_t at = name.rfind(".tmp-");
  if (at == std::string::npos) return false;
  const std::string base = name.substr(0, at);
  const int64_t p = parse_digits(name.substr(at + 5));
  if (p <= 0 || checkpoint_step(base) < 0) return false;
  *checkpoint = base;
  *pid = p;
  return true;
}

bool process_running(int64_t pid) {
  // kill(pid, 0) sends nothing; EPERM means the process exists but belongs to someone else.
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

int64_t checkpoint_step(const std::string& name) {
  if (name.compare(0, kPrefixLen, kPrefix) != 0) return -1;
  return parse_digits(name.substr(kPrefixLen));
}

bool is_complete_checkpoint(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / "trainer_state.json", ec);
}

std::vector<std::string> remove_checkpoint_leftovers(const std::string& output_dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(output_dir, ec)) return removed;
  std::vector<fs::path> entries, files;
  for (const auto& e : fs::directory_iterator(output_dir, ec))
    (e.is_directory(ec) ? entries : files).push_back(e.path());
  std::sort(entries.begin(), entries.end());
  // write_file_atomic's temporary files of a killed process (trainer_state.json.tmp-<pid>, ...).
  for (const fs::path& p : files) {
    const std::string n = p.filename().string();
    const size_t at = n.rfind(".tmp-");
    const int64_t pid = at == std::string::npos ? -1 : parse_digits(n.substr(at + 5));
    if (pid <= 0 || pid == static_cast<int64_t>(::getpid()) || process_running(pid)) continue;
    if (fs::remove(p, ec)) removed.push_back(p.string());
  }
  for (const fs::path& p : entries) {
    std::string base;
    int64_t pid = 0;
    if (!parse_staging(p.filename().string(), &base, &pid)) continue;
    if (pid == static_cast<int64_t>(::getpid()) || process_running(pid)) continue;  // a save in progress
    fs::remove_all(p, ec);
    if (ec) throw FormatError(p.string() + ": cannot remove this leftover of a killed run: " + ec.message());
    removed.push_back(p.string());
  }
  for (const auto& e : fs::directory_iterator(output_dir, ec)) {
    if (!e.is_directory(ec) || checkpoint_step(e.path().filename().string()) < 0) continue;
    if (is_complete_checkpoint(e.path().string())) continue;
    const std::string p = e.path().string();
    fs::remove_all(p, ec);
    if (ec) throw FormatError(p + ": cannot remove this incomplete checkpoint: " + ec.message());
    removed.push_back(p);
  }
  return removed;
}

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, std::string>> cks;
  std::error_code ec;
  if (!fs::is_directory(output_dir, ec)) return cks;
  for (const auto& e : fs::directory_iterator(output_dir, ec)) {
    const int64_t step = checkpoint_step(e.path().filename().string());
    if (step < 0 || !e.is_directory(ec) || !is_complete_checkpoint(e.path().string())) continue;
    cks.emplace_back(step, e.path().string());
  }
  std::sort(cks.begin(), cks.end());
  return cks;
}

std::string find_latest_checkpoint(const std::string& output_dir) {
  remove_checkpoint_leftovers(output_dir);
  const auto cks = list_checkpoints(output_dir);
  return cks.empty() ? "" : cks.back().second;
}

// Deletes the oldest checkpoints beyond the limit, never the best one.
void rotate_checkpoints(const std::string& output_dir, int limit, const std::string& best) {
  remove_checkpoint_leftovers(output_dir);
  if (limit <= 0) return;
  const auto cks = list_checkpoints(output_dir);
  // The newest checkpoint is never deleted either (it is the one to resume from): with limit 1 and a best
  // checkpoint that is not the newest, both stay, as HF's Trainer does.
  int64_t excess = static_cast<int64_t>(cks.size()) - limit;
  for (size_t i = 0; i + 1 < cks.size(); ++i) {
    const std::string& path = cks[i].second;
    if (excess <= 0) break;
    // The same directory however spelled ("out/checkpoint-5", "./out/checkpoint-5", an absolute path).
    std::error_code ec;
    if (!best.empty() &&
        fs::weakly_canonical(fs::absolute(path, ec), ec) == fs::weakly_canonical(fs::absolute(best, ec), ec))
      continue;
    fs::remove_all(path);
    --excess;
  }
}

void check_optimizer_groups(const std::string& path, const std::vector<ParamGroup>& groups) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  const auto& meta = f.metadata();
  const auto it = meta.find("groups");
  if (it == meta.end())
    throw FormatError(path +
                      ": no parameter-group layout in the metadata (not written by bertfit finetune or "
                      "pretrain?)");
  nlohmann::json saved;
  try {
    saved = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": the parameter-group layout in the metadata is not JSON: " + e.what());
  }
  const char* options =
      "resume with the --learning_rate, --layerwise_lr_decay, --head_learning_rate and --weight_decay of the "
      "run that wrote the checkpoint";
  if (!saved.is_array() || saved.size() != groups.size())
    throw FormatError(path + ": the checkpoint's optimizer has " +
                      std::to_string(saved.is_array() ? saved.size() : 0) + " parameter groups, this run " +
                      std::to_string(groups.size()) + " (" + options + ")");
  for (size_t i = 0; i < groups.size(); ++i) {
    const ParamGroup& g = groups[i];
    try {
      const auto& s = saved[i];
      // Exact comparisons: the rates are floats written through a double, which reads back to the same
      // float, and the same options compute the same floats; any difference is a different setting.
      const size_t offset = s.at("offset").get<size_t>(), size = s.at("size").get<size_t>();
      const float lr = s.at("lr").get<float>(), wd = s.at("weight_decay").get<float>();
      if (offset != g.offset || size != g.size || lr != g.lr || wd != g.weight_decay) {
        char buf[512];
        std::snprintf(
            buf, sizeof buf,
            ": parameter group %zu differs: the checkpoint has offset %zu, size %zu, lr %.9g, weight "
            "decay %.9g; this run offset %zu, size %zu, lr %.9g, weight decay %.9g (",
            i, offset, size, static_cast<double>(lr), static_cast<double>(wd), g.offset, g.size,
            static_cast<double>(g.lr), static_cast<double>(g.weight_decay));
        throw FormatError(path + buf + options + ")");
      }
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(path + ": parameter group " + std::to_string(i) +
                        " of the metadata is malformed: " + e.what());
    }
  }
}

void load_optimizer_state(Optimizer& opt, const std::string& path) {
  check_optimizer_groups(path, opt.groups());
  opt.load(path);
}

void load_weights_into(BertModel& m, const std::string& dir) {
  const Checkpoint ckpt = Checkpoint::open(dir);
  std::vector<ExpectedTensor> expected;
  for (const ParamEntry& e : m.table().entries())
    expected.push_back({e.name, e.shape, m.params() + e.offset, false});
  load_into(ckpt, m.prefix(), expected);
}

}  // namespace bertfit
