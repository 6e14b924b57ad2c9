// TensorBoard event files (events.out.tfevents.*), written without TensorFlow: the TFRecord framing (length,
// masked CRC-32C of the length, the record, masked CRC-32C of the record) around hand-encoded protobuf
// messages of tensorboard/compat/proto: Event {wall_time 1, step 2, file_version 3, summary 5}, Summary
// {repeated Value value 1}, Value {tag 1, simple_value 2, tensor 8, metadata 9}, the text plugin's string
// tensor. Only what a training run logs: scalars and text, as PyTorch's SummaryWriter writes them (so
// TensorBoard, tbparse and tensorboard's own EventFileLoader read them).
//
// The file is appended to as training goes (TensorBoard reads it live) and flushed after every event; a
// crash can leave a truncated last record, which readers skip (as they do for TensorFlow's own files).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace bertfit {

// The bytes of one TFRecord around `record`.
std::string tfrecord_frame(const std::string& record);

// Protobuf encodings (proto3 wire format) of the events this writer produces; exposed for the tests.
std::string encode_file_version_event(double wall_time, const std::string& version);
std::string encode_scalar_event(double wall_time, int64_t step, const std::string& tag, float value);
// PyTorch's add_text: tag "<tag>/text_summary", the text plugin's metadata, a DT_STRING tensor of shape [1].
std::string encode_text_event(double wall_time, int64_t step, const std::string& tag,
                              const std::string& text);

class TfEventsWriter {
 public:
  // Creates `dir` (and parents) and dir/events.out.tfevents.<unix seconds>.<host>.<pid>.0 starting with the
  // file_version event "brain.Event:2". Throws FormatError naming the path when it cannot.
  explicit TfEventsWriter(const std::string& dir);
  ~TfEventsWriter();
  TfEventsWriter(const TfEventsWriter&) = delete;
  TfEventsWriter& operator=(const TfEventsWriter&) = delete;

  void add_scalar(const std::string& tag, double value, int64_t step);
  void add_text(const std::string& tag, const std::string& text, int64_t step = 0);
  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event);
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace bertfit
