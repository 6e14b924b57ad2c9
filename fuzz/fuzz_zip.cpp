// libFuzzer target: the ZIP reader (central directory, ZIP64 records, local headers, CRC) and, on top of it,
// the pytorch_model.bin loader (prefix discovery, restricted unpickler, storage resolution, strided views).
#include <cstddef>
#include <cstdint>

#include "bertfit/error.h"
#include "bertfit/io/torch_bin.h"
#include "bertfit/io/zip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto z = bertfit::ZipArchive::parse(data, size, "fuzz.zip");
    for (const auto& e : z.entries()) {
      try {
        z.data(e);
      } catch (const bertfit::Error&) {
      }
    }
  } catch (const bertfit::Error&) {
  }
  try {
    auto f = bertfit::TorchBinFile::parse(data, size, "fuzz.bin");
    for (const auto& t : f.tensors())
      if (bertfit::dtype_is_float(t.dtype)) bertfit::to_f32(t);
  } catch (const bertfit::Error&) {
  }
  return 0;
}
