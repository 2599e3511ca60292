// Errors thrown by tapegrad and the shape type they talk about.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>
#include <xtensor/xstorage.hpp>

namespace tapegrad {

/// @addtogroup tensors
/// @{

/// The shape of a tensor: one extent per axis, as in xt::xarray (inline for up to 4 axes).
using Shape = xt::svector<std::size_t, 4>;

/// Formats a shape the way NumPy prints it: `()`, `(3,)`, `(4, 3)`.
std::string shape_to_string(const Shape& shape);

/// The shortest decimal form that reads back as the same double, for messages: `0.1`,
/// `1e-10`, `1.0000001`, `nan`, `inf`.
std::string number_to_string(double value);

/// `text` (a name that came from a file or from the caller) as messages show it, so that it
/// can neither cut a message short nor garble or hide part of it: NUL as \\0, CR as \\r,
/// LF as \\n, tab as \\t, other control bytes and DEL as \\xNN, and a UTF-8 byte order mark
/// (an invisible character) as \\xEF\\xBB\\xBF. Other bytes, UTF-8 included, and backslashes stay
/// as they are, so applying it twice changes nothing more.
std::string printable_text(const std::string& text);

/// The number of elements of an array of `shape`: the product of its extents (1 for `()`, 0
/// when an extent is 0). Throws ShapeError, naming `op` and the shape, if that number does not
/// fit in memory (more than PTRDIFF_MAX bytes of doubles, which includes every product that
/// overflows std::size_t), or, for a shape with an extent of 0, if the extents after its last
/// 0 multiply to more than PTRDIFF_MAX (they make the strides of the axes before it, which an
/// xt::xarray computes even when it holds no element). Every entry point that takes a shape
/// or computes one from the caller's numbers checks it with this before allocating: the
/// factories, Tensor::from, the Tensor constructor from an xt::xarray and set_value (an
/// xt::xarray's own size() is the product modulo 2^64), the shape ops, broadcasting and the
/// convolutions' and pools' outputs.
std::size_t checked_size(const char* op, const Shape& shape);

/// The indices of the element at row-major position `flat` of an array of `shape`
/// (numpy.unravel_index): one index per axis. Throws ValueError if `flat` is not below the
/// number of elements (so always for a shape with an extent of 0), and ShapeError, as
/// checked_size does, for a shape whose number of elements does not fit.
std::vector<std::size_t> unravel_index(std::size_t flat, const Shape& shape);

/// Base class of the exceptions tapegrad throws for its own checks: ShapeError, TapeError and
/// ValueError here, and io::IoError for files. The message says what was wrong.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Operand shapes that an op cannot combine. The message names the op and the shapes, as in
/// `matmul: inner dimensions differ: (4, 3) x (2, 5)`.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// Misuse of the tape or of backward(): no tape, a destroyed tape, a non-scalar output
/// without a seed gradient, a saved value changed in place, and the like; also an optimizer
/// or a parameter used from a second thread while another thread changes it (see
/// optim::Optimizer).
class TapeError : public Error {
 public:
  using Error::Error;
};

/// An argument out of its domain: an axis that does not exist, an index out of range,
/// item() of a tensor that has not exactly one element, and the like.
class ValueError : public Error {
 public:
  using Error::Error;
};

/// @}

}  // namespace tapegrad
