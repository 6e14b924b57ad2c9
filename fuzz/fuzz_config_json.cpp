// libFuzzer target: config.json parsing and validation; an accepted config must survive write -> parse.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bertfit/error.h"
#include "bertfit/io/config_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::string text(reinterpret_cast<const char*>(data), size);
    bertfit::ModelConfig c = bertfit::parse_config_json(text, "fuzz.json");
    const std::string again = bertfit::config_json_text(c);
    bertfit::ModelConfig d = bertfit::parse_config_json(again, "fuzz-rewritten.json");
    if (bertfit::config_json_text(d) != again) __builtin_trap();  // writing must be a fixed point
    c.validate();
  } catch (const bertfit::Error&) {
  }
  return 0;
}
