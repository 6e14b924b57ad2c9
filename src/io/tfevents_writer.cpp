#include "io/tfevents_writer.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "bertfit/error.h"
#include "io/crc32c.h"

namespace bertfit {

namespace {

// Protobuf wire format: a key is (field << 3) | wire type; 0 varint, 1 64-bit, 2 length-delimited, 5 32-bit.
void put_varint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void put_key(std::string* out, int field, int wire) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire));
}
void put_fixed(std::string* out, const void* p, size_t n) {
  // Little-endian on the wire, as this x86-64 / AArch64 code stores it.
  out->append(static_cast<const char*>(p), n);
}
void put_double(std::string* out, int field, double v) {
  put_key(out, field, 1);
  put_fixed(out, &v, 8);
}
void put_float(std::string* out, int field, float v) {
  put_key(out, field, 5);
  put_fixed(out, &v, 4);
}
void put_int(std::string* out, int field, int64_t v) {
  put_key(out, field, 0);
  put_varint(out, static_cast<uint64_t>(v));  // int32 / int64: two's complement as 64-bit varint
}
void put_bytes(std::string* out, int field, const std::string& bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out->append(bytes);
}

// Event {double wall_time = 1; int64 step = 2; ...; Summary summary = 5}. proto3 omits a zero step.
std::string event_header(double wall_time, int64_t step) {
  std::string e;
  put_double(&e, 1, wall_time);
  if (step != 0) put_int(&e, 2, step);
  return e;
}

std::string summary_event(double wall_time, int64_t step, const std::string& value) {
  std::string summary;
  put_bytes(&summary, 1, value);  // Summary.value (repeated Value)
  std::string e = event_header(wall_time, step);
  put_bytes(&e, 5, summary);
  return e;
}

void put_le(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string tfrecord_frame(const std::string& record) {
  std::string out, len;
  put_le(&len, record.size(), 8);
  out += len;
  put_le(&out, mask_crc32c(crc32c(len.data(), len.size())), 4);
  out += record;
  put_le(&out, mask_crc32c(crc32c(record.data(), record.size())), 4);
  return out;
}

std::string encode_file_version_event(double wall_time, const std::string& version) {
  std::string e = event_header(wall_time, 0);
  put_bytes(&e, 3, version);
  return e;
}

std::string encode_scalar_event(double wall_time, int64_t step, const std::string& tag, float value) {
  std::string v;
  put_bytes(&v, 1, tag);    // Value.tag
  put_float(&v, 2, value);  // Value.simple_value
  return summary_event(wall_time, step, v);
}

std::string encode_text_event(double wall_time, int64_t step, const std::string& tag,
                              const std::string& text) {
  // SummaryMetadata {PluginData plugin_data = 1 {string plugin_name = 1; bytes content = 2}}; the content is
  // the text plugin's TextPluginData {int32 version = 1} = 0, which encodes to no bytes.
  std::string plugin_data, metadata;
  put_bytes(&plugin_data, 1, "text");
  put_bytes(&plugin_data, 2, "");
  put_bytes(&metadata, 1, plugin_data);
  // TensorProto {DataType dtype = 1 (DT_STRING = 7); TensorShapeProto tensor_shape = 2 {repeated Dim dim = 2
  // {int64 size = 1}}; repeated bytes string_val = 8}.
  std::string dim, shape, tensor;
  put_int(&dim, 1, 1);
  put_bytes(&shape, 2, dim);
  put_int(&tensor, 1, 7);
  put_bytes(&tensor, 2, shape);
  put_bytes(&tensor, 8, text);
  std::string v;
  put_bytes(&v, 1, tag + "/text_summary");
  put_bytes(&v, 8, tensor);    // Value.tensor
  put_bytes(&v, 9, metadata);  // Value.metadata
  return summary_event(wall_time, step, v);
}

TfEventsWriter::TfEventsWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw FormatError(dir + ": cannot create the TensorBoard log directory: " + ec.message());
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == 0) std::strcpy(host, "localhost");
  char name[512];
  std::snprintf(name, sizeof name, "events.out.tfevents.%010lld.%s.%d.0",
                static_cast<long long>(now_seconds()), host, static_cast<int>(getpid()));
  path_ = dir + "/" + name;
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_) throw FormatError(path_ + ": cannot create the event file: " + std::strerror(errno));
  write_event(encode_file_version_event(now_seconds(), "brain.Event:2"));
}

TfEventsWriter::~TfEventsWriter() {
  if (file_) std::fclose(file_);
}

void TfEventsWriter::write_event(const std::string& event) {
  const std::string framed = tfrecord_frame(event);
  if (std::fwrite(framed.data(), 1, framed.size(), file_) != framed.size() || std::fflush(file_) != 0)
    throw FormatError(path_ + ": cannot write the event file: " + std::strerror(errno));
}

void TfEventsWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  write_event(encode_scalar_event(now_seconds(), step, tag, static_cast<float>(value)));
}

void TfEventsWriter::add_text(const std::string& tag, const std::string& text, int64_t step) {
  write_event(encode_text_event(now_seconds(), step, tag, text));
}

}  // namespace bertfit
