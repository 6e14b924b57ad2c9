// The table from HuggingFace parameter names to (offset, shape) in the model's one contiguous parameter
// buffer. Gradients and AdamW moments are parallel buffers with the same layout, so the optimizer, clipping,
// checkpointing and (later) the distributed all-reduce each work on one span.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace bertfit {

struct ParamEntry {
  std::string name;            // HuggingFace name, e.g. "bert.encoder.layer.3.attention.self.query.weight"
  size_t offset = 0;           // in floats, into the parameter buffer
  std::vector<int64_t> shape;  // as HuggingFace stores it (nn.Linear: [out, in])
  size_t numel = 0;
  bool no_decay = false;  // biases and LayerNorm weights: no weight decay (HF Trainer's convention)
  int depth = 0;  // 0 = embeddings, 1..L = encoder layer L-1, L+1 = pooler and task head (layer-wise lr)
};

class ParamTable {
 public:
  // Appends a tensor, aligned to 16 floats (64 bytes) so every tensor starts on a cache line.
  const ParamEntry& add(const std::string& name, std::vector<int64_t> shape, int depth);
  // Appends a tensor directly after the previous one with no alignment gap (fused Q|K|V weights and biases).
  const ParamEntry& add_packed(const std::string& name, std::vector<int64_t> shape, int depth);
  // Throws ShapeError("unknown parameter <name>") when absent.
  const ParamEntry& at(const std::string& name) const;
  const ParamEntry* find(const std::string& name) const;
  const std::vector<ParamEntry>& entries() const { return entries_; }
  size_t total_floats() const { return total_; }
  size_t num_parameters() const;  // sum of numel (without alignment gaps)

 private:
  std::vector<ParamEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
  size_t total_ = 0;
};

}  // namespace bertfit
