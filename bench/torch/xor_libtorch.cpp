// XOR 2-10-1 sigmoid in LibTorch (the C++ API), as bench/torch/xor.py. Prints us per epoch.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  torch::set_num_threads(1);
  const long epochs = argc > 1 ? std::atol(argv[1]) : 20001;
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const auto x = torch::tensor({0., 0., 0., 1., 1., 0., 1., 1.}, opts).reshape({4, 2});
  const auto t = torch::tensor({0., 1., 1., 0.}, opts).reshape({4, 1});
  std::vector<double> times;
  for (int run = 0; run < 3; ++run) {
    torch::manual_seed(run);
    auto w1 = torch::rand({2, 10}, opts).requires_grad_();
    auto b1 = torch::zeros({10}, opts).requires_grad_();
    auto w2 = torch::rand({10, 1}, opts).requires_grad_();
    auto b2 = torch::zeros({1}, opts).requires_grad_();
    torch::optim::SGD sgd({w1, b1, w2, b2}, torch::optim::SGDOptions(0.1));
    const auto start = std::chrono::steady_clock::now();
    for (long e = 0; e < epochs; ++e) {
      auto y = torch::sigmoid(torch::sigmoid(x.matmul(w1) + b1).matmul(w2) + b2);
      auto loss = (t - y).pow(2).sum() / 8;
      sgd.zero_grad();
      loss.backward();
      sgd.step();
    }
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  std::printf("%.2f\n", 1e6 * times[1] / static_cast<double>(epochs));
}
