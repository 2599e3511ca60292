// The check every optimizer, schedule and clip setting goes through, so that each refusal
// names who refused, the setting, what it must be and the value that came.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <sstream>
#include <string>
#include <utility>

#include "tapegrad/error.hpp"

namespace tapegrad::optim::detail {

using tapegrad::number_to_string;

/// "NaN" or "inf" / "-inf" for a non-finite value (in the words of the messages about data).
inline std::string non_finite_name(double value) {
  return std::isnan(value) ? "NaN" : number_to_string(value);
}

/// The domains a real setting may be required to lie in; all of them exclude NaN and inf.
enum class Domain {
  non_negative,              ///< [0, inf)
  non_negative_or_infinite,  ///< [0, inf]: a bound that may be off
  positive,                  ///< (0, inf)
  below_one,                 ///< [0, 1): the decay rate of a running average
  unit,                      ///< [0, 1]: a share
  open_unit,                 ///< (0, 1): a factor that must shrink
};

/// Whether value lies in domain, and the domain in words.
inline std::pair<bool, const char*> in_domain(double value, Domain domain) {
  switch (domain) {
    case Domain::non_negative:
      return {value >= 0 && std::isfinite(value), "a finite number >= 0"};
    case Domain::non_negative_or_infinite:
      return {value >= 0, "a number >= 0 (inf allowed)"};
    case Domain::positive:
      return {value > 0 && std::isfinite(value), "a positive finite number"};
    case Domain::below_one:
      return {value >= 0 && value < 1, "in [0, 1)"};
    case Domain::unit:
      return {value >= 0 && value <= 1, "in [0, 1]"};
    case Domain::open_unit:
      return {value > 0 && value < 1, "in (0, 1)"};
  }
  return {false, "a known domain"};
}

/// Throws ValueError `who: setting must be <domain>, got <value>` unless value is in domain.
inline void check_setting(const std::string& who, const char* setting, double value,
                          Domain domain) {
  const auto [ok, expected] = in_domain(value, domain);
  if (!ok) {
    throw ValueError(who + ": " + setting + " must be " + expected + ", got " +
                     number_to_string(value));
  }
}

/// Throws ShapeError `who: parameter i has shape <parameter> but its gradient has shape
/// <gradient>; ...`: a gradient changed through mutable_grad() would be read past its end.
[[noreturn]] inline void refuse_gradient_shape(const std::string& who, std::size_t i,
                                               const Shape& parameter, const Shape& gradient) {
  throw ShapeError(who + ": parameter " + std::to_string(i) + " has shape " +
                   shape_to_string(parameter) + " but its gradient has shape " +
                   shape_to_string(gradient) +
                   "; expected a gradient of the parameter's shape (was it changed through "
                   "mutable_grad()?)");
}

/// Throws ValueError `who: setting must be positive, got 0` for a count of 0.
inline void check_positive_count(const std::string& who, const char* setting, std::size_t value) {
  if (value == 0) throw ValueError(who + ": " + setting + " must be positive, got 0");
}

}  // namespace tapegrad::optim::detail
