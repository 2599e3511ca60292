// Every op on shapes with an extent of 0 (an empty batch, a class with no samples): the value
// NumPy and PyTorch give, forward and backward (first order and recorded), or a ValueError
// where they refuse too.
#include <cmath>
#include <functional>
#include <limits>

#include "helpers.hpp"

using tapegrad::Axes;
using tapegrad::Shape;
using tapegrad::Tensor;

namespace {

using Inputs = std::vector<Tensor<double>>;

struct EmptyCase {
  std::string name;
  std::function<Tensor<double>(const Inputs&)> f;
  std::vector<xt::xarray<double>> inputs;
  xt::xarray<double> expected;  // the value, shape included
};

xt::xarray<double> of_shape(const Shape& shape, double fill = 0.5) {
  xt::xarray<double> a = xt::xarray<double>::from_shape(shape);
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = fill + 0.25 * static_cast<double>(i);
  return a;
}

xt::xarray<double> filled(const Shape& shape, double value) {
  xt::xarray<double> a = xt::xarray<double>::from_shape(shape);
  std::fill(a.begin(), a.end(), value);
  return a;
}

std::vector<EmptyCase> empty_cases() {
  using namespace tapegrad;
  const Shape rows0{0, 3};
  const Shape cols0{3, 0};
  const auto e = [](const Shape& s) { return of_shape(s); };
  const auto none = [](const Shape& s) { return filled(s, 0); };
  const double minus_inf = -std::numeric_limits<double>::infinity();
  std::vector<EmptyCase> cases = {
      // elementwise, one operand
      {"neg", [](const Inputs& x) { return -x[0]; }, {e(rows0)}, none(rows0)},
      {"affine", [](const Inputs& x) { return affine(x[0], 2, 1); }, {e(rows0)}, none(rows0)},
      {"pow", [](const Inputs& x) { return pow(x[0], 3.0); }, {e(cols0)}, none(cols0)},
      {"exp", [](const Inputs& x) { return exp(x[0]); }, {e(rows0)}, none(rows0)},
      {"log", [](const Inputs& x) { return log(x[0]); }, {e(rows0)}, none(rows0)},
      {"sqrt", [](const Inputs& x) { return sqrt(x[0]); }, {e(rows0)}, none(rows0)},
      {"abs", [](const Inputs& x) { return abs(x[0]); }, {e(rows0)}, none(rows0)},
      {"square", [](const Inputs& x) { return square(x[0]); }, {e(rows0)}, none(rows0)},
      {"sin", [](const Inputs& x) { return sin(x[0]); }, {e(rows0)}, none(rows0)},
      {"cos", [](const Inputs& x) { return cos(x[0]); }, {e(rows0)}, none(rows0)},
      {"tanh", [](const Inputs& x) { return tanh(x[0]); }, {e(rows0)}, none(rows0)},
      {"sigmoid", [](const Inputs& x) { return sigmoid(x[0]); }, {e(rows0)}, none(rows0)},
      {"relu", [](const Inputs& x) { return relu(x[0]); }, {e(rows0)}, none(rows0)},
      {"leaky_relu", [](const Inputs& x) { return leaky_relu(x[0]); }, {e(rows0)}, none(rows0)},
      {"softplus", [](const Inputs& x) { return softplus(x[0]); }, {e(rows0)}, none(rows0)},
      {"clamp", [](const Inputs& x) { return clamp(x[0], 0.0, 1.0); }, {e(rows0)}, none(rows0)},
      {"scalar operators",
       [](const Inputs& x) { return 1.0 / (x[0] * 2.0 - 3.0); },
       {e(rows0)},
       none(rows0)},
      // elementwise, two operands, broadcasting included
      {"add", [](const Inputs& x) { return x[0] + x[1]; }, {e(rows0), e(rows0)}, none(rows0)},
      {"add broadcast (0, 3) + (1, 3)",
       [](const Inputs& x) { return x[0] + x[1]; },
       {e(rows0), e({1, 3})},
       none(rows0)},
      {"sub broadcast (3,) - (0, 3)",
       [](const Inputs& x) { return x[0] - x[1]; },
       {e({3}), e(rows0)},
       none(rows0)},
      {"mul broadcast (0, 1) * (1, 3)",
       [](const Inputs& x) { return x[0] * x[1]; },
       {e({0, 1}), e({1, 3})},
       none(rows0)},
      {"div", [](const Inputs& x) { return x[0] / x[1]; }, {e(rows0), e({3})}, none(rows0)},
      {"div by a number", [](const Inputs& x) { return x[0] / 4.0; }, {e(cols0)}, none(cols0)},
      {"maximum",
       [](const Inputs& x) { return maximum(x[0], x[1]); },
       {e(rows0), e(rows0)},
       none(rows0)},
      {"minimum",
       [](const Inputs& x) { return minimum(x[0], x[1]); },
       {e({1}), e(rows0)},
       none(rows0)},
      // reductions
      {"sum", [](const Inputs& x) { return sum(x[0]); }, {e(rows0)}, xt::xarray<double>(0.0)},
      {"sum axis 0", [](const Inputs& x) { return sum(x[0], Axes{0}); }, {e(rows0)}, none({3})},
      {"sum axis 0 keepdims",
       [](const Inputs& x) { return sum(x[0], Axes{0}, true); },
       {e(rows0)},
       none({1, 3})},
      {"sum axis 1", [](const Inputs& x) { return sum(x[0], Axes{1}); }, {e(rows0)}, none({0})},
      {"sum axes (0, 1)",
       [](const Inputs& x) {
         return sum(x[0], Axes{0, 1});
       },
       {e(rows0)},
       xt::xarray<double>(0.0)},
      {"sum axis 2 of (2, 0, 4)",
       [](const Inputs& x) { return sum(x[0], Axes{-1}); },
       {e({2, 0, 4})},
       none({2, 0})},
      {"mean axis 1", [](const Inputs& x) { return mean(x[0], Axes{1}); }, {e(rows0)}, none({0})},
      {"max axis 1", [](const Inputs& x) { return max(x[0], 1); }, {e(rows0)}, none({0})},
      {"max axis 0 of (3, 0)",
       [](const Inputs& x) { return max(x[0], 0, true); },
       {e(cols0)},
       none({1, 0})},
      {"logsumexp axis 1",
       [](const Inputs& x) { return logsumexp(x[0], 1); },
       {e(rows0)},
       none({0})},
      {"logsumexp over the empty axis",
       [](const Inputs& x) { return logsumexp(x[0], 0); },
       {e(rows0)},
       filled({3}, minus_inf)},
      {"softmax axis 1", [](const Inputs& x) { return softmax(x[0], 1); }, {e(rows0)}, none(rows0)},
      {"softmax over the empty axis",
       [](const Inputs& x) { return softmax(x[0], 0); },
       {e(rows0)},
       none(rows0)},
      {"log_softmax over the empty axis",
       [](const Inputs& x) { return log_softmax(x[0], 0); },
       {e(rows0)},
       none(rows0)},
      {"log_softmax axis 0 of (3, 0)",
       [](const Inputs& x) { return log_softmax(x[0], 0); },
       {e(cols0)},
       none(cols0)},
      // linear algebra
      {"matmul (0, 3) x (3, 4)",
       [](const Inputs& x) { return matmul(x[0], x[1]); },
       {e(rows0), e({3, 4})},
       none({0, 4})},
      {"matmul (3, 0) x (0, 4)",
       [](const Inputs& x) { return matmul(x[0], x[1]); },
       {e(cols0), e({0, 4})},
       none({3, 4})},
      {"matmul (0,) . (0,)",
       [](const Inputs& x) { return matmul(x[0], x[1]); },
       {e({0}), e({0})},
       xt::xarray<double>(0.0)},
      {"matmul (2, 0) x (0,)",
       [](const Inputs& x) { return matmul(x[0], x[1]); },
       {e({2, 0}), e({0})},
       none({2})},
      // shape
      {"transpose", [](const Inputs& x) { return transpose(x[0]); }, {e(rows0)}, none(cols0)},
      {"reshape",
       [](const Inputs& x) {
         return reshape(x[0], Shape{3, 0});
       },
       {e(rows0)},
       none(cols0)},
      {"broadcast_to (1, 3) -> (0, 3)",
       [](const Inputs& x) {
         return broadcast_to(x[0], Shape{0, 3});
       },
       {e({1, 3})},
       none(rows0)},
      {"sum_to (0, 3) -> (1, 3)",
       [](const Inputs& x) {
         return sum_to(x[0], Shape{1, 3});
       },
       {e(rows0)},
       none({1, 3})},
      {"concat with an empty part",
       [](const Inputs& x) {
         return concat(std::vector{x[0], x[1]}, 0);
       },
       {e(rows0), e({2, 3})},
       of_shape({2, 3})},
      {"concat of empty parts",
       [](const Inputs& x) {
         return concat(std::vector{x[0], x[1]}, 1);
       },
       {e({0, 2}), e(rows0)},
       none({0, 5})},
      {"narrow to length 0",
       [](const Inputs& x) { return narrow(x[0], 0, 1, 0); },
       {e({2, 3})},
       none(rows0)},
      {"slice with a step of an empty axis",
       [](const Inputs& x) { return slice(x[0], 0, {}, {}, 2); },
       {e(rows0)},
       none(rows0)},
      {"slice with a step, empty range",
       [](const Inputs& x) { return slice(x[0], 1, 2, 1, 2); },
       {e({2, 3})},
       none({2, 0})},
      {"slice with a step across an empty axis",
       [](const Inputs& x) { return slice(x[0], 1, {}, {}, 2); },
       {e({0, 5})},
       none({0, 3})},
      {"select along the other axis of an empty tensor",
       [](const Inputs& x) { return select(x[0], 1, -1); },
       {e(rows0)},
       none({0})},
      {"index_select of no rows",
       [](const Inputs& x) { return index_select(x[0], {}); },
       {e({3, 2})},
       none({0, 2})},
      {"index_select of an empty tensor",
       [](const Inputs& x) { return index_select(x[0], {}); },
       {e(rows0)},
       none(rows0)},
      {"index_add of no rows",
       [](const Inputs& x) { return index_add(x[0], {}, 4); },
       {e({0, 2})},
       none({4, 2})},
      // convolution and pooling (ops_conv.cpp)
      {"im2col of an empty batch",
       [](const Inputs& x) { return im2col(x[0], 2, Conv2dOptions().padding(1)); },
       {e({0, 2, 3, 3})},
       none({8, 0})},
      {"im2col of no channels",
       [](const Inputs& x) { return im2col(x[0], 2); },
       {e({2, 0, 3, 3})},
       none({0, 8})},
      {"col2im of an empty batch",
       [](const Inputs& x) {
         return col2im(x[0], Shape{0, 2, 3, 3}, 2);
       },
       {e({8, 0})},
       none({0, 2, 3, 3})},
      {"col2im of no channels",
       [](const Inputs& x) {
         return col2im(x[0], Shape{2, 0, 3, 3}, 2);
       },
       {e({0, 8})},
       none({2, 0, 3, 3})},
      {"conv2d of an empty batch",
       [](const Inputs& x) { return conv2d(x[0], x[1], x[2]); },
       {e({0, 2, 3, 3}), e({4, 2, 2, 2}), e({4})},
       none({0, 4, 2, 2})},
      {"conv_transpose2d of an empty batch",
       [](const Inputs& x) { return conv_transpose2d(x[0], x[1], x[2]); },
       {e({0, 2, 3, 3}), e({2, 4, 2, 2}), e({4})},
       none({0, 4, 4, 4})},
      {"max_pool2d of no channels",
       [](const Inputs& x) { return max_pool2d(x[0], Pool2dOptions(2)); },
       {e({2, 0, 4, 4})},
       none({2, 0, 2, 2})},
      // activations and batched matmul (issue 16)
      {"erf", [](const Inputs& x) { return erf(x[0]); }, {e(rows0)}, none(rows0)},
      {"gelu", [](const Inputs& x) { return gelu(x[0]); }, {e(rows0)}, none(rows0)},
      {"silu", [](const Inputs& x) { return silu(x[0]); }, {e(rows0)}, none(rows0)},
      {"elu", [](const Inputs& x) { return elu(x[0]); }, {e(rows0)}, none(rows0)},
      {"matmul (0, 2, 3) x (0, 3, 4)",
       [](const Inputs& x) { return matmul(x[0], x[1]); },
       {e({0, 2, 3}), e({0, 3, 4})},
       none({0, 2, 4})},
      {"matmul (2, 3) x (2, 0, 3, 4)",
       [](const Inputs& x) { return matmul(x[0], x[1]); },
       {e({2, 3}), e({2, 0, 3, 4})},
       none({2, 0, 2, 4})},
      {"matmul (2, 3, 0) x (2, 0, 4)",
       [](const Inputs& x) { return matmul(x[0], x[1]); },
       {e({2, 3, 0}), e({2, 0, 4})},
       none({2, 3, 4})},
      {"matmul (0,) x (2, 0, 3)",
       [](const Inputs& x) { return matmul(x[0], x[1]); },
       {e({0}), e({2, 0, 3})},
       none({2, 3})},
  };
  return cases;
}

}  // namespace

TEST_CASE("every op on a shape with a zero extent: the value NumPy gives, and a gradient") {
  for (const auto& c : empty_cases()) {
    SUBCASE(c.name.c_str()) {
      INFO(c.name);
      for (const bool create_graph : {false, true}) {
        INFO("create_graph ", create_graph);
        Inputs x;
        for (const auto& a : c.inputs) x.emplace_back(a, tapegrad::requires_grad);
        tapegrad::Tape tape;
        const auto y = c.f(x);
        REQUIRE(y.shape() == c.expected.shape());
        CHECK(y.value() == c.expected);
        // A seed of the result's shape; every input gets a gradient of its own shape.
        const Tensor<double> seed(of_shape(y.shape(), 1.0));
        y.backward(seed, tapegrad::BackwardMode{create_graph});
        for (std::size_t i = 0; i < x.size(); ++i) {
          if (!x[i].has_grad()) continue;  // no path carries a gradient to it
          const auto& g = x[i].grad();
          CHECK(g.shape() == x[i].shape());
          // (A plain loop: xtensor's iterators over an empty array offset a null pointer.)
          for (std::size_t k = 0; k < g.size(); ++k) CHECK(std::isfinite(g.data()[k]));
        }
      }
    }
  }
}

TEST_CASE("gradients through an empty axis reach the non-empty inputs correctly") {
  using namespace tapegrad;
  // broadcast_to over an empty axis sends nothing back: the gradient is zero.
  {
    Tensor<double> x(of_shape({1, 3}), requires_grad);
    Tape tape;
    sum(broadcast_to(x, Shape{0, 3})).backward();
    CHECK(x.grad() == filled({1, 3}, 0));
  }
  // concat with an empty part: the other part gets its slice of the seed.
  {
    Tensor<double> a(of_shape({0, 3}), requires_grad);
    Tensor<double> b(of_shape({2, 3}), requires_grad);
    Tape tape;
    const auto y = concat(std::vector{a, b}, 0);
    y.backward(Tensor<double>(of_shape({2, 3}, 1.0)));
    CHECK(b.grad() == of_shape({2, 3}, 1.0));
    CHECK(a.grad().shape() == Shape{0, 3});
  }
  // A sum over an empty axis is 0 whatever x holds, so its gradient to the other input of a
  // product is 0 too.
  {
    Tensor<double> x(of_shape({0, 3}), requires_grad);
    Tensor<double> w(of_shape({3}), requires_grad);
    Tape tape;
    sum(mul(sum(x, Axes{0}), w)).backward();
    CHECK(w.grad() == filled({3}, 0));
  }
}

TEST_CASE(
    "reductions over an empty axis: max throws ValueError as NumPy and PyTorch refuse it; mean "
    "too, where they give NaN") {
  using namespace tapegrad;
  const Tensor<double> x(of_shape({0, 3}));
  CHECK_THROWS_WITH_AS(max(x, 0), "max: axis 0 of (0, 3) is empty", ValueError);
  CHECK_THROWS_WITH_AS(mean(x), "mean: the tensor (0, 3) is empty", ValueError);
  CHECK_THROWS_WITH_AS(mean(x, Axes{0}), "mean: no elements along the given axes of (0, 3)",
                       ValueError);
  // In float too.
  const Tensor<float> xf(xt::xarray<float>::from_shape({0, 3}));
  CHECK(sum(xf, Axes{0}).value() == xt::xarray<float>{0, 0, 0});
  CHECK(logsumexp(xf, 1).shape() == Shape{0});
}

TEST_CASE("anomaly mode on empty results and gradients finds nothing to report") {
  using namespace tapegrad;
  Tensor<double> x(of_shape({0, 3}), requires_grad);
  AnomalyModeGuard anomaly;
  Tape tape;
  const auto y = softmax(log(x), 0) / 0.0;
  y.backward(Tensor<double>(of_shape({0, 3})));
  CHECK(x.grad().shape() == Shape{0, 3});
}
