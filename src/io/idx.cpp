#include "tapegrad/io/idx.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <limits>
#include <memory>
#include <sstream>
#include <type_traits>
#include <vector>

#include "expansion_limit.hpp"
#include "file_content.hpp"
#include "names.hpp"
#include "tapegrad/io/npy.hpp"
#include "value_fit.hpp"

namespace tapegrad::io {

namespace {

std::uint32_t big_endian_u32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}

// The names the IDX format gives its element types, by type code.
const char* idx_type_name(unsigned char code) {
  switch (code) {
    case 0x08:
      return "ubyte";
    case 0x09:
      return "byte";
    case 0x0B:
      return "short";
    case 0x0C:
      return "int";
    case 0x0D:
      return "float";
    case 0x0E:
      return "double";
  }
  return "?";
}

template <class S>
std::string value_to_string(S v) {
  std::ostringstream out;
  // + prints a byte as a number, not as a character.
  out << std::setprecision(std::numeric_limits<S>::max_digits10) << +v;
  return out.str();
}

template <class S, class T>
void convert(const std::vector<unsigned char>& bytes, xt::xarray<T>& out, unsigned char code,
             const std::string& where) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    unsigned char raw[sizeof(S)];
    for (std::size_t b = 0; b < sizeof(S); ++b) raw[b] = bytes[i * sizeof(S) + sizeof(S) - 1 - b];
    S v;
    std::memcpy(&v, raw, sizeof(S));
    // A value T cannot hold would make static_cast undefined: refuse it instead.
    if (!detail::fits<T>(v)) {
      throw IoError(where + ": element " + std::to_string(i) + " (" + value_to_string(v) +
                    ") of the " + idx_type_name(code) + " data does not fit in " +
                    dtype_name(dtype_of<T>()));
    }
    out.data()[i] = static_cast<T>(v);
  }
}

}  // namespace

template <class T>
xt::xarray<T> read_idx(const std::string& path) {
  detail::FileContent in(path);
  const std::string where = detail::printable(path);
  unsigned char magic[4];
  if (in.read(magic, 4) != 4) throw IoError(where + ": too short for an IDX header");
  if (magic[0] != 0 || magic[1] != 0) {
    throw IoError(where + ": not an IDX file (bad magic number)");
  }
  std::size_t item = 0;
  switch (magic[2]) {
    case 0x08:
    case 0x09:
      item = 1;
      break;
    case 0x0B:
      item = 2;
      break;
    case 0x0C:
    case 0x0D:
      item = 4;
      break;
    case 0x0E:
      item = 8;
      break;
    default:
      throw IoError(where + ": unknown IDX element type 0x" +
                    std::string(1, "0123456789abcdef"[magic[2] >> 4]) +
                    std::string(1, "0123456789abcdef"[magic[2] & 15]));
  }
  const std::size_t dims = magic[3];
  if (dims == 0 || dims > 8) {
    throw IoError(where + ": " + std::to_string(dims) + " dimensions (1 to 8 are supported)");
  }
  unsigned char extents[8 * 4];
  if (in.read(extents, 4 * dims) != 4 * dims) throw IoError(where + ": truncated header");
  Shape shape;
  std::size_t bytes_expected = item, nonzero = item;  // nonzero: a 0 extent hides nothing
  for (std::size_t d = 0; d < dims; ++d) {
    shape.push_back(big_endian_u32(extents + 4 * d));
    bytes_expected *= shape.back();  // bounded by nonzero below, or 0
    if (shape.back() != 0 && __builtin_mul_overflow(nonzero, std::size_t{shape.back()}, &nonzero)) {
      nonzero = SIZE_MAX;
    }
    if (nonzero > (std::size_t{1} << 40)) {
      throw IoError(where + ": shape " + shape_to_string(shape) + " is too large");
    }
  }
  // A header claiming more than the compressed bytes can hold, or a result that would
  // outgrow them as much once converted to T, is refused before any data is read (the
  // readers read regular files only, so the size is known).
  const std::uint64_t result_bytes = bytes_expected / item * sizeof(T);
  if (in.compressed() &&
      detail::exceeds_expansion(std::max<std::uint64_t>(bytes_expected, result_bytes),
                                in.file_size())) {
    const bool widened = result_bytes > bytes_expected;
    throw IoError(where + ": shape " + shape_to_string(shape) + " of " + idx_type_name(magic[2]) +
                  " would take " + std::to_string(widened ? result_bytes : bytes_expected) +
                  " bytes" + (widened ? std::string(" as ") + dtype_name(dtype_of<T>()) : "") +
                  " from a gzip file of " + std::to_string(in.file_size()) + " bytes, " +
                  detail::kExpansionLimitText +
                  ": refused as a decompression bomb (gunzip it to read it anyway)");
  }
  std::vector<unsigned char> bytes;
  unsigned char chunk[1 << 16];
  while (bytes.size() < bytes_expected) {
    const std::size_t want = std::min(sizeof chunk, bytes_expected - bytes.size());
    const std::size_t got = in.read(chunk, want);
    bytes.insert(bytes.end(), chunk, chunk + got);
    if (got < want) {
      throw IoError(where + ": truncated: " + std::to_string(bytes.size()) + " of " +
                    std::to_string(bytes_expected) + " data bytes for shape " +
                    shape_to_string(shape));
    }
  }
  if (in.read(chunk, 1) != 0) {
    throw IoError(where + ": data continues after shape " + shape_to_string(shape));
  }

  xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
  switch (magic[2]) {
    case 0x08:
      convert<std::uint8_t>(bytes, out, magic[2], where);
      break;
    case 0x09:
      convert<std::int8_t>(bytes, out, magic[2], where);
      break;
    case 0x0B:
      convert<std::int16_t>(bytes, out, magic[2], where);
      break;
    case 0x0C:
      convert<std::int32_t>(bytes, out, magic[2], where);
      break;
    case 0x0D:
      convert<float>(bytes, out, magic[2], where);
      break;
    case 0x0E:
      convert<double>(bytes, out, magic[2], where);
      break;
  }
  return out;
}

template xt::xarray<float> read_idx<float>(const std::string&);
template xt::xarray<double> read_idx<double>(const std::string&);
template xt::xarray<std::uint8_t> read_idx<std::uint8_t>(const std::string&);
template xt::xarray<std::int32_t> read_idx<std::int32_t>(const std::string&);

}  // namespace tapegrad::io
