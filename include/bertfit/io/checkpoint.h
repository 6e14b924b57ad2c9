// A HuggingFace model directory as the engine sees it: the weights (model.safetensors, sharded safetensors
// through model.safetensors.index.json, or pytorch_model.bin, also sharded), the binding of checkpoint
// tensors to the model's parameters with HF's name conventions, and an atomic directory writer.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bertfit/config.h"
#include "bertfit/io/tensor.h"

namespace bertfit {

namespace io {
class MappedFile;
}

enum class WeightsFormat { SAFETENSORS, SAFETENSORS_SHARDED, TORCH_BIN, TORCH_BIN_SHARDED };

class Checkpoint {
 public:
  // Opens the weights of a model directory, in transformers' order of preference: model.safetensors,
  // model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json. path may also be a single
  // weights file (.safetensors or a torch zip). Throws FormatError naming the file and the problem; for a
  // directory without weights, lists what it looked for.
  static Checkpoint open(const std::string& path);

  // All tensors, in file order (shards in index order). Views into memory maps this object keeps alive.
  const std::vector<TensorRef>& tensors() const { return tensors_; }
  const TensorRef* find(std::string_view name) const;
  // The file the weights came from (the index file for sharded checkpoints).
  std::string weights_file() const { return weights_file_; }
  WeightsFormat format() const { return format_; }
  // The shard files (one entry for an unsharded checkpoint).
  const std::vector<std::string>& files() const { return files_; }
  const std::map<std::string, std::string>& metadata() const {
    return metadata_;
  }  // safetensors __metadata__

 private:
  void add(const std::vector<TensorRef>& ts, const std::string& file);
  std::string weights_file_;
  WeightsFormat format_ = WeightsFormat::SAFETENSORS;
  std::vector<std::string> files_;
  std::vector<std::shared_ptr<const io::MappedFile>> maps_;
  std::vector<TensorRef> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// One parameter the model wants filled: its HF name (with the "bert."/"roberta." prefix where HF has it),
// its shape as HF stores it, and where numel(shape) floats go.
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
  float* dest = nullptr;        // null: only its presence and shape are checked, any dtype (int8 weights)
  bool may_be_missing = false;  // e.g. a task head absent from a base model: the caller initialises it
};

struct LoadReport {
  std::vector<std::string>
      missing_initialized;           // may_be_missing tensors not in the checkpoint (or re-shaped)
  std::vector<std::string> ignored;  // checkpoint tensors not used: other heads, pooler, buffers, tied copies
};

// Fills every expected tensor from the checkpoint, converting to f32 (F16/BF16/F64 too).
//  - Prefix: a base model saved without "bert."/"roberta." is matched to prefixed names, and a prefixed
//    checkpoint to a model that expects no prefix, as transformers does.
//  - Old names: "*.LayerNorm.gamma"/"*.beta" are read as ".weight"/".bias".
//  - Ignored (reported, not errors): "*.position_ids" / "*.token_type_ids" buffers, the tied
//    "cls.predictions.decoder.weight" / "lm_head.decoder.weight", "*.decoder.bias" (tied to the head's bias,
//    and used for it when only the decoder's copy is stored), and every tensor outside
//    "<prefix>.embeddings." / "<prefix>.encoder." the model does not expect (other task heads, a pooler the
//    model lacks).
//  - Errors, ALL reported in one FormatError naming the weights file: missing tensors (not may_be_missing),
//    unexpected tensors under the encoder/embeddings (a config/checkpoint mismatch), shape mismatches,
//    non-float dtypes, two checkpoint names mapping to one parameter.
//  - reinit_mismatched_optional: a may_be_missing tensor whose shape differs (a head with another number of
//    labels) is reported in missing_initialized instead of being an error (HF's ignore_mismatched_sizes).
LoadReport load_into(const Checkpoint& ckpt, const std::string& model_prefix,
                     const std::vector<ExpectedTensor>& expected, bool reinit_mismatched_optional = false);

// Writes config.json + model.safetensors (metadata {"format":"pt"}, f32 tensors as given; tied decoder copies
// are dropped as HF's save does) into dir so that from_pretrained loads it. write_extra, when given, writes
// more files (tokenizer files) into the staging directory it receives. Everything is written into a staging
// directory and fsynced first. A new dir is that staging directory ("<dir>.tmp-<pid>") renamed into place:
// it appears whole or not at all. An existing dir (also ".", a mount point, or a symlink to a directory)
// stays where it is: the files are staged inside it ("<dir>/.bertfit-save-<pid>"), the old weights (and stale
// ones: pytorch_model*.bin*, model.safetensors.index.json, model-*.safetensors) move into the staging
// directory, then each staged file is renamed over its namesake, model.safetensors last. Every file is whole,
// and a crash in between leaves no weights (loaders refuse the directory), never old weights beside new
// files. Other files and subdirectories stay. A failure or a crash before the renames leaves dir untouched.
void save_model_dir(const std::string& dir, const ModelConfig& config,
                    const std::vector<TensorRef>& f32_tensors,
                    const std::function<void(const std::string& staging_dir)>& write_extra = nullptr);

}  // namespace bertfit
