// The IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed).
#pragma once

#include <string>
#include <xtensor/xarray.hpp>

namespace tapegrad::io {

/// @addtogroup io
/// @{

/// Reads an IDX file (magic 0 0 type dims, big-endian extents and elements; types ubyte,
/// byte, short, int, float, double), gzip-compressed or not (told from the content). The
/// result has the file's shape (one to eight axes), its elements converted to T with
/// static_cast; T = float, double, std::uint8_t or std::int32_t. For an integer T, a
/// fraction is truncated toward 0 (as NpyArray::to() and NumPy's astype do) and an element
/// T cannot hold (out of range, NaN or infinite) is refused with an IoError naming the file,
/// the element, its value and T. Throws IoError if the file
/// cannot be opened or is not a regular file (see IoError), for a bad magic number, an unknown
/// type, zero or more than 8 dimensions, a shape of more than 2^40 bytes, a truncated header,
/// truncated or extra data, a corrupt or truncated gzip stream, or bytes after the gzip stream that
/// do not start another gzip member (several members are read one after the other, as gzip -d does;
/// unlike gzip -d, zero padding after the last member is refused too).
///
/// A gzip-compressed file is refused as a decompression bomb, before any data is read, when
/// the header's data or the result (its elements as T) would take more than (file size +
/// 1 KiB) x 1100 bytes: the limit of the .npz reader, a little above the most deflate can
/// expand. Real data (MNIST: about 5 times) is far below it; a file of nearly constant data
/// may be refused as a wider T, and reads once decompressed (gunzip), as uncompressed files
/// have no such limit. Memory is allocated only for data actually present, whatever the
/// header claims.
template <class T>
xt::xarray<T> read_idx(const std::string& path);

/// @}

}  // namespace tapegrad::io
