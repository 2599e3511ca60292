// Anomaly mode's checks (see AnomalyModeGuard): the first op to make NaN or Inf.
#pragma once

#include <cstddef>
#include <string>
#include <xtensor/xarray.hpp>

namespace tapegrad::detail {

/// Anomaly mode of the calling thread.
extern thread_local bool anomaly_checks;

/// True if every element is finite.
template <class T>
bool all_finite(const xt::xarray<T>& a) {
  // A plain loop: xtensor's iterators over an empty array offset a null pointer.
  const T* data = a.data();
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!(data[i] - data[i] == T(0))) return false;  // NaN and Inf give NaN here
  }
  return true;
}

/// Throws TapeError for a recorded op that made NaN or Inf from finite inputs.
[[noreturn]] void report_forward_anomaly(const char* op, const std::string& shapes);

}  // namespace tapegrad::detail
