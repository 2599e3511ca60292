#include "tapegrad/optim/clip.hpp"

#include <cmath>
#include <string>

namespace tapegrad::optim {

template <class T>
double clip_grad_norm(std::vector<Tensor<T>>& parameters, double max_norm) {
  if (!(max_norm > 0) || !std::isfinite(max_norm)) {
    throw ValueError("clip_grad_norm: max_norm must be positive and finite, got " +
                     std::to_string(max_norm));
  }
  double squares = 0;
  for (const auto& p : parameters) {
    if (!p.has_grad()) continue;
    for (const T v : p.grad()) squares += static_cast<double>(v) * static_cast<double>(v);
  }
  const double norm = std::sqrt(squares);
  if (norm > max_norm) {
    const T scale = static_cast<T>(max_norm / (norm + 1e-6));
    for (auto& p : parameters) {
      if (p.has_grad()) p.mutable_grad() *= scale;
    }
  }
  return norm;
}

template double clip_grad_norm(std::vector<Tensor<float>>&, double);
template double clip_grad_norm(std::vector<Tensor<double>>&, double);

}  // namespace tapegrad::optim
