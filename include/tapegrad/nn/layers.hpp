// The built-in layers: Linear, the activations, Sequential and the MLP helper.
#pragma once

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tapegrad/nn/init.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/random.hpp"

namespace tapegrad::nn {

/// @addtogroup nn
/// @{

/// Settings of a Linear layer, builder style: `LinearOptions().bias(false)`.
class LinearOptions {
 public:
  /// With a bias (default) or without.
  LinearOptions& bias(bool on) {
    bias_ = on;
    return *this;
  }
  /// How the weight starts (default Xavier/Glorot uniform).
  LinearOptions& weight_init(Init init) {
    weight_init_ = init;
    return *this;
  }
  /// How the bias starts (default zeros, as in the source articles).
  LinearOptions& bias_init(Init init) {
    bias_init_ = init;
    return *this;
  }
  /// The generator to draw from (default: the thread's default_generator()). Not owned: it
  /// must outlive the options.
  LinearOptions& generator(Generator& random) {
    generator_ = &random;
    return *this;
  }

  /// Whether the layer gets a bias.
  bool has_bias() const { return bias_; }
  /// The rule for the weight.
  const Init& weight_initializer() const { return weight_init_; }
  /// The rule for the bias.
  const Init& bias_initializer() const { return bias_init_; }
  /// The generator set with generator(), or else the calling thread's default_generator().
  Generator& random() const { return generator_ ? *generator_ : default_generator(); }

 private:
  bool bias_ = true;
  Init weight_init_ = Init::xavier_uniform();
  Init bias_init_ = Init::zeros();
  Generator* generator_ = nullptr;
};

/// A fully connected layer, y = x W + b: x of shape (N, in) or (in,), W of shape (in, out),
/// b of shape (out,); y of shape (N, out) or (out,). (Row-major batch form, as the BP-network
/// article writes Y = f(X W); torch.nn.Linear stores the transpose, see io::save_torch_state.)
/// Parameters: "weight", and "bias" unless disabled.
template <class T = double>
class Linear : public Module<T> {
 public:
  /// Makes W of shape (in_features, out_features) and, with a bias, b of shape
  /// (out_features,), filled by the options' initializers from the options' generator (W
  /// first, then b). Throws ValueError if in_features or out_features is 0.
  Linear(std::size_t in_features, std::size_t out_features,
         const LinearOptions& options = LinearOptions());
  /// x W + b (x W without a bias). Throws ShapeError naming the layer and the input's shape
  /// unless the input is 1-d or 2-d with last extent in_features.
  Tensor<T> forward(const Tensor<T>& input) override;

  /// The input width `in`.
  std::size_t in_features() const { return in_; }
  /// The output width `out`.
  std::size_t out_features() const { return out_; }
  /// The weight W, shape (in, out).
  const Tensor<T>& weight() const { return weight_; }
  /// The bias b, shape (out,). Throws ValueError for a layer without one.
  const Tensor<T>& bias() const;
  /// Whether the layer has a bias.
  bool has_bias() const { return has_bias_; }
  /// "Linear".
  std::string type_name() const override { return "Linear"; }
  /// As PyTorch: "in_features=2, out_features=10, bias=True".
  std::string extra_repr() const override;

 private:
  std::size_t in_, out_;
  bool has_bias_;
  Tensor<T> weight_, bias_;
};

/// The activations the built-in modules and MLP know.
enum class Activation { Identity, Sigmoid, Tanh, ReLU, LeakyReLU, Softplus, GELU, SiLU, ELU };

/// The name of an activation: "identity", "sigmoid", "tanh", "relu", "leaky_relu",
/// "softplus", "gelu", "silu", "elu" ("?" for a value outside the enum).
const char* activation_name(Activation activation);
/// Applies an activation elementwise; the result has x's shape (Identity returns x itself).
/// LeakyReLU uses slope 0.01, GELU the exact (erf) form, ELU alpha 1. Throws ValueError for a value
/// outside the enum.
template <class T>
Tensor<T> activate(Activation activation, const Tensor<T>& x);

/// A parameter-free module applying one activation elementwise.
template <class T = double>
class ActivationModule : public Module<T> {
 public:
  /// A module that applies `activation`.
  explicit ActivationModule(Activation activation) : activation_(activation) {}
  /// activate(activation(), input): same shape as the input.
  Tensor<T> forward(const Tensor<T>& input) override { return activate(activation_, input); }
  /// The activation this module applies.
  Activation activation() const { return activation_; }
  /// PyTorch's class name: "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Softplus",
  /// "GELU", "SiLU", "ELU".
  std::string type_name() const override;
  /// As PyTorch: "negative_slope=0.01" for LeakyReLU, "approximate='none'" for GELU,
  /// "alpha=1.0" for ELU; "" for the others (tapegrad's softplus is exact everywhere, so it
  /// has no beta or threshold to show).
  std::string extra_repr() const override;

 private:
  Activation activation_;
};

/// y = x.
template <class T = double>
struct Identity : ActivationModule<T> {
  Identity() : ActivationModule<T>(Activation::Identity) {}
};
/// y = 1 / (1 + e^-x).
template <class T = double>
struct Sigmoid : ActivationModule<T> {
  Sigmoid() : ActivationModule<T>(Activation::Sigmoid) {}
};
/// y = tanh x.
template <class T = double>
struct Tanh : ActivationModule<T> {
  Tanh() : ActivationModule<T>(Activation::Tanh) {}
};
/// y = max(x, 0).
template <class T = double>
struct ReLU : ActivationModule<T> {
  ReLU() : ActivationModule<T>(Activation::ReLU) {}
};
/// y = x for x > 0, 0.01 x otherwise.
template <class T = double>
struct LeakyReLU : ActivationModule<T> {
  LeakyReLU() : ActivationModule<T>(Activation::LeakyReLU) {}
};
/// y = ln(1 + e^x).
template <class T = double>
struct Softplus : ActivationModule<T> {
  Softplus() : ActivationModule<T>(Activation::Softplus) {}
};
/// y = x Phi(x), Phi the standard normal CDF (the exact form; see tapegrad::gelu).
template <class T = double>
struct GELU : ActivationModule<T> {
  GELU() : ActivationModule<T>(Activation::GELU) {}
};
/// y = x sigmoid(x).
template <class T = double>
struct SiLU : ActivationModule<T> {
  SiLU() : ActivationModule<T>(Activation::SiLU) {}
};
/// y = x for x > 0, e^x - 1 otherwise (alpha = 1).
template <class T = double>
struct ELU : ActivationModule<T> {
  ELU() : ActivationModule<T>(Activation::ELU) {}
};

/// Modules applied one after the other; children are named "0", "1", ...
template <class T = double>
class Sequential : public Module<T> {
 public:
  /// An empty sequence: forward() returns its input.
  Sequential() = default;
  /// The modules in order, each push_back()'ed, as PyTorch's `nn.Sequential(a, b, c)`:
  ///
  ///     Sequential<double> net({std::make_shared<Linear<double>>(2, 10),
  ///                             std::make_shared<Tanh<double>>(),
  ///                             std::make_shared<Linear<double>>(10, 1)});
  ///
  /// Throws ValueError naming the position if a module is null.
  Sequential(std::initializer_list<std::shared_ptr<Module<T>>> modules);
  /// The same from a vector of modules.
  explicit Sequential(const std::vector<std::shared_ptr<Module<T>>>& modules);
  /// Appends a module as child "i", i its position (0, 1, ...), and returns it. Throws
  /// ValueError if `module` is null (or the name is taken); the Sequential is then unchanged.
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    auto registered = this->register_module(std::to_string(layers_.size()), std::move(module));
    layers_.push_back(registered);
    return registered;
  }
  /// The input passed through every module in order; shapes and errors are those of the
  /// modules.
  Tensor<T> forward(const Tensor<T>& input) override;
  /// The number of modules.
  std::size_t size() const { return layers_.size(); }
  /// "Sequential".
  std::string type_name() const override { return "Sequential"; }
  /// Module `i`. Throws ValueError if i >= size().
  Module<T>& operator[](std::size_t i) const {
    if (i >= layers_.size()) {
      throw ValueError("Sequential: module " + std::to_string(i) + " asked for, but it holds " +
                       std::to_string(layers_.size()));
    }
    return *layers_[i];
  }

 private:
  std::vector<std::shared_ptr<Module<T>>> layers_;
};

/// Settings of an MLP, builder style.
class MLPOptions {
 public:
  /// The activation after the last layer; by default the same as the hidden layers' (the
  /// source articles' networks put a sigmoid on every layer). Identity gives raw scores (logits).
  MLPOptions& output_activation(Activation a) {
    output_ = a;
    return *this;
  }
  /// The settings of every Linear layer (default LinearOptions()).
  MLPOptions& linear(const LinearOptions& options) {
    linear_ = options;
    return *this;
  }

  /// The activation set with output_activation(), or empty for the default.
  const std::optional<Activation>& output() const { return output_; }
  /// The settings of every Linear layer.
  const LinearOptions& linear_options() const { return linear_; }

 private:
  std::optional<Activation> output_;
  LinearOptions linear_;
};

/// A multilayer perceptron: Linear(sizes[0] -> sizes[1]), activation, Linear(sizes[1] ->
/// sizes[2]), activation, ... For example `MLP<double>({2, 10, 1}, Activation::Sigmoid)` is
/// the BP-network article's XOR network. The children alternate Linear and ActivationModule, so the
/// parameters are "0.weight", "0.bias", "2.weight", ... Input of shape (N, sizes.front())
/// or (sizes.front(),); output of shape (N, sizes.back()) or (sizes.back(),).
template <class T = double>
class MLP : public Sequential<T> {
 public:
  /// Builds the layers: each Linear takes options.linear_options() and is followed by an
  /// ActivationModule of `activation`, except that the last one gets options.output() when
  /// that is set. Throws ValueError for fewer than two sizes or a size of 0.
  MLP(const std::vector<std::size_t>& sizes, Activation activation,
      const MLPOptions& options = MLPOptions());
  /// The Linear layers, first to last.
  const std::vector<std::shared_ptr<Linear<T>>>& linear_layers() const { return linears_; }
  /// The activation after each Linear layer, first to last.
  const std::vector<Activation>& activations() const { return activations_; }
  /// "MLP" (printed as a Sequential of that name, as torchvision's MLP).
  std::string type_name() const override { return "MLP"; }

 private:
  std::vector<std::shared_ptr<Linear<T>>> linears_;
  std::vector<Activation> activations_;
};

extern template class Linear<float>;
extern template class Linear<double>;
extern template class ActivationModule<float>;
extern template class ActivationModule<double>;
extern template class Sequential<float>;
extern template class Sequential<double>;
extern template class MLP<float>;
extern template class MLP<double>;

/// @}

}  // namespace tapegrad::nn
