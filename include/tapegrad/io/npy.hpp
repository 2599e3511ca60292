// NumPy's .npy format: one array per file, read and written byte-exactly as NumPy does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>

#include "tapegrad/error.hpp"

/// Files: NumPy .npy and .npz, a module's state, IDX and CSV. Every reader throws IoError
/// naming the file on malformed input; every writer replaces its file atomically.
namespace tapegrad::io {

/// @addtogroup io
/// @{

/// A file that cannot be read or written as asked. The message starts with the file (or
/// archive member) and says what was wrong: `weights.npy: truncated: 96 of 128 data bytes`.
/// Names in messages (files, members, cells) show control bytes escaped: NUL as \\0, CR
/// as \\r, LF as \\n, tab as \\t, others as \\xNN, and a UTF-8 byte order mark as
/// \\xEF\\xBB\\xBF. A file name holding a NUL byte is refused by every reader and writer
/// (the system would see another name). Every reader (npy, npz, CSV, IDX, state files,
/// checkpoints, PyTorch state, Fashion-MNIST) reads regular files only: a folder, a FIFO, a
/// device or a socket is refused before anything is read (`data.npy: not a regular file but a
/// FIFO (named pipe); only regular files are read (nothing was read)`), so that a FIFO cannot
/// block the reader and /dev/zero cannot be read until memory runs out.
class IoError : public Error {
 public:
  using Error::Error;
};

/// The element types tapegrad reads and writes.
enum class DType { float32, float64, int32, int64, uint8 };

/// "float32", "float64", "int32", "int64", "uint8" ("?" for a value outside the enum).
const char* dtype_name(DType dtype);
/// Bytes per element: 4, 8, 4, 8, 1 (0 for a value outside the enum).
std::size_t dtype_size(DType dtype);
/// The DType of a C++ element type (float, double, std::int32_t, std::int64_t, std::uint8_t;
/// defined for these five only, so another T fails to link).
template <class T>
DType dtype_of();
/// @cond
template <>
DType dtype_of<float>();
template <>
DType dtype_of<double>();
template <>
DType dtype_of<std::int32_t>();
template <>
DType dtype_of<std::int64_t>();
template <>
DType dtype_of<std::uint8_t>();
/// @endcond

/// An array as stored in a file: element type, shape and the elements' bytes (row-major,
/// little-endian), before any conversion. from() and to() copy bytes in the host's order,
/// so tapegrad needs a little-endian host (it does not compile on another).
class NpyArray {
 public:
  /// Takes the parts as they are. Throws ValueError unless bytes.size() is the product of
  /// the extents times dtype_size(dtype).
  NpyArray(DType dtype, Shape shape, std::vector<unsigned char> bytes);
  /// A copy of `array` with its own element type dtype_of<T>() and its shape; T is one of
  /// the five types of dtype_of().
  template <class T>
  static NpyArray from(const xt::xarray<T>& array);

  /// The element type.
  DType dtype() const { return dtype_; }
  /// The shape; () for a 0-d array.
  const Shape& shape() const { return shape_; }
  /// The number of elements.
  std::size_t size() const;
  /// The elements' bytes: size() * dtype_size(dtype()) of them.
  const std::vector<unsigned char>& bytes() const { return bytes_; }
  /// The elements converted to T with static_cast (a fraction is truncated toward 0, as
  /// NumPy's astype does), from any of the five types to any of them; the result has
  /// shape(). Throws ValueError naming the element if T is an integer type that cannot hold
  /// a value once truncated (out of range, NaN or infinite).
  template <class T>
  xt::xarray<T> to() const;

 private:
  DType dtype_;
  Shape shape_;
  std::vector<unsigned char> bytes_;
};

/// Parses `size` bytes of .npy content (format versions 1.x, 2.x and 3.x; little- or
/// big-endian; C or Fortran order) into a row-major, little-endian NpyArray. `source` names
/// the content in errors. Throws IoError for a bad magic string, another format version, a
/// truncated or malformed header (only the keys 'descr', 'fortran_order' and 'shape', all
/// three, at most 32 axes), a dtype other than the five, a shape too large to address, or
/// data bytes that are fewer or more than the shape needs.
NpyArray parse_npy(const unsigned char* data, std::size_t size, const std::string& source);
/// The .npy bytes NumPy would write for `array` (format 1.0, C order, little-endian, the
/// header padded so the data starts at a multiple of 64 bytes). Throws ValueError if the
/// header would exceed 65535 bytes (a shape of thousands of axes).
std::vector<unsigned char> serialize_npy(const NpyArray& array);

/// Reads a .npy file. Throws IoError if it cannot be opened or read, is not a regular file
/// (see IoError), or cannot be parsed (see parse_npy()).
NpyArray read_npy(const std::string& path);
/// Writes serialize_npy(array) to a .npy file atomically (see write_file_atomically()).
/// Throws IoError if the file cannot be written, and ValueError as serialize_npy().
void write_npy(const std::string& path, const NpyArray& array);

/// A .npy file's array converted to T: read_npy(path).to<T>(). Errors as read_npy().
template <class T>
xt::xarray<T> load_npy(const std::string& path) {
  return read_npy(path).to<T>();
}
/// Writes `array` with its own element type: write_npy(path, NpyArray::from(array)). Errors
/// as write_npy().
template <class T>
void save_npy(const std::string& path, const xt::xarray<T>& array) {
  write_npy(path, NpyArray::from(array));
}

/// @}

}  // namespace tapegrad::io
