// The parameters of the second-order methods seen as one vector of doubles.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "tapegrad/tape.hpp"
#include "tapegrad/tensor.hpp"

namespace tapegrad::optim::detail {

using Vector = std::vector<double>;

inline double dot(const Vector& a, const Vector& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

/// The largest |element|; NaN if any element is NaN (so it never reads as converged).
inline double max_abs(const Vector& a) {
  double m = 0;
  for (double v : a) {
    if (!(std::abs(v) <= m)) m = std::abs(v);
  }
  return m;
}

template <class T>
Vector flat_values(const std::vector<Tensor<T>>& parameters) {
  Vector out;
  for (const auto& p : parameters) out.insert(out.end(), p.value().begin(), p.value().end());
  return out;
}

template <class T>
void set_flat_values(std::vector<Tensor<T>>& parameters, const Vector& values) {
  std::size_t k = 0;
  for (auto& p : parameters) {
    for (auto& v : p.mutable_value()) v = static_cast<T>(values[k++]);
  }
}

template <class T>
Vector flat_gradients(const std::vector<Tensor<T>>& parameters) {
  Vector out;
  for (const auto& p : parameters) {
    if (p.has_grad()) {
      out.insert(out.end(), p.grad().begin(), p.grad().end());
    } else {
      out.insert(out.end(), p.size(), 0.0);
    }
  }
  return out;
}

template <class T>
double loss_value(const char* who, const Tensor<T>& loss) {
  if (loss.size() != 1) {
    throw ShapeError(std::string(who) + ": the loss function returned shape " +
                     shape_to_string(loss.shape()) + "; it must return a single value");
  }
  return static_cast<double>(loss.item());
}

/// The loss and its gradient at the parameters' current values.
template <class T>
double evaluate(const char* who, std::vector<Tensor<T>>& parameters,
                const std::function<Tensor<T>()>& loss_function, Vector& gradient) {
  for (auto& p : parameters) p.zero_grad();
  double value;
  {
    Tape tape;
    const Tensor<T> loss = loss_function();
    value = loss_value(who, loss);
    if (loss.requires_grad()) loss.backward();
  }
  gradient = flat_gradients(parameters);
  return value;
}

}  // namespace tapegrad::optim::detail
