#include "file_bytes.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "names.hpp"
#include "tapegrad/io/npy.hpp"

namespace tapegrad::io::detail {

std::vector<unsigned char> read_file(const std::string& path) {
  check_file_name(path);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) throw IoError(printable(path) + ": cannot open: " + std::strerror(errno));
  std::vector<unsigned char> bytes;
  unsigned char chunk[1 << 16];
  std::size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, file.get())) > 0)
    bytes.insert(bytes.end(), chunk, chunk + n);
  if (std::ferror(file.get()))
    throw IoError(printable(path) + ": read failed: " + std::strerror(errno));
  return bytes;
}

}  // namespace tapegrad::io::detail
