// Numbers printed as Python prints them, for the demos.
#pragma once

#include <charconv>
#include <string>

namespace examples {

/// The shortest text that reads back as exactly `value` (what Python's repr prints), so a
/// demo's numbers can be compared digit for digit with the source documents'.
inline std::string shortest(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string text(buffer, result.ptr);
  // Python writes 2.0 where C++ writes 2; keep the ".0" for integral values.
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

}  // namespace examples
