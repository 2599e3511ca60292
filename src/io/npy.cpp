#include "tapegrad/io/npy.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "file_bytes.hpp"
#include "names.hpp"
#include "tapegrad/io/atomic_file.hpp"
#include "value_fit.hpp"

// NpyArray keeps little-endian bytes and from()/to() copy them in the host's order.
#if defined(__BYTE_ORDER__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "tapegrad's .npy code needs a little-endian host");
#endif

namespace tapegrad::io {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::float32:
      return "float32";
    case DType::float64:
      return "float64";
    case DType::int32:
      return "int32";
    case DType::int64:
      return "int64";
    case DType::uint8:
      return "uint8";
  }
  return "?";
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::float32:
    case DType::int32:
      return 4;
    case DType::float64:
    case DType::int64:
      return 8;
    case DType::uint8:
      return 1;
  }
  return 0;
}

template <>
DType dtype_of<float>() {
  return DType::float32;
}
template <>
DType dtype_of<double>() {
  return DType::float64;
}
template <>
DType dtype_of<std::int32_t>() {
  return DType::int32;
}
template <>
DType dtype_of<std::int64_t>() {
  return DType::int64;
}
template <>
DType dtype_of<std::uint8_t>() {
  return DType::uint8;
}

namespace {

// The descr string NumPy writes for each type on a little-endian machine.
const char* descr_of(DType dtype) {
  switch (dtype) {
    case DType::float32:
      return "<f4";
    case DType::float64:
      return "<f8";
    case DType::int32:
      return "<i4";
    case DType::int64:
      return "<i8";
    case DType::uint8:
      return "|u1";
  }
  return "";
}

// The byte count of a shape; false if it, or the product of its non-zero extents (which a
// zero extent would otherwise hide), overflows.
bool checked_product(const Shape& shape, std::size_t item, std::size_t& out) {
  std::size_t total = item, nonzero = item;
  for (auto extent : shape) {
    if (__builtin_mul_overflow(total, extent, &total)) return false;
    if (extent != 0 && __builtin_mul_overflow(nonzero, extent, &nonzero)) return false;
  }
  out = total;
  return true;
}

// A strict reader of the header dictionary: {'descr': '<f8', 'fortran_order': False,
// 'shape': (3, 4), }. Anything else is an error, never a guess.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& source) : text_(text), source_(source) {}

  void parse(std::string& descr, bool& fortran, Shape& shape) {
    bool has_descr = false, has_order = false, has_shape = false;
    expect('{');
    while (true) {
      skip_spaces();
      if (peek() == '}') break;
      const std::string key = quoted();
      expect(':');
      if (key == "descr") {
        descr = quoted();
        has_descr = true;
      } else if (key == "fortran_order") {
        fortran = boolean();
        has_order = true;
      } else if (key == "shape") {
        shape = tuple();
        has_shape = true;
      } else {
        fail("unexpected key '" + detail::printable(key) + "' in the header");
      }
      skip_spaces();
      if (peek() == ',') {
        ++at_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}' in the header");
    }
    if (!has_descr || !has_order || !has_shape) {
      fail("the header lacks 'descr', 'fortran_order' or 'shape'");
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw IoError(source_ + ": " + what + " (at character " + std::to_string(at_) + ")");
  }
  char peek() const { return at_ < text_.size() ? text_[at_] : '\0'; }
  void skip_spaces() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }
  void expect(char c) {
    skip_spaces();
    if (peek() != c) fail(std::string("expected '") + c + "' in the header");
    ++at_;
  }
  std::string quoted() {
    skip_spaces();
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string in the header");
    const auto end = text_.find(quote, at_ + 1);
    if (end == std::string::npos) fail("unterminated string in the header");
    std::string value = text_.substr(at_ + 1, end - at_ - 1);
    at_ = end + 1;
    return value;
  }
  bool boolean() {
    skip_spaces();
    if (text_.compare(at_, 4, "True") == 0) {
      at_ += 4;
      return true;
    }
    if (text_.compare(at_, 5, "False") == 0) {
      at_ += 5;
      return false;
    }
    fail("expected True or False for 'fortran_order'");
  }
  Shape tuple() {
    expect('(');
    Shape shape;
    while (true) {
      skip_spaces();
      if (peek() == ')') {
        ++at_;
        return shape;
      }
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected an extent in 'shape'");
      std::size_t value = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (__builtin_mul_overflow(value, std::size_t{10}, &value) ||
            __builtin_add_overflow(value, static_cast<std::size_t>(peek() - '0'), &value)) {
          fail("an extent in 'shape' is too large");
        }
        ++at_;
      }
      if (shape.size() == 32) fail("'shape' has more than 32 dimensions");
      shape.push_back(value);
      skip_spaces();
      if (peek() == ',') {
        ++at_;
      } else if (peek() != ')') {
        fail("expected ',' or ')' in 'shape'");
      }
    }
  }

  const std::string& text_;
  const std::string& source_;
  std::size_t at_ = 0;
};

struct Descr {
  DType dtype;
  bool big_endian;
};

Descr parse_descr(const std::string& descr, const std::string& source) {
  if (descr.size() == 3) {
    const char order = descr[0];
    const std::string kind = descr.substr(1);
    const bool big = order == '>';
    if (order == '<' || order == '>' || order == '|' || order == '=') {
      if (kind == "f4") return {DType::float32, big};
      if (kind == "f8") return {DType::float64, big};
      if (kind == "i4") return {DType::int32, big};
      if (kind == "i8") return {DType::int64, big};
      if (kind == "u1") return {DType::uint8, false};
    }
  }
  throw IoError(source + ": dtype '" + detail::printable(descr) +
                "' is not supported (float32, float64, int32, int64 and uint8 are)");
}

// Row-major bytes from Fortran-order bytes of the same shape.
std::vector<unsigned char> to_c_order(const std::vector<unsigned char>& fortran, const Shape& shape,
                                      std::size_t item) {
  std::vector<unsigned char> c(fortran.size());
  const std::size_t count = fortran.size() / item;
  std::vector<std::size_t> index(shape.size(), 0);
  for (std::size_t flat = 0; flat < count; ++flat) {
    std::size_t source = 0, stride = 1;  // Fortran: the first index varies fastest
    for (std::size_t d = 0; d < shape.size(); ++d) {
      source += index[d] * stride;
      stride *= shape[d];
    }
    std::memcpy(c.data() + flat * item, fortran.data() + source * item, item);
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return c;
}

}  // namespace

NpyArray::NpyArray(DType dtype, Shape shape, std::vector<unsigned char> bytes)
    : dtype_(dtype), shape_(std::move(shape)), bytes_(std::move(bytes)) {
  std::size_t expected = 0;
  if (!checked_product(shape_, dtype_size(dtype_), expected) || expected != bytes_.size()) {
    throw ValueError("NpyArray: " + std::to_string(bytes_.size()) + " bytes for shape " +
                     shape_to_string(shape_) + " of " + dtype_name(dtype_));
  }
}

std::size_t NpyArray::size() const { return bytes_.size() / dtype_size(dtype_); }

template <class T>
NpyArray NpyArray::from(const xt::xarray<T>& array) {
  std::vector<unsigned char> bytes(array.size() * sizeof(T));
  if (!bytes.empty()) std::memcpy(bytes.data(), array.data(), bytes.size());
  return NpyArray(dtype_of<T>(), array.shape(), std::move(bytes));
}

template <class T>
xt::xarray<T> NpyArray::to() const {
  xt::xarray<T> out = xt::xarray<T>::from_shape(shape_);
  const unsigned char* p = bytes_.data();
  auto convert = [&](auto tag) {
    using S = decltype(tag);
    for (std::size_t i = 0; i < out.size(); ++i) {
      S v;
      std::memcpy(&v, p + i * sizeof(S), sizeof(S));
      // A value T cannot hold would make static_cast undefined: refuse it instead.
      if (!detail::fits<T>(v)) {
        throw ValueError("NpyArray::to: element " + std::to_string(i) + " (" +
                         (std::is_integral_v<S> ? std::to_string(v) : number_to_string(double(v))) +
                         ") of a " + dtype_name(dtype_) + " array does not fit in " +
                         dtype_name(dtype_of<T>()));
      }
      out.data()[i] = static_cast<T>(v);
    }
  };
  switch (dtype_) {
    case DType::float32:
      convert(float{});
      break;
    case DType::float64:
      convert(double{});
      break;
    case DType::int32:
      convert(std::int32_t{});
      break;
    case DType::int64:
      convert(std::int64_t{});
      break;
    case DType::uint8:
      convert(std::uint8_t{});
      break;
  }
  return out;
}

NpyArray parse_npy(const unsigned char* data, std::size_t size, const std::string& source) {
  const std::string where = detail::printable(source);
  static const unsigned char magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || std::memcmp(data, magic, 6) != 0) {
    throw IoError(where + ": not a .npy file (bad magic string)");
  }
  const unsigned major = data[6];
  std::size_t header_length = 0, header_start = 0;
  if (major == 1) {
    header_length = data[8] | (static_cast<std::size_t>(data[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) throw IoError(where + ": truncated header");
    header_length = data[8] | (static_cast<std::size_t>(data[9]) << 8) |
                    (static_cast<std::size_t>(data[10]) << 16) |
                    (static_cast<std::size_t>(data[11]) << 24);
    header_start = 12;
  } else {
    throw IoError(where + ": .npy format version " + std::to_string(major) +
                  " is not supported (1, 2 and 3 are)");
  }
  if (header_length > size - header_start) {
    throw IoError(where + ": truncated header (" + std::to_string(header_length) +
                  " bytes announced, " + std::to_string(size - header_start) + " present)");
  }
  const std::string header(reinterpret_cast<const char*>(data + header_start), header_length);
  std::string descr;
  bool fortran = false;
  Shape shape;
  HeaderParser(header, where).parse(descr, fortran, shape);
  const Descr d = parse_descr(descr, where);
  const std::size_t item = dtype_size(d.dtype);
  std::size_t expected = 0;
  if (!checked_product(shape, item, expected)) {
    throw IoError(where + ": shape " + shape_to_string(shape) + " is too large");
  }
  const std::size_t present = size - header_start - header_length;
  if (present < expected) {
    throw IoError(where + ": truncated: " + std::to_string(present) + " of " +
                  std::to_string(expected) + " data bytes for shape " + shape_to_string(shape));
  }
  if (present > expected) {
    throw IoError(where + ": " + std::to_string(present - expected) +
                  " bytes follow the data of shape " + shape_to_string(shape));
  }
  const unsigned char* body = data + header_start + header_length;
  std::vector<unsigned char> bytes(body, body + expected);
  if (d.big_endian && item > 1) {
    for (std::size_t i = 0; i < bytes.size(); i += item) std::reverse(&bytes[i], &bytes[i] + item);
  }
  if (fortran && shape.size() > 1) bytes = to_c_order(bytes, shape, item);
  return NpyArray(d.dtype, std::move(shape), std::move(bytes));
}

std::vector<unsigned char> serialize_npy(const NpyArray& array) {
  std::string header = std::string("{'descr': '") + descr_of(array.dtype()) +
                       "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < array.shape().size(); ++i) {
    header += std::to_string(array.shape()[i]);
    header += array.shape().size() == 1 ? "," : (i + 1 < array.shape().size() ? ", " : "");
  }
  header += "), }";
  // Pad with spaces and end with '\n' so that the data starts on a 64-byte boundary.
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535) throw ValueError("serialize_npy: the shape is too long for a header");
  const unsigned char prefix[] = {0x93,
                                  'N',
                                  'U',
                                  'M',
                                  'P',
                                  'Y',
                                  1,
                                  0,
                                  static_cast<unsigned char>(header.size() & 0xff),
                                  static_cast<unsigned char>(header.size() >> 8)};
  // Sized once and filled with memcpy (GCC 12 warns falsely on vector::insert here).
  std::vector<unsigned char> out(sizeof prefix + header.size() + array.bytes().size());
  std::memcpy(out.data(), prefix, sizeof prefix);
  std::memcpy(out.data() + sizeof prefix, header.data(), header.size());
  if (!array.bytes().empty()) {
    std::memcpy(out.data() + sizeof prefix + header.size(), array.bytes().data(),
                array.bytes().size());
  }
  return out;
}

NpyArray read_npy(const std::string& path) {
  const auto bytes = detail::read_file(path);
  return parse_npy(bytes.data(), bytes.size(), path);
}

void write_npy(const std::string& path, const NpyArray& array) {
  const auto bytes = serialize_npy(array);
  write_file_atomically(path, bytes.data(), bytes.size());
}

#define TAPEGRAD_INSTANTIATE(T)                              \
  template NpyArray NpyArray::from<T>(const xt::xarray<T>&); \
  template xt::xarray<T> NpyArray::to<T>() const;

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
TAPEGRAD_INSTANTIATE(std::int32_t)
TAPEGRAD_INSTANTIATE(std::int64_t)
TAPEGRAD_INSTANTIATE(std::uint8_t)

}  // namespace tapegrad::io
