// Decoding of the service's JSON request bodies into typed requests, with TEI's shapes:
//   /predict   {"inputs": "text" | ["text"] | ["a", "b"] (one pair) | [["text"], ["a", "b"], ...] (a batch),
//               "truncate": bool (optional), "raw_scores": bool (default false)}
//   /tokenize  {"inputs": "text" | ["text", ...], "add_special_tokens": bool (default true)}
// As TEI (router/src/http/types.rs): a flat list of one or two strings is ONE input (a text or a pair); a
// batch is a list of lists; other members are ignored. Every defect is an ApiError with TEI's status:
// a body that is not UTF-8 or not JSON 400, a wrong shape or type 422, an empty text or batch 400 ("empty").
// Nesting deeper than any valid request is refused before parsing, so hostile bodies cost O(size).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/inference.h"
#include "serve/api_error.h"

namespace bertfit::serve {

struct PredictRequest {
  std::vector<api::TextInput> inputs;
  bool batch = false;            // the response is a list per input (else one list)
  std::optional<bool> truncate;  // absent: the server's --auto-truncate
  bool raw_scores = false;
};

struct TokenizeRequest {
  std::vector<std::string> inputs;
  bool add_special_tokens = true;
};

PredictRequest decode_predict_request(std::string_view body);
TokenizeRequest decode_tokenize_request(std::string_view body);

// The deepest nesting of arrays and objects in `body` (strings skipped), stopping early past `limit`.
int json_depth(std::string_view body, int limit);

}  // namespace bertfit::serve
