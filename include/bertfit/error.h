// Errors of the bertfit library. The library throws; only the CLI prints and exits (docs/architecture.md).
// Every message names what failed (file, line, field, tensor) and, for shapes, the expected and actual
// values, so a user can act on it without a debugger.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace bertfit {

// Base class of every error the library reports about its input or its use.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A tensor or buffer whose shape does not match what the computation needs.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A configuration (config.json, options) that is invalid or inconsistent.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A file that cannot be read, is malformed, or cannot be written.
class FormatError : public Error {
 public:
  using Error::Error;
};

// "[2, 3, 4]"
std::string shape_str(const std::vector<int64_t>& shape);

// Throws ShapeError("<what>: expected shape [..], got [..]") when the shapes differ.
void check_shape(const std::string& what, const std::vector<int64_t>& expected,
                 const std::vector<int64_t>& actual);

}  // namespace bertfit
