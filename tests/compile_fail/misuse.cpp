// Misuse that must not compile, one case per value of CASE; CASE 0 is the correct use beside
// them and must compile (so that a broken header cannot make every case "fail" for nothing).
// Run by compile_fail/run.cmake, which expects each case's message.
#include "tapegrad/ops.hpp"

int main() {
  tapegrad::Tensor<double> x(2.0, tapegrad::requires_grad);
  const auto y = x * x;
#if CASE == 0
  y.backward();
  y.backward(tapegrad::create_graph);
  y.backward(tapegrad::retain_graph);
  y.backward(tapegrad::Tensor<double>(1.0));
  y.backward(tapegrad::Tensor<double>(1.0), tapegrad::retain_graph);
#elif CASE == 1
  y.backward(false);  // would be a seed of 0: a zero gradient
#elif CASE == 2
  y.backward(true);  // would be a seed of 1, not create_graph
#elif CASE == 3
  y.backward(2.0);
#elif CASE == 4
  y.backward(1, tapegrad::create_graph);
#elif CASE == 5
  enum Order { kFirst = 1 };
  y.backward(kFirst);  // an unscoped enumerator converts to a number
#elif CASE == 6
  // A node of another element type, read as doubles: the constructor is not public.
  tapegrad::Tensor<float> f(1.0f);
  tapegrad::Tensor<double> wrong(f.node());
  (void)wrong;
#endif
}
