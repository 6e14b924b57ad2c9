// Atomic file writes (see atomic_file.h).
#include "core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "bertfit/error.h"

namespace bertfit {

namespace {
std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// The parent directory exists and is writable, and path is not a directory.
void check_output_file(const std::string& path, const std::string& option) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw ConfigError("option " + option + ": " + path + " is a directory");
  const std::string dir = parent_dir(path);
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw ConfigError("option " + option + ": " + path + ": the directory " + dir + " does not exist");
  if (::access(dir.c_str(), W_OK) != 0)
    throw ConfigError("option " + option + ": " + path + ": the directory " + dir + " is not writable (" +
                      std::strerror(errno) + ")");
}

// Whether a and b name one file: the same inode when both exist, else the same resolved path.
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (std::filesystem::exists(a, ec) && std::filesystem::exists(b, ec))
    return std::filesystem::equivalent(a, b, ec);
  return std::filesystem::weakly_canonical(std::filesystem::absolute(a, ec), ec) ==
         std::filesystem::weakly_canonical(std::filesystem::absolute(b, ec), ec);
}
}  // namespace

void check_output_files(const std::vector<std::pair<std::string, std::string>>& outputs,
                        const std::vector<std::string>& inputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& [path, option] = outputs[i];
    if (path.empty()) continue;
    check_output_file(path, option);
    for (const std::string& in : inputs)
      if (!in.empty() && same_file(path, in))
        throw ConfigError("option " + option + ": " + path + " is the input " + in +
                          " (writing would replace it)");
    for (size_t j = 0; j < i; ++j)
      if (!outputs[j].first.empty() && same_file(path, outputs[j].first))
        throw ConfigError("options " + outputs[j].second + " and " + option + " name the same file " + path);
  }
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw FormatError(dir + ": cannot open directory to sync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) throw FormatError(dir + ": fsync failed: " + std::strerror(err));
}

void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& parts) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw FormatError(path + ": cannot create " + tmp + ": " + std::strerror(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw FormatError(path + ": " + what + " failed: " + std::strerror(err));
  };
  for (const ByteSpan& part : parts) {
    const auto* p = static_cast<const char*>(part.data);
    size_t left = part.size;
    while (left > 0) {
      const ssize_t w = ::write(fd, p, left < (1u << 30) ? left : (1u << 30));
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("write");
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
  }
  if (::fsync(fd) != 0) fail("fsync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw FormatError(path + ": close failed: " + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw FormatError(path + ": rename from " + tmp + " failed: " + std::strerror(err));
  }
  fsync_dir(parent_dir(path));
}

void write_file_atomic(const std::string& path, std::string_view text) {
  write_file_atomic(path, {ByteSpan{text.data(), text.size()}});
}

}  // namespace bertfit
