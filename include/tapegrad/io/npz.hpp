// NumPy's .npz format: a zip archive of named .npy members (numpy.savez / numpy.load).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tapegrad/io/npy.hpp"

namespace tapegrad::io {

/// @addtogroup io
/// @{

/// Named arrays in archive order. A member "w.npy" is named "w".
using NpzArchive = std::vector<std::pair<std::string, NpyArray>>;

/// Parses `size` bytes of .npz content into its arrays, in archive order. Throws IoError
/// naming `source` (and the member) for no bytes at all ("empty file, not a .npz (zip)
/// archive"; an archive without members is 22 bytes), a broken zip, a member whose name does
/// not end in ".npy" (or is just ".npy"), a name that appears twice, a member claiming more
/// than (compressed size + 1 KiB) x 1100 bytes (a decompression bomb: deflate cannot expand
/// more than about 1032 times), a member that cannot be read, is corrupt, or holds more or
/// less data than it declares, or a malformed .npy inside (see parse_npy()).
NpzArchive parse_npz(const unsigned char* data, std::size_t size, const std::string& source);
/// Reads a .npz file. Throws IoError if it cannot be opened or read or is not a regular file
/// (see IoError), and as parse_npz().
NpzArchive read_npz(const std::string& path);
/// Writes a .npz file that numpy.load reads, atomically (see write_file_atomically()): one
/// member "name.npy" per array, in order. Members are deflated unless `compress` is false
/// (numpy.savez_compressed vs numpy.savez); no arrays give an archive without members, as
/// numpy.savez() writes it. Throws ValueError for an empty or repeated name or one holding a
/// NUL byte (and as serialize_npy()), and IoError if building the archive or writing the
/// file fails.
void write_npz(const std::string& path, const NpzArchive& arrays, bool compress = true);

/// @}

}  // namespace tapegrad::io
