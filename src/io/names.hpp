// Names the io functions echo in their messages (file names, CSV cells and header names,
// archive member names): how they are shown, and the check that a file name can reach the
// system at all.
#pragma once

#include <string>

#include "tapegrad/io/npy.hpp"

namespace tapegrad::io::detail {

/// `text` with the bytes that would cut, garble or hide part of a message escaped: NUL as
/// \0, CR as \r, LF as \n, tab as \t, other control bytes and DEL as \xNN, and a UTF-8 byte
/// order mark (an invisible character) as \xEF\xBB\xBF. Other bytes, UTF-8 included, and
/// backslashes stay as they are, so applying it twice changes nothing more.
inline std::string printable(const std::string& text) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\0') {
      out += "\\0";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      out += {'\\', 'x', hex[c >> 4], hex[c & 15]};
    } else if (text.compare(i, 3, "\xEF\xBB\xBF") == 0) {
      out += "\\xEF\\xBB\\xBF";
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

/// Throws IoError if `path` holds a NUL byte: the system would see the name cut there and
/// open or replace another file.
inline void check_file_name(const std::string& path) {
  if (path.find('\0') != std::string::npos) {
    throw IoError(printable(path) + ": the file name holds a NUL byte, which no file name can");
  }
}

}  // namespace tapegrad::io::detail
