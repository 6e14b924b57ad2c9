// libFuzzer target: the service's request decoding (src/serve/request.h). Any body must decode or be an
// ApiError with a 4xx status; a decoded request must hold what TEI's shapes allow (non-empty texts, valid
// UTF-8, pairs only as pairs), and its error body must stay valid JSON whatever the message quotes.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "data/utf8.h"
#include "serve/request.h"

namespace {

void check_text(const std::string& s) {
  if (s.empty() || bertfit::data::utf8_invalid_offset(s) != std::string::npos) __builtin_trap();
}

void check_refusal(const bertfit::serve::ApiError& e) {
  if (e.status() < 400 || e.status() > 499) __builtin_trap();
  if (!nlohmann::json::accept(bertfit::serve::error_body(e.what(), e.type()))) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  try {
    const bertfit::serve::PredictRequest r = bertfit::serve::decode_predict_request(body);
    if (r.inputs.empty() || (!r.batch && r.inputs.size() != 1)) __builtin_trap();
    for (const auto& in : r.inputs) {
      check_text(in.text);
      if (in.pair) check_text(in.text_pair);
      if (!in.pair && !in.text_pair.empty()) __builtin_trap();
    }
  } catch (const bertfit::serve::ApiError& e) {
    check_refusal(e);
  }
  try {
    const bertfit::serve::TokenizeRequest r = bertfit::serve::decode_tokenize_request(body);
    if (r.inputs.empty()) __builtin_trap();
    for (const auto& t : r.inputs) check_text(t);
  } catch (const bertfit::serve::ApiError& e) {
    check_refusal(e);
  }
  return 0;
}
