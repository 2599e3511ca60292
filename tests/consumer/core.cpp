// Differentiates with the core alone (tensors, ops, the tape): a program that links
// tapegrad::core only, and so neither the nn layer nor libzip and zlib.
#include <cstdio>
#include <tapegrad/ops.hpp>
#include <tapegrad/tape.hpp>
#include <tapegrad/tensor.hpp>

int main() {
  using namespace tapegrad;
  Tensor<double> x({1.0, 2.0, 3.0}, requires_grad);
  {
    Tape tape;
    sum(mul(x, x)).backward();
  }
  const auto& g = x.grad();
  std::printf("consumer_core: d/dx sum(x^2) at (1, 2, 3) = (%g, %g, %g)\n", g(0), g(1), g(2));
  return g(0) == 2.0 && g(1) == 4.0 && g(2) == 6.0 ? 0 : 1;
}
