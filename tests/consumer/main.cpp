// Fits y = 3x - 1 with an installed tapegrad, and saves the model as NumPy would.
#include <cstdio>

#include <tapegrad/tapegrad.hpp>

int main() {
  using namespace tapegrad;
  nn::Linear<double> line(1, 1);
  optim::SGD<double> sgd(line.parameters(), 0.1);
  const auto x = Tensor<double>::column({-1.0, 0.0, 1.0, 2.0});
  const auto y = Tensor<double>::column({-4.0, -1.0, 2.0, 5.0});
  for (int step = 0; step < 500; ++step) {
    {
      Tape tape;
      nn::mse(line(x), y).backward();
    }
    sgd.step();
    sgd.zero_grad();
  }
  io::save_state(line, "consumer_state.npz");
  std::printf("consumer: weight %.6f bias %.6f\n", line.weight().value()(0, 0), line.bias().value()(0));
  return 0;
}
