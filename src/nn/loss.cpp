#include "tapegrad/nn/loss.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "tapegrad/ops.hpp"

namespace tapegrad::nn {

namespace {

template <class T>
void require_same_shape(const char* loss, const Tensor<T>& output, const Tensor<T>& target) {
  if (output.shape() != target.shape()) {
    throw ShapeError(std::string(loss) + ": output shape " + shape_to_string(output.shape()) +
                     " and target shape " + shape_to_string(target.shape()) + " differ");
  }
}

// The one-hot rows of `labels` for logits of shape (N, C), checked.
template <class T>
Tensor<T> one_hot(const char* loss, const Tensor<T>& scores,
                  const std::vector<std::size_t>& labels) {
  if (scores.dim() != 2) {
    throw ShapeError(std::string(loss) + ": expects scores of shape (N, C), got " +
                     shape_to_string(scores.shape()));
  }
  const std::size_t n = scores.shape()[0], classes = scores.shape()[1];
  if (n == 0) throw ValueError(std::string(loss) + ": the batch is empty");
  if (labels.size() != n) {
    throw ShapeError(std::string(loss) + ": " + std::to_string(labels.size()) +
                     " labels for scores of shape " + shape_to_string(scores.shape()));
  }
  xt::xarray<T> mask = xt::zeros<T>({n, classes});
  for (std::size_t i = 0; i < n; ++i) {
    if (labels[i] >= classes) {
      throw ValueError(std::string(loss) + ": label " + std::to_string(labels[i]) + " of row " +
                       std::to_string(i) + " is not below the class count " +
                       std::to_string(classes));
    }
    mask(i, labels[i]) = T(1);
  }
  return Tensor<T>(std::move(mask));
}

}  // namespace

template <class T>
Tensor<T> mse(const Tensor<T>& output, const Tensor<T>& target) {
  require_same_shape("mse", output, target);
  return mean(square(output - target));
}

template <class T>
Tensor<T> half_sse(const Tensor<T>& output, const Tensor<T>& target) {
  require_same_shape("half_sse", output, target);
  const double samples = output.dim() >= 2 ? static_cast<double>(output.shape()[0]) : 1.0;
  if (samples == 0 || output.size() == 0) {
    throw ValueError("half_sse: the output of shape " + shape_to_string(output.shape()) +
                     " has no elements");
  }
  return sum(square(target - output)) / (2.0 * samples);
}

template <class T>
Tensor<T> binary_cross_entropy(const Tensor<T>& probabilities, const Tensor<T>& target) {
  require_same_shape("binary_cross_entropy", probabilities, target);
  // Each log clamped at -100 as in PyTorch: the argument is clamped at e^-100. In float that
  // is subnormal, and for p just above it the log's backward, g / p, would overflow, so
  // float's floor is its smallest normal number, e^-87.3.
  const double floor =
      std::max(std::exp(-100.0), static_cast<double>(std::numeric_limits<T>::min()));
  const auto log_p = log(clamp(probabilities, floor, 1.0));
  const auto log_q = log(clamp(1.0 - probabilities, floor, 1.0));
  return -mean(target * log_p + (1.0 - target) * log_q);
}

template <class T>
Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>& logits, const Tensor<T>& target) {
  require_same_shape("binary_cross_entropy_with_logits", logits, target);
  return mean(softplus(logits) - target * logits);
}

template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const std::vector<std::size_t>& labels) {
  const auto mask = one_hot("cross_entropy", logits, labels);
  return -sum(log_softmax(logits, 1) * mask) / static_cast<double>(labels.size());
}

template <class T>
Tensor<T> cross_entropy_with_probabilities(const Tensor<T>& logits, const Tensor<T>& target) {
  if (logits.dim() != 2) {
    throw ShapeError("cross_entropy_with_probabilities: expects logits of shape (N, C), got " +
                     shape_to_string(logits.shape()));
  }
  if (target.shape() != logits.shape()) {
    throw ShapeError("cross_entropy_with_probabilities: target of shape " +
                     shape_to_string(target.shape()) + " for logits of shape " +
                     shape_to_string(logits.shape()) + "; they must be equal");
  }
  const std::size_t n = logits.shape()[0];
  if (n == 0) throw ValueError("cross_entropy_with_probabilities: the batch is empty");
  return -sum(log_softmax(logits, 1) * target) / static_cast<double>(n);
}

template <class T>
Tensor<T> nll_loss(const Tensor<T>& log_probabilities, const std::vector<std::size_t>& labels) {
  const auto mask = one_hot("nll_loss", log_probabilities, labels);
  return -sum(log_probabilities * mask) / static_cast<double>(labels.size());
}

#define TAPEGRAD_INSTANTIATE(T)                                                            \
  template Tensor<T> mse(const Tensor<T>&, const Tensor<T>&);                              \
  template Tensor<T> half_sse(const Tensor<T>&, const Tensor<T>&);                         \
  template Tensor<T> binary_cross_entropy(const Tensor<T>&, const Tensor<T>&);             \
  template Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>&, const Tensor<T>&); \
  template Tensor<T> cross_entropy(const Tensor<T>&, const std::vector<std::size_t>&);     \
  template Tensor<T> cross_entropy_with_probabilities(const Tensor<T>&, const Tensor<T>&); \
  template Tensor<T> nll_loss(const Tensor<T>&, const std::vector<std::size_t>&);

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::nn
