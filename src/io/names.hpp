// Names the io functions echo in their messages (file names, CSV cells and header names,
// archive member names): how they are shown, and the check that a file name can reach the
// system at all.
#pragma once

#include <string>

#include "tapegrad/io/npy.hpp"

namespace tapegrad::io::detail {

/// `text` as messages show it (tapegrad::printable_text(): NUL as \0, control bytes
/// escaped).
inline std::string printable(const std::string& text) { return printable_text(text); }

/// Throws IoError if `path` holds a NUL byte: the system would see the name cut there and
/// open or replace another file.
inline void check_file_name(const std::string& path) {
  if (path.find('\0') != std::string::npos) {
    throw IoError(printable(path) + ": the file name holds a NUL byte, which no file name can");
  }
}

}  // namespace tapegrad::io::detail
