// Fashion-MNIST 784-100-10 ReLU in LibTorch, as bench/torch/fashion.py; the images come
// through tapegrad's loader. Argument: float32 or float64. Prints seconds per epoch.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "tapegrad/data/fashion_mnist.hpp"

int main(int argc, char** argv) {
  torch::set_num_threads(1);
  const bool f64 = argc > 1 && std::string(argv[1]) == "float64";
  const auto data = tapegrad::data::load_fashion_mnist<float>();
  auto x_all = torch::from_blob(const_cast<float*>(data.train_images.data()), {60000, 784}).clone();
  if (f64) x_all = x_all.to(torch::kFloat64);
  std::vector<int64_t> labels(data.train_labels.begin(), data.train_labels.end());
  const auto y_all = torch::tensor(labels);
  std::vector<double> times;
  for (int run = 0; run < 3; ++run) {
    torch::manual_seed(run);
    torch::nn::Sequential model(torch::nn::Linear(784, 100), torch::nn::ReLU(),
                                torch::nn::Linear(100, 10));
    if (f64) model->to(torch::kFloat64);
    torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
    const auto order = torch::randperm(60000);
    const auto start = std::chrono::steady_clock::now();
    for (int64_t first = 0; first < 60000; first += 64) {
      const auto idx = order.slice(0, first, std::min<int64_t>(first + 64, 60000));
      auto loss = torch::nn::functional::cross_entropy(model->forward(x_all.index_select(0, idx)),
                                                       y_all.index_select(0, idx));
      sgd.zero_grad();
      loss.backward();
      sgd.step();
    }
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  std::printf("%.3f\n", times[1]);
}
