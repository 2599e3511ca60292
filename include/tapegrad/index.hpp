// The entries of a multi-axis index, x.index({all, t, Slice(1, {}, 2)}): NumPy's and
// PyTorch's x[:, t, 1::2]. The ops themselves (select, slice, index) are in ops.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>

namespace tapegrad {

/// @addtogroup shape
/// @{

/// Python's start:stop:step along one axis. An absent start or stop (`{}`) means the start or
/// the end of the axis; negative ones count from the end; bounds beyond the axis are clamped,
/// as in Python and PyTorch. The step is at least 1 (PyTorch has no negative steps either).
struct Slice {
  std::optional<std::ptrdiff_t> start;  ///< First position (default: 0).
  std::optional<std::ptrdiff_t> stop;   ///< One past the last (default: the extent).
  std::ptrdiff_t step = 1;              ///< Distance between positions taken.

  /// `Slice()` is the whole axis, `Slice(1, {})` from 1 to the end, `Slice({}, {}, 2)` every
  /// other element.
  Slice(std::optional<std::ptrdiff_t> start_at = {}, std::optional<std::ptrdiff_t> stop_at = {},
        std::ptrdiff_t step_by = 1)
      : start(start_at), stop(stop_at), step(step_by) {}
};

/// The whole axis: Python's `:`.
inline const Slice all{};

/// One entry of a multi-axis index: a position (which drops its axis, as x[t] does) or a
/// Slice (which keeps it). Made implicitly from an integer or a Slice.
class Index {
 public:
  /// A position along the axis; negative counts from the end.
  Index(std::ptrdiff_t position) : position_(position), is_position_(true) {}  // NOLINT: implicit
  /// Index from any other integer type (int, std::size_t...), as a position.
  /// (An unsigned position beyond the largest std::ptrdiff_t stays out of range of every
  /// axis, rather than wrapping to a negative position that would count from the end.)
  template <class I, class = std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>>
  Index(I position)  // NOLINT: implicit
      : Index(std::is_unsigned_v<I> && static_cast<std::uintmax_t>(position) >
                                           static_cast<std::uintmax_t>(PTRDIFF_MAX)
                  ? PTRDIFF_MAX
                  : static_cast<std::ptrdiff_t>(position)) {}
  /// A range along the axis.
  Index(Slice range) : range_(range), is_position_(false) {}  // NOLINT: implicit

  /// Whether this entry is a position (else a Slice).
  bool is_position() const { return is_position_; }
  /// The position (meaningful when is_position()).
  std::ptrdiff_t position() const { return position_; }
  /// The range (meaningful when !is_position()).
  const Slice& range() const { return range_; }

 private:
  std::ptrdiff_t position_ = 0;
  Slice range_;
  bool is_position_;
};

/// @}

}  // namespace tapegrad
