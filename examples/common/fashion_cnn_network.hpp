// The CNN of examples/fashion_cnn.cpp, which bench/bench_cnn.cpp times too:
//   conv(1->32, 3x3, pad 1) -> ReLU -> max-pool 2 -> conv(32->64, 3x3, pad 1) -> ReLU ->
//   max-pool 2 -> flatten -> dropout 0.25 -> linear(3136->128) -> ReLU -> linear(10).
#pragma once

#include <cmath>
#include <initializer_list>
#include <memory>

#include "tapegrad/tapegrad.hpp"

namespace examples {

/// torch.nn.Linear's default initialisation, U(-1/sqrt(in), 1/sqrt(in)) for the weight and
/// the bias, in place of tapegrad's Xavier weights and zero biases.
inline tapegrad::nn::LinearOptions torch_like_linear(std::size_t in_features,
                                                     tapegrad::Generator& random) {
  const double bound = 1 / std::sqrt(static_cast<double>(in_features));
  return tapegrad::nn::LinearOptions()
      .weight_init(tapegrad::nn::Init::uniform(-bound, bound))
      .bias_init(tapegrad::nn::Init::uniform(-bound, bound))
      .generator(random);
}

/// The network, its weights drawn from `random` (PyTorch's default initialisation for every
/// layer); the dropout layer draws its masks from `random` too, which must outlive it.
inline std::shared_ptr<tapegrad::nn::Sequential<float>> fashion_cnn_network(
    tapegrad::Generator& random) {
  using namespace tapegrad;
  using namespace tapegrad::nn;
  using Layers = std::initializer_list<std::shared_ptr<Module<float>>>;
  return std::make_shared<Sequential<float>>(Layers{
      std::make_shared<Conv2d<float>>(1, 32, 3, Conv2dOptions().padding(1),
                                      Conv2dLayerOptions().generator(random)),
      std::make_shared<ReLU<float>>(),
      std::make_shared<MaxPool2d<float>>(Pool2dOptions(2)),
      std::make_shared<Conv2d<float>>(32, 64, 3, Conv2dOptions().padding(1),
                                      Conv2dLayerOptions().generator(random)),
      std::make_shared<ReLU<float>>(),
      std::make_shared<MaxPool2d<float>>(Pool2dOptions(2)),
      std::make_shared<Flatten<float>>(),
      std::make_shared<Dropout<float>>(0.25, random),
      std::make_shared<Linear<float>>(3136, 128, torch_like_linear(3136, random)),
      std::make_shared<ReLU<float>>(),
      std::make_shared<Linear<float>>(128, 10, torch_like_linear(128, random)),
  });
}

}  // namespace examples
