// NumPy's .npz format: a zip archive of named .npy members (numpy.savez / numpy.load).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tapegrad/io/npy.hpp"

namespace tapegrad::io {

/// Named arrays in archive order. A member "w.npy" is named "w".
using NpzArchive = std::vector<std::pair<std::string, NpyArray>>;

/// Parses .npz content. Throws IoError naming `source` (and the member) for a broken zip,
/// a member that is not a .npy, a member too large for its compressed size (a zip bomb),
/// or a malformed .npy inside.
NpzArchive parse_npz(const unsigned char* data, std::size_t size, const std::string& source);
/// Reads a .npz file.
NpzArchive read_npz(const std::string& path);
/// Writes a .npz file that numpy.load reads, atomically. Members are deflated unless
/// `compress` is false (numpy.savez vs numpy.savez_compressed). Throws ValueError for an
/// empty or repeated name.
void write_npz(const std::string& path, const NpzArchive& arrays, bool compress = true);

}  // namespace tapegrad::io
