// The XOR network of the BP-network article ("BP神经网络"), built from tapegrad's nn and optim:
// shared by the xor demo and the benchmark, so the benchmark times exactly what the demo runs.
#pragma once

#include <cstdint>

#include "tapegrad/tapegrad.hpp"

namespace examples {

template <class T>
struct XorNetwork {
  using Tensor = tapegrad::Tensor<T>;
  using Array = xt::xarray<T>;

  // The four XOR cases, one per row, and their labels.
  Tensor inputs = Tensor({{T(0), T(0)}, {T(0), T(1)}, {T(1), T(0)}, {T(1), T(1)}});
  Tensor targets = Tensor::column({0, 1, 1, 0});
  tapegrad::Generator random;
  // 2-10-1, sigmoid on both layers; weights uniform in [0, 1) as np.random.random draws
  // them, biases zero.
  tapegrad::nn::MLP<T> model;
  tapegrad::optim::SGD<T> optimizer;

  XorNetwork(std::uint64_t seed, double learning_rate, std::size_t hidden = 10)
      : random(seed),
        model({2, hidden, 1}, tapegrad::nn::Activation::Sigmoid,
              tapegrad::nn::MLPOptions().linear(tapegrad::nn::LinearOptions()
                                                    .weight_init(tapegrad::nn::Init::uniform(0, 1))
                                                    .generator(random))),
        optimizer(model.parameters(), learning_rate) {}

  Tensor forward() { return model(inputs); }
  /// E = sum((T - Y)^2) / (2N), the article's cost: half the mean squared error.
  Tensor loss(const Tensor& outputs) const { return tapegrad::nn::half_sse(outputs, targets); }

  /// One full-batch gradient-descent step; the gradients come from backward() alone.
  void train_epoch() {
    {
      tapegrad::Tape tape;
      loss(forward()).backward();
    }
    optimizer.step();
    optimizer.zero_grad();
  }

  const tapegrad::nn::Linear<T>& layer(std::size_t i) const { return *model.linear_layers()[i]; }
};

}  // namespace examples
