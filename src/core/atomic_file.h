// Crash-safe file replacement: write to a temporary sibling, fsync it, rename it over the target, fsync the
// directory. A reader sees either the old file or the complete new one, never a torn one. The one
// implementation for every area that writes files (checkpoints, tokenizers, data sets, run logs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bertfit {

// A sequence of byte ranges written in order (so large tensors need no concatenated copy).
struct ByteSpan {
  const void* data;
  size_t size;
};

// Throws FormatError("<path>: ...") on any I/O failure, after removing the temporary file.
void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& parts);
void write_file_atomic(const std::string& path, std::string_view text);

// Checks, before long work, that write_file_atomic can write each (path, option) given (empty paths
// skipped): the parent directory exists and is writable, the path is not a directory, and it is none of the
// `inputs` nor another of the outputs, however spelled (symlinks, "./", hard links): the write would replace
// it. Throws ConfigError naming the option (e.g. "--output") and the path.
void check_output_files(const std::vector<std::pair<std::string, std::string>>& outputs,
                        const std::vector<std::string>& inputs);

// fsync a directory so a rename inside it is durable.
void fsync_dir(const std::string& dir);

}  // namespace bertfit
