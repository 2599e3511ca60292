#include "tapegrad/nn/layers.hpp"

#include <string>

#include "tapegrad/ops.hpp"

namespace tapegrad::nn {

template <class T>
Linear<T>::Linear(std::size_t in_features, std::size_t out_features, const LinearOptions& options)
    : in_(in_features), out_(out_features), has_bias_(options.has_bias()) {
  if (in_ == 0 || out_ == 0) {
    throw ValueError("Linear: sizes must be positive, got " + std::to_string(in_) + " -> " +
                     std::to_string(out_));
  }
  checked_size("Linear", {in_, out_});
  xt::xarray<T> w = xt::xarray<T>::from_shape({in_, out_});
  options.weight_initializer().fill(w, options.random());
  weight_ = this->register_parameter("weight", Tensor<T>(std::move(w)));
  if (has_bias_) {
    xt::xarray<T> b = xt::xarray<T>::from_shape({out_});
    options.bias_initializer().fill(b, options.random());
    bias_ = this->register_parameter("bias", Tensor<T>(std::move(b)));
  }
}

template <class T>
Tensor<T> Linear<T>::forward(const Tensor<T>& input) {
  if (input.dim() < 1 || input.dim() > 2 || input.shape()[input.dim() - 1] != in_) {
    throw ShapeError("Linear(" + std::to_string(in_) + " -> " + std::to_string(out_) +
                     "): the input has shape " + shape_to_string(input.shape()) +
                     "; expected (N, " + std::to_string(in_) + ") or (" + std::to_string(in_) +
                     ",)");
  }
  const auto product = matmul(input, weight_);
  return has_bias_ ? product + bias_ : product;
}

template <class T>
const Tensor<T>& Linear<T>::bias() const {
  if (!has_bias_) throw ValueError("Linear: this layer was made without a bias");
  return bias_;
}

template <class T>
std::string Linear<T>::extra_repr() const {
  return "in_features=" + std::to_string(in_) + ", out_features=" + std::to_string(out_) +
         ", bias=" + (has_bias_ ? "True" : "False");
}

template <class T>
std::string ActivationModule<T>::type_name() const {
  switch (activation_) {
    case Activation::Identity:
      return "Identity";
    case Activation::Sigmoid:
      return "Sigmoid";
    case Activation::Tanh:
      return "Tanh";
    case Activation::ReLU:
      return "ReLU";
    case Activation::LeakyReLU:
      return "LeakyReLU";
    case Activation::Softplus:
      return "Softplus";
    case Activation::GELU:
      return "GELU";
    case Activation::SiLU:
      return "SiLU";
    case Activation::ELU:
      return "ELU";
  }
  return "ActivationModule";
}

template <class T>
std::string ActivationModule<T>::extra_repr() const {
  switch (activation_) {
    case Activation::LeakyReLU:
      return "negative_slope=0.01";
    case Activation::GELU:
      return "approximate='none'";
    case Activation::ELU:
      return "alpha=1.0";
    default:
      return "";
  }
}

const char* activation_name(Activation activation) {
  switch (activation) {
    case Activation::Identity:
      return "identity";
    case Activation::Sigmoid:
      return "sigmoid";
    case Activation::Tanh:
      return "tanh";
    case Activation::ReLU:
      return "relu";
    case Activation::LeakyReLU:
      return "leaky_relu";
    case Activation::Softplus:
      return "softplus";
    case Activation::GELU:
      return "gelu";
    case Activation::SiLU:
      return "silu";
    case Activation::ELU:
      return "elu";
  }
  return "?";
}

template <class T>
Tensor<T> activate(Activation activation, const Tensor<T>& x) {
  switch (activation) {
    case Activation::Identity:
      return x;
    case Activation::Sigmoid:
      return sigmoid(x);
    case Activation::Tanh:
      return tanh(x);
    case Activation::ReLU:
      return relu(x);
    case Activation::LeakyReLU:
      return leaky_relu(x, 0.01);
    case Activation::Softplus:
      return softplus(x);
    case Activation::GELU:
      return gelu(x);
    case Activation::SiLU:
      return silu(x);
    case Activation::ELU:
      return elu(x, 1.0);
  }
  throw ValueError("activate: unknown activation");
}

template <class T>
Sequential<T>::Sequential(std::initializer_list<std::shared_ptr<Module<T>>> modules)
    : Sequential(std::vector<std::shared_ptr<Module<T>>>(modules)) {}

template <class T>
Sequential<T>::Sequential(const std::vector<std::shared_ptr<Module<T>>>& modules) {
  for (std::size_t i = 0; i < modules.size(); ++i) {
    if (!modules[i]) {
      throw ValueError("Sequential: module " + std::to_string(i) + " of " +
                       std::to_string(modules.size()) + " is null");
    }
    push_back(modules[i]);
  }
}

template <class T>
Tensor<T> Sequential<T>::forward(const Tensor<T>& input) {
  Tensor<T> x = input;
  for (auto& layer : layers_) x = layer->forward(x);
  return x;
}

template <class T>
MLP<T>::MLP(const std::vector<std::size_t>& sizes, Activation activation,
            const MLPOptions& options) {
  if (sizes.size() < 2) throw ValueError("MLP: needs at least an input and an output size");
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    linears_.push_back(this->push_back(
        std::make_shared<Linear<T>>(sizes[i], sizes[i + 1], options.linear_options())));
    const bool last = i + 2 == sizes.size();
    const Activation a = last && options.output() ? *options.output() : activation;
    activations_.push_back(a);
    this->push_back(std::make_shared<ActivationModule<T>>(a));
  }
}

template Tensor<float> activate(Activation, const Tensor<float>&);
template Tensor<double> activate(Activation, const Tensor<double>&);
template class Linear<float>;
template class Linear<double>;
template class ActivationModule<float>;
template class ActivationModule<double>;
template class Sequential<float>;
template class Sequential<double>;
template class MLP<float>;
template class MLP<double>;

}  // namespace tapegrad::nn
