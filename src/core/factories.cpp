// Factories: new leaves made from a shape and a rule (constant, range, identity, random).
#include "tapegrad/factories.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "core/shape.hpp"

namespace tapegrad {

namespace {

// Elements uninitialized; from the array cache when one of that size is free.
template <class T>
xt::xarray<T> array_for(const char* op, const Shape& shape) {
  checked_size(op, shape);
  return detail::array_of_shape<T>(shape);
}

template <class T>
Tensor<T> filled(const char* op, const Shape& shape, T value, RequiresGrad rg) {
  auto a = array_for<T>(op, shape);
  std::fill_n(a.data(), a.size(), value);  // not a.begin(): an empty array's data() may be null
  return Tensor<T>(std::move(a), rg);
}

std::string arange_values(double start, double stop, double step) {
  return "start " + number_to_string(start) + ", stop " + number_to_string(stop) + ", step " +
         number_to_string(step);
}

// A uniform draw in [0, 1) at T's resolution: the top 53 bits for double, the top 24 for
// float (a double draw rounded to float could be 1).
template <class T>
double unit_draw(Generator& gen) {
  if constexpr (std::is_same_v<T, double>) {
    return gen.uniform();
  } else {
    return static_cast<double>(gen.next_u64() >> 40) * 0x1.0p-24;
  }
}

template <class T>
Tensor<T> uniform_draws(const char* op, const Shape& shape, T lo, T hi, Generator& gen,
                        RequiresGrad rg) {
  auto a = array_for<T>(op, shape);
  const double width = static_cast<double>(hi) - static_cast<double>(lo);
  // The largest T below hi: where lo + width u lands when rounding takes it to hi.
  const T below_hi = lo < hi ? std::nextafter(hi, lo) : lo;
  T* out = a.data();
  for (std::size_t i = 0; i < a.size(); ++i) {
    const T v = static_cast<T>(static_cast<double>(lo) + width * unit_draw<T>(gen));
    out[i] = v < hi ? v : below_hi;
  }
  return Tensor<T>(std::move(a), rg);
}

}  // namespace

template <class T>
Tensor<T> zeros(const Shape& shape, RequiresGrad rg) {
  return filled<T>("zeros", shape, T(0), rg);
}

template <class T>
Tensor<T> ones(const Shape& shape, RequiresGrad rg) {
  return filled<T>("ones", shape, T(1), rg);
}

template <class T>
Tensor<T> full(const Shape& shape, detail::NoDeduce<T> value, RequiresGrad rg) {
  return filled<T>("full", shape, value, rg);
}

template <class T>
Tensor<T> zeros_like(const Tensor<T>& x, RequiresGrad rg) {
  return filled<T>("zeros_like", x.shape(), T(0), rg);
}

template <class T>
Tensor<T> ones_like(const Tensor<T>& x, RequiresGrad rg) {
  return filled<T>("ones_like", x.shape(), T(1), rg);
}

template <class T>
Tensor<T> full_like(const Tensor<T>& x, detail::NoDeduce<T> value, RequiresGrad rg) {
  return filled<T>("full_like", x.shape(), value, rg);
}

template <class T>
Tensor<T> arange(detail::NoDeduce<T> start, detail::NoDeduce<T> stop, detail::NoDeduce<T> step,
                 RequiresGrad rg) {
  const double a = start, b = stop, d = step;
  if (!std::isfinite(a) || !std::isfinite(b) || !std::isfinite(d)) {
    throw ValueError("arange: expected finite start, stop and step, got " + arange_values(a, b, d));
  }
  if (d == 0) throw ValueError("arange: step must not be 0 (" + arange_values(a, b, d) + ")");
  if ((d > 0 && b < a) || (d < 0 && b > a)) {
    throw ValueError("arange: step " + number_to_string(d) + " points away from stop: " +
                     arange_values(a, b, d) + " (stop - start and step must have the same sign)");
  }
  // As PyTorch: the count from the double quotient, so that float and double agree on it.
  const double count = std::ceil((b - a) / d);
  // The first comparison also keeps the conversion to size_t defined (count may be inf).
  if (!(count <= static_cast<double>(detail::kMaxElements)) ||
      static_cast<std::size_t>(count) > detail::kMaxElements) {
    throw ValueError("arange: " + arange_values(a, b, d) + " make " + number_to_string(count) +
                     " elements, more than fit in memory (over " +
                     std::to_string(detail::kMaxElements) + ")");
  }
  const auto n = static_cast<std::size_t>(count);
  auto values = array_for<T>("arange", Shape{n});
  T* out = values.data();
  for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<T>(a + static_cast<double>(k) * d);
  return Tensor<T>(std::move(values), rg);
}

template <class T>
Tensor<T> arange(detail::NoDeduce<T> start, detail::NoDeduce<T> stop, RequiresGrad rg) {
  return arange<T>(start, stop, T(1), rg);
}

template <class T>
Tensor<T> arange(detail::NoDeduce<T> stop, RequiresGrad rg) {
  return arange<T>(T(0), stop, T(1), rg);
}

template <class T>
Tensor<T> linspace(detail::NoDeduce<T> start, detail::NoDeduce<T> stop, std::size_t steps,
                   RequiresGrad rg) {
  const double a = start, b = stop;
  if (!std::isfinite(a) || !std::isfinite(b)) {
    throw ValueError("linspace: expected finite start and stop, got start " + number_to_string(a) +
                     ", stop " + number_to_string(b) + " (" + std::to_string(steps) + " steps)");
  }
  if (!std::isfinite(b - a)) {
    throw ValueError("linspace: stop - start overflows double: start " + number_to_string(a) +
                     ", stop " + number_to_string(b));
  }
  auto values = array_for<T>("linspace", Shape{steps});
  T* out = values.data();
  if (steps == 1) out[0] = start;
  if (steps >= 2) {
    const double d = (b - a) / static_cast<double>(steps - 1);
    // PyTorch's split: the first half counts up from start, the rest down from stop, so that
    // both ends are exact and the rounding error is smallest at each end.
    const std::size_t halfway = steps / 2;
    for (std::size_t k = 0; k < halfway; ++k) {
      out[k] = static_cast<T>(a + d * static_cast<double>(k));
    }
    for (std::size_t k = halfway; k < steps; ++k) {
      out[k] = static_cast<T>(b - d * static_cast<double>(steps - 1 - k));
    }
  }
  return Tensor<T>(std::move(values), rg);
}

template <class T>
Tensor<T> eye(std::size_t n, std::size_t m, RequiresGrad rg) {
  auto a = array_for<T>("eye", Shape{n, m});
  std::fill_n(a.data(), a.size(), T(0));
  for (std::size_t i = 0; i < std::min(n, m); ++i) a.data()[i * m + i] = T(1);
  return Tensor<T>(std::move(a), rg);
}

template <class T>
Tensor<T> eye(std::size_t n, RequiresGrad rg) {
  return eye<T>(n, n, rg);
}

template <class T>
Tensor<T> rand(const Shape& shape, Generator& gen, RequiresGrad rg) {
  return uniform_draws<T>("rand", shape, T(0), T(1), gen, rg);
}

template <class T>
Tensor<T> rand(const Shape& shape, RequiresGrad rg) {
  return rand<T>(shape, default_generator(), rg);
}

template <class T>
Tensor<T> randn(const Shape& shape, Generator& gen, RequiresGrad rg) {
  auto a = array_for<T>("randn", shape);
  T* out = a.data();
  for (std::size_t i = 0; i < a.size(); ++i) out[i] = static_cast<T>(gen.normal());
  return Tensor<T>(std::move(a), rg);
}

template <class T>
Tensor<T> randn(const Shape& shape, RequiresGrad rg) {
  return randn<T>(shape, default_generator(), rg);
}

template <class T>
Tensor<T> uniform(const Shape& shape, detail::NoDeduce<T> lo, detail::NoDeduce<T> hi,
                  Generator& gen, RequiresGrad rg) {
  const std::string bounds = "lo " + number_to_string(lo) + ", hi " + number_to_string(hi);
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    throw ValueError("uniform: expected finite bounds, got " + bounds);
  }
  if (lo > hi) throw ValueError("uniform: expected lo <= hi, got " + bounds);
  if (!std::isfinite(static_cast<double>(hi) - static_cast<double>(lo))) {
    throw ValueError("uniform: hi - lo overflows double: " + bounds);
  }
  return uniform_draws<T>("uniform", shape, lo, hi, gen, rg);
}

template <class T>
Tensor<T> uniform(const Shape& shape, detail::NoDeduce<T> lo, detail::NoDeduce<T> hi,
                  RequiresGrad rg) {
  return uniform<T>(shape, lo, hi, default_generator(), rg);
}

#define TAPEGRAD_INSTANTIATE_FACTORIES(T)                                      \
  template Tensor<T> zeros<T>(const Shape&, RequiresGrad);                     \
  template Tensor<T> ones<T>(const Shape&, RequiresGrad);                      \
  template Tensor<T> full<T>(const Shape&, T, RequiresGrad);                   \
  template Tensor<T> zeros_like<T>(const Tensor<T>&, RequiresGrad);            \
  template Tensor<T> ones_like<T>(const Tensor<T>&, RequiresGrad);             \
  template Tensor<T> full_like<T>(const Tensor<T>&, T, RequiresGrad);          \
  template Tensor<T> arange<T>(T, T, T, RequiresGrad);                         \
  template Tensor<T> arange<T>(T, T, RequiresGrad);                            \
  template Tensor<T> arange<T>(T, RequiresGrad);                               \
  template Tensor<T> linspace<T>(T, T, std::size_t, RequiresGrad);             \
  template Tensor<T> eye<T>(std::size_t, RequiresGrad);                        \
  template Tensor<T> eye<T>(std::size_t, std::size_t, RequiresGrad);           \
  template Tensor<T> rand<T>(const Shape&, Generator&, RequiresGrad);          \
  template Tensor<T> rand<T>(const Shape&, RequiresGrad);                      \
  template Tensor<T> randn<T>(const Shape&, Generator&, RequiresGrad);         \
  template Tensor<T> randn<T>(const Shape&, RequiresGrad);                     \
  template Tensor<T> uniform<T>(const Shape&, T, T, Generator&, RequiresGrad); \
  template Tensor<T> uniform<T>(const Shape&, T, T, RequiresGrad);

TAPEGRAD_INSTANTIATE_FACTORIES(float)
TAPEGRAD_INSTANTIATE_FACTORIES(double)

}  // namespace tapegrad
