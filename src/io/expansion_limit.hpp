// How far decompression may expand data before it is taken for a decompression bomb: the one
// limit of the readers of compressed files (.npz members, gzipped IDX files).
#pragma once

#include <cstdint>
#include <limits>

namespace tapegrad::io::detail {

/// Deflate cannot expand data more than about 1032 times; more is a bomb, not real data.
constexpr std::uint64_t kMaxExpansion = 1100;
/// Slack added to the compressed size, so that tiny inputs are not refused for their headers.
constexpr std::uint64_t kExpansionSlack = 1024;
/// The limit in words, for messages.
constexpr const char* kExpansionLimitText = "more than 1100 times its size (+1 KiB)";

/// Whether `expanded` bytes are more than `compressed` compressed bytes may give:
/// expanded > (compressed + kExpansionSlack) * kMaxExpansion (saturating, never overflowing).
inline bool exceeds_expansion(std::uint64_t expanded, std::uint64_t compressed) {
  constexpr std::uint64_t most = std::numeric_limits<std::uint64_t>::max() / kMaxExpansion;
  if (compressed >= most - kExpansionSlack) return false;
  return expanded > (compressed + kExpansionSlack) * kMaxExpansion;
}

}  // namespace tapegrad::io::detail
