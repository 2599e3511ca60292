// The Fashion-MNIST CNN of examples/fashion_cnn.cpp in LibTorch, as bench/torch/cnn.py; the
// images come through tapegrad's loader. Argument: the number of training images. Prints
// "seconds base_kib peak_kib faults" for the training loop alone, one thread, as cnn.py.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "../common.hpp"
#include "tapegrad/data/fashion_mnist.hpp"

int main(int argc, char** argv) {
  torch::set_num_threads(1);
  const int64_t count = argc > 1 ? std::stoll(argv[1]) : 60000;
  const auto data = tapegrad::data::load_fashion_mnist<float>();
  const auto x_all =
      torch::from_blob(const_cast<float*>(data.train_images.data()), {60000, 1, 28, 28})
          .slice(0, 0, count);
  std::vector<int64_t> labels(data.train_labels.begin(), data.train_labels.begin() + count);
  const auto y_all = torch::tensor(labels);
  namespace nn = torch::nn;
  torch::manual_seed(1);
  nn::Sequential model(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)), nn::ReLU(),
                       nn::MaxPool2d(2), nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)),
                       nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(), nn::Dropout(0.25),
                       nn::Linear(3136, 128), nn::ReLU(), nn::Linear(128, 10));
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-3));
  const auto order = torch::randperm(count);
  std::ofstream("/proc/self/clear_refs") << "5";  // the peak mark from here on
  const long base = bench::status_kib("VmRSS");
  const long faults = bench::minor_faults();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t first = 0; first < count; first += 64) {
    const auto idx = order.slice(0, first, std::min<int64_t>(first + 64, count));
    auto loss = torch::nn::functional::cross_entropy(model->forward(x_all.index_select(0, idx)),
                                                     y_all.index_select(0, idx));
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.3f %ld %ld %ld\n", seconds, base, bench::status_kib("VmHWM"),
              bench::minor_faults() - faults);
}
