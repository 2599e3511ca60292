#include "tapegrad/io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "tapegrad/io/npy.hpp"

namespace tapegrad::io {

namespace detail {
void (*before_rename_hook)(const std::string& temporary_path) = nullptr;
}

namespace {

std::string system_reason() { return std::strerror(errno); }

std::string folder_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string name_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The process's umask, read without changing it (umask(2) would race with other threads).
mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "Umask:") {
      unsigned value = 0;
      if (status >> std::oct >> value) return static_cast<mode_t>(value);
      break;
    }
    status.ignore(1 << 16, '\n');
  }
  return 022;
}

// The mode the file would have had if written in place: the old file's, or the umask's.
mode_t mode_for(const std::string& path) {
  struct stat old {};
  if (::stat(path.c_str(), &old) == 0) return old.st_mode & 07777;
  return 0666 & ~current_umask();
}

// Removes the temporary file unless the rename has consumed it.
struct TemporaryFile {
  std::string path;
  int fd = -1;
  bool renamed = false;
  ~TemporaryFile() {
    if (fd >= 0) ::close(fd);
    if (!renamed && !path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

void write_file_atomically(const std::string& path, const void* data, std::size_t size) {
  if (path.empty() || path.back() == '/') throw IoError("'" + path + "': not a file name");
  TemporaryFile temporary;
  std::string pattern = folder_of(path) + "/." + name_of(path) + ".tmp-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  temporary.fd = ::mkstemp(buffer.data());
  if (temporary.fd < 0) {
    throw IoError(path + ": cannot create a temporary file beside it: " + system_reason());
  }
  temporary.path = buffer.data();
  // mkstemp makes the file 0600; give it the mode a plain write would have given.
  if (::fchmod(temporary.fd, mode_for(path)) != 0) {
    throw IoError(path + ": cannot set the permissions of the temporary file: " + system_reason());
  }

  const auto* bytes = static_cast<const unsigned char*>(data);
  std::size_t written = 0;
  while (written < size) {
    const ssize_t n = ::write(temporary.fd, bytes + written, size - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(path + ": write failed after " + std::to_string(written) + " of " +
                    std::to_string(size) + " bytes: " + system_reason() +
                    " (the previous file is unchanged)");
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(temporary.fd) != 0) {
    throw IoError(path + ": flushing to disk failed: " + system_reason() +
                  " (the previous file is unchanged)");
  }
  if (::close(temporary.fd) != 0) {
    temporary.fd = -1;
    throw IoError(path + ": closing failed: " + system_reason());
  }
  temporary.fd = -1;
  if (detail::before_rename_hook != nullptr) detail::before_rename_hook(temporary.path);
  if (::rename(temporary.path.c_str(), path.c_str()) != 0) {
    throw IoError(path + ": cannot replace the file: " + system_reason());
  }
  temporary.renamed = true;
  // Make the rename itself durable.
  const int folder = ::open(folder_of(path).c_str(), O_RDONLY | O_DIRECTORY);
  if (folder >= 0) {
    ::fsync(folder);
    ::close(folder);
  }
}

}  // namespace tapegrad::io
