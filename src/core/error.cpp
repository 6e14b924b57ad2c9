#include "bertfit/error.h"

namespace bertfit {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

void check_shape(const std::string& what, const std::vector<int64_t>& expected,
                 const std::vector<int64_t>& actual) {
  if (expected != actual)
    throw ShapeError(what + ": expected shape " + shape_str(expected) + ", got " + shape_str(actual));
}

}  // namespace bertfit
