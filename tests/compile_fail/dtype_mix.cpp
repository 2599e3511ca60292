// Must not compile: ctest expects the static_assert's message.
#include "tapegrad/ops.hpp"

int main() {
  tapegrad::Tensor<float> a(1.0f);
  tapegrad::Tensor<double> b(2.0);
  auto c = a + b;
  (void)c;
}
