#include "serve/request.h"

#include <nlohmann/json.hpp>

#include "data/utf8.h"

namespace bertfit::serve {

namespace {

using nlohmann::json;

// Valid requests nest three deep ({"inputs": [["a", "b"]]}); members we ignore may nest a little more.
constexpr int kMaxDepth = 32;

ApiError bad_json(const std::string& what) {
  return ApiError(400, ErrorType::VALIDATION, what);
}
ApiError bad_shape(const std::string& what) {
  return ApiError(422, ErrorType::VALIDATION, what);
}

const char* type_name(const json& v) {
  return v.type_name();  // "string", "array", "number", ...
}

json parse_body(std::string_view body) {
  if (body.empty()) throw bad_json("empty request body: expected a JSON object");
  const size_t bad = data::utf8_invalid_offset(body);
  if (bad != std::string_view::npos)
    throw bad_json("request body is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  if (json_depth(body, kMaxDepth) > kMaxDepth)
    throw bad_json("request body nests arrays/objects deeper than " + std::to_string(kMaxDepth));
  try {
    json j = json::parse(body.begin(), body.end());
    if (!j.is_object())
      throw bad_shape(std::string("request body must be a JSON object, got ") + type_name(j));
    return j;
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number too large for a double (found by fuzz_serve_request).
    // e.what(): "[json.exception.parse_error.101] parse error at line 1, column 9: syntax error ..."
    std::string m = e.what();
    const size_t p = m.find("] ");
    throw bad_json("invalid JSON: " + (p == std::string::npos ? m : m.substr(p + 2)));
  }
}

std::optional<bool> optional_bool(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean())
    throw bad_shape(std::string("`") + name + "` must be a boolean, got " + type_name(*it));
  return it->get<bool>();
}

const json& required(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) throw bad_shape(std::string("missing field `") + name + "`");
  return *it;
}

std::string text_at(const json& v, const std::string& where) {
  if (!v.is_string()) throw bad_shape(where + " must be a string, got " + type_name(v));
  std::string s = v.get<std::string>();
  if (s.empty()) throw ApiError(400, ErrorType::EMPTY, where + " cannot be empty");
  return s;
}

// A text ["a"] or a pair ["a", "b"] of a batch.
api::TextInput sequence_at(const json& v, const std::string& where) {
  if (!v.is_array())
    throw bad_shape(where + " must be a list of one text or a pair of texts, got " + type_name(v));
  if (v.empty() || v.size() > 2)
    throw bad_shape(where + " must hold one text or a pair of texts, got " + std::to_string(v.size()) +
                    " elements");
  api::TextInput in;
  in.text = text_at(v[0], where + "[0]");
  if (v.size() == 2) {
    in.text_pair = text_at(v[1], where + "[1]");
    in.pair = true;
  }
  return in;
}

}  // namespace

const char* error_type_name(ErrorType t) {
  switch (t) {
    case ErrorType::VALIDATION:
      return "validation";
    case ErrorType::EMPTY:
      return "empty";
    case ErrorType::TOKENIZER:
      return "tokenizer";
    case ErrorType::OVERLOADED:
      return "overloaded";
    case ErrorType::BACKEND:
      return "backend";
    case ErrorType::UNHEALTHY:
      return "unhealthy";
  }
  return "validation";
}

std::string error_body(const std::string& message, ErrorType type) {
  // Replacing invalid bytes keeps the body valid JSON whatever a message quotes.
  json j = {{"error", message}, {"error_type", error_type_name(type)}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

int json_depth(std::string_view body, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char ch = body[i];
    if (in_string) {
      if (ch == '\\')
        ++i;  // the escaped character cannot end the string
      else if (ch == '"')
        in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (ch == ']' || ch == '}') {
      --depth;  // unbalanced input is the parser's to report
    }
  }
  return deepest;
}

PredictRequest decode_predict_request(std::string_view body) {
  const json j = parse_body(body);
  PredictRequest r;
  r.truncate = optional_bool(j, "truncate");
  r.raw_scores = optional_bool(j, "raw_scores").value_or(false);
  const json& in = required(j, "inputs");
  if (in.is_string()) {
    r.inputs.push_back({text_at(in, "`inputs`"), "", false});
    return r;
  }
  if (!in.is_array())
    throw bad_shape(std::string("`inputs` must be a string, a pair [string, string] or a batch [[string], "
                                "[string, string], ...], got ") +
                    type_name(in));
  if (in.empty()) throw ApiError(400, ErrorType::EMPTY, "`inputs` cannot be empty");
  if (in[0].is_string()) {
    // TEI: a flat list is one input, a text or a pair; a batch is a list of lists.
    if (in.size() > 2)
      throw bad_shape("`inputs` as a flat list holds one text or a pair (2 strings), got " +
                      std::to_string(in.size()) + " elements; send a batch as [[\"text\"], [\"text\"], ...]");
    r.inputs.push_back(sequence_at(in, "`inputs`"));
    return r;
  }
  r.batch = true;
  r.inputs.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i)
    r.inputs.push_back(sequence_at(in[i], "`inputs[" + std::to_string(i) + "]`"));
  return r;
}

TokenizeRequest decode_tokenize_request(std::string_view body) {
  const json j = parse_body(body);
  TokenizeRequest r;
  r.add_special_tokens = optional_bool(j, "add_special_tokens").value_or(true);
  const json& in = required(j, "inputs");
  if (in.is_string()) {
    r.inputs.push_back(text_at(in, "`inputs`"));
    return r;
  }
  if (!in.is_array())
    throw bad_shape(std::string("`inputs` must be a string or a list of strings, got ") + type_name(in));
  if (in.empty()) throw ApiError(400, ErrorType::EMPTY, "`inputs` cannot be empty");
  for (size_t i = 0; i < in.size(); ++i)
    r.inputs.push_back(text_at(in[i], "`inputs[" + std::to_string(i) + "]`"));
  return r;
}

}  // namespace bertfit::serve
