// Shared test helpers: reproducible random arrays and a gradcheck that reports its message.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <random>

#include "tapegrad/tapegrad.hpp"

namespace test {

using tapegrad::Shape;
using tapegrad::Tensor;

/// Uniform values in [lo, hi), the same on every run for a given seed.
inline xt::xarray<double> random_array(const Shape& shape, std::uint64_t seed, double lo = -2,
                                       double hi = 2) {
  std::mt19937_64 engine(seed);
  xt::xarray<double> a = xt::empty<double>(shape);
  for (auto& v : a) v = lo + (hi - lo) * static_cast<double>(engine() >> 11) * 0x1.0p-53;
  return a;
}

/// xt::allclose for arrays that may have a zero extent: xtensor 0.24's iterators offset a null data
/// pointer on an empty array, which UBSan reports, so empty arrays compare by shape alone.
template <class T>
bool all_close(const xt::xarray<T>& a, const xt::xarray<T>& b, double rtol, double atol) {
  if (a.shape() != b.shape()) return false;
  if (a.size() == 0) return true;
  return xt::allclose(a, b, rtol, atol);
}

/// True in the sanitizer builds (scripts/sanitize.sh builds with ASan and UBSan together).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

/// An array that claims `shape` over `stored` elements, its strides set here: how an array
/// whose element count overflows std::size_t reaches tapegrad (its size() wraps around).
/// xt::xarray::from_shape would compute the same strides with a signed overflow, which UBSan
/// reports; set here, only the backstrides are computed, and for shapes of two axes whose
/// second extent is 2^63 or more, as the sanitizer builds use, that does not overflow.
inline xt::xarray<double> array_claiming(const Shape& shape, std::size_t stored = 0) {
  using Array = xt::xarray<double>;
  Array::inner_strides_type strides(shape.size());
  std::size_t stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = shape[i] == 1 ? 0 : static_cast<std::ptrdiff_t>(stride);
    stride *= shape[i];  // wraps around, as xtensor's own size does
  }
  return Array(Array::storage_type(stored), Array::inner_shape_type(shape.begin(), shape.end()),
               std::move(strides));
}

template <class T>
std::vector<Tensor<T>> as_tensors(const std::vector<xt::xarray<double>>& arrays) {
  std::vector<Tensor<T>> out;
  for (const auto& a : arrays) out.emplace_back(xt::xarray<T>(xt::cast<T>(a)));
  return out;
}

/// Runs gradcheck in T and fails the current test with the report's message.
template <class T, class F>
void require_gradcheck(const F& f, const std::vector<xt::xarray<double>>& inputs,
                       tapegrad::GradcheckOptions options = {}) {
  const tapegrad::TensorFunction<T> fn = [&](const std::vector<Tensor<T>>& xs) { return f(xs); };
  const auto report = tapegrad::gradcheck<T>(fn, as_tensors<T>(inputs), options);
  INFO(report.message);
  CHECK(report.passed);
}

}  // namespace test
