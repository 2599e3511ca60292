// NumPy's .npy format: one array per file, read and written byte-exactly as NumPy does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/error.hpp"

namespace tapegrad::io {

/// A file that cannot be read or written as asked. The message starts with the file (or
/// archive member) and says what was wrong: `weights.npy: truncated: 96 of 128 data bytes`.
class IoError : public Error {
 public:
  using Error::Error;
};

/// The element types tapegrad reads and writes.
enum class DType { float32, float64, int32, int64, uint8 };

/// "float32", "float64", "int32", "int64", "uint8".
const char* dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);
/// The DType of a C++ element type (float, double, std::int32_t, std::int64_t, std::uint8_t).
template <class T>
DType dtype_of();

/// An array as stored in a file: element type, shape and the elements' bytes (row-major,
/// little-endian), before any conversion.
class NpyArray {
 public:
  NpyArray(DType dtype, Shape shape, std::vector<unsigned char> bytes);
  /// A copy of `array` with its own element type.
  template <class T>
  static NpyArray from(const xt::xarray<T>& array);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  std::size_t size() const;
  const std::vector<unsigned char>& bytes() const { return bytes_; }
  /// The elements converted to T (with static_cast, from any of the five types).
  template <class T>
  xt::xarray<T> to() const;

 private:
  DType dtype_;
  Shape shape_;
  std::vector<unsigned char> bytes_;
};

/// Parses .npy content (format versions 1.0, 2.0 and 3.0; little- or big-endian; C or
/// Fortran order). `source` names the content in errors. Throws IoError for a bad magic
/// string, a malformed header, an unsupported dtype, or data of the wrong length.
NpyArray parse_npy(const unsigned char* data, std::size_t size, const std::string& source);
/// The .npy bytes NumPy would write for `array` (format 1.0, C order, little-endian).
std::vector<unsigned char> serialize_npy(const NpyArray& array);

/// Reads a .npy file. Throws IoError if it cannot be opened or parsed.
NpyArray read_npy(const std::string& path);
/// Writes a .npy file atomically (see atomic_file.hpp).
void write_npy(const std::string& path, const NpyArray& array);

template <class T>
xt::xarray<T> load_npy(const std::string& path) {
  return read_npy(path).to<T>();
}
template <class T>
void save_npy(const std::string& path, const xt::xarray<T>& array) {
  write_npy(path, NpyArray::from(array));
}

}  // namespace tapegrad::io
