// Numbers as Python's repr() writes them, for the modules' PyTorch-style printing.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace tapegrad::nn::detail {

/// repr(float(v)): the shortest digits that read back as v, in fixed notation when the
/// decimal exponent is in [-4, 16) ("0.1", "1.0", "100000.0") and in exponent notation
/// otherwise ("1e-05", "1.5e+16"), as Python prints floats.
inline std::string python_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buffer[64];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(buffer, sizeof buffer, "%.*e", digits - 1, v);
    if (std::strtod(buffer, nullptr) == v) break;
  }
  std::snprintf(buffer, sizeof buffer, "%.*e", digits - 1, v);
  const int exponent = std::atoi(std::strchr(buffer, 'e') + 1);
  if (exponent < -4 || exponent >= 16) return buffer;
  const int decimals = std::max(digits - 1 - exponent, 1);
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  return buffer;
}

/// "True" or "False".
inline const char* python_bool(bool on) { return on ? "True" : "False"; }

}  // namespace tapegrad::nn::detail
