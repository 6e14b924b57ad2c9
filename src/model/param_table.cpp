#include "model/param_table.h"

#include "bertfit/error.h"

namespace bertfit {

namespace {
bool is_no_decay(const std::string& name) {
  auto ends_with = [&](const char* s) {
    const std::string suf(s);
    return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
  };
  return ends_with("bias") || name.find("LayerNorm") != std::string::npos ||
         name.find("layer_norm") != std::string::npos;
}
}  // namespace

const ParamEntry& ParamTable::add_packed(const std::string& name, std::vector<int64_t> shape, int depth) {
  if (index_.count(name)) throw ShapeError("parameter " + name + " defined twice");
  ParamEntry e;
  e.name = name;
  e.offset = total_;
  e.numel = 1;
  for (int64_t d : shape) e.numel *= static_cast<size_t>(d);
  e.shape = std::move(shape);
  e.no_decay = is_no_decay(name);
  e.depth = depth;
  total_ += e.numel;
  index_[name] = entries_.size();
  entries_.push_back(std::move(e));
  return entries_.back();
}

const ParamEntry& ParamTable::add(const std::string& name, std::vector<int64_t> shape, int depth) {
  total_ = (total_ + 15) / 16 * 16;
  return add_packed(name, std::move(shape), depth);
}

const ParamEntry* ParamTable::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const ParamEntry& ParamTable::at(const std::string& name) const {
  const ParamEntry* e = find(name);
  if (!e) throw ShapeError("unknown parameter " + name);
  return *e;
}

size_t ParamTable::num_parameters() const {
  size_t n = 0;
  for (const auto& e : entries_) n += e.numel;
  return n;
}

}  // namespace bertfit
