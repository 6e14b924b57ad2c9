// A restricted unpickler for torch checkpoints (FORMATS.md 2b). It executes only the protocol-2 opcodes torch
// writes and resolves only these globals: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
// torch._utils._rebuild_parameter and the torch.*Storage classes. Anything else (os.system, builtins.eval,
// any other class) is refused before it could be called: executing pickle GLOBALs runs arbitrary code.
//
// Objects live in one arena addressed by index, so deep nesting and memo cycles cannot overflow the C++ stack
// or leak; every length is checked against the remaining bytes, the memo is a map (a huge LONG_BINPUT index
// allocates nothing), and the work and memory are linear in the pickle's size (None/True/False, the empty
// tuple and small ints are shared, so a run of 1-byte opcodes adds only stack slots).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bertfit/io/tensor.h"

namespace bertfit::pickle {

enum class Kind : uint8_t { NONE, BOOL, INT, FLOAT, STR, TUPLE, LIST, DICT, GLOBAL, STORAGE, TENSOR };

// A torch storage named by a persistent id: ('storage', torch.XStorage, key, location, numel).
struct StorageInfo {
  DType dtype = DType::F32;
  std::string key;       // the record data/<key> in the zip
  std::string location;  // "cpu", "cuda:0", ... (ignored: bytes are the same)
  int64_t numel = 0;     // elements of the typed storage
};

// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]).
struct TensorInfo {
  uint32_t storage = 0;  // index into Pickle::storages
  int64_t offset = 0;    // elements
  std::vector<int64_t> size, stride;
  bool requires_grad = false;
};

// One Python object (48 bytes: strings live in a side pool, so a run of 1-byte opcodes stays cheap). Which
// fields are used depends on kind.
struct Object {
  Kind kind = Kind::NONE;
  bool ordered = false;  // DICT: an OrderedDict
  uint32_t ref = 0;      // STR, GLOBAL: index into strings; STORAGE: into storages; TENSOR: into tensors
  int64_t i = 0;         // BOOL (0/1), INT
  double f = 0;          // FLOAT
  std::vector<uint32_t> items;  // TUPLE, LIST; DICT: key0, value0, key1, value1, ...
};

struct Pickle {
  std::vector<Object> objects;
  std::vector<std::string> strings;  // STR values (unicode or bytes); GLOBAL names as "module.name"
  std::vector<StorageInfo> storages;
  std::vector<TensorInfo> tensors;
  uint32_t root = 0;
  const Object& at(uint32_t i) const { return objects[i]; }
  const Object& root_object() const { return objects[root]; }
  const std::string& str(const Object& o) const { return strings[o.ref]; }
};

// Objects one pickle may create (a state dict needs about 30 per tensor); bounds memory at ~48 bytes each.
inline constexpr size_t kMaxObjects = 4u << 20;

// Runs the pickle program. what names the source in messages ("model.bin: data.pkl"). Throws FormatError
// "<what>: byte <offset>: <problem>" for forbidden globals or opcodes, stack misuse, truncation, tensors
// whose view does not fit their storage. Nesting depth is not limited: nothing here recurses.
Pickle unpickle(const uint8_t* data, size_t size, const std::string& what);

// "dict", "tensor", ... for messages.
const char* kind_name(Kind k);

}  // namespace bertfit::pickle
