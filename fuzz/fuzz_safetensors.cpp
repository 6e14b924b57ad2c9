// libFuzzer target: the safetensors header parser and validation (SafetensorsFile::parse), then the dtype
// conversions on whatever it accepts. Any bertfit::Error is a correct rejection; a crash, sanitizer report or
// leak is a bug.
#include <cstddef>
#include <cstdint>

#include "bertfit/error.h"
#include "bertfit/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = bertfit::SafetensorsFile::parse(data, size, "fuzz.safetensors");
    for (const auto& t : f.tensors()) {
      if (bertfit::dtype_is_float(t.dtype))
        bertfit::to_f32(t);
      else if (bertfit::dtype_is_integer(t.dtype))
        bertfit::to_i64(t);
    }
    // Whatever the reader accepts, the writer must reproduce, and the reader must accept again.
    auto bytes = bertfit::serialize_safetensors(f.tensors(), f.metadata());
    bertfit::SafetensorsFile::parse(bytes.data(), bytes.size(), "fuzz-rewritten.safetensors");
  } catch (const bertfit::Error&) {
  }
  return 0;
}
