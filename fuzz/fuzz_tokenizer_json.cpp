// libFuzzer: arbitrary bytes as a tokenizer.json (and, split at the first 0x00, as vocab.txt + the text to
// encode). Loading must either succeed or throw bertfit::Error (FormatError naming the file), never crash
// or allocate beyond what the input justifies; a loaded tokenizer must then encode without crashing.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "bertfit/error.h"
#include "bertfit/tokenizer.h"

namespace {

bool write_file(const std::string& path, const char* data, size_t n) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(data, 1, n, f) == n;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/fuzz_tokenizer_json.XXXXXX";
    const char* d = mkdtemp(tmpl);
    return std::string(d ? d : "/tmp");
  }();
  const char* p = reinterpret_cast<const char*>(data);
  const std::string bytes(p, size);
  const size_t zero = bytes.find('\0');
  const std::string file = zero == std::string::npos ? bytes : bytes.substr(0, zero);
  const std::string text = zero == std::string::npos ? "Hello, world! [MASK] <mask>" : bytes.substr(zero + 1);
  const bool as_vocab = size > 0 && (data[0] & 1);  // odd first byte: treat the file as vocab.txt
  unlink((dir + "/tokenizer.json").c_str());
  unlink((dir + "/vocab.txt").c_str());
  if (!write_file(dir + (as_vocab ? "/vocab.txt" : "/tokenizer.json"), file.data(), file.size())) return 0;
  try {
    const bertfit::Tokenizer t = bertfit::Tokenizer::from_directory(dir);
    t.encode(text);
    t.encode_pair(text, text);
  } catch (const bertfit::Error&) {
  }
  return 0;
}
