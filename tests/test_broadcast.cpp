// NumPy broadcasting in every binary op, with gradients summed back to each input's shape.
#include "helpers.hpp"

using tapegrad::Shape;
using tapegrad::Tensor;

namespace {

struct ShapePair {
  Shape a, b, result;
};

const std::vector<ShapePair> pairs = {
    {{3, 1}, {1, 4}, {3, 4}},
    {{4}, {3, 4}, {3, 4}},
    {{}, {3, 4}, {3, 4}},
    {{3, 4}, {}, {3, 4}},
    {{2, 1, 4}, {3, 1}, {2, 3, 4}},
    {{1}, {5}, {5}},
    {{2, 3, 1}, {1, 1, 5}, {2, 3, 5}},
    {{3, 4}, {4}, {3, 4}},
    {{1, 1}, {3}, {1, 3}},
};

template <class F>
void check_all_pairs(const char* name, F f, double b_lo) {
  std::uint64_t seed = 100;
  for (const auto& p : pairs) {
    INFO(name, " ", tapegrad::shape_to_string(p.a), " x ", tapegrad::shape_to_string(p.b));
    const auto a = test::random_array(p.a, ++seed);
    const auto b = test::random_array(p.b, ++seed, b_lo, 2);
    CHECK(f(Tensor<double>(a), Tensor<double>(b)).shape() == p.result);
    test::require_gradcheck<double>([&](const auto& x) { return f(x[0], x[1]); }, {a, b});
  }
}

}  // namespace

TEST_CASE("add broadcasts, and its gradients sum back") {
  check_all_pairs(
      "add", [](const auto& a, const auto& b) { return a + b; }, -2);
}
TEST_CASE("sub broadcasts") {
  check_all_pairs(
      "sub", [](const auto& a, const auto& b) { return a - b; }, -2);
}
TEST_CASE("mul broadcasts") {
  check_all_pairs(
      "mul", [](const auto& a, const auto& b) { return a * b; }, -2);
}
TEST_CASE("div broadcasts") {
  check_all_pairs(
      "div", [](const auto& a, const auto& b) { return a / b; }, 0.5);
}
TEST_CASE("maximum and minimum broadcast") {
  check_all_pairs(
      "maximum", [](const auto& a, const auto& b) { return maximum(a, b); }, -2);
  check_all_pairs(
      "minimum", [](const auto& a, const auto& b) { return minimum(a, b); }, -2);
}

TEST_CASE("a broadcast bias gets the column sums of the upstream gradient") {
  tapegrad::Tape tape;
  Tensor<double> bias({1.0, 2.0, 3.0}, tapegrad::requires_grad);
  const Tensor<double> x({{1.0, 1.0, 1.0}, {2.0, 2.0, 2.0}});
  (x + bias).backward(Tensor<double>({{1.0, 2.0, 3.0}, {10.0, 20.0, 30.0}}));
  CHECK(bias.grad() == xt::xarray<double>{11, 22, 33});
}
