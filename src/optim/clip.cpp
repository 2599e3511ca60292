#include "tapegrad/optim/clip.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "settings.hpp"

namespace tapegrad::optim {

namespace {

// Throws ShapeError for the first gradient whose shape is not its parameter's.
template <class T>
void check_gradient_shapes(const char* who, const std::vector<Tensor<T>>& parameters) {
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const auto& p = parameters[i];
    if (p.has_grad() && p.grad().shape() != p.shape())
      detail::refuse_gradient_shape(who, i, p.shape(), p.grad().shape());
  }
}

// The joint 2-norm in double. Finite squares that overflow are summed again divided by the
// largest |element|, so only a NaN or infinite element makes the norm non-finite.
template <class T>
double gradient_norm(const std::vector<Tensor<T>>& parameters) {
  double squares = 0, largest = 0;
  for (const auto& p : parameters) {
    if (!p.has_grad()) continue;
    for (const T v : p.grad()) {
      const double d = static_cast<double>(v);
      squares += d * d;
      largest = std::max(largest, std::abs(d));
    }
  }
  if (std::isfinite(squares) || std::isnan(squares) || !std::isfinite(largest)) {
    return std::sqrt(squares);
  }
  double scaled = 0;
  for (const auto& p : parameters) {
    if (!p.has_grad()) continue;
    for (const T v : p.grad())
      scaled += (static_cast<double>(v) / largest) * (static_cast<double>(v) / largest);
  }
  return largest * std::sqrt(scaled);
}

template <class T>
[[noreturn]] void refuse_non_finite(const std::vector<Tensor<T>>& parameters, double norm) {
  std::string where;
  for (std::size_t i = 0; i < parameters.size() && where.empty(); ++i) {
    if (!parameters[i].has_grad()) continue;
    const auto& g = parameters[i].grad();
    const auto bad = std::find_if(g.begin(), g.end(), [](T v) { return !std::isfinite(v); });
    if (bad != g.end()) {
      where = ": parameter " + std::to_string(i) + " (shape " +
              shape_to_string(parameters[i].shape()) + ") has the gradient element " +
              detail::number_to_string(static_cast<double>(*bad)) + " at flat index " +
              std::to_string(bad - g.begin());
    }
  }
  throw ValueError("clip_grad_norm: the gradient norm is " + detail::number_to_string(norm) +
                   where + "; the gradients are left as they are");
}

}  // namespace

template <class T>
double clip_grad_norm(const std::vector<Tensor<T>>& parameters, double max_norm,
                      bool error_if_nonfinite) {
  // As PyTorch: inf measures the norm without clipping, 0 zeroes the gradients.
  detail::check_setting("clip_grad_norm", "max_norm", max_norm,
                        detail::Domain::non_negative_or_infinite);
  check_gradient_shapes("clip_grad_norm", parameters);
  const double norm = gradient_norm(parameters);
  if (!std::isfinite(norm)) {
    if (error_if_nonfinite) refuse_non_finite(parameters, norm);
    return norm;
  }
  if (norm > max_norm) {
    // In double: the scale of a float gradient with a huge norm can underflow float.
    const double scale = max_norm / (norm + 1e-6);
    for (Tensor<T> p : parameters) {  // a handle: its gradient is the parameter's own
      if (!p.has_grad()) continue;
      for (T& v : p.mutable_grad()) v = static_cast<T>(static_cast<double>(v) * scale);
    }
  }
  return norm;
}

template <class T>
void clip_grad_value(const std::vector<Tensor<T>>& parameters, double clip_value) {
  detail::check_setting("clip_grad_value", "clip_value", clip_value,
                        detail::Domain::non_negative_or_infinite);
  check_gradient_shapes("clip_grad_value", parameters);
  // Compared in double, so a bound beyond float's range clips nothing rather than turning
  // into inf; NaN elements stay NaN, as with PyTorch's clamp.
  for (Tensor<T> p : parameters) {
    if (!p.has_grad()) continue;
    for (T& v : p.mutable_grad()) {
      const double d = static_cast<double>(v);
      if (d > clip_value) v = static_cast<T>(clip_value);
      if (d < -clip_value) v = static_cast<T>(-clip_value);
    }
  }
}

template double clip_grad_norm(const std::vector<Tensor<float>>&, double, bool);
template double clip_grad_norm(const std::vector<Tensor<double>>&, double, bool);
template void clip_grad_value(const std::vector<Tensor<float>>&, double);
template void clip_grad_value(const std::vector<Tensor<double>>&, double);

}  // namespace tapegrad::optim
