// nn/recurrent: RNNCell, LSTMCell and GRUCell against PyTorch (tests/fixtures/rnn_cells.npz,
// made by tests/fixtures/make_rnn_cells.py), gradcheck, second order, shapes and errors.
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <xtensor/xview.hpp>

#include "fixture.hpp"
#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

namespace {

const test::NpzFixture& fixture() {
  static const test::NpzFixture file("rnn_cells.npz");
  return file;
}

const Array& get(const std::string& name) { return fixture().get(name); }

bool has(const std::string& name) { return fixture().has(name); }

// Copies the fixture's weights of case `c` into the cell (the parameters keep their nodes).
template <class T>
void load_weights(nn::RNNCellBase<T>& cell, const std::string& c) {
  for (auto& [name, parameter] : cell.named_parameters()) {
    REQUIRE(has(c + "." + name));
    parameter.set_value(xt::xarray<T>(xt::cast<T>(get(c + "." + name))));
  }
  CHECK(cell.named_parameters().size() == (has(c + ".bias_ih") ? 4u : 2u));
}

template <class T>
Tensor<T> leaf(const Array& values) {
  return Tensor<T>(xt::xarray<T>(xt::cast<T>(values)), requires_grad);
}

// The steps of case `c` through `cell`: the hidden state (and cell state) after each step,
// and the loss sum(h_last wh) (+ sum(c_last wc)).
template <class T>
struct Run {
  Tensor<T> x, h0, c0, loss;
  std::vector<Array> h, c;
};

template <class T, class Cell>
Run<T> run(Cell& cell, const std::string& c, bool lstm) {
  Run<T> r;
  r.x = leaf<T>(get(c + ".x"));
  r.h0 = leaf<T>(get(c + ".h0"));
  if (lstm) r.c0 = leaf<T>(get(c + ".c0"));
  Tensor<T> h = r.h0, state_c = r.c0;
  for (std::ptrdiff_t t = 0; t < static_cast<std::ptrdiff_t>(r.x.shape()[0]); ++t) {
    if constexpr (std::is_same_v<Cell, nn::LSTMCell<T>>) {
      std::tie(h, state_c) = cell(r.x.select(0, t), {h, state_c});
      r.c.push_back(Array(xt::cast<double>(state_c.value())));
    } else {
      h = cell(r.x.select(0, t), h);
    }
    r.h.push_back(Array(xt::cast<double>(h.value())));
  }
  r.loss = sum(h * Tensor<T>(xt::xarray<T>(xt::cast<T>(get(c + ".wh")))));
  if (lstm) r.loss = r.loss + sum(state_c * Tensor<T>(xt::xarray<T>(xt::cast<T>(get(c + ".wc")))));
  return r;
}

// The largest difference between the states after each step and PyTorch's (steps, ...).
double max_step_diff(const std::vector<Array>& steps, const Array& expected) {
  REQUIRE(steps.size() == expected.shape()[0]);
  double worst = 0;
  for (std::size_t t = 0; t < steps.size(); ++t) {
    const Array e = xt::view(expected, t);
    REQUIRE(steps[t].shape() == e.shape());
    worst = std::max(worst, double(xt::amax(xt::abs(steps[t] - e))()));
  }
  return worst;
}

double max_diff(const Array& a, const Array& b) {
  REQUIRE(a.shape() == b.shape());
  return a.size() == 0 ? 0.0 : xt::amax(xt::abs(a - b))();
}

template <class T>
Array as_double(const xt::xarray<T>& a) {
  return Array(xt::cast<double>(a));
}

// Runs case `c` in T and compares values and gradients with PyTorch's within `tolerance`.
template <class T, class Cell>
void check_case(Cell& cell, const std::string& c, bool lstm, double tolerance) {
  CAPTURE(c);
  load_weights(cell, c);
  Tape tape;
  const auto r = run<T>(cell, c, lstm);
  CHECK(max_step_diff(r.h, get(c + ".h")) <= tolerance);
  if (lstm) CHECK(max_step_diff(r.c, get(c + ".c")) <= tolerance);
  cell.zero_grad();
  r.loss.backward();
  for (const auto& [name, parameter] : cell.named_parameters()) {
    CAPTURE(name);
    CHECK(max_diff(as_double(parameter.grad()), get(c + ".grad." + name)) <= tolerance);
  }
  CHECK(max_diff(as_double(r.x.grad()), get(c + ".grad.x")) <= tolerance);
  CHECK(max_diff(as_double(r.h0.grad()), get(c + ".grad.h0")) <= tolerance);
  if (lstm) CHECK(max_diff(as_double(r.c0.grad()), get(c + ".grad.c0")) <= tolerance);
}

template <class T>
void check_all_cases(double tolerance) {
  {
    nn::RNNCell<T> tanh_cell(3, 4),
        relu_cell(3, 4, nn::RNNCellOptions().nonlinearity(nn::Nonlinearity::ReLU));
    nn::RNNCell<T> no_bias(3, 4, nn::RNNCellOptions().bias(false)), unbatched(3, 4);
    check_case<T>(tanh_cell, "rnn_tanh", false, tolerance);
    check_case<T>(relu_cell, "rnn_relu", false, tolerance);
    check_case<T>(no_bias, "rnn_nobias", false, tolerance);
    check_case<T>(unbatched, "rnn_unbatched", false, tolerance);
  }
  {
    nn::LSTMCell<T> lstm(3, 4), no_bias(3, 4, nn::CellOptions().bias(false));
    check_case<T>(lstm, "lstm", true, tolerance);
    check_case<T>(no_bias, "lstm_nobias_unbatched", true, tolerance);
  }
  {
    nn::GRUCell<T> gru(3, 4), unbatched(3, 4);
    check_case<T>(gru, "gru", false, tolerance);
    check_case<T>(unbatched, "gru_unbatched", false, tolerance);
  }
}

}  // namespace

TEST_CASE("recurrent cells match PyTorch's values and gradients to 1e-10 (float64)") {
  REQUIRE(fixture().size() == 112);
  check_all_cases<double>(1e-10);
}

TEST_CASE("float32 recurrent cells agree with PyTorch's float64 run loosely") {
  check_all_cases<float>(1e-5);
}

TEST_CASE("recurrent cells: PyTorch's parameter names, shapes, initialization range") {
  Generator random(3);
  nn::LSTMCell<double> lstm(3, 25, nn::CellOptions().generator(random));
  const auto named = lstm.named_parameters();
  REQUIRE(named.size() == 4);
  CHECK(named[0].first == "weight_ih");
  CHECK(named[1].first == "weight_hh");
  CHECK(named[2].first == "bias_ih");
  CHECK(named[3].first == "bias_hh");
  CHECK(named[0].second.shape() == Shape{100, 3});
  CHECK(named[1].second.shape() == Shape{100, 25});
  CHECK(named[2].second.shape() == Shape{100});
  CHECK(named[3].second.shape() == Shape{100});
  double largest = 0;
  for (const auto& [name, p] : named)
    largest = std::max(largest, double(xt::amax(xt::abs(p.value()))()));
  CHECK(largest <= 0.2);  // 1 / sqrt(25)
  CHECK(largest > 0.19);
  CHECK(nn::GRUCell<double>(3, 5).weight_hh().shape() == Shape{15, 5});
  CHECK(nn::RNNCell<double>(3, 5).weight_ih().shape() == Shape{5, 3});
  CHECK(nn::RNNCell<double>(3, 5, nn::RNNCellOptions().bias(false)).parameter_count() == 15 + 25);
  CHECK_THROWS_WITH_AS(nn::GRUCell<double>(3, 5, nn::CellOptions().bias(false)).bias_ih(),
                       "GRUCell: this cell was made without biases", ValueError);
  CHECK_THROWS_WITH_AS(nn::LSTMCell<double>(0, 5),
                       "LSTMCell: sizes must be positive, got input_size 0, hidden_size 5",
                       ValueError);
  // The same generator seed gives the same weights.
  Generator a(9), b(9);
  CHECK(nn::GRUCell<double>(2, 3, nn::CellOptions().generator(a)).weight_ih().value() ==
        nn::GRUCell<double>(2, 3, nn::CellOptions().generator(b)).weight_ih().value());
}

TEST_CASE("recurrent cells from the zero state equal a step from explicit zeros") {
  nn::RNNCell<double> rnn(3, 4);
  nn::LSTMCell<double> lstm(3, 4);
  nn::GRUCell<double> gru(3, 4);
  const Tensor<double> x(test::random_array({2, 3}, 5));
  const auto zero = zeros<double>({2, 4});
  CHECK(rnn(x).value() == rnn(x, zero).value());
  CHECK(gru(x).value() == gru(x, zero).value());
  const auto [h, c] = lstm(x);
  const auto [h2, c2] = lstm(x, {zero, zero});
  CHECK(h.value() == h2.value());
  CHECK(c.value() == c2.value());
  CHECK(h.shape() == Shape{2, 4});
  const Tensor<double> single(test::random_array({3}, 6));
  CHECK(rnn(single).shape() == Shape{4});
  CHECK(lstm.step(single).second.shape() == Shape{4});
  CHECK_THROWS_WITH_AS(
      lstm.forward(x),
      "LSTMCell(3, 4): forward(input) is not defined: an LSTM cell returns (h, c); "
      "call step(input) or forward(input, {h, c})",
      ValueError);
}

TEST_CASE("recurrent cells name themselves and the shapes for wrong inputs and states") {
  nn::RNNCell<double> rnn(3, 5, nn::RNNCellOptions().nonlinearity(nn::Nonlinearity::ReLU));
  nn::LSTMCell<double> lstm(3, 5);
  nn::GRUCell<double> gru(3, 5);
  const Tensor<double> x(test::random_array({2, 3}, 1));
  CHECK_THROWS_WITH_AS(
      rnn(Tensor<double>(test::random_array({2, 4}, 1))),
      "RNNCell(3, 5, nonlinearity=relu): the input has shape (2, 4); expected (N, 3) or (3,)",
      ShapeError);
  CHECK_THROWS_WITH_AS(gru(Tensor<double>(test::random_array({1, 2, 3}, 1))),
                       "GRUCell(3, 5): the input has shape (1, 2, 3); expected (N, 3) or (3,)",
                       ShapeError);
  CHECK_THROWS_WITH_AS(
      gru(x, zeros<double>({3, 5})),
      "GRUCell(3, 5): the state h has shape (3, 5); expected (2, 5) for an input of shape (2, 3)",
      ShapeError);
  CHECK_THROWS_WITH_AS(
      rnn(x, zeros<double>({5})),
      "RNNCell(3, 5, nonlinearity=relu): the state h has shape (5,); expected (2, 5) for an "
      "input of shape (2, 3)",
      ShapeError);
  CHECK_THROWS_WITH_AS(
      lstm(x, {zeros<double>({2, 5}), zeros<double>({2, 4})}),
      "LSTMCell(3, 5): the state c has shape (2, 4); expected (2, 5) for an input of shape (2, 3)",
      ShapeError);
  CHECK_THROWS_WITH_AS(
      lstm(Tensor<double>(test::random_array({3}, 1)), {zeros<double>({1, 5}), zeros<double>({5})}),
      "LSTMCell(3, 5): the state h has shape (1, 5); expected (5,) for an input of shape (3,)",
      ShapeError);
  // The free functions read the sizes from the weights and check those too.
  CHECK_THROWS_WITH_AS(
      nn::gru_cell(x, zeros<double>({2, 5}), zeros<double>({15, 3}), zeros<double>({14, 5})),
      "gru_cell: weight_hh has shape (14, 5); expected (3 H, H) with H > 0", ShapeError);
  CHECK_THROWS_WITH_AS(nn::rnn_cell(x, zeros<double>({2, 5}), zeros<double>({5, 3}),
                                    zeros<double>({5, 5}), zeros<double>({5}), zeros<double>({4})),
                       "rnn_cell: bias_hh has shape (4,); expected (5,)", ShapeError);
}

TEST_CASE("recurrent cells take an empty batch (0, in) and give (0, H) with zero gradients") {
  nn::RNNCell<double> rnn(3, 4);
  nn::LSTMCell<double> lstm(3, 4);
  nn::GRUCell<double> gru(3, 4);
  Tape tape;
  const auto x = zeros<double>({0, 3}, requires_grad);
  const auto h = rnn(x);
  const auto [lh, lc] = lstm(x);
  const auto g = gru(x, zeros<double>({0, 4}));
  CHECK(h.shape() == Shape{0, 4});
  CHECK(lh.shape() == Shape{0, 4});
  CHECK(lc.shape() == Shape{0, 4});
  CHECK(g.shape() == Shape{0, 4});
  (sum(h) + sum(lh) + sum(lc) + sum(g)).backward();
  for (nn::Module<double>* m : std::vector<nn::Module<double>*>{&rnn, &lstm, &gru}) {
    for (const auto& p : m->parameters()) {
      CHECK(p.grad().shape() == p.shape());
      CHECK(xt::amax(xt::abs(p.grad()))() == 0);
    }
  }
  CHECK(x.grad().shape() == Shape{0, 3});
}

TEST_CASE("gradcheck of each cell step with respect to every input and weight (float64)") {
  const auto r = [](Shape s, std::uint64_t seed) { return test::random_array(s, seed, -1, 1); };
  SUBCASE("rnn tanh and relu") {
    for (const auto f : {nn::Nonlinearity::Tanh, nn::Nonlinearity::ReLU}) {
      test::require_gradcheck<double>(
          [f](const std::vector<Tensor<double>>& v) {
            return nn::rnn_cell(v[0], v[1], v[2], v[3], v[4], v[5], f);
          },
          {r({2, 3}, 1), r({2, 4}, 2), r({4, 3}, 3), r({4, 4}, 4), r({4}, 5), r({4}, 6)});
    }
  }
  SUBCASE("lstm, batched and not") {
    test::require_gradcheck<double>(
        [](const std::vector<Tensor<double>>& v) {
          const auto [h, c] = nn::lstm_cell(v[0], {v[1], v[2]}, v[3], v[4], v[5], v[6]);
          return h + 2.0 * c;
        },
        {r({2, 3}, 7), r({2, 4}, 8), r({2, 4}, 9), r({16, 3}, 10), r({16, 4}, 11), r({16}, 12),
         r({16}, 13)});
    test::require_gradcheck<double>(
        [](const std::vector<Tensor<double>>& v) {
          const auto [h, c] = nn::lstm_cell(v[0], {v[1], v[2]}, v[3], v[4]);
          return h * c;
        },
        {r({3}, 14), r({4}, 15), r({4}, 16), r({16, 3}, 17), r({16, 4}, 18)});
  }
  SUBCASE("gru") {
    test::require_gradcheck<double>(
        [](const std::vector<Tensor<double>>& v) {
          return nn::gru_cell(v[0], v[1], v[2], v[3], v[4], v[5]);
        },
        {r({2, 3}, 19), r({2, 4}, 20), r({12, 3}, 21), r({12, 4}, 22), r({12}, 23), r({12}, 24)});
  }
}

TEST_CASE("second order: the Hessian of each cell step equals differences of its gradient") {
  const auto r = [](Shape s, std::uint64_t seed) {
    return Tensor<double>(test::random_array(s, seed, -1, 1));
  };
  const auto h = r({3}, 31), c = r({3}, 32), w = r({3}, 33);
  const auto rnn_w = std::vector{r({3, 2}, 34), r({3, 3}, 35), r({3}, 36), r({3}, 37)};
  const auto lstm_w = std::vector{r({12, 2}, 38), r({12, 3}, 39), r({12}, 40), r({12}, 41)};
  const auto gru_w = std::vector{r({9, 2}, 42), r({9, 3}, 43), r({9}, 44), r({9}, 45)};
  // Each f maps an input x of shape (2,) to a number through two steps, so that the state
  // path's second derivatives count too.
  const std::vector<std::function<Tensor<double>(const Tensor<double>&)>> functions = {
      [&](const Tensor<double>& x) {
        const auto& p = rnn_w;
        return sum(w * nn::rnn_cell(x, nn::rnn_cell(x, h, p[0], p[1], p[2], p[3]), p[0], p[1], p[2],
                                    p[3]));
      },
      [&](const Tensor<double>& x) {
        const auto& p = lstm_w;
        const auto s = nn::lstm_cell(x, {h, c}, p[0], p[1], p[2], p[3]);
        const auto [h2, c2] = nn::lstm_cell(x * x, s, p[0], p[1], p[2], p[3]);
        return sum(w * (h2 + c2));
      },
      [&](const Tensor<double>& x) {
        const auto& p = gru_w;
        return sum(w * nn::gru_cell(x * x, nn::gru_cell(x, h, p[0], p[1], p[2], p[3]), p[0], p[1],
                                    p[2], p[3]));
      },
  };
  const Tensor<double> x0(Array{0.3, -0.7});
  const double step = 1e-5;
  for (std::size_t k = 0; k < functions.size(); ++k) {
    CAPTURE(k);
    const auto& f = functions[k];
    const Array hessian = functional::hessian(f, x0).value();
    REQUIRE(hessian.shape() == Shape{2, 2});
    CHECK(xt::amax(xt::abs(hessian))() > 1e-3);  // not trivially zero
    for (std::size_t j = 0; j < 2; ++j) {
      Array plus = x0.value(), minus = x0.value();
      plus(j) += step;
      minus(j) -= step;
      const Array column = (functional::grad(f, Tensor<double>(plus)).value() -
                            functional::grad(f, Tensor<double>(minus)).value()) /
                           (2 * step);
      for (std::size_t i = 0; i < 2; ++i)
        CHECK(std::abs(hessian(i, j) - column(i)) <= 1e-6 * (1 + std::abs(column(i))));
    }
  }
}
