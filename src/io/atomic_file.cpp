#include "tapegrad/io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>

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

// A new file ".name.tmp-XXXXXX" beside `path`, made like a plain write would make it: mode
// 0666 for the kernel to reduce by the umask and default ACLs (mkstemp would force 0600).
// Returns the descriptor and sets `temporary_path`; -1 with errno set on failure.
int create_temporary(const std::string& path, std::string& temporary_path) {
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 random(std::random_device{}() ^
                                      static_cast<std::uint64_t>(::getpid()) << 32);
  const std::string stem = folder_of(path) + "/." + name_of(path) + ".tmp-";
  for (int attempt = 0; attempt < 100; ++attempt) {
    temporary_path = stem;
    for (int i = 0; i < 6; ++i) temporary_path += letters[random() % (sizeof letters - 1)];
    const int fd = ::open(temporary_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
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
  std::string temporary_path;
  temporary.fd = create_temporary(path, temporary_path);
  if (temporary.fd < 0) {
    throw IoError(path + ": cannot create a temporary file beside it: " + system_reason());
  }
  temporary.path = temporary_path;
  struct stat old {};
  if (::stat(path.c_str(), &old) == 0 && ::fchmod(temporary.fd, old.st_mode & 0777) != 0) {
    throw IoError(path + ": cannot give the new file the old one's permissions: " +
                  system_reason());
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
