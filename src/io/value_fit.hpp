// Whether a value survives conversion to another element type: the test shared by every
// reader that converts stored elements (NpyArray::to, read_idx).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace tapegrad::io::detail {

/// Whether static_cast<T>(v) is defined for an integer T: v, truncated toward 0, in T's
/// range. NaN and infinities do not fit. Compared against exact powers of two, so no bound
/// is rounded.
template <class T, class S>
bool fits_integer(S v) {
  using Limits = std::numeric_limits<T>;
  if constexpr (std::is_floating_point_v<S>) {
    const S whole = std::trunc(v);  // NaN and infinities fail both tests
    return whole >= static_cast<S>(Limits::lowest()) && whole < std::ldexp(S(1), Limits::digits);
  } else if constexpr (std::is_signed_v<S>) {
    if (v < 0) {
      return std::is_signed_v<T> &&
             static_cast<std::intmax_t>(v) >= static_cast<std::intmax_t>(Limits::lowest());
    }
    return static_cast<std::uintmax_t>(v) <= static_cast<std::uintmax_t>(Limits::max());
  } else {
    return static_cast<std::uintmax_t>(v) <= static_cast<std::uintmax_t>(Limits::max());
  }
}

/// Whether static_cast<T>(v) keeps v: for an integer T as fits_integer; for a floating T,
/// unless v is a finite number beyond T's largest (a double of 1e300 read as float would
/// become inf, and the conversion is undefined); NaN and infinities convert as they are.
template <class T, class S>
bool fits(S v) {
  if constexpr (std::is_integral_v<T>) {
    return fits_integer<T>(v);
  } else if constexpr (std::is_floating_point_v<S> && sizeof(S) > sizeof(T)) {
    return !std::isfinite(v) || std::abs(v) <= static_cast<S>(std::numeric_limits<T>::max());
  } else {
    return true;
  }
}

}  // namespace tapegrad::io::detail
