// Shared test helpers: reproducible random arrays and a gradcheck that reports its message.
#pragma once

#include <cstdint>
#include <random>

#include <doctest/doctest.h>

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
