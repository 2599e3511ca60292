#include "file_bytes.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "names.hpp"
#include "tapegrad/io/npy.hpp"

namespace tapegrad::io::detail {

namespace {

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

}  // namespace

std::FILE* open_regular_file(const std::string& path, std::uint64_t& size) {
  check_file_name(path);
  // O_NONBLOCK: opening a FIFO with no writer would otherwise wait for one. The kind is
  // then judged on the file opened (fstat), not on the name, which could change in between.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw IoError(printable(path) + ": cannot open: " + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    throw IoError(printable(path) + ": cannot examine: " + std::strerror(error));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    throw IoError(printable(path) + ": not a regular file but " + kind_of(info.st_mode) +
                  "; only regular files are read (nothing was read)");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  std::FILE* file = ::fdopen(fd, "rb");
  if (file == nullptr) {
    const int error = errno;
    ::close(fd);
    throw IoError(printable(path) + ": cannot open: " + std::strerror(error));
  }
  size = static_cast<std::uint64_t>(info.st_size);
  return file;
}

std::vector<unsigned char> read_file(const std::string& path) {
  std::uint64_t size = 0;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(open_regular_file(path, size), &std::fclose);
  std::vector<unsigned char> bytes;
  bytes.reserve(static_cast<std::size_t>(size));
  unsigned char chunk[1 << 16];
  std::size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, file.get())) > 0)
    bytes.insert(bytes.end(), chunk, chunk + n);
  if (std::ferror(file.get()))
    throw IoError(printable(path) + ": read failed: " + std::strerror(errno));
  return bytes;
}

}  // namespace tapegrad::io::detail
