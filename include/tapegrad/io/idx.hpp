// The IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed).
#pragma once

#include <string>

#include <xtensor/xarray.hpp>

namespace tapegrad::io {

/// Reads an IDX file (magic 0 0 type dims, big-endian extents and elements; types ubyte,
/// byte, short, int, float, double), gzip-compressed or not (told from the content). The
/// result has the file's shape (one to eight axes), its elements converted to T with
/// static_cast; T = float, double, std::uint8_t or std::int32_t. For an integer T, a
/// fraction is truncated toward 0 (as NpyArray::to() and NumPy's astype do) and an element
/// T cannot hold (out of range, NaN or infinite) is refused with an IoError naming the file,
/// the element, its value and T. Throws IoError if the file
/// cannot be opened, for a bad magic number, an unknown type, zero or more than 8
/// dimensions, a shape of more than 2^40 bytes, a truncated header, truncated or extra data,
/// or a corrupt gzip stream. Memory is allocated only for data actually present, whatever
/// the header claims.
template <class T>
xt::xarray<T> read_idx(const std::string& path);

}  // namespace tapegrad::io
