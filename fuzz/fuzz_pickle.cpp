// libFuzzer target: the restricted unpickler on raw pickle bytes (data.pkl without the zip around it).
#include <cstddef>
#include <cstdint>

#include "bertfit/error.h"
#include "bertfit/io/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    bertfit::pickle::unpickle(data, size, "fuzz.pkl");
  } catch (const bertfit::Error&) {
  }
  return 0;
}
