// Reading a whole file, for the parsers that work on bytes in memory.
#pragma once

#include <string>
#include <vector>

namespace tapegrad::io::detail {

/// The file's bytes; IoError if it cannot be opened or read, or its name holds a NUL byte.
std::vector<unsigned char> read_file(const std::string& path);

}  // namespace tapegrad::io::detail
