// Opening a file to read, and reading a whole file, for every reader in io/ and data/.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace tapegrad::io::detail {

/// Opens `path` for reading and sets `size` to its size in bytes. Throws IoError naming the
/// path if its name holds a NUL byte, it cannot be opened, or it is not a regular file (a
/// folder, a FIFO, a device, a socket): refused before anything is read, so that a FIFO
/// cannot block the reader and /dev/zero cannot be read until memory runs out. A symbolic
/// link is followed. The caller closes the file.
std::FILE* open_regular_file(const std::string& path, std::uint64_t& size);

/// The file's bytes; IoError as open_regular_file(), or if it cannot be read.
std::vector<unsigned char> read_file(const std::string& path);

}  // namespace tapegrad::io::detail
