#include "tapegrad/nn/norm.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/compiling.hpp"
#include "python_repr.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad::nn {

namespace {

void check_eps(const char* who, double eps) {
  if (!(eps >= 0 && std::isfinite(eps))) {
    throw ValueError(std::string(who) + ": eps must be finite and >= 0, got " +
                     detail::python_float(eps));
  }
}

void check_momentum(const std::string& who, double momentum) {
  if (!(momentum >= 0 && momentum <= 1)) {
    throw ValueError(who + ": momentum must be in [0, 1], got " + detail::python_float(momentum));
  }
}

// The running statistics, updated in place outside the tape from the batch's statistics
// (each of shape (1, C, 1, ...): element c is channel c) over n values per channel.
template <class T>
void update_running_stats(Tensor<T> running_mean, Tensor<T> running_var,
                          const xt::xarray<T>& batch_mean, const xt::xarray<T>& biased_var,
                          std::size_t n, double momentum) {
  const T keep = static_cast<T>(1 - momentum), take = static_cast<T>(momentum);
  const T unbias = static_cast<T>(static_cast<double>(n) / static_cast<double>(n - 1));
  auto& mean = running_mean.mutable_value();
  auto& var = running_var.mutable_value();
  for (std::size_t c = 0; c < mean.size(); ++c) {
    mean.data()[c] = keep * mean.data()[c] + take * batch_mean.data()[c];
    var.data()[c] = keep * var.data()[c] + take * (biased_var.data()[c] * unbias);
  }
}

}  // namespace

template <class T>
Tensor<T> batch_norm(const Tensor<T>& x, const std::optional<Tensor<T>>& running_mean,
                     const std::optional<Tensor<T>>& running_var,
                     const std::optional<Tensor<T>>& weight, const std::optional<Tensor<T>>& bias,
                     bool training, double momentum, double eps) {
  if (x.dim() < 2 || x.dim() > 4) {
    throw ShapeError("batch_norm: the input has shape " + shape_to_string(x.shape()) +
                     "; expected (N, C), (N, C, L) or (N, C, H, W)");
  }
  const std::size_t channels = x.shape()[1];
  const auto check_channels = [&](const char* name, const std::optional<Tensor<T>>& t) {
    if (t && t->shape() != Shape{channels}) {
      throw ShapeError(std::string("batch_norm: ") + name + " has shape " +
                       shape_to_string(t->shape()) + " but the input " +
                       shape_to_string(x.shape()) + " has " + std::to_string(channels) +
                       " channels");
    }
  };
  check_channels("running_mean", running_mean);
  check_channels("running_var", running_var);
  check_channels("weight", weight);
  check_channels("bias", bias);
  if (running_mean.has_value() != running_var.has_value()) {
    throw ValueError("batch_norm: running_mean and running_var go together: give both or neither");
  }
  // A NaN momentum or eps would fill the running statistics or the result with NaN unseen.
  check_eps("batch_norm", eps);
  check_momentum("batch_norm", momentum);
  std::size_t n = 1;  // values per channel
  Axes axes;
  Shape per_channel(x.dim(), 1);  // (1, C, 1, ...): broadcasts against x
  per_channel[1] = channels;
  for (std::size_t a = 0; a < x.dim(); ++a) {
    if (a == 1) continue;
    n *= x.shape()[a];
    axes.push_back(static_cast<std::ptrdiff_t>(a));
  }
  if (training && n == 1) {
    throw ValueError(
        "batch_norm: Expected more than 1 value per channel when training, got input size " +
        shape_to_string(x.shape()));
  }
  if (!training && !running_mean) {
    throw ValueError(
        "batch_norm: evaluation (training = false) needs running_mean and running_var");
  }
  if (training && tapegrad::detail::compiling()) {
    throw TapeError(
        "batch_norm: in training it updates the running statistics outside the tape, which a "
        "compiled step would not replay; compile the step in evaluation mode (eval(), or "
        "training = false), or train with backward()");
  }
  const auto as_channels = [&](const Tensor<T>& t) { return reshape(t, per_channel); };
  Tensor<T> y = x;  // no values per channel: nothing to normalise, and no statistics
  if (training && n > 0) {
    const Tensor<T> batch_mean = mean(x, axes, true);
    const Tensor<T> centered = x - batch_mean;
    const Tensor<T> biased_var = mean(square(centered), axes, true);
    y = centered / sqrt(biased_var + eps);
    if (running_mean) {
      update_running_stats(*running_mean, *running_var, batch_mean.value(), biased_var.value(), n,
                           momentum);
    }
  } else if (!training) {
    y = (x - as_channels(*running_mean)) / sqrt(as_channels(*running_var) + eps);
  }
  if (weight) y = y * as_channels(*weight);
  if (bias) y = y + as_channels(*bias);
  return y;
}

template <class T>
Tensor<T> layer_norm(const Tensor<T>& x, const Shape& normalized_shape,
                     const std::optional<Tensor<T>>& weight, const std::optional<Tensor<T>>& bias,
                     double eps) {
  check_eps("layer_norm", eps);
  const std::size_t k = normalized_shape.size();
  const bool trailing =
      k >= 1 && x.dim() >= k &&
      std::equal(normalized_shape.begin(), normalized_shape.end(), x.shape().end() - k);
  if (!trailing) {
    throw ShapeError("layer_norm: normalized_shape " + shape_to_string(normalized_shape) +
                     " is not the trailing shape of the input " + shape_to_string(x.shape()) +
                     " (it must name at least one axis)");
  }
  const auto check = [&](const char* name, const std::optional<Tensor<T>>& t) {
    if (t && t->shape() != normalized_shape) {
      throw ShapeError(std::string("layer_norm: ") + name + " has shape " +
                       shape_to_string(t->shape()) + "; expected normalized_shape " +
                       shape_to_string(normalized_shape));
    }
  };
  check("weight", weight);
  check("bias", bias);
  std::size_t count = 1;
  Axes axes;
  for (std::size_t a = x.dim() - k; a < x.dim(); ++a) {
    count *= x.shape()[a];
    axes.push_back(static_cast<std::ptrdiff_t>(a));
  }
  Tensor<T> y = x;  // no values to normalise over: y is empty anyway
  if (count > 0) {
    const Tensor<T> centered = x - mean(x, axes, true);
    y = centered / sqrt(mean(square(centered), axes, true) + eps);
  }
  if (weight) y = y * *weight;
  if (bias) y = y + *bias;
  return y;
}

template <class T>
BatchNormBase<T>::BatchNormBase(const char* name, std::size_t num_features, double eps,
                                double momentum, bool affine)
    : num_features_(num_features), eps_(eps), momentum_(momentum), affine_(affine) {
  const std::string who = name;
  if (num_features == 0) throw ValueError(who + ": num_features must be positive, got 0");
  check_eps(who.c_str(), eps);
  check_momentum(who, momentum);
  const Shape shape{num_features};
  if (affine_) {
    weight_ = this->register_parameter("weight", Tensor<T>(xt::xarray<T>(xt::ones<T>(shape))));
    bias_ = this->register_parameter("bias", Tensor<T>(xt::xarray<T>(xt::zeros<T>(shape))));
  }
  running_mean_ =
      this->register_buffer("running_mean", Tensor<T>(xt::xarray<T>(xt::zeros<T>(shape))));
  running_var_ = this->register_buffer("running_var", Tensor<T>(xt::xarray<T>(xt::ones<T>(shape))));
  num_batches_tracked_ =
      this->register_buffer("num_batches_tracked", Tensor<T>(T(0)), BufferKind::count);
}

template <class T>
Tensor<T> BatchNormBase<T>::forward(const Tensor<T>& input) {
  check_input(input);
  const bool training = this->is_training();
  std::optional<Tensor<T>> weight, bias;
  if (affine_) {
    weight = weight_;
    bias = bias_;
  }
  Tensor<T> y =
      batch_norm<T>(input, running_mean_, running_var_, weight, bias, training, momentum_, eps_);
  if (training) num_batches_tracked_.mutable_value().data()[0] += T(1);
  return y;
}

template <class T>
std::string BatchNormBase<T>::extra_repr() const {
  return std::to_string(num_features_) + ", eps=" + detail::python_float(eps_) +
         ", momentum=" + detail::python_float(momentum_) +
         ", affine=" + detail::python_bool(affine_) + ", track_running_stats=True";
}

template <class T>
void BatchNorm1d<T>::check_input(const Tensor<T>& input) const {
  if (input.dim() != 2 && input.dim() != 3) {
    throw ShapeError("BatchNorm1d: expected 2D or 3D input, (N, C) or (N, C, L), got shape " +
                     shape_to_string(input.shape()));
  }
}

template <class T>
void BatchNorm2d<T>::check_input(const Tensor<T>& input) const {
  if (input.dim() != 4) {
    throw ShapeError("BatchNorm2d: expected 4D input, (N, C, H, W), got shape " +
                     shape_to_string(input.shape()));
  }
}

template <class T>
LayerNorm<T>::LayerNorm(const Shape& normalized_shape, double eps, bool elementwise_affine)
    : normalized_shape_(normalized_shape), eps_(eps), affine_(elementwise_affine) {
  if (normalized_shape.empty())
    throw ValueError("LayerNorm: normalized_shape must name at least one axis");
  check_eps("LayerNorm", eps);
  checked_size("LayerNorm", normalized_shape);
  if (affine_) {
    weight_ =
        this->register_parameter("weight", Tensor<T>(xt::xarray<T>(xt::ones<T>(normalized_shape))));
    bias_ =
        this->register_parameter("bias", Tensor<T>(xt::xarray<T>(xt::zeros<T>(normalized_shape))));
  }
}

template <class T>
Tensor<T> LayerNorm<T>::forward(const Tensor<T>& input) {
  if (!affine_) return layer_norm<T>(input, normalized_shape_, std::nullopt, std::nullopt, eps_);
  return layer_norm<T>(input, normalized_shape_, weight_, bias_, eps_);
}

template <class T>
std::string LayerNorm<T>::extra_repr() const {
  return shape_to_string(normalized_shape_) + ", eps=" + detail::python_float(eps_) +
         ", elementwise_affine=" + detail::python_bool(affine_);
}

#define TAPEGRAD_NORM_INSTANTIATE(T)                                                              \
  template Tensor<T> batch_norm(const Tensor<T>&, const std::optional<Tensor<T>>&,                \
                                const std::optional<Tensor<T>>&, const std::optional<Tensor<T>>&, \
                                const std::optional<Tensor<T>>&, bool, double, double);           \
  template Tensor<T> layer_norm(const Tensor<T>&, const Shape&, const std::optional<Tensor<T>>&,  \
                                const std::optional<Tensor<T>>&, double);                         \
  template class BatchNormBase<T>;                                                                \
  template class BatchNorm1d<T>;                                                                  \
  template class BatchNorm2d<T>;                                                                  \
  template class LayerNorm<T>;
TAPEGRAD_NORM_INSTANTIATE(float)
TAPEGRAD_NORM_INSTANTIATE(double)
#undef TAPEGRAD_NORM_INSTANTIATE

}  // namespace tapegrad::nn
