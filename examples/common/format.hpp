// Text in and out for the demos: numbers printed as Python prints them, size lists read.
#pragma once

#include <charconv>
#include <sstream>
#include <string>
#include <vector>

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

/// "784,256,10" -> {784, 256, 10}.
inline std::vector<std::size_t> parse_sizes(const std::string& text) {
  std::vector<std::size_t> sizes;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) sizes.push_back(std::stoul(item));
  return sizes;
}

}  // namespace examples
