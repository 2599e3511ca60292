// The XOR network of seed 000 (spec D1), built from tapegrad ops: shared by the xor demo
// and the benchmark, so the benchmark times exactly what the demo runs.
#pragma once

#include <cstdint>

#include "tapegrad/tapegrad.hpp"

namespace examples {

template <class T>
struct XorNetwork {
  using Tensor = tapegrad::Tensor<T>;
  using Array = xt::xarray<T>;

  static Array column(std::initializer_list<T> values) {
    Array a = values;
    a.reshape({values.size(), std::size_t{1}});
    return a;
  }

  // The four XOR cases, one per row, and their labels.
  Tensor inputs = Tensor({{T(0), T(0)}, {T(0), T(1)}, {T(1), T(0)}, {T(1), T(1)}});
  Tensor targets = Tensor(column({0, 1, 1, 0}));
  // 2-10-1: weights uniform in [0, 1) as np.random.random draws them, biases zero.
  Tensor w1, b1, w2, b2;

  explicit XorNetwork(std::uint64_t seed, std::size_t hidden = 10) {
    tapegrad::Generator random(seed);
    auto uniform = [&](std::size_t rows, std::size_t cols) {
      Array a = Array::from_shape({rows, cols});
      for (auto& v : a) v = static_cast<T>(random.uniform());
      return Tensor(std::move(a), tapegrad::requires_grad);
    };
    w1 = uniform(2, hidden);
    w2 = uniform(hidden, 1);
    b1 = Tensor(Array(xt::zeros<T>(tapegrad::Shape{hidden})), tapegrad::requires_grad);
    b2 = Tensor(Array(xt::zeros<T>(tapegrad::Shape{1})), tapegrad::requires_grad);
  }

  /// Y = sigmoid(sigmoid(X W1 + b1) W2 + b2), one output per case.
  Tensor forward() const {
    const auto hidden = sigmoid(matmul(inputs, w1) + b1);
    return sigmoid(matmul(hidden, w2) + b2);
  }

  /// E = sum((T - Y)^2) / (2N), the seed's cost.
  Tensor loss(const Tensor& outputs) const {
    const double n = static_cast<double>(inputs.shape()[0]);
    return sum(square(targets - outputs)) / (2.0 * n);
  }

  /// One full-batch gradient-descent step; the gradients come from backward() alone.
  void train_epoch(double learning_rate) {
    {
      tapegrad::Tape tape;
      loss(forward()).backward();
    }
    for (Tensor* p : {&w1, &b1, &w2, &b2}) {
      p->mutable_value() -= static_cast<T>(learning_rate) * p->grad();
      p->zero_grad();
    }
  }
};

}  // namespace examples
