// Errors the service answers with, as text-embeddings-inference (TEI) does: a JSON body
// {"error": "...", "error_type": "..."} and the HTTP status TEI gives that error type.
#pragma once

#include <string>

#include "bertfit/error.h"

namespace bertfit::serve {

enum class ErrorType {
  VALIDATION,  // a well-formed request the service refuses (batch too large, input too long, body too large)
  EMPTY,       // an empty input
  TOKENIZER,   // the input cannot be encoded
  OVERLOADED,  // more concurrent requests than --max-concurrent-requests
  BACKEND,     // the model failed
  UNHEALTHY,   // shutting down
};

const char* error_type_name(ErrorType t);  // TEI's spelling: "validation", "empty", ...

class ApiError : public Error {
 public:
  ApiError(int status, ErrorType type, const std::string& message)
      : Error(message), status_(status), type_(type) {}
  int status() const { return status_; }
  ErrorType type() const { return type_; }
  // Metric label of the failure (te_request_failure{err=...}); TEI counts a too-large batch apart.
  std::string failure_label() const { return label_.empty() ? error_type_name(type_) : label_; }
  ApiError& with_label(std::string l) {
    label_ = std::move(l);
    return *this;
  }

 private:
  int status_;
  ErrorType type_;
  std::string label_;
};

// {"error":"...","error_type":"..."}
std::string error_body(const std::string& message, ErrorType type);

}  // namespace bertfit::serve
