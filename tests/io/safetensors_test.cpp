// safetensors: the writer's exact byte layout (reference order, space padding, metadata), round trips of
// every convertible dtype, and the reader's validation rules one by one (the hostile corpus covers the rest).
#include <gtest/gtest.h>

#include <cstring>

#include "bertfit/error.h"
#include "bertfit/io/safetensors.h"
#include "io_test_util.h"

using namespace bertfit;
using bertfit::test::expect_error;

namespace {

// header JSON + raw buffer -> file image with the 8-byte length prefix.
std::vector<uint8_t> image(const std::string& header, const std::vector<uint8_t>& buffer, int64_t n = -1) {
  const uint64_t len = n < 0 ? header.size() : static_cast<uint64_t>(n);
  std::vector<uint8_t> out(8 + header.size() + buffer.size());
  std::memcpy(out.data(), &len, 8);
  std::copy(header.begin(), header.end(), out.begin() + 8);
  std::copy(buffer.begin(), buffer.end(), out.begin() + 8 + static_cast<ptrdiff_t>(header.size()));
  return out;
}

TensorRef ref(const std::string& name, DType d, std::vector<int64_t> shape, const void* p, size_t n) {
  return TensorRef{name, d, std::move(shape), static_cast<const uint8_t*>(p), n, {}};
}

void expect_parse_error(const std::string& header, const std::vector<uint8_t>& buffer,
                        const std::vector<std::string>& fragments) {
  auto img = image(header, buffer);
  expect_error<FormatError>([&] { SafetensorsFile::parse(img.data(), img.size(), "bad.safetensors"); },
                            fragments);
}

}  // namespace

TEST(Safetensors, WriterLayoutMatchesReference) {
  const float w[2] = {1.0f, -2.0f};
  const int64_t ids[1] = {7};
  const uint16_t h[1] = {0x3C00};
  auto bytes =
      serialize_safetensors({ref("b.weight", DType::F32, {2}, w, 8), ref("a.f16", DType::F16, {1}, h, 2),
                             ref("position_ids", DType::I64, {1, 1}, ids, 8)},
                            {{"format", "pt"}});
  // I64 before F32 before F16 (dtype descending), metadata first, compact JSON, padded with spaces to 8.
  const std::string json =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"position_ids\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[0,8]},"
      "\"b.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
      "\"a.f16\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[16,18]}}";
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(n, (json.size() + 7) / 8 * 8);
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + n);
  EXPECT_EQ(header.substr(0, json.size()), json);
  EXPECT_EQ(header.find_first_not_of(' ', json.size()), std::string::npos);
  EXPECT_EQ(bytes.size(), 8 + n + 18);

  auto f = SafetensorsFile::parse(bytes.data(), bytes.size(), "mem");
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.tensors()[0].name, "position_ids");  // file order
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(to_f32(*f.find("b.weight")), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(to_f32(*f.find("a.f16")), std::vector<float>{1.0f});
  EXPECT_EQ(to_i64(*f.find("position_ids")), std::vector<int64_t>{7});
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.find("b.weight")->data) % 4, 0u);
}

TEST(Safetensors, FileRoundTripAllFloatDtypes) {
  const std::string dir = test::temp_dir("st");
  const std::string path = dir + "/model.safetensors";
  std::vector<float> v = {0.5f, -1.25f, 3.0f, 1e-3f, 100.0f, -0.0f};
  std::vector<uint16_t> h, b;
  std::vector<double> d(v.begin(), v.end());
  for (float x : v) {
    h.push_back(f32_to_f16(x));
    b.push_back(f32_to_bf16(x));
  }
  const int32_t i32[2] = {-3, 9};
  write_safetensors(
      path,
      {ref("f32", DType::F32, {2, 3}, v.data(), 24), ref("f16", DType::F16, {3, 2}, h.data(), 12),
       ref("bf16", DType::BF16, {6}, b.data(), 12), ref("f64", DType::F64, {6, 1}, d.data(), 48),
       ref("i32", DType::I32, {2}, i32, 8), ref("empty", DType::F32, {0, 4}, nullptr, 0),
       ref("scalar", DType::F32, {}, v.data(), 4)},
      {{"format", "pt"}});
  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.tensors().size(), 7u);
  EXPECT_EQ(to_f32(*f.find("f32")), v);
  EXPECT_EQ(to_f32(*f.find("f64")), v);
  // f16 and bf16 hold rounded values: compare with the same rounding applied on our side.
  auto f16 = to_f32(*f.find("f16"));
  auto bf16 = to_f32(*f.find("bf16"));
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(f16[i], f16_to_f32(f32_to_f16(v[i])));
    EXPECT_EQ(bf16[i], bf16_to_f32(f32_to_bf16(v[i])));
  }
  EXPECT_EQ(f.find("f16")->shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(f.find("empty")->numel(), 0);
  EXPECT_TRUE(f.find("scalar")->shape.empty());
  EXPECT_EQ(to_i64(*f.find("i32")), (std::vector<int64_t>{-3, 9}));
  // No temporary file left behind.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(Safetensors, WriterGathersStridedViewsAndRejectsBadInput) {
  const float storage[6] = {0, 1, 2, 3, 4, 5};
  TensorRef t{"t", DType::F32, {3, 2}, reinterpret_cast<const uint8_t*>(storage), 24, {1, 3}};
  auto bytes = serialize_safetensors({t}, {});
  auto f = SafetensorsFile::parse(bytes.data(), bytes.size(), "mem");
  EXPECT_EQ(to_f32(f.tensors()[0]), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_TRUE(f.metadata().empty());
  expect_error<FormatError>([&] { serialize_safetensors({t, t}, {}); }, {"duplicate tensor \"t\""});
  TensorRef m = t;
  m.name = "__metadata__";
  expect_error<FormatError>([&] { serialize_safetensors({m}, {}); }, {"reserved"});
  TensorRef small{"s", DType::F32, {4}, reinterpret_cast<const uint8_t*>(storage), 8, {}};
  expect_error<FormatError>([&] { serialize_safetensors({small}, {}); }, {"\"s\"", "needs 16"});
}

TEST(Safetensors, AcceptsWhitespaceAroundHeaderAndNullMetadata) {
  const float x = 1.0f;
  std::vector<uint8_t> buf(4);
  std::memcpy(buf.data(), &x, 4);
  auto img = image(
      "  \n{\"__metadata__\":null,\"x\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}  ", buf);
  auto f = SafetensorsFile::parse(img.data(), img.size(), "ws");
  EXPECT_EQ(to_f32(f.tensors()[0]), std::vector<float>{1.0f});
}

TEST(Safetensors, ValidationRules) {
  const std::vector<uint8_t> b8(8, 0);
  expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", b8,
                     {"bad.safetensors", "\"a\"", "needs 8", "TensorInvalidInfo"});
  expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", b8,
                     {"gap", "InvalidOffset"});
  expect_parse_error(
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
      b8, {"overlap", "InvalidOffset"});
  expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", b8,
                     {"trailing", "MetadataIncompleteBuffer"});
  expect_parse_error("{\"a\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", b8,
                     {"unknown dtype \"F31\""});
  expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", b8,
                     {"negative integer"});
  expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", b8,
                     {"non-negative integers", "number"});
  expect_parse_error("{\"__metadata__\":{\"format\":1}}", {}, {"\"format\" must be a string"});
  expect_parse_error("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", {0},
                     {"12 bits", "MisalignedSlice"});
  expect_parse_error(
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[281474976710655,281474976710655,281474976710655],"
      "\"data_offsets\":[0,8]}}",
      b8, {"overflows", "ValidationOverflow"});
  expect_parse_error("{\"a\":1,\"a\":2}", {}, {"duplicate key \"a\""});
  expect_parse_error("[]", {}, {"must be a JSON object"});
  expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", b8, {"missing field data_offsets"});
  expect_parse_error(std::string("{\"\xff\":1}"), {}, {"not valid UTF-8", "InvalidHeader"});
  auto img = image("{}", {}, 1000);
  expect_error<FormatError>([&] { SafetensorsFile::parse(img.data(), img.size(), "x"); },
                            {"runs past the end", "InvalidHeaderLength"});
  img = image("{}", {}, 200000000);
  expect_error<FormatError>([&] { SafetensorsFile::parse(img.data(), img.size(), "x"); }, {"HeaderTooLarge"});
  expect_error<FormatError>([&] { SafetensorsFile::parse(img.data(), 5, "x"); }, {"HeaderTooSmall"});
  expect_error<FormatError>([&] { SafetensorsFile::open("/nonexistent/m.safetensors"); },
                            {"/nonexistent/m.safetensors", "cannot open"});
}
