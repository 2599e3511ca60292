// Compiled steps on odd inputs and odd uses: f returning a parameter, elementwise corner cases
// of the flat plan, compile_sgd_step against compile() + optim::SGD, steps moved from, run
// from a custom op's forward or inside another step's f, on another thread, and what the
// caller resizes between runs. Each case gives eager's numbers or a clear exception (and no
// memory error under valgrind).
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "helpers.hpp"
#include "tapegrad/compile.hpp"

using namespace tapegrad;

namespace {
using V = std::vector<Tensor<double>>;

std::vector<xt::xarray<double>> eager_grads(const V& parameters,
                                            const std::function<Tensor<double>()>& f,
                                            double* value = nullptr) {
  std::vector<std::shared_ptr<detail::NodeBase>> kept;
  for (const auto& p : parameters) kept.push_back(std::move(p.node()->grad));
  {
    Tape tape;
    auto loss = f();
    if (value) *value = loss.value().data()[0];
    loss.backward();
  }
  std::vector<xt::xarray<double>> out;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    out.push_back(parameters[i].has_grad() ? parameters[i].grad()
                                           : xt::zeros<double>(parameters[i].shape()));
    parameters[i].node()->grad = std::move(kept[i]);
  }
  return out;
}

void same_as_eager(const V& parameters, const V& inputs, const std::function<Tensor<double>()>& f) {
  auto step = compile(parameters, f);
  for (int k = 0; k < 3; ++k) {
    std::uint64_t seed = 100 + 10 * k;
    for (auto t : parameters) t.mutable_value() = test::random_array(t.shape(), seed++);
    for (auto t : inputs) t.set_value(test::random_array(t.shape(), seed++));
    for (auto p : parameters) p.zero_grad();
    const double got = step.run();
    std::vector<xt::xarray<double>> grads;
    for (auto p : parameters)
      grads.push_back(p.has_grad() ? p.grad() : xt::zeros<double>(p.shape()));
    double expected = 0;
    const auto eager = eager_grads(parameters, f, &expected);
    CHECK(got == doctest::Approx(expected).epsilon(1e-12));
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      INFO("parameter ", i, " run ", k);
      CHECK(test::all_close(grads[i], eager[i], 1e-12, 1e-12));
    }
  }
}
}  // namespace

TEST_CASE(
    "f returning a parameter itself: compile() and compile_sgd_step (whose run() returns the value "
    "before the update)") {
  Tensor<double> w(2.0, requires_grad);
  SUBCASE("compile") {
    auto step = compile(V{w}, [&] { return w; });
    CHECK(step.run() == 2.0);
    CHECK(w.grad()() == 1.0);
  }
  SUBCASE("sgd") {
    auto step = compile_sgd_step(V{w}, 0.5, [&] { return w; });
    CHECK(step.run() == 2.0);
    CHECK(w.value()() == 1.5);
  }
}

TEST_CASE(
    "two parameters whose gradient is the seed itself (no op makes it): compile() and "
    "compile_sgd_step") {
  Tensor<double> a(2.0, requires_grad), b(3.0, requires_grad);
  SUBCASE("compile") {
    auto step = compile(V{a, b}, [&] { return a + b; });
    CHECK(step.run() == 5.0);
    CHECK(a.grad()() == 1.0);
    CHECK(b.grad()() == 1.0);
  }
  SUBCASE("sgd") {
    auto step = compile_sgd_step(V{a, b}, 0.5, [&] { return a + b; });
    CHECK(step.run() == 5.0);
    CHECK(a.value()() == 1.5);
    CHECK(b.value()() == 2.5);
  }
}

TEST_CASE("f returning a parameter that is resized later: run() refuses it") {
  Tensor<double> w(2.0, requires_grad);
  auto step = compile(V{w}, [&] { return w; });
  auto sgd_step = compile_sgd_step(V{w}, 0.5, [&] { return w; });
  step.run();
  w.set_value(xt::xarray<double>{1.0, 2.0, 3.0});
  const std::string message =
      "compiled step: the tensor f returns (a parameter) now has shape (3,) but had shape () at "
      "compile time; "
      "compile the step again for the new shape";
  CHECK_THROWS_WITH_AS(step.run(), message.c_str(), ShapeError);
  CHECK_THROWS_WITH_AS(sgd_step.run(), message.c_str(),
                       ShapeError);  // the update would read past the seed
}

TEST_CASE("elementwise corner cases of the flat plan give eager's numbers") {
  SUBCASE("x*x, x+x") {
    Tensor<double> x(test::random_array({3, 4}, 1), requires_grad);
    same_as_eager(V{x}, V{}, [&] { return sum(x * x + (x + x) * x); });
  }
  SUBCASE("0-d") {
    Tensor<double> x(1.5, requires_grad);
    Tensor<double> y(0.5);
    same_as_eager(V{x}, V{y}, [&] { return exp(x * y) + sin(x) * x; });
  }
  SUBCASE("zero extent") {
    Tensor<double> x(xt::xarray<double>(xt::zeros<double>({0, 3})), requires_grad);
    Tensor<double> b(test::random_array({3}, 2), requires_grad);
    Tensor<double> c(1.5, requires_grad);
    same_as_eager(V{x, b, c}, V{}, [&] { return sum(tanh(x + b) * x) + c * c; });
  }
  SUBCASE("row broadcast with more dims") {
    Tensor<double> x(test::random_array({2, 3, 4}, 3), requires_grad);
    Tensor<double> b(test::random_array({1, 1, 4}, 4), requires_grad);
    Tensor<double> s(test::random_array({1, 1, 1}, 5), requires_grad);
    same_as_eager(V{x, b, s}, V{}, [&] { return sum(sigmoid(x * b - s) * (b + s)); });
  }
  SUBCASE("size-1 input with more dims than another") {
    Tensor<double> x(test::random_array({4}, 3), requires_grad);
    Tensor<double> s(test::random_array({1, 1}, 5), requires_grad);
    same_as_eager(V{x, s}, V{}, [&] { return sum(exp(x * s) / (s + 3.0)); });
  }
  SUBCASE("leaf-shaped broadcast output") {
    Tensor<double> x(test::random_array({3, 1}, 3), requires_grad);
    Tensor<double> y(test::random_array({1, 3}, 5), requires_grad);
    same_as_eager(V{x, y}, V{}, [&] { return sum(square(x + y) * (x - y)); });
  }
  SUBCASE("arena reuse chain") {
    Tensor<double> x(test::random_array({5}, 3), requires_grad);
    Tensor<double> y(test::random_array({5}, 6), requires_grad);
    same_as_eager(V{x, y}, V{}, [&] {
      auto a = x * y;
      auto b = a + x;
      auto c = b * b;
      auto d = c - a;
      auto e = exp(d * 0.01) * b;
      auto f2 = e * e + c;
      return sum(f2 * x) + sum(d);
    });
  }
}

namespace {
template <class T>
void sgd_same(const std::vector<Tensor<T>>& p1, const std::vector<Tensor<T>>& p2,
              const std::function<Tensor<T>()>& f1, const std::function<Tensor<T>()>& f2,
              int folded_expected = -1) {
  auto step = compile(p1, f1);
  optim::SGD<T> sgd(p1, 0.05);
  auto sgd_step = compile_sgd_step(p2, 0.05, f2);
  const auto ops = sgd_step.ops();
  if (folded_expected >= 0)
    CHECK(std::count(ops.begin(), ops.end(), "sgd update (folded into matmul)") == folded_expected);
  const T tol = std::is_same_v<T, double> ? T(1e-11) : T(1e-4);
  for (int i = 0; i < 10; ++i) {
    const T a = step.run();
    sgd.step();
    sgd.zero_grad();
    const T b = sgd_step.run();
    REQUIRE(std::abs(a - b) <= tol * std::max(T(1), std::abs(a)));
  }
  for (std::size_t i = 0; i < p1.size(); ++i) {
    INFO("parameter ", i);
    CHECK(xt::allclose(p1[i].value(), p2[i].value(), tol, tol));
  }
}

template <class T>
std::pair<Tensor<T>, Tensor<T>> twin(const Shape& s, std::uint64_t seed) {
  xt::xarray<T> v = xt::cast<T>(test::random_array(s, seed, -0.5, 0.5));
  return {Tensor<T>(v, requires_grad), Tensor<T>(v, requires_grad)};
}
}  // namespace

TEST_CASE_TEMPLATE(
    "compile_sgd_step gives what compile() and optim::SGD give: weights reused, transposed, 1-d, "
    "read elsewhere, products of each other",
    T, float, double) {
  const Tensor<T> x(xt::xarray<T>(xt::cast<T>(test::random_array({4, 3}, 9))));
  SUBCASE("weight used in two layers") {
    auto [w1, w2] = twin<T>({3, 3}, 1);
    const auto f = [&](const Tensor<T>& w) { return sum(square(matmul(tanh(matmul(x, w)), w))); };
    sgd_same<T>(
        {w1}, {w2}, [&] { return f(w1); }, [&] { return f(w2); }, 0);
  }
  SUBCASE("transposed use") {
    auto [w1, w2] = twin<T>({2, 3}, 2);
    auto [b1, b2] = twin<T>({2}, 3);
    const auto f = [&](const Tensor<T>& w, const Tensor<T>& b) {
      return sum(square(matmul(x, transpose(w)) + b));
    };
    sgd_same<T>(
        {w1, b1}, {w2, b2}, [&] { return f(w1, b1); }, [&] { return f(w2, b2); });
  }
  SUBCASE("1-d weight on the right") {
    auto [w1, w2] = twin<T>({3}, 2);
    const auto f = [&](const Tensor<T>& w) { return sum(square(matmul(x, w))); };
    sgd_same<T>(
        {w1}, {w2}, [&] { return f(w1); }, [&] { return f(w2); });
  }
  SUBCASE("1-d weight on the left") {
    auto [w1, w2] = twin<T>({4}, 2);
    const auto f = [&](const Tensor<T>& w) { return sum(square(matmul(w, x))); };
    sgd_same<T>(
        {w1}, {w2}, [&] { return f(w1); }, [&] { return f(w2); });
  }
  SUBCASE("parameter also read by another op") {
    auto [w1, w2] = twin<T>({3, 2}, 4);
    const auto f = [&](const Tensor<T>& w) { return sum(square(matmul(x, w))) + sum(w * w); };
    sgd_same<T>(
        {w1}, {w2}, [&] { return f(w1); }, [&] { return f(w2); });
  }
  SUBCASE("two parameters in a product of each other") {
    auto [a1, a2] = twin<T>({4, 3}, 4);
    auto [b1, b2] = twin<T>({3, 2}, 5);
    const auto f = [&](const Tensor<T>& a, const Tensor<T>& b) {
      return sum(square(matmul(a, b)));
    };
    sgd_same<T>(
        {a1, b1}, {a2, b2}, [&] { return f(a1, b1); }, [&] { return f(a2, b2); });
  }
  SUBCASE("shared gradient") {
    auto [a1, a2] = twin<T>({2, 2}, 4);
    auto [b1, b2] = twin<T>({2, 2}, 5);
    const auto f = [&](const Tensor<T>& a, const Tensor<T>& b) { return sum(a + b) + sum(a * b); };
    sgd_same<T>(
        {a1, b1}, {a2, b2}, [&] { return f(a1, b1); }, [&] { return f(a2, b2); });
  }
  SUBCASE(
      "folded products read arena values whose places later values of the same size could take") {
    // Every intermediate of this net has 12 elements; the products that make the weights'
    // gradients run again (folded) after all the steps, so their inputs must stay in place.
    auto [w1, v1] = twin<T>({3, 3}, 21);
    auto [w2, v2] = twin<T>({3, 3}, 22);
    auto [w3, v3] = twin<T>({3, 3}, 23);
    const auto f = [&](const Tensor<T>& a, const Tensor<T>& b, const Tensor<T>& c) {
      return sum(square(tanh(matmul(tanh(matmul(tanh(matmul(x, a)), b)), c))));
    };
    sgd_same<T>(
        {w1, w2, w3}, {v1, v2, v3}, [&] { return f(w1, w2, w3); }, [&] { return f(v1, v2, v3); },
        3);
  }
  SUBCASE(
      "matmul of x and x-dependent, gradient product reads an intermediate made from the weight") {
    auto [w1, w2] = twin<T>({3, 3}, 6);
    const auto f = [&](const Tensor<T>& w) { return sum(matmul(matmul(x, w), transpose(w))); };
    sgd_same<T>(
        {w1}, {w2}, [&] { return f(w1); }, [&] { return f(w2); });
  }
  SUBCASE(
      "products of one row, one column, inner extent 1 and an empty batch (GEMV, outer product, k "
      "= 0)") {
    const Tensor<T> row(xt::xarray<T>(xt::cast<T>(test::random_array({1, 3}, 10))));
    const Tensor<T> column(xt::xarray<T>(xt::cast<T>(test::random_array({4, 1}, 11))));
    const Tensor<T> empty(xt::xarray<T>(xt::zeros<T>({0, 3})));
    auto [a1, a2] = twin<T>({3, 2}, 12);
    auto [b1, b2] = twin<T>({1, 5}, 13);
    auto [c1, c2] = twin<T>({3, 4}, 14);
    const auto f = [&](const Tensor<T>& a, const Tensor<T>& b, const Tensor<T>& c) {
      return sum(square(matmul(row, a))) + sum(square(matmul(column, b))) +
             sum(square(matmul(empty, c)));
    };
    sgd_same<T>(
        {a1, b1, c1}, {a2, b2, c2}, [&] { return f(a1, b1, c1); }, [&] { return f(a2, b2, c2); },
        3);
  }
  SUBCASE("two layers and a penalty on the second weight") {
    auto [w1, w2] = twin<T>({3, 3}, 7);
    auto [v1, v2] = twin<T>({3, 1}, 8);
    const auto f = [&](const Tensor<T>& w, const Tensor<T>& v) {
      return sum(square(matmul(sigmoid(matmul(x, w)), v))) + sum(square(v));
    };
    sgd_same<T>(
        {w1, v1}, {w2, v2}, [&] { return f(w1, v1); }, [&] { return f(w2, v2); });
  }
}

TEST_CASE("a step moved from refuses to run instead of crashing") {
  Tensor<double> w(xt::xarray<double>{1.0, 2.0}, requires_grad);
  auto a = compile(V{w}, [&] { return sum(w * w); });
  auto b = std::move(a);
  CHECK(b.run() == 5.0);
  // NOLINTBEGIN(bugprone-use-after-move)
  CHECK_THROWS_WITH_AS(
      a.run(), "compiled step: run() on a step that was moved from (it has no plan)", TapeError);
  CHECK_THROWS_WITH_AS(a.ops(), doctest::Contains("ops() on a step that was moved from"),
                       TapeError);
  auto c = compile_sgd_step(V{w}, 0.1, [&] { return sum(w * w); });
  auto d = std::move(c);
  CHECK_THROWS_WITH_AS(c.run(), doctest::Contains("moved from"), TapeError);
  CHECK_THROWS_WITH_AS(c.set_learning_rate(0.2),
                       doctest::Contains("set_learning_rate() on a step that was moved from"),
                       TapeError);
  // NOLINTEND(bugprone-use-after-move)
  CHECK(d.run() == 5.0);
}

TEST_CASE(
    "a custom op's forward that runs its own step again is refused (it recursed without end)") {
  Tensor<double> w(xt::xarray<double>{1.0, 2.0}, requires_grad);
  Compiled<double>* self = nullptr;
  bool compiled = false;
  const CustomOp<double> twice(
      "twice",
      [&](const std::vector<Tensor<double>>& in) {
        if (compiled && self != nullptr) self->run();
        return xt::xarray<double>(2.0 * in[0].value());
      },
      [](const CustomBackwardContext<double>& c) { return std::vector{c.grad_output() * 2.0}; },
      differentiable_backward);
  auto step = compile(V{w}, [&] { return sum(twice({w}) * w); });
  self = &step;
  compiled = true;
  CHECK_THROWS_WITH_AS(step.run(), doctest::Contains("run() was called while the same step runs"),
                       TapeError);
  compiled = false;
  CHECK(step.run() == 10.0);  // the refused run left the step usable
}

TEST_CASE(
    "a custom op's forward that destroys the last copy of the running step: the run completes") {
  Tensor<double> w(xt::xarray<double>{1.0, 2.0}, requires_grad);
  std::unique_ptr<Compiled<double>> holder;
  bool compiled = false;
  const CustomOp<double> twice(
      "twice",
      [&](const std::vector<Tensor<double>>& in) {
        if (compiled) holder.reset();
        return xt::xarray<double>(2.0 * in[0].value());
      },
      [](const CustomBackwardContext<double>& c) { return std::vector{c.grad_output() * 2.0}; },
      differentiable_backward);
  holder = std::make_unique<Compiled<double>>(compile(V{w}, [&] { return sum(twice({w}) * w); }));
  compiled = true;
  Compiled<double>* raw = holder.get();
  CHECK(raw->run() == 10.0);  // it crashed, reading the freed plan
  CHECK(holder == nullptr);
}

TEST_CASE("a step run inside another step's f: its gradient is not recorded into the other's") {
  Tensor<double> w(xt::xarray<double>{1.0, 2.0}, requires_grad);
  Tensor<double> x(xt::xarray<double>{3.0, 5.0});
  auto a = compile(V{w}, [&] { return sum(w * x); });
  auto b = compile(V{w}, [&] {
    a.run();
    return sum(w * w);
  });
  // f ran once, and what it did to the gradient stays, as it would eagerly.
  CHECK(w.grad() == x.value());
  w.zero_grad();
  b.run();
  CHECK(w.grad() == xt::xarray<double>{2.0, 4.0});
}

TEST_CASE("a step compiled inside another step's f") {
  Tensor<double> w(xt::xarray<double>{1.0, 2.0}, requires_grad);
  std::unique_ptr<Compiled<double>> inner;
  auto b = compile(V{w}, [&] {
    inner = std::make_unique<Compiled<double>>(compile(V{w}, [&] { return sum(exp(w)); }));
    return sum(w * w);
  });
  b.run();
  CHECK(w.grad() == xt::xarray<double>{2.0, 4.0});
  w.zero_grad();
  inner->run();
  CHECK(xt::allclose(w.grad(), xt::exp(w.value())));
}

TEST_CASE("a step compiled on one thread, run on another and destroyed on a third") {
  Tensor<double> w(test::random_array({3, 2}, 1), requires_grad);
  Tensor<double> x(test::random_array({4, 3}, 2));
  const auto f = [&] { return sum(tanh(matmul(x, w)) * 2.0 + 1.0); };
  std::unique_ptr<Compiled<double>> step;
  std::thread([&] { step = std::make_unique<Compiled<double>>(compile(V{w}, f)); }).join();
  double got = 0;
  std::thread([&] { got = step->run(); }).join();
  double expected = 0;
  const auto g = eager_grads(V{w}, f, &expected);
  CHECK(got == expected);
  CHECK(w.grad() == g[0]);
  std::thread([&] { step.reset(); }).join();
}

TEST_CASE("what the caller resizes between runs is refused or followed, never overrun") {
  Tensor<double> w(test::random_array({3, 2}, 1), requires_grad);
  Tensor<double> b(test::random_array({2}, 3), requires_grad);
  Tensor<double> x(test::random_array({4, 3}, 2));
  Tensor<double> hidden, act, loss_out;
  auto step = compile(V{w, b}, [&] {
    hidden = matmul(x, w) + b;
    act = tanh(hidden);
    loss_out = sum(act * act);
    return loss_out;
  });
  step.run();
  SUBCASE("the loss captured inside f") {
    loss_out.mutable_value() = xt::zeros<double>({0});
    CHECK_THROWS_AS(step.run(), TapeError);
  }
  SUBCASE("an elementwise result captured inside f") {
    act.mutable_value() = xt::zeros<double>({50});
    CHECK_THROWS_AS(step.run(), TapeError);
  }
  SUBCASE("a bias gradient via mutable_grad") {
    b.mutable_grad() = xt::zeros<double>({50});
    CHECK_THROWS_AS(step.run(), ShapeError);
    b.zero_grad();
    w.zero_grad();
    step.run();
  }
  SUBCASE("a bias gradient held and resized") {
    Tensor<double> g = b.grad_tensor();
    b.zero_grad();
    g.mutable_value() = xt::zeros<double>({0});
    step.run();
    CHECK(b.grad().size() == 2);
  }
  SUBCASE("a parameter resized") {
    b.mutable_value() = xt::zeros<double>({7});
    CHECK_THROWS_AS(step.run(), ShapeError);
  }
  SUBCASE("an input set to another shape") {
    x.set_value(test::random_array({4, 3, 1}, 5));
    CHECK_THROWS_AS(step.run(), ShapeError);
  }
}

TEST_CASE("compile_sgd_step with a parameter or a result of f resized between runs") {
  Tensor<double> w(test::random_array({3, 2}, 1), requires_grad);
  Tensor<double> b(test::random_array({2}, 3), requires_grad);
  Tensor<double> x(test::random_array({4, 3}, 2));
  Tensor<double> hidden;
  auto step = compile_sgd_step(V{w, b}, 0.1, [&] {
    hidden = matmul(x, w);
    return sum(square(hidden + b));
  });
  step.run();
  SUBCASE("parameter resized") {
    w.mutable_value() = xt::zeros<double>({2});
    CHECK_THROWS_AS(step.run(), ShapeError);
  }
  SUBCASE("hidden resized") {
    hidden.mutable_value() = xt::zeros<double>({2});
    CHECK_THROWS_AS(step.run(), TapeError);
  }
  SUBCASE("parameter grads present") {
    w.set_value(test::random_array({3, 2}, 1));
    step.run();
    CHECK_FALSE(w.has_grad());
  }
}

TEST_CASE("anomaly mode names an elementwise step of the flat plan that makes NaN") {
  Tensor<double> w(xt::xarray<double>{{1.0, 2.0}, {3.0, 4.0}}, requires_grad);
  Tensor<double> b(xt::xarray<double>{1.0, -1.0});
  auto step = compile(V{w}, [&] { return sum(sqrt(w + b)); });
  step.run();
  w.zero_grad();
  b.mutable_value() = xt::xarray<double>{-5.0, -1.0};
  AnomalyModeGuard anomaly;
  CHECK_THROWS_WITH_AS(step.run(), doctest::Contains("sqrt"), TapeError);
}

// ---- raw steps: products, sums and broadcasts on the plan's buffers ----

namespace {
template <class T>
using Ts = std::vector<Tensor<T>>;

template <class T>
xt::xarray<T> random_of(const Shape& shape, std::uint64_t seed) {
  return xt::cast<T>(test::random_array(shape, seed));
}

// Bit for bit: the same kernels on the same values in the same order, eager or compiled.
template <class T>
bool same_bits(const xt::xarray<T>& a, const xt::xarray<T>& b) {
  return a.shape() == b.shape() && std::equal(a.data(), a.data() + a.size(), b.data());
}

// compile()'s value and gradients against backward()'s, at three new points (parameters and
// inputs given new storage between runs), bit for bit. Returns the step's ops.
template <class T>
std::vector<std::string> same_bits_as_eager(const Ts<T>& parameters, const Ts<T>& inputs,
                                            const std::function<Tensor<T>()>& f) {
  auto step = compile(parameters, f);
  for (int k = 0; k < 3; ++k) {
    std::uint64_t seed = 300 + 10 * k;
    for (auto t : parameters) t.set_value(random_of<T>(t.shape(), seed++));
    for (auto t : inputs) t.set_value(random_of<T>(t.shape(), seed++));
    for (auto p : parameters) p.zero_grad();
    const T got = step.run();
    std::vector<xt::xarray<T>> grads;
    for (auto p : parameters)
      grads.push_back(p.has_grad() ? p.grad() : xt::xarray<T>(xt::zeros<T>(p.shape())));
    for (auto p : parameters) p.zero_grad();
    T expected = 0;
    {
      Tape tape;
      const auto loss = f();
      expected = loss.value().data()[0];
      loss.backward();
    }
    INFO("run ", k);
    CHECK(got == expected);
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      INFO("parameter ", i);
      CHECK(same_bits<T>(grads[i], parameters[i].has_grad()
                                       ? parameters[i].grad()
                                       : xt::xarray<T>(xt::zeros<T>(parameters[i].shape()))));
    }
  }
  return step.ops();
}

std::size_t count_op(const std::vector<std::string>& ops, const std::string& name) {
  return static_cast<std::size_t>(std::count(ops.begin(), ops.end(), name));
}
}  // namespace

TEST_CASE_TEMPLATE("raw sums and broadcasts: shapes that are rows and shapes that are not", T,
                   float, double) {
  SUBCASE("(2,1,3) -> (1,1,3): an extent-1 axis in the middle is a row") {
    Tensor<T> x(random_of<T>({2, 1, 3}, 1), requires_grad);
    Tensor<T> b(random_of<T>({1, 1, 3}, 2), requires_grad);
    const auto ops = same_bits_as_eager<T>({x, b}, {}, [&] {
      return sum(square(sum_to(x * x, Shape{1, 1, 3}) + broadcast_to(b, Shape{2, 1, 3}) * x));
    });
    CHECK(count_op(ops, "sum_to*") >= 1);
    CHECK(count_op(ops, "broadcast_to*") >= 1);
  }
  SUBCASE("(4,3) -> (4,1) and (4,1) -> (4,3): columns, not rows") {
    Tensor<T> x(random_of<T>({4, 3}, 1), requires_grad);
    Tensor<T> c(random_of<T>({4, 1}, 2), requires_grad);
    const auto ops = same_bits_as_eager<T>({x, c}, {}, [&] {
      return sum(square(sum_to(x * x, Shape{4, 1}) * c) + broadcast_to(c, Shape{4, 3}) * x);
    });
    CHECK(count_op(ops, "sum_to*") == 0);
    CHECK(count_op(ops, "sum_to") >= 2);  // through their records
  }
  SUBCASE("(2,3,1) -> (1,3,1) and sums along axes 0, 1, (0,1), with and without keepdims") {
    Tensor<T> x(random_of<T>({2, 3, 1}, 1), requires_grad);
    Tensor<T> y(random_of<T>({3, 2, 4}, 2), requires_grad);
    same_bits_as_eager<T>({x, y}, {}, [&] {
      return sum(square(sum_to(x * x, Shape{1, 3, 1}))) + sum(square(sum(y * y, {0}))) +
             sum(square(sum(y, {1}, true))) + sum(square(sum(y * y, {0, 1}))) +
             sum(square(sum(y, {2})));
    });
  }
  SUBCASE("0-d to 0-d, and 0-d to every shape") {
    Tensor<T> s(random_of<T>({}, 1), requires_grad);
    Tensor<T> x(random_of<T>({2, 3}, 2), requires_grad);
    same_bits_as_eager<T>({s, x}, {}, [&] {
      return sum_to(s * s, Shape{}) + sum(broadcast_to(s, Shape{2, 3}) * x) +
             sum(broadcast_to(s * x, Shape{4, 2, 3}));
    });
  }
  SUBCASE("zero extents: (0,3) -> (3), (3,0) -> (0), (2,0) -> (1,0), (0,) -> ()") {
    Tensor<T> a(xt::xarray<T>(xt::zeros<T>({0, 3})), requires_grad);
    Tensor<T> b(xt::xarray<T>(xt::zeros<T>({3, 0})), requires_grad);
    Tensor<T> c(random_of<T>({3}, 1), requires_grad);
    Tensor<T> d(xt::xarray<T>(xt::zeros<T>({0})), requires_grad);
    const auto ops = same_bits_as_eager<T>({a, b, c, d}, {}, [&] {
      return sum(square(sum_to(a * a, Shape{3}) + c)) + sum(sum_to(b, Shape{0})) +
             sum(sum_to(broadcast_to(b, Shape{2, 3, 0}), Shape{1, 0})) + sum_to(d, Shape{}) +
             sum(broadcast_to(c, Shape{0, 3})) + sum(sum(a, {0}) * c);
    });
    CHECK(count_op(ops, "sum_to*") >= 3);
  }
}

namespace {
// op(a) op(b) by plain loops, op transposing when its flag is set: the reference the BLAS
// paths (GEMM, GEMV for one row or column, the outer product, the empty product) must give.
template <class T>
xt::xarray<T> loop_product(const xt::xarray<T>& a, const xt::xarray<T>& b, bool ta, bool tb) {
  const std::size_t m = ta ? a.shape()[1] : a.shape()[0], k = ta ? a.shape()[0] : a.shape()[1];
  const std::size_t n = tb ? b.shape()[0] : b.shape()[1];
  xt::xarray<T> out = xt::zeros<T>({m, n});
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::size_t l = 0; l < k; ++l) {
        s += static_cast<double>(ta ? a(l, i) : a(i, l)) *
             static_cast<double>(tb ? b(j, l) : b(l, j));
      }
      out(i, j) = static_cast<T>(s);
    }
  }
  return out;
}

template <class T>
constexpr double loose = std::is_same_v<T, float> ? 1e-4 : 1e-12;
}  // namespace

TEST_CASE_TEMPLATE(
    "raw products of every small shape: eager's bits and the loops' numbers, plain and transposed",
    T, float, double) {
  for (const std::size_t m : {0, 1, 2, 5}) {
    for (const std::size_t k : {0, 1, 3}) {
      for (const std::size_t n : {0, 1, 4}) {
        INFO("(", m, ", ", k, ") x (", k, ", ", n, ")");
        Tensor<T> a(random_of<T>({m, k}, 1), requires_grad);
        Tensor<T> b(random_of<T>({k, n}, 2), requires_grad);
        Tensor<T> bt(random_of<T>({n, k}, 3), requires_grad);
        Tensor<T> at(random_of<T>({k, m}, 4), requires_grad);
        Tensor<T> c(random_of<T>({m, n}, 5));
        // dA = C B^T, dB = A^T C: products with one operand transposed (GEMV when a result
        // extent is 1, the outer product when the inner one is).
        const auto ops = same_bits_as_eager<T>({a, b}, {c}, [&] { return sum(matmul(a, b) * c); });
        CHECK(count_op(ops, "matmul*") == 3);
        CHECK(test::all_close<T>(a.grad(), loop_product<T>(c.value(), b.value(), false, true),
                                 loose<T>, loose<T>));
        CHECK(test::all_close<T>(b.grad(), loop_product<T>(a.value(), c.value(), true, false),
                                 loose<T>, loose<T>));
        same_bits_as_eager<T>({a, bt}, {c}, [&] { return sum(matmul(a, transpose(bt)) * c); });
        CHECK(test::all_close<T>(bt.grad(), loop_product<T>(c.value(), a.value(), true, false),
                                 loose<T>, loose<T>));
        same_bits_as_eager<T>({at, b}, {c}, [&] { return sum(matmul(transpose(at), b) * c); });
        CHECK(test::all_close<T>(at.grad(), loop_product<T>(b.value(), c.value(), false, true),
                                 loose<T>, loose<T>));
      }
    }
  }
}

TEST_CASE_TEMPLATE("compile_sgd_step's folded products of every small shape: the loops' update", T,
                   float, double) {
  const double lr = 0.25;
  for (const std::size_t m : {0, 1, 2, 5}) {
    for (const std::size_t k : {0, 1, 3}) {
      for (const std::size_t n : {0, 1, 4}) {
        INFO("(", m, ", ", k, ") x (", k, ", ", n, ")");
        Tensor<T> a(random_of<T>({m, k}, 1), requires_grad);
        Tensor<T> b(random_of<T>({k, n}, 2), requires_grad);
        Tensor<T> x(random_of<T>({m, k}, 3));
        Tensor<T> y(random_of<T>({k, n}, 4));
        Tensor<T> c(random_of<T>({m, n}, 5));
        auto left = compile_sgd_step<T>({a}, lr, [&] { return sum(matmul(a, y) * c); });
        auto right = compile_sgd_step<T>({b}, lr, [&] { return sum(matmul(x, b) * c); });
        CHECK(count_op(left.ops(), "sgd update (folded into matmul)") == 1);
        CHECK(count_op(right.ops(), "sgd update (folded into matmul)") == 1);
        for (int run = 0; run < 2; ++run) {
          INFO("run ", run);
          y.set_value(random_of<T>({k, n}, 10 + run));
          x.set_value(random_of<T>({m, k}, 20 + run));
          c.set_value(random_of<T>({m, n}, 30 + run));
          const xt::xarray<T> a0 = a.value(), b0 = b.value();
          left.run();
          right.run();
          const xt::xarray<T> da = loop_product<T>(c.value(), y.value(), false, true);
          const xt::xarray<T> db = loop_product<T>(x.value(), c.value(), true, false);
          CHECK(test::all_close<T>(a.value(), xt::xarray<T>(a0 - static_cast<T>(lr) * da), loose<T>,
                                   loose<T>));
          CHECK(test::all_close<T>(b.value(), xt::xarray<T>(b0 - static_cast<T>(lr) * db), loose<T>,
                                   loose<T>));
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE(
    "raw products reading one parameter twice, and a parameter's square through its transpose", T,
    float, double) {
  for (const std::size_t n : {1, 2, 5}) {
    INFO("n = ", n);
    Tensor<T> w(random_of<T>({n, n}, 1), requires_grad);
    Tensor<T> x(random_of<T>({3, n}, 2));
    same_bits_as_eager<T>({w}, {x}, [&] {
      return sum(square(matmul(w, w))) + sum(matmul(x, matmul(w, transpose(w))));
    });
    auto [w1, w2] = twin<T>({n, n}, 3);
    const auto f = [&](const Tensor<T>& v) {
      return sum(square(matmul(matmul(x, v), v))) + sum(matmul(transpose(v), v));
    };
    sgd_same<T>(
        {w1}, {w2}, [&] { return f(w1); }, [&] { return f(w2); }, 0);
  }
}

TEST_CASE_TEMPLATE(
    "a gradient penalty: products with both operands transposed (the backward of the backward)", T,
    float, double) {
  for (const std::size_t batch : {1, 4}) {
    for (const std::size_t out : {1, 3}) {
      INFO("batch ", batch, ", out ", out);
      Tensor<T> w(random_of<T>({2, out}, 1), requires_grad);
      Tensor<T> x(random_of<T>({batch, 2}, 2), requires_grad);
      // f reads d/dx of an inner loss, made by backward(create_graph) inside f.
      const auto f = [&] {
        x.zero_grad();
        sum(tanh(matmul(x, w))).backward(create_graph);
        const Tensor<T> gx = x.grad_tensor();
        x.zero_grad();
        w.zero_grad();  // what the inner backward added to w's gradient is not the outer loss's
        return sum(square(matmul(gx, w)));
      };
      same_bits_as_eager<T>({w}, {}, f);
    }
  }
}

TEST_CASE_TEMPLATE(
    "anomaly mode names a raw step (sum, sum_to, matmul) that overflows from finite inputs", T,
    float, double) {
  const T big = std::numeric_limits<T>::max() / 4 * 3;  // two of them make Inf
  Tensor<T> w(xt::xarray<T>{{1, 2}, {3, 4}}, requires_grad);
  Tensor<T> x(xt::xarray<T>{{1, 1}, {1, 1}});
  SUBCASE("sum") {
    auto step = compile<T>({w}, [&] { return sum(w + x); });
    x.set_value(xt::xarray<T>{{big, big}, {big, big}});
    step.run();  // Inf, unchecked
    AnomalyModeGuard anomaly;
    CHECK_THROWS_WITH_AS(
        step.run(), doctest::Contains("op 'sum' (op 1 of the step) made NaN or Inf"), TapeError);
  }
  SUBCASE("sum_to") {
    auto step = compile<T>({w}, [&] { return sum(sum_to(w + x, Shape{2})); });
    x.set_value(xt::xarray<T>{{big, big}, {big, big}});
    AnomalyModeGuard anomaly;
    CHECK_THROWS_WITH_AS(
        step.run(), doctest::Contains("op 'sum_to' (op 1 of the step) made NaN or Inf"), TapeError);
  }
  SUBCASE("matmul") {
    auto step = compile<T>({w}, [&] { return sum(matmul(x, w)); });
    x.set_value(xt::xarray<T>{{big, big}, {big, big}});
    AnomalyModeGuard anomaly;
    CHECK_THROWS_WITH_AS(
        step.run(), doctest::Contains("op 'matmul' (op 0 of the step) made NaN or Inf"), TapeError);
  }
  SUBCASE("a NaN read is not a NaN made") {
    auto step = compile<T>({w}, [&] { return sum(matmul(x, w)); });
    x.set_value(xt::xarray<T>{{std::numeric_limits<T>::quiet_NaN(), 1}, {1, 1}});
    AnomalyModeGuard anomaly;
    CHECK(std::isnan(step.run()));
  }
}

TEST_CASE_TEMPLATE(
    "anomaly mode: compile_sgd_step names a gradient product that overflows, as backward() does", T,
    float, double) {
  // The forward product is finite (huge times tiny); the gradient's, x^T (4 ones), is not.
  const T huge = std::numeric_limits<T>::max() / 2;
  const T tiny = T(1) / huge;
  Tensor<T> x(xt::xarray<T>{{huge, huge}});
  const auto f = [&](const Tensor<T>& w) { return sum(matmul(x, w)) * T(4); };
  const xt::xarray<T> column = xt::xarray<T>(xt::ones<T>({2, 1})) * tiny;
  {
    Tensor<T> w(column, requires_grad);
    AnomalyModeGuard anomaly;
    Tape tape;
    CHECK_THROWS_WITH_AS(f(w).backward(), doctest::Contains("matmul"), TapeError);
  }
  // v's product is finite and comes first: no parameter is written all the same.
  Tensor<T> v(xt::xarray<T>(xt::ones<T>({2, 1})), requires_grad);
  Tensor<T> w(column, requires_grad);
  const Tensor<T> z(xt::xarray<T>(xt::ones<T>({3, 2})));
  auto step = compile_sgd_step<T>({v, w}, 0.5, [&] { return sum(matmul(z, v)) + f(w); });
  REQUIRE(count_op(step.ops(), "sgd update (folded into matmul)") == 2);
  AnomalyModeGuard anomaly;
  CHECK_THROWS_WITH_AS(
      step.run(),
      doctest::Contains(
          "op 'matmul' (the product folded into parameter 1's update) made NaN or Inf"),
      TapeError);
  CHECK(w.value() == column);  // as after backward() threw: no parameter written
  CHECK(v.value() == xt::xarray<T>(xt::ones<T>({2, 1})));
  // A NaN read is not a NaN made: the run completes.
  x.set_value(xt::xarray<T>{{std::numeric_limits<T>::quiet_NaN(), 1}});
  step.run();
  CHECK(std::isnan(w.value()(0, 0)));
}

TEST_CASE(
    "tensors read only by raw steps, resized between runs: ShapeError, and no parameter written") {
  Tensor<double> w(test::random_array({3, 2}, 1), requires_grad);
  Tensor<double> b(test::random_array({2}, 2), requires_grad);
  Tensor<double> x(test::random_array({4, 3}, 3));
  Tensor<double> c(test::random_array({2}, 4));
  const auto f = [&] { return sum(square(matmul(x, w) + broadcast_to(c, Shape{4, 2}) * b)); };
  auto step = compile(V{w, b}, f);
  auto sgd_step = compile_sgd_step(V{w, b}, 0.1, f);
  step.run();
  sgd_step.run();
  const xt::xarray<double> w0 = w.value(), b0 = b.value();
  SUBCASE("the product's operand, same elements in another shape") {
    x.set_value(test::random_array({3, 4}, 5));
    CHECK_THROWS_WITH_AS(
        step.run(),
        doctest::Contains(
            "read by op 'matmul' (op 2 of the step) now has shape (3, 4) but had shape (4, 3)"),
        ShapeError);
    CHECK_THROWS_AS(sgd_step.run(), ShapeError);
  }
  SUBCASE("the product's operand, more rows") {
    x.set_value(test::random_array({40, 3}, 5));
    CHECK_THROWS_AS(step.run(), ShapeError);
    CHECK_THROWS_AS(sgd_step.run(), ShapeError);
  }
  SUBCASE("the broadcast row, longer") {
    c.set_value(test::random_array({5}, 5));
    CHECK_THROWS_WITH_AS(step.run(), doctest::Contains("op 'broadcast_to'"), ShapeError);
    CHECK_THROWS_AS(sgd_step.run(), ShapeError);
  }
  CHECK(w.value() == w0);
  CHECK(b.value() == b0);
}

TEST_CASE(
    "a gradient made by a raw product and handed to its parameter: kept by the caller, it is not "
    "overwritten") {
  Tensor<double> w(test::random_array({3, 2}, 1), requires_grad);
  Tensor<double> x(test::random_array({4, 3}, 2));
  const auto f = [&] { return sum(square(matmul(x, w))); };
  auto step = compile(V{w}, f);
  step.run();
  const Tensor<double> kept = w.grad_tensor();
  const xt::xarray<double> first = kept.value();
  w.zero_grad();
  x.set_value(test::random_array({4, 3}, 3));
  step.run();
  CHECK(kept.value() == first);
  const xt::xarray<double> second = w.grad();
  CHECK(eager_grads(V{w}, f)[0] == second);
  step.run();  // no zero_grad: this run adds to the gradient w holds
  CHECK(test::all_close<double>(w.grad(), xt::xarray<double>(2.0 * second), 1e-15, 0));
}

TEST_CASE_TEMPLATE(
    "compile_sgd_step on nets whose values all have one size: folded products' inputs are places "
    "other values would take",
    T, float, double) {
  // Batch = width = 3: every activation, pre-activation and their gradients have 9 elements,
  // so arena places are reused as soon as they are free; biases go through raw row sums.
  const Tensor<T> x(xt::xarray<T>(xt::cast<T>(test::random_array({3, 3}, 40))));
  auto [w1, v1] = twin<T>({3, 3}, 41);
  auto [w2, v2] = twin<T>({3, 3}, 42);
  auto [w3, v3] = twin<T>({3, 3}, 43);
  auto [b1, c1] = twin<T>({3}, 44);
  auto [b2, c2] = twin<T>({1, 3}, 45);
  SUBCASE("three layers with biases, and the hidden values read again after the products") {
    const auto f = [&](const Tensor<T>& a, const Tensor<T>& b, const Tensor<T>& c,
                       const Tensor<T>& d, const Tensor<T>& e) {
      const auto h1 = tanh(matmul(x, a) + d);
      const auto h2 = sigmoid(matmul(h1, b) + e);
      return sum(square(matmul(h2, c))) + sum(h1 * h2) + sum(square(h2 - h1));
    };
    sgd_same<T>(
        {w1, w2, w3, b1, b2}, {v1, v2, v3, c1, c2}, [&] { return f(w1, w2, w3, b1, b2); },
        [&] { return f(v1, v2, v3, c1, c2); }, 3);
  }
  SUBCASE("layers through transposed weights") {
    const auto f = [&](const Tensor<T>& a, const Tensor<T>& b, const Tensor<T>& c) {
      const auto h1 = tanh(matmul(transpose(x), a));
      const auto h2 = tanh(matmul(h1, transpose(b)));
      return sum(square(matmul(transpose(h2), c) - h1));
    };
    sgd_same<T>(
        {w1, w2, w3}, {v1, v2, v3}, [&] { return f(w1, w2, w3); }, [&] { return f(v1, v2, v3); });
  }
}
