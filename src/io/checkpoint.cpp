// Checkpoint directories: opening weights in transformers' order of preference, binding tensors to the
// model's parameters with HF's name conventions (see include/bertfit/io/checkpoint.h), and the directory
// save (a new directory appears whole; an existing one has its files replaced, each whole).
#include "bertfit/io/checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <vector>

#include "bertfit/error.h"
#include "bertfit/io/config_json.h"
#include "bertfit/io/safetensors.h"
#include "bertfit/io/torch_bin.h"
#include "core/atomic_file.h"
#include "io/json_util.h"
#include "io/mapped_file.h"

namespace bertfit {

namespace fs = std::filesystem;

namespace {

bool starts_with(const std::string& s, const std::string& p) {
  return s.compare(0, p.size(), p) == 0;
}
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// A torch zip starts with a local file header "PK\3\4" (then torch's nonzero flags); the legacy torch format
// with PROTO 2 + LONG1 10 (its magic number). A safetensors file starts with a u64 header length <= 1e8, so
// its bytes 4..7 are zero: the two cannot be confused.
bool looks_like_torch(const std::string& path) {
  auto m = io::MappedFile::open(path);
  const uint8_t* b = m->data();
  if (m->size() < 8) return false;
  const bool zip = b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4 && (b[4] | b[5] | b[6] | b[7]) != 0;
  const bool legacy = b[0] == 0x80 && b[1] == 0x02 && b[2] == 0x8a && b[3] == 0x0a;
  return zip || legacy;
}

// Shard file names from an index must be plain names inside the directory (no path traversal).
void check_shard_name(const std::string& index, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos)
    throw FormatError(index + ": weight_map names the file \"" + name + "\", which is not a plain file name");
}

std::string shape_text(const std::vector<int64_t>& s) {
  return shape_str(s);
}

// When tensors are missing because the checkpoint's encoder sits under another model's prefix.
std::string family_hint(const Checkpoint& ckpt, const std::string& pfx) {
  for (const char* other : {"bert.", "roberta.", "distilbert.", "electra.", "albert."}) {
    if (pfx == other) continue;
    for (const auto& t : ckpt.tensors())
      if (starts_with(t.name, other))
        return std::string("\n  hint: the checkpoint's encoder is under \"") + other +
               "\" but the model expects \"" + pfx + "\": does config.json's model_type match these weights?";
  }
  return "";
}

}  // namespace

void Checkpoint::add(const std::vector<TensorRef>& ts, const std::string& file) {
  for (const TensorRef& t : ts) {
    if (!index_.emplace(t.name, tensors_.size()).second)
      throw FormatError(file + ": tensor \"" + t.name + "\" is also in another shard");
    tensors_.push_back(t);
  }
}

Checkpoint Checkpoint::open(const std::string& path) {
  Checkpoint c;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw FormatError(path + ": cannot open: " + std::strerror(errno));
  auto open_file = [&c](const std::string& file) {
    if (looks_like_torch(file)) {
      TorchBinFile f = TorchBinFile::open(file);
      c.maps_.push_back(f.mapping());
      c.add(f.tensors(), file);
    } else {
      SafetensorsFile f = SafetensorsFile::open(file);
      c.maps_.push_back(f.mapping());
      c.add(f.tensors(), file);
      if (c.metadata_.empty()) c.metadata_ = f.metadata();
    }
    c.files_.push_back(file);
  };
  if (S_ISREG(st.st_mode)) {
    c.weights_file_ = path;
    c.format_ = looks_like_torch(path) ? WeightsFormat::TORCH_BIN : WeightsFormat::SAFETENSORS;
    open_file(path);
    return c;
  }
  const std::string dir = path;
  auto exists = [&](const char* name) { return fs::is_regular_file(fs::path(dir) / name); };
  struct Choice {
    const char* file;
    WeightsFormat format;
    bool index;
  };
  const Choice choices[] = {{"model.safetensors", WeightsFormat::SAFETENSORS, false},
                            {"model.safetensors.index.json", WeightsFormat::SAFETENSORS_SHARDED, true},
                            {"pytorch_model.bin", WeightsFormat::TORCH_BIN, false},
                            {"pytorch_model.bin.index.json", WeightsFormat::TORCH_BIN_SHARDED, true}};
  for (const Choice& ch : choices) {
    if (!exists(ch.file)) continue;
    c.weights_file_ = (fs::path(dir) / ch.file).string();
    c.format_ = ch.format;
    if (!ch.index) {
      open_file(c.weights_file_);
      return c;
    }
    // Sharded: {"metadata": {...}, "weight_map": {tensor: shard file}}.
    const std::string text = io::read_small_file(c.weights_file_, 64u << 20);
    const auto j = io::parse_json_strict(text.data(), text.size(), c.weights_file_);
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw FormatError(c.weights_file_ + ": must be an object with a \"weight_map\" object");
    std::vector<std::string> shards;
    std::map<std::string, std::string> wanted;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        throw FormatError(c.weights_file_ + ": weight_map[\"" + it.key() + "\"] must be a file name string");
      const std::string shard = it.value().get<std::string>();
      check_shard_name(c.weights_file_, shard);
      if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
      wanted[it.key()] = shard;
    }
    if (shards.empty()) throw FormatError(c.weights_file_ + ": weight_map is empty");
    std::map<std::string, std::string> found;  // tensor -> shard it is in
    for (const std::string& shard : shards) {
      const std::string file = (fs::path(dir) / shard).string();
      const size_t before = c.tensors_.size();
      open_file(file);
      for (size_t i = before; i < c.tensors_.size(); ++i) found[c.tensors_[i].name] = shard;
    }
    std::string problems;
    for (const auto& [name, shard] : wanted) {
      auto it = found.find(name);
      if (it == found.end())
        problems += "\n  " + name + " is not in " + shard;
      else if (it->second != shard)
        problems += "\n  " + name + " is in " + it->second + ", not " + shard;
    }
    if (!problems.empty())
      throw FormatError(c.weights_file_ + ": the index disagrees with the shards:" + problems);
    return c;
  }
  throw FormatError(dir +
                    ": no weights found (looked for model.safetensors, model.safetensors.index.json, "
                    "pytorch_model.bin, pytorch_model.bin.index.json)");
}

const TensorRef* Checkpoint::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

LoadReport load_into(const Checkpoint& ckpt, const std::string& model_prefix,
                     const std::vector<ExpectedTensor>& expected, bool reinit_mismatched_optional) {
  const std::string pfx = model_prefix.empty() ? "" : model_prefix + ".";
  bool expects_prefix = false, has_prefix = false;
  for (const auto& e : expected) expects_prefix |= !pfx.empty() && starts_with(e.name, pfx);
  for (const auto& t : ckpt.tensors()) has_prefix |= !pfx.empty() && starts_with(t.name, pfx);

  std::vector<std::string> missing, unexpected, misshaped, mistyped, clashes;
  LoadReport report;
  // Checkpoint names as the model spells them.
  std::map<std::string, const TensorRef*> by_name;
  for (const TensorRef& t : ckpt.tensors()) {
    std::string n = t.name;
    if (ends_with(n, ".gamma"))
      n = n.substr(0, n.size() - 6) + ".weight";  // pre-2019 LayerNorm names
    else if (ends_with(n, ".beta"))
      n = n.substr(0, n.size() - 5) + ".bias";
    if (expects_prefix && !has_prefix &&
        (starts_with(n, "embeddings.") || starts_with(n, "encoder.") || starts_with(n, "pooler.") ||
         starts_with(n, "embeddings_project.")))  // ElectraModel's projection
      n = pfx + n;                                // a base model saved without its prefix
    else if (!expects_prefix && has_prefix && starts_with(n, pfx))
      n = n.substr(pfx.size());  // a full model's encoder loaded into a bare encoder
    auto [it, fresh] = by_name.emplace(n, &t);
    if (!fresh) clashes.push_back(it->second->name + " and " + t.name + " both give " + n);
  }
  std::set<std::string> used;
  for (const ExpectedTensor& e : expected) {
    auto it = by_name.find(e.name);
    if (it == by_name.end()) {  // the head's bias may be stored only under its tied decoder name
      std::string alias;
      if (ends_with(e.name, "predictions.bias")) alias = e.name.substr(0, e.name.size() - 4) + "decoder.bias";
      if (e.name == "lm_head.bias") alias = "lm_head.decoder.bias";
      if (!alias.empty()) it = by_name.find(alias);
    }
    if (it == by_name.end()) {
      if (e.may_be_missing)
        report.missing_initialized.push_back(e.name);
      else
        missing.push_back(e.name + " " + shape_text(e.shape));
      continue;
    }
    used.insert(it->first);
    const TensorRef& t = *it->second;
    const std::string label = t.name == e.name ? e.name : e.name + " (stored as " + t.name + ")";
    if (e.dest && !dtype_is_float(t.dtype)) {  // dest null: checked for presence and shape only
      mistyped.push_back(label + ": " + dtype_name(t.dtype) + ", a float dtype is needed");
    } else if (t.shape != e.shape) {
      if (e.may_be_missing && reinit_mismatched_optional)
        report.missing_initialized.push_back(e.name);
      else
        misshaped.push_back(label + ": checkpoint " + shape_text(t.shape) + ", model " + shape_text(e.shape));
    } else if (e.dest) {
      to_f32(t, e.dest);
    }
  }
  // What was not used: ignored (other heads, buffers, tied copies) or unexpected (inside the encoder).
  const std::string body = expects_prefix ? pfx : "";
  for (const auto& [n, t] : by_name) {
    if (used.count(n)) continue;
    const bool inside = starts_with(n, body + "embeddings.") || starts_with(n, body + "encoder.");
    const bool buffer = ends_with(n, ".position_ids") || ends_with(n, ".token_type_ids");
    const bool tied = n == "cls.predictions.decoder.weight" || n == "lm_head.decoder.weight" ||
                      ends_with(n, ".decoder.bias");
    if (inside && !buffer && !tied)
      unexpected.push_back(t->name + " " + shape_text(t->shape));
    else
      report.ignored.push_back(t->name);
  }
  const size_t problems =
      missing.size() + unexpected.size() + misshaped.size() + mistyped.size() + clashes.size();
  if (problems == 0) return report;
  std::string msg =
      ckpt.weights_file() + ": checkpoint does not match the model: " + std::to_string(missing.size()) +
      " missing, " + std::to_string(unexpected.size()) + " unexpected, " + std::to_string(misshaped.size()) +
      " mis-shaped, " + std::to_string(mistyped.size()) + " mis-typed";
  auto section = [&](const char* title, const std::vector<std::string>& v) {
    for (const auto& s : v) msg += std::string("\n  ") + title + ": " + s;
  };
  section("missing", missing);
  section("unexpected", unexpected);
  section("mis-shaped", misshaped);
  section("mis-typed", mistyped);
  section("name clash", clashes);
  if (!missing.empty()) msg += family_hint(ckpt, pfx);
  throw FormatError(msg);
}

namespace {

bool stale_weights(const std::string& n) {
  return starts_with(n, "pytorch_model") || n == "model.safetensors.index.json" ||
         (starts_with(n, "model-") && ends_with(n, ".safetensors"));
}

void fsync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FormatError(path + ": cannot open to sync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw FormatError(path + ": fsync failed: " + std::strerror(err));
}

// A save into an existing directory stages its files in "<dir>/.bertfit-save-<pid>"; one left by a process
// that no longer runs (killed mid-save) is removed by the next save into that directory.
constexpr char kInPlaceStaging[] = ".bertfit-save-";

void remove_dead_stagings(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> dead;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (!starts_with(n, kInPlaceStaging)) continue;
    const long pid = std::strtol(n.c_str() + sizeof(kInPlaceStaging) - 1, nullptr, 10);
    // kill(pid, 0) sends nothing; EPERM: the process exists but is someone else's.
    if (pid > 0 && pid != ::getpid() && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM)) continue;
    dead.push_back(e.path());
  }
  for (const fs::path& p : dead) fs::remove_all(p, ec);
}

}  // namespace

void save_model_dir(const std::string& dir_in, const ModelConfig& config,
                    const std::vector<TensorRef>& f32_tensors,
                    const std::function<void(const std::string&)>& write_extra) {
  // "out/", "out/." and "out" name one directory; "" and "." the working directory. (Not lexically_normal:
  // "link/.." is where the kernel resolves it, not ".".)
  std::string dir = dir_in.empty() ? "." : dir_in;
  for (bool trimmed = true; trimmed;) {
    trimmed = false;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back(), trimmed = true;
    if (dir.size() > 2 && dir.compare(dir.size() - 2, 2, "/.") == 0)
      dir.resize(dir.size() - 2), trimmed = true;
  }
  if (dir.empty()) dir = "/";
  const fs::path target(dir);
  std::error_code ec;
  // An existing directory (or a symlink to one, a mount point, ".") keeps its inode: its files are replaced.
  const bool in_place = fs::is_directory(target, ec);
  if (in_place) remove_dead_stagings(target);
  const std::string pid = std::to_string(::getpid());
  const std::string staging = in_place ? (target / (kInPlaceStaging + pid)).string() : dir + ".tmp-" + pid;
  fs::remove_all(staging, ec);
  if (!fs::create_directories(staging, ec) && ec)
    throw FormatError(staging + ": cannot create staging directory: " + ec.message());
  bool published = false, renamed_any = false;
  std::vector<fs::path> moved_aside;  // previous weights moved into the staging directory, by original path
  try {
    write_config_json(staging + "/config.json", config);
    std::vector<TensorRef> tensors;
    for (const TensorRef& t : f32_tensors) {
      // HF's save drops the tied copies (re-tied to the word embeddings / head bias on load).
      if (t.name == "cls.predictions.decoder.weight" || t.name == "lm_head.decoder.weight" ||
          t.name == "cls.predictions.decoder.bias" || t.name == "lm_head.decoder.bias")
        continue;
      tensors.push_back(t);
    }
    write_safetensors(staging + "/model.safetensors", tensors, {{"format", "pt"}});
    if (write_extra) write_extra(staging);
    std::vector<fs::path> staged;
    for (const auto& e : fs::directory_iterator(staging)) {
      if (e.is_regular_file()) fsync_file(e.path().string());
      staged.push_back(e.path());
    }
    fsync_dir(staging);
    if (!in_place) {  // a new directory appears whole, or not at all
      if (::rename(staging.c_str(), dir.c_str()) != 0)
        throw FormatError(dir + ": cannot rename the staging directory into place: " + std::strerror(errno));
      published = true;
      fsync_dir(target.has_parent_path() ? target.parent_path().string() : ".");
      return;
    }
    // Each staged file replaces its namesake with one rename (the staging directory is inside dir, so on its
    // file system): every file is old or new, never partly written. Swapping the whole directory instead
    // would fail for ".", a mount point, a symlink, or a directory whose parent is not writable. The old
    // weights (and stale ones of another format, which loaders would prefer or mix in) leave first, into the
    // staging directory, and the new weights come last: a crash in between leaves a directory without
    // weights, which no loader takes, never new files beside old weights (a new vocabulary with the old
    // embeddings loads and predicts garbage). Other files and subdirectories stay.
    std::vector<fs::path> old_weights;  // collected first: no rename while the directory is being read
    for (const auto& e : fs::directory_iterator(target)) {
      const std::string n = e.path().filename().string();
      if (e.is_regular_file() && (n == "model.safetensors" || stale_weights(n)))
        old_weights.push_back(e.path());
    }
    for (const fs::path& p : old_weights) {
      const fs::path aside = fs::path(staging) / (".previous-" + p.filename().string());
      if (::rename(p.c_str(), aside.c_str()) != 0)
        throw FormatError(p.string() + ": cannot move the previous weights aside: " + std::strerror(errno));
      moved_aside.push_back(p);
    }
    if (!old_weights.empty()) fsync_dir(dir);
    std::stable_partition(staged.begin(), staged.end(),
                          [](const fs::path& p) { return p.filename() != "model.safetensors"; });
    for (const fs::path& p : staged) {
      const fs::path to = target / p.filename();
      if (fs::is_directory(p) && fs::exists(to)) fs::remove_all(to);
      if (::rename(p.c_str(), to.c_str()) != 0)
        throw FormatError(to.string() + ": cannot rename the saved file into place: " + std::strerror(errno));
      renamed_any = true;
    }
    published = true;
    fs::remove_all(staging);
    fsync_dir(dir);
  } catch (...) {
    // Nothing new in place yet: the previous weights go back and the directory is as it was. Otherwise the
    // directory holds no weights (loaders refuse it) and the previous ones stay in the staging directory.
    if (!published && !renamed_any) {
      for (const fs::path& p : moved_aside)
        ::rename((fs::path(staging) / (".previous-" + p.filename().string())).c_str(), p.c_str());
      fs::remove_all(staging, ec);
    }
    try {
      throw;
    } catch (const fs::filesystem_error& e) {
      throw FormatError(dir + ": " + e.what());
    }
  }
}

}  // namespace bertfit
