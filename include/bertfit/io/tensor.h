// Tensor views over checkpoint bytes: the dtype table of safetensors (FORMATS.md 2a) and the conversions the
// engine needs (any float dtype -> f32, any integer dtype -> i64). A TensorRef never owns its bytes: it
// points into a memory map (or a caller's buffer) that some owner (SafetensorsFile, TorchBinFile, Checkpoint)
// keeps alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bertfit {

// In safetensors' enum order (BOOL lowest, U64 highest); the writer sorts by this order, descending.
enum class DType : uint8_t {
  BOOL,
  F4,
  F6_E2M3,
  F6_E3M2,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  F8_E4M3FNUZ,
  F8_E5M2FNUZ,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,
  F64,
  I64,
  U64,
};

// Bits per element (4 and 6 for the sub-byte float formats).
int dtype_bits(DType dtype);
// The safetensors spelling, e.g. "F32".
const char* dtype_name(DType dtype);
// Parses a safetensors dtype string; false when unknown.
bool parse_dtype(std::string_view name, DType* out);
bool dtype_is_float(DType dtype);    // F16, BF16, F32, F64 and the 8-bit floats (what to_f32 converts)
bool dtype_is_integer(DType dtype);  // BOOL, U8..U64 (what to_i64 converts)

// A view of one tensor. Row-major (C order) when strides is empty; otherwise element i of the view is at
// data + (sum_k idx_k * strides[k]) * element_size (strides count elements, never negative, as torch's).
struct TensorRef {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;             // bytes readable from data: numel * element size when contiguous
  std::vector<int64_t> strides;  // elements; empty = contiguous

  int64_t numel() const;       // product of shape (1 for a rank-0 tensor)
  bool is_contiguous() const;  // strides empty or equal to the row-major strides of shape
};

// Converts a float tensor (F32, F16, BF16, F64, F8_*) to f32, honouring strides; out holds numel() floats.
// Throws FormatError naming the tensor for other dtypes.
void to_f32(const TensorRef& t, float* out);
std::vector<float> to_f32(const TensorRef& t);
// Converts an integer or bool tensor to i64, honouring strides. Throws FormatError for float dtypes and for a
// U64 value above INT64_MAX.
std::vector<int64_t> to_i64(const TensorRef& t);

// Copies the tensor's elements into row-major order (for writers); throws for sub-byte dtypes with strides.
std::vector<uint8_t> contiguous_bytes(const TensorRef& t);

// IEEE binary16 and bfloat16 conversions (BF16 from f32 rounds to nearest even, NaNs stay quiet NaNs).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);

}  // namespace bertfit
