// backward(create_graph): the backward pass is recorded, so gradients can be differentiated.
#include <cmath>
#include <regex>
#include <set>

#include "helpers.hpp"
#include "op_cases.hpp"
#include "ops/op_names.hpp"

using namespace tapegrad;

TEST_CASE("d2/dx2 of x^3 is 6x") {
  for (double x0 : {-1.5, 0.5, 2.0}) {
    Tensor<double> x(x0, requires_grad);
    Tape tape;
    const auto y = x * x * x;
    y.backward(create_graph);
    const auto dy = x.grad_tensor();  // 3 x^2, itself recorded
    CHECK(dy.item() == doctest::Approx(3 * x0 * x0));
    CHECK(dy.requires_grad());
    x.zero_grad();
    dy.backward();
    CHECK(x.grad()() == doctest::Approx(6 * x0));
  }
}

namespace {

// The gradient-descent article's two-dimensional function (examples/minimize_2d).
Tensor<double> bump(const Tensor<double>& x, const Tensor<double>& y) {
  return -0.5 * (exp(-square(x) - square(y)) - 2.0 * exp(-square(x - 1.0) - square(y - 1.0)));
}

std::array<double, 2> tape_gradient(double x0, double y0) {
  Tensor<double> x(x0, requires_grad), y(y0, requires_grad);
  Tape tape;
  bump(x, y).backward();
  return {x.grad()(), y.grad()()};
}

}  // namespace

TEST_CASE(
    "the Hessian of the gradient-descent article's 2-d function matches finite differences of its "
    "gradient") {
  for (auto [x0, y0] : {std::pair{0.3, -0.2}, std::pair{1.0, 1.0}, std::pair{-0.7, 0.9}}) {
    Tensor<double> x(x0, requires_grad), y(y0, requires_grad);
    Tape tape;
    bump(x, y).backward(create_graph);
    const std::array<Tensor<double>, 2> gradient{x.grad_tensor(), y.grad_tensor()};
    const double h = 1e-5;
    for (int row = 0; row < 2; ++row) {
      x.zero_grad();
      y.zero_grad();
      gradient[row].backward(retain_graph);  // both rows sweep the same records
      const double hxx = x.grad()(), hxy = y.grad()();
      const auto gpx = tape_gradient(x0 + h, y0), gmx = tape_gradient(x0 - h, y0);
      const auto gpy = tape_gradient(x0, y0 + h), gmy = tape_gradient(x0, y0 - h);
      const double fd_x = (gpx[row] - gmx[row]) / (2 * h);
      const double fd_y = (gpy[row] - gmy[row]) / (2 * h);
      INFO("row ", row, " at (", x0, ", ", y0, ")");
      CHECK(hxx == doctest::Approx(fd_x).epsilon(1e-7).scale(1));
      CHECK(hxy == doctest::Approx(fd_y).epsilon(1e-7).scale(1));
    }
  }
}

namespace {

// Gradient of f at x0 from the tape (first order only).
template <class F>
xt::xarray<double> gradient_at(const F& f, const xt::xarray<double>& x0) {
  Tensor<double> x(x0, requires_grad);
  Tape tape;
  f(x).backward();
  return x.grad();
}

// Every row of the Hessian from backward(create_graph) against central differences of the
// tape's gradient.
template <class F>
void check_hessian(const F& f, const xt::xarray<double>& x0) {
  Tensor<double> x(x0, requires_grad);
  Tape tape;
  f(x).backward(create_graph);
  const auto gradient = x.grad_tensor();
  const double h = 1e-5;
  for (std::size_t i = 0; i < x0.size(); ++i) {
    x.zero_grad();
    xt::xarray<double> pick = xt::zeros<double>(x0.shape());
    pick.data()[i] = 1;
    // Row i: d(df/dx_i)/dx; every row sweeps the gradient's records again.
    sum(gradient * Tensor<double>(pick)).backward(retain_graph);
    xt::xarray<double> plus = x0, minus = x0;
    plus.data()[i] += h;
    minus.data()[i] -= h;
    const xt::xarray<double> column = (gradient_at(f, plus) - gradient_at(f, minus)) / (2 * h);
    for (std::size_t j = 0; j < x0.size(); ++j) {
      INFO("H(", i, ", ", j, ")");
      CHECK(x.grad().data()[j] == doctest::Approx(column.data()[j]).epsilon(1e-6).scale(1));
    }
  }
}

}  // namespace

TEST_CASE("second derivatives through matmul, softmax and the nonlinearities") {
  const Tensor<double> w(test::random_array({3, 4}, 12));
  check_hessian(
      [&](const Tensor<double>& v) {
        const auto x = reshape(v, Shape{2, 3});
        const auto z = matmul(x, w);
        return sum(log_softmax(tanh(z), -1) * sigmoid(z) +
                   softplus(maximum(z, Tensor<double>(0.1))) / sqrt(exp(z) + 1.0)) +
               logsumexp(reshape(z, Shape{8})) + sum(softmax(z, 0) * cos(z));
      },
      test::random_array({6}, 11));
}

TEST_CASE("second derivatives through the shape ops and pow") {
  check_hessian(
      [](const Tensor<double>& v) {
        const auto m = reshape(v, Shape{2, 2});
        const auto joined = concat(std::vector{m, transpose(m)}, 1);
        const auto rows = index_select(joined, {1, 0, 1});
        return sum(pow(square(rows) + 1.0, 1.5)) + mean(broadcast_to(v, Shape{3, 4}) * v) +
               sum(max(rows, 1)) + sum(sin(narrow(joined, 1, 1, 2)));
      },
      test::random_array({4}, 21));
}

TEST_CASE("second derivatives through the piecewise ops: relu, clamp, leaky_relu, abs, minimum") {
  // Away from the kinks, each piece is smooth; the backward of relu and clamp (pass_where)
  // is itself differentiated here, since their gradients are multiplied by functions of v.
  check_hessian(
      [](const Tensor<double>& v) {
        return sum(relu(v) * square(v) + clamp(v, -0.5, 0.5) * exp(v) +
                   leaky_relu(v, 0.2) * sin(v) + abs(v) * v +
                   minimum(v, Tensor<double>(0.3)) * cos(v));
      },
      test::random_array({6}, 31));
}

TEST_CASE(
    "second derivatives through div: tensor by tensor (broadcast), by a number, a number by a "
    "tensor") {
  // x split into a (2, 2) numerator and a (2,) denominator kept away from 0.
  check_hessian(
      [](const Tensor<double>& v) {
        const auto a = reshape(narrow(v, 0, 0, 4), Shape{2, 2});
        const auto b = narrow(v, 0, 4, 2) + 3.0;
        return sum(a / b) + sum(square(a) / 2.5) + sum(1.5 / b);
      },
      test::random_array({6}, 41, 0.5, 1.5));
}

namespace {

// s(xs) = sum(w * y * y) with y = op(xs) and fixed weights w: its Hessian needs the op's
// backward rule to be differentiable in both its inputs and its incoming gradient (which
// depends on xs here), so a rule computed on raw values, right to first order, fails.
Tensor<double> squared_sum(const test::OpCase& c, const std::vector<Tensor<double>>& xs) {
  const auto y = c.f64(xs);
  const Tensor<double> w(test::random_array(y.shape(), 99, 0.5, 1.5));
  return sum(w * y * y);
}

std::vector<xt::xarray<double>> tape_gradients(const test::OpCase& c,
                                               const std::vector<xt::xarray<double>>& at) {
  std::vector<Tensor<double>> xs;
  for (const auto& a : at) xs.emplace_back(a, requires_grad);
  Tape tape;
  squared_sum(c, xs).backward();
  std::vector<xt::xarray<double>> gradients;
  for (const auto& x : xs)
    gradients.push_back(x.has_grad() ? x.grad() : xt::zeros<double>(x.shape()));
  return gradients;
}

// The op names that s's forward pass and its create_graph backward record.
std::set<std::string> recorded_ops(const test::OpCase& c) {
  std::vector<Tensor<double>> xs;
  for (const auto& a : c.inputs) xs.emplace_back(a, requires_grad);
  Tape tape;
  const auto s = squared_sum(c, xs);
  s.backward(create_graph);
  std::vector<Tensor<double>> ends{s};
  for (const auto& x : xs) {
    if (x.has_grad() && x.grad_tensor().requires_grad() && !x.grad_tensor().is_leaf())
      ends.push_back(x.grad_tensor());
  }
  std::set<std::string> recorded;
  const std::regex op_label("label=\"([a-z][a-z0-9_]*)\\\\n");
  for (const auto& end_point : ends) {
    const std::string dot = graph_dot(end_point);
    for (std::sregex_iterator m(dot.begin(), dot.end(), op_label), end; m != end; ++m) {
      recorded.insert((*m)[1]);
    }
  }
  return recorded;
}

// The full Hessian over all inputs from backward(create_graph), row by row, against central
// differences of the tape's first-order gradient.
void check_op_hessian(const test::OpCase& c) {
  std::vector<Tensor<double>> xs;
  for (const auto& a : c.inputs) xs.emplace_back(a, requires_grad);
  Tape tape;
  squared_sum(c, xs).backward(create_graph);
  std::vector<Tensor<double>> gradients;
  for (const auto& x : xs) {
    gradients.push_back(x.has_grad() ? x.grad_tensor()
                                     : Tensor<double>(xt::zeros<double>(x.shape())));
  }
  const double h = 1e-5;
  for (std::size_t a = 0; a < xs.size(); ++a) {
    for (std::size_t i = 0; i < xs[a].size(); ++i) {
      for (auto& x : xs) x.zero_grad();
      xt::xarray<double> pick = xt::zeros<double>(xs[a].shape());
      pick.data()[i] = 1;
      if (gradients[a].requires_grad())
        sum(gradients[a] * Tensor<double>(pick)).backward(retain_graph);
      auto plus = c.inputs, minus = c.inputs;
      plus[a].data()[i] += h;
      minus[a].data()[i] -= h;
      const auto g_plus = tape_gradients(c, plus);
      const auto g_minus = tape_gradients(c, minus);
      for (std::size_t b = 0; b < xs.size(); ++b) {
        for (std::size_t j = 0; j < xs[b].size(); ++j) {
          const double difference = (g_plus[b].data()[j] - g_minus[b].data()[j]) / (2 * h);
          const double tape_value = xs[b].has_grad() ? xs[b].grad().data()[j] : 0.0;
          INFO(c.name, ": H(input ", a, " element ", i, ", input ", b, " element ", j, ")");
          CHECK(tape_value == doctest::Approx(difference).epsilon(1e-6).scale(1));
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("every op's own second derivatives match finite differences of its gradient") {
  for (const auto& c : test::all_cases()) {
    SUBCASE(c.name.c_str()) { check_op_hessian(c); }
  }
}

TEST_CASE("every op the library records is in the per-op tables") {
  // The first-order table (test_ops.cpp) and the second-order one above share all_cases();
  // every op recorded by a forward or a create_graph backward over it counts as covered.
  std::set<std::string> covered;
  for (const auto& c : test::all_cases()) {
    const auto names = recorded_ops(c);
    covered.insert(names.begin(), names.end());
  }
  // The library's list of ops, made by the op blocks themselves (test_op_table.cpp checks
  // that every block in src/ is on it).
  const auto ops = tapegrad::detail::op_names();
  REQUIRE(ops.size() > 20);
  for (const auto& name : ops) {
    INFO("op ", name, " is an op of the library but no case of tests/op_cases.hpp reaches it");
    CHECK(covered.count(name) == 1);
  }
}

TEST_CASE(
    "backward(create_graph) through an undeclared custom op: a right gradient, then a named "
    "error") {
  // y = sin(x^3), the cube a custom op with a backward on raw values, not declared
  // differentiable_backward. d2y/dx2 = -9x^4 sin(x^3) + 6x cos(x^3); differentiating the
  // recorded gradient used to give -9x^4 sin(x^3) alone (-0.070130 at 0.5 instead of 2.906463).
  const CustomOp<double> raw_cube(
      "raw_cube", [](const auto& in) { return xt::xarray<double>(xt::pow(in[0].value(), 3.0)); },
      [](const CustomBackwardContext<double>& c) {
        return std::vector{c.grad_output() * Tensor<double>(xt::xarray<double>(
                                                 3.0 * xt::square(c.input(0).value())))};
      });
  Tensor<double> x(0.5, requires_grad);
  Tape tape;
  sin(raw_cube({x})).backward(create_graph);
  const auto dy = x.grad_tensor();
  CHECK(dy.item() == doctest::Approx(std::cos(0.125) * 0.75).epsilon(1e-15));
  x.zero_grad();
  CHECK_THROWS_WITH_AS(dy.backward(),
                       doctest::Contains("custom op 'raw_cube': its backward is not declared "
                                         "differentiable_backward, so its gradient cannot be "
                                         "differentiated again"),
                       TapeError);
}
