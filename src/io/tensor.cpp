// DType table and element conversions for TensorRef (FORMATS.md 2a). Conversions are bit-exact: F16/BF16 ->
// f32 is exact, F64 -> f32 rounds to nearest as a C cast does, the 8-bit floats decode per their OCP/FNUZ
// definitions. Strided views (torch .t() views sharing storage) are walked with an index counter, no
// allocation beyond the output.
#include <cmath>
#include <cstring>
#include <limits>

#include "bertfit/error.h"
#include "bertfit/io/tensor.h"

// Checkpoint formats are little-endian and tensors are handed out zero-copy from the file.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "bertfit's checkpoint readers need a little-endian host");

namespace bertfit {

namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  int bits;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::BOOL, "BOOL", 8},
    {DType::F4, "F4", 4},
    {DType::F6_E2M3, "F6_E2M3", 6},
    {DType::F6_E3M2, "F6_E3M2", 6},
    {DType::U8, "U8", 8},
    {DType::I8, "I8", 8},
    {DType::F8_E5M2, "F8_E5M2", 8},
    {DType::F8_E4M3, "F8_E4M3", 8},
    {DType::F8_E8M0, "F8_E8M0", 8},
    {DType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {DType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {DType::I16, "I16", 16},
    {DType::U16, "U16", 16},
    {DType::F16, "F16", 16},
    {DType::BF16, "BF16", 16},
    {DType::I32, "I32", 32},
    {DType::U32, "U32", 32},
    {DType::F32, "F32", 32},
    {DType::C64, "C64", 64},
    {DType::F64, "F64", 64},
    {DType::I64, "I64", 64},
    {DType::U64, "U64", 64},
};

const DTypeInfo& info(DType d) {
  return kDTypes[static_cast<int>(d)];
}

// Decodes an 8-bit float with E exponent bits, M mantissa bits and the given bias. ieee: the top exponent
// means inf/NaN (E5M2); fn: only all-ones is NaN (E4M3); fnuz: 0x80 is the only NaN, no inf, no -0.
float decode_f8(uint8_t v, int ebits, int mbits, int bias, bool ieee, bool fnuz) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  if (fnuz && v == 0x80) return nan;
  const bool neg = v & 0x80;
  const int e = (v >> mbits) & ((1 << ebits) - 1);
  const int m = v & ((1 << mbits) - 1);
  const int emax = (1 << ebits) - 1;
  float mag;
  if (ieee && e == emax) {
    mag = m ? nan : std::numeric_limits<float>::infinity();
  } else if (!ieee && !fnuz && e == emax && m == (1 << mbits) - 1) {
    mag = nan;
  } else if (e == 0) {
    mag = std::ldexp(static_cast<float>(m), 1 - bias - mbits);
  } else {
    mag = std::ldexp(static_cast<float>(m + (1 << mbits)), e - bias - mbits);
  }
  return neg ? -mag : mag;
}

float f8_to_f32(DType d, uint8_t v) {
  switch (d) {
    case DType::F8_E5M2:
      return decode_f8(v, 5, 2, 15, true, false);
    case DType::F8_E4M3:
      return decode_f8(v, 4, 3, 7, false, false);
    case DType::F8_E4M3FNUZ:
      return decode_f8(v, 4, 3, 8, false, true);
    case DType::F8_E5M2FNUZ:
      return decode_f8(v, 5, 2, 16, false, true);
    case DType::F8_E8M0:  // unsigned power of two, 0xFF is NaN
      return v == 0xFF ? std::numeric_limits<float>::quiet_NaN()
                       : std::ldexp(1.0f, static_cast<int>(v) - 127);
    default:
      return 0.0f;
  }
}

// Calls fn(flat_index, element_offset) for every element of t in row-major order.
template <typename Fn>
void for_each_offset(const TensorRef& t, Fn fn) {
  const int64_t n = t.numel();
  if (n == 0) return;
  if (t.strides.empty()) {
    for (int64_t i = 0; i < n; ++i) fn(i, i);
    return;
  }
  const size_t rank = t.shape.size();
  std::vector<int64_t> idx(rank, 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    fn(i, off);
    for (size_t k = rank; k-- > 0;) {  // increment the multi-index like an odometer
      if (++idx[k] < t.shape[k]) {
        off += t.strides[k];
        break;
      }
      off -= t.strides[k] * (t.shape[k] - 1);
      idx[k] = 0;
    }
  }
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // unaligned-safe; little-endian hosts only (x86-64, aarch64)
  return v;
}

void check_view(const TensorRef& t) {
  if (t.dtype == DType::F4 || t.dtype == DType::F6_E2M3 || t.dtype == DType::F6_E3M2)
    throw FormatError("tensor " + t.name + ": sub-byte dtype " + dtype_name(t.dtype) +
                      " cannot be converted");
  if (!t.strides.empty() && t.strides.size() != t.shape.size())
    throw FormatError("tensor " + t.name + ": strides rank differs from shape rank");
  // The furthest element must lie inside nbytes (callers validated this; a cheap guard against misuse).
  int64_t last = 0;
  for (size_t k = 0; k < t.shape.size(); ++k) {
    if (t.shape[k] == 0) return;
    last += (t.shape[k] - 1) * (t.strides.empty() ? 0 : t.strides[k]);
  }
  const size_t es = dtype_bits(t.dtype) / 8;
  const size_t need =
      t.strides.empty() ? static_cast<size_t>(t.numel()) * es : (static_cast<size_t>(last) + 1) * es;
  if (need > t.nbytes)
    throw FormatError("tensor " + t.name + ": view needs " + std::to_string(need) + " bytes, has " +
                      std::to_string(t.nbytes));
}

}  // namespace

int dtype_bits(DType d) {
  return info(d).bits;
}
const char* dtype_name(DType d) {
  return info(d).name;
}

bool parse_dtype(std::string_view name, DType* out) {
  for (const auto& i : kDTypes) {
    if (name == i.name) {
      *out = i.dtype;
      return true;
    }
  }
  return false;
}

bool dtype_is_float(DType d) {
  switch (d) {
    case DType::F16:
    case DType::BF16:
    case DType::F32:
    case DType::F64:
    case DType::F8_E5M2:
    case DType::F8_E4M3:
    case DType::F8_E8M0:
    case DType::F8_E4M3FNUZ:
    case DType::F8_E5M2FNUZ:
      return true;
    default:
      return false;
  }
}

bool dtype_is_integer(DType d) {
  switch (d) {
    case DType::BOOL:
    case DType::U8:
    case DType::I8:
    case DType::I16:
    case DType::U16:
    case DType::I32:
    case DType::U32:
    case DType::I64:
    case DType::U64:
      return true;
    default:
      return false;
  }
}

int64_t TensorRef::numel() const {
  for (int64_t d : shape)
    if (d == 0) return 0;  // first, so a huge dimension next to a 0 cannot overflow the product
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // readers checked that non-empty shapes fit the file
  return n;
}

bool TensorRef::is_contiguous() const {
  if (strides.empty()) return true;
  if (strides.size() != shape.size()) return false;
  int64_t expect = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    if (shape[k] != 1 && strides[k] != expect) return false;
    expect *= shape[k];
  }
  return true;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t e = (h >> 10) & 0x1F;
  uint32_t m = h & 0x3FF;
  uint32_t bits;
  if (e == 0x1F) {
    bits = sign | 0x7F800000u | (m << 13);  // inf / NaN (payload kept)
  } else if (e != 0) {
    bits = sign | ((e + 112) << 23) | (m << 13);  // rebias 15 -> 127
  } else if (m == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int shift = 0;
    while (!(m & 0x400)) {
      m <<= 1;
      ++shift;
    }
    m &= 0x3FF;
    bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = (u >> 16) & 0x8000;
  const uint32_t a = u & 0x7FFFFFFF;
  if (a > 0x7F800000u) return sign | 0x7E00;            // NaN -> quiet NaN
  if (a >= 0x477FF000u) return sign | 0x7C00;           // rounds to >= 65520: inf
  if (a < 0x38800000u) {                                // below the smallest normal half: subnormal or zero
    const int shift = 126 - static_cast<int>(a >> 23);  // result = mantissa24 * 2^(e-126): bits to drop
    if (shift > 24) return sign;                        // below half the smallest subnormal: rounds to 0
    const uint32_t m = (a & 0x7FFFFF) | 0x800000;
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;  // nearest even; may become the smallest normal
    return sign | static_cast<uint16_t>(r);
  }
  uint32_t r = ((a >> 13) - (112u << 10));
  const uint32_t rem = a & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;  // round to nearest even; may carry into the exponent
  return sign | static_cast<uint16_t>(r);
}

float bf16_to_f32(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFF) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // keep NaN quiet
  return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

void to_f32(const TensorRef& t, float* out) {
  if (!dtype_is_float(t.dtype))
    throw FormatError("tensor " + t.name + ": dtype " + dtype_name(t.dtype) + " is not a float type");
  check_view(t);
  const uint8_t* p = t.data;
  switch (t.dtype) {
    case DType::F32:
      if (t.strides.empty()) {
        if (t.numel()) std::memcpy(out, p, static_cast<size_t>(t.numel()) * 4);
      } else {
        for_each_offset(t, [&](int64_t i, int64_t o) { out[i] = load<float>(p + o * 4); });
      }
      break;
    case DType::F16:
      for_each_offset(t, [&](int64_t i, int64_t o) { out[i] = f16_to_f32(load<uint16_t>(p + o * 2)); });
      break;
    case DType::BF16:
      for_each_offset(t, [&](int64_t i, int64_t o) { out[i] = bf16_to_f32(load<uint16_t>(p + o * 2)); });
      break;
    case DType::F64:
      for_each_offset(t, [&](int64_t i, int64_t o) { out[i] = static_cast<float>(load<double>(p + o * 8)); });
      break;
    default:
      for_each_offset(t, [&](int64_t i, int64_t o) { out[i] = f8_to_f32(t.dtype, p[o]); });
      break;
  }
}

std::vector<float> to_f32(const TensorRef& t) {
  std::vector<float> out(dtype_is_float(t.dtype) ? static_cast<size_t>(t.numel()) : 0);
  to_f32(t, out.data());
  return out;
}

std::vector<int64_t> to_i64(const TensorRef& t) {
  if (!dtype_is_integer(t.dtype))
    throw FormatError("tensor " + t.name + ": dtype " + dtype_name(t.dtype) + " is not an integer type");
  check_view(t);
  std::vector<int64_t> out(static_cast<size_t>(t.numel()));
  const uint8_t* p = t.data;
  const std::string& name = t.name;
  for_each_offset(t, [&](int64_t i, int64_t o) {
    switch (t.dtype) {
      case DType::BOOL:
        out[i] = p[o] != 0;
        break;
      case DType::U8:
        out[i] = p[o];
        break;
      case DType::I8:
        out[i] = static_cast<int8_t>(p[o]);
        break;
      case DType::I16:
        out[i] = load<int16_t>(p + o * 2);
        break;
      case DType::U16:
        out[i] = load<uint16_t>(p + o * 2);
        break;
      case DType::I32:
        out[i] = load<int32_t>(p + o * 4);
        break;
      case DType::U32:
        out[i] = load<uint32_t>(p + o * 4);
        break;
      case DType::I64:
        out[i] = load<int64_t>(p + o * 8);
        break;
      default: {
        const uint64_t v = load<uint64_t>(p + o * 8);
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          throw FormatError("tensor " + name + ": U64 value " + std::to_string(v) + " does not fit in i64");
        out[i] = static_cast<int64_t>(v);
      }
    }
  });
  return out;
}

std::vector<uint8_t> contiguous_bytes(const TensorRef& t) {
  const int bits = dtype_bits(t.dtype);
  if (bits % 8 != 0) {
    if (!t.is_contiguous()) throw FormatError("tensor " + t.name + ": strided sub-byte tensor");
    const size_t n = (static_cast<size_t>(t.numel()) * bits + 7) / 8;
    if (n > t.nbytes) throw FormatError("tensor " + t.name + ": buffer too small");
    return std::vector<uint8_t>(t.data, t.data + n);
  }
  check_view(t);
  const size_t es = bits / 8;
  std::vector<uint8_t> out(static_cast<size_t>(t.numel()) * es);
  if (t.strides.empty()) {
    if (!out.empty()) std::memcpy(out.data(), t.data, out.size());
  } else {
    for_each_offset(t, [&](int64_t i, int64_t o) { std::memcpy(&out[i * es], t.data + o * es, es); });
  }
  return out;
}

}  // namespace bertfit
