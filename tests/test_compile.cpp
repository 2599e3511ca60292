// compile(): a step recorded once and run again gives what eager backward() gives on the
// same values, step after step, and refuses what it cannot do.
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <vector>
#include <xtensor/xview.hpp>

#include "../examples/common/minimize_1d_function.hpp"
#include "../examples/common/minimize_2d_function.hpp"
#include "../examples/common/regression_gradient.hpp"
#include "../examples/common/xor_network.hpp"
#include "helpers.hpp"
#include "op_cases.hpp"
#include "tapegrad/compile.hpp"

using namespace tapegrad;

namespace {
// Every operator new of the test program, counted: a compiled step's steady state makes none.
std::atomic<long> allocations{0};
}  // namespace

// All the replaceable forms that share one heap are replaced together: a form left alone would
// come from the sanitizer's runtime and free() memory its own operator new gave out (std::
// stable_sort's nothrow temporary buffer did). The aligned forms are left to the runtime, as a
// pair.
void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* memory = std::malloc(size == 0 ? 1 : size)) return memory;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return operator new(size, tag);
}
// GCC takes the free() of a replaced operator delete for a mismatch with operator new.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete(void* memory, const std::nothrow_t&) noexcept { std::free(memory); }
void operator delete[](void* memory) noexcept { std::free(memory); }
void operator delete[](void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete[](void* memory, const std::nothrow_t&) noexcept { std::free(memory); }
#pragma GCC diagnostic pop

namespace {

template <class T>
T largest_gap(const std::vector<Tensor<T>>& a, const std::vector<Tensor<T>>& b) {
  T gap = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (std::size_t k = 0; k < a[i].size(); ++k) {
      gap = std::max(gap, std::abs(a[i].value().data()[k] - b[i].value().data()[k]));
    }
  }
  return gap;
}

// The gradient eager backward() gives for f at the parameters' current values.
std::vector<xt::xarray<double>> eager_gradients(const std::vector<Tensor<double>>& parameters,
                                                const std::function<Tensor<double>()>& f) {
  std::vector<std::shared_ptr<detail::NodeBase>> kept;
  for (const auto& p : parameters) kept.push_back(std::move(p.node()->grad));
  {
    Tape tape;
    f().backward();
  }
  std::vector<xt::xarray<double>> gradients;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    gradients.push_back(parameters[i].has_grad() ? parameters[i].grad()
                                                 : xt::zeros<double>(parameters[i].shape()));
    parameters[i].node()->grad = std::move(kept[i]);
  }
  return gradients;
}

}  // namespace

TEST_CASE_TEMPLATE("a compiled XOR step trains exactly as the eager one", T, float, double) {
  examples::XorNetwork<T> eager(7, 0.5), compiled(7, 0.5);
  auto step =
      compile(compiled.model.parameters(), [&] { return compiled.loss(compiled.forward()); });
  CHECK(step.size() > 10);
  // Every op of XOR runs as a flat step: the elementwise ones, and the products, sums and
  // broadcasts through their raw kernels.
  const auto ops = step.ops();
  REQUIRE(ops.size() == step.size());
  CHECK(ops.front() == "matmul*");
  CHECK(std::count(ops.begin(), ops.end(), "sigmoid*") == 2);
  CHECK(std::count(ops.begin(), ops.end(), "matmul*") == 5);
  CHECK(std::count(ops.begin(), ops.end(), "sum_to*") == 2);
  CHECK(
      std::none_of(ops.begin(), ops.end(), [](const std::string& op) { return op.back() != '*'; }));
  for (int epoch = 0; epoch < 300; ++epoch) {
    T eager_loss;
    {
      Tape tape;
      const auto loss = eager.loss(eager.forward());
      eager_loss = loss.value()();
      loss.backward();
    }
    eager.optimizer.step();
    eager.optimizer.zero_grad();
    const T compiled_loss = step.run();
    compiled.optimizer.step();
    compiled.optimizer.zero_grad();
    REQUIRE(compiled_loss == eager_loss);
  }
  // The same kernels in the same order: the same numbers, not merely close ones.
  CHECK(largest_gap(eager.model.parameters(), compiled.model.parameters()) == T(0));
}

TEST_CASE_TEMPLATE("minimize_1d's compiled descent gives the eager iterates bit for bit", T, float,
                   double) {
  // The demo's descent: SGD with lr 0.9 from x = 13 on the tape's gradient, 57 updates to
  // |dy/dx| < 1e-4 in double (float stops on its own rounding, somewhere near there).
  Tensor<T> eager(T(13), requires_grad), compiled(T(13), requires_grad);
  optim::SGD<T> eager_sgd({eager}, 0.9), compiled_sgd({compiled}, 0.9);
  auto step = compile(std::vector<Tensor<T>>{compiled},
                      [&] { return examples::minimize_1d_function(compiled); });
  for (int i = 0; i < 60; ++i) {
    {
      Tape tape;
      examples::minimize_1d_function(eager).backward();
    }
    step.run();
    REQUIRE(compiled.grad()() == eager.grad()());
    eager_sgd.step();
    eager_sgd.zero_grad();
    compiled_sgd.step();
    compiled_sgd.zero_grad();
    REQUIRE(compiled.value()() == eager.value()());
  }
  CHECK(std::abs(eager.value()() + T(1)) < T(1e-4));  // at the minimum, x = -1
}

TEST_CASE_TEMPLATE("minimize_2d's compiled descent gives the eager iterates bit for bit", T, float,
                   double) {
  // The demo's descent: SGD with lr 0.001 from (1, 1) on the tape's gradient.
  Tensor<T> eager(xt::xarray<T>{1, 1}, requires_grad), compiled(xt::xarray<T>{1, 1}, requires_grad);
  optim::SGD<T> eager_sgd({eager}, 0.001), compiled_sgd({compiled}, 0.001);
  auto step = compile(std::vector<Tensor<T>>{compiled},
                      [&] { return examples::minimize_2d_function(compiled); });
  // Newton's convergence test in the demo: compile_value_and_grad against functional::grad.
  auto value_and_grad =
      functional::compile_value_and_grad(examples::minimize_2d_function<T>, eager);
  for (int i = 0; i < 3000; ++i) {
    {
      Tape tape;
      examples::minimize_2d_function(eager).backward();
    }
    step.run();
    REQUIRE(compiled.grad()(0) == eager.grad()(0));
    REQUIRE(compiled.grad()(1) == eager.grad()(1));
    if (i % 500 == 0) {
      const auto replayed = value_and_grad(eager).second;
      const auto recorded = functional::grad(examples::minimize_2d_function<T>, eager);
      CHECK(replayed.value()(0) == recorded.value()(0));
      CHECK(replayed.value()(1) == recorded.value()(1));
    }
    eager_sgd.step();
    eager_sgd.zero_grad();
    compiled_sgd.step();
    compiled_sgd.zero_grad();
  }
  CHECK(eager.value()(0) < T(0.5));  // it went some way towards (-0.163, -0.163)
  CHECK(compiled.value()(0) == eager.value()(0));
  CHECK(compiled.value()(1) == eager.value()(1));
}

TEST_CASE_TEMPLATE("gd_variants' compiled batch gradients give the eager parameters bit for bit", T,
                   float, double) {
  // Batches of 16 and a last one of 2 (two compiled steps), over three epochs, with the
  // demo's momentum SGD and Adam.
  const auto raw = data::make_regression(50, 3, 10.0, 5);
  xt::xarray<T> targets = xt::cast<T>(raw.targets);
  targets.reshape({std::size_t{50}, std::size_t{1}});
  data::DataLoader<T> loader(data::Dataset<T>(xt::cast<T>(raw.features), targets), 16,
                             data::LoaderOptions().seed(3));
  std::vector<typename data::DataLoader<T>::Batch> batches;
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (auto& b : loader.epoch()) batches.push_back(std::move(b));
  }
  REQUIRE(batches.size() == 12);
  REQUIRE(batches[3].features.shape()[0] == 2);
  for (const bool adam : {false, true}) {
    CAPTURE(adam);
    std::vector<Tensor<T>> eager{Tensor<T>(xt::xarray<T>(xt::zeros<T>({3, 1})), requires_grad),
                                 Tensor<T>(xt::xarray<T>{0}, requires_grad)};
    std::vector<Tensor<T>> compiled{Tensor<T>(xt::xarray<T>(xt::zeros<T>({3, 1})), requires_grad),
                                    Tensor<T>(xt::xarray<T>{0}, requires_grad)};
    const auto make =
        [adam](const std::vector<Tensor<T>>& p) -> std::unique_ptr<optim::Optimizer<T>> {
      if (adam) return std::make_unique<optim::Adam<T>>(p, 0.5);
      return std::make_unique<optim::SGD<T>>(p, 0.05, optim::SGDOptions().momentum(0.9));
    };
    auto eager_optimizer = make(eager), compiled_optimizer = make(compiled);
    examples::RegressionGradient<T> eager_gradient(eager[0], eager[1], false);
    examples::RegressionGradient<T> compiled_gradient(compiled[0], compiled[1], true);
    for (const auto& b : batches) {
      eager_gradient(b.features, b.targets);
      compiled_gradient(b.features, b.targets);
      for (std::size_t k = 0; k < 3; ++k)
        REQUIRE(compiled[0].grad()(k, 0) == eager[0].grad()(k, 0));
      REQUIRE(compiled[1].grad()(0) == eager[1].grad()(0));
      eager_optimizer->step();
      eager_optimizer->zero_grad();
      compiled_optimizer->step();
      compiled_optimizer->zero_grad();
    }
    CHECK(xt::amax(xt::abs(eager[0].value()))() > T(1));  // the parameters moved
    for (std::size_t k = 0; k < 3; ++k) CHECK(compiled[0].value()(k, 0) == eager[0].value()(k, 0));
    CHECK(compiled[1].value()(0) == eager[1].value()(0));
  }
}

TEST_CASE("inputs given new values with set_value are read by every run") {
  Generator random(3);
  nn::MLP<double> eager({3, 8, 2}, nn::Activation::Tanh), compiled({3, 8, 2}, nn::Activation::Tanh);
  for (std::size_t i = 0; i < eager.parameters().size(); ++i) {
    compiled.parameters()[i].mutable_value() = eager.parameters()[i].value();
  }
  Tensor<double> x(test::random_array({5, 3}, 1)), target(test::random_array({5, 2}, 2));
  optim::SGD<double> eager_sgd(eager.parameters(), 0.1), compiled_sgd(compiled.parameters(), 0.1);
  // Inputs scaled before the model: ops on tensors that need no gradient are replayed too.
  auto step = compile(compiled.parameters(),
                      [&] { return nn::mse(compiled(affine(x, 2.0, -1.0)), target); });
  for (int batch = 0; batch < 20; ++batch) {
    x.set_value(test::random_array({5, 3}, 10 + batch));
    target.set_value(test::random_array({5, 2}, 100 + batch));
    {
      Tape tape;
      nn::mse(eager(affine(x, 2.0, -1.0)), target).backward();
    }
    eager_sgd.step();
    eager_sgd.zero_grad();
    step.run();
    compiled_sgd.step();
    compiled_sgd.zero_grad();
  }
  CHECK(largest_gap(eager.parameters(), compiled.parameters()) == 0.0);
}

TEST_CASE(
    "the masks of piecewise ops follow the values: abs, maximum, minimum, relu, leaky_relu, clamp, "
    "max") {
  Tensor<double> p(xt::xarray<double>{{-1.0, 0.3, 2.0}, {0.7, -0.2, -1.5}}, requires_grad);
  const Tensor<double> c(xt::xarray<double>{{0.5, 0.5, 0.5}, {0.0, 0.0, 0.0}});
  const std::function<Tensor<double>()> f = [&] {
    return sum(abs(p - c)) + sum(maximum(p, c)) + sum(minimum(p, c) * p) + sum(relu(p) * p) +
           sum(leaky_relu(p, 0.1) * p) + sum(clamp(p, -0.5, 0.5) * p) + sum(square(max(p, 1))) +
           sum(max(p, 0) * 3.0);
  };
  auto step = compile(std::vector<Tensor<double>>{p}, f);
  // Values on the other side of every kink, and a new arg max along each axis.
  const std::vector<xt::xarray<double>> moves = {
      {{0.9, -0.3, -2.0}, {-0.7, 0.2, 1.5}},
      {{0.1, 0.6, -0.4}, {2.0, -0.6, 0.3}},
      {{-3.0, 0.45, 0.55}, {0.05, 1.0, -0.05}},
  };
  for (const auto& values : moves) {
    p.mutable_value() = values;
    p.zero_grad();
    const double value = step.run();
    double eager_value;
    {
      NoGradGuard no_grad;
      eager_value = f().value()();
    }
    CHECK(value == doctest::Approx(eager_value).epsilon(1e-15));
    const auto expected = eager_gradients({p}, f)[0];
    for (std::size_t k = 0; k < expected.size(); ++k) {
      INFO("element ", k);
      CHECK(p.grad().data()[k] == doctest::Approx(expected.data()[k]).epsilon(1e-15));
    }
  }
}

TEST_CASE("every op compiles: replayed at new values, value and gradient equal eager backward's") {
  for (const auto& c : test::all_cases()) {
    SUBCASE(c.name.c_str()) {
      std::vector<Tensor<double>> xs;
      for (const auto& a : c.inputs) xs.emplace_back(a, requires_grad);
      const Tensor<double> w(test::random_array(c.f64(xs).shape(), 99, 0.5, 1.5));
      const std::function<Tensor<double>()> f = [&] {
        const auto y = c.f64(xs);
        return sum(w * y * y);
      };
      auto step = compile(xs, f);
      for (const double scale : {1.01, 0.97}) {  // inside every case's smooth domain
        for (std::size_t k = 0; k < xs.size(); ++k) {
          xs[k].mutable_value() = c.inputs[k] * scale;
          xs[k].zero_grad();
        }
        const double value = step.run();
        double eager_value;
        {
          NoGradGuard no_grad;
          eager_value = f().value()();
        }
        CHECK(value == doctest::Approx(eager_value).epsilon(1e-12));
        const auto expected = eager_gradients(xs, f);
        for (std::size_t k = 0; k < xs.size(); ++k) {
          const auto got = xs[k].has_grad() ? xs[k].grad()
                                            : xt::xarray<double>(xt::zeros<double>(xs[k].shape()));
          INFO("input ", k, " at scale ", scale);
          CHECK(xt::allclose(got, expected[k], 1e-12, 1e-300));
        }
      }
    }
  }
}

TEST_CASE(
    "run() adds to the parameters' gradients as backward() does, and compile() leaves them alone") {
  Tensor<double> w(test::random_array({3, 2}, 5), requires_grad);
  const Tensor<double> x(test::random_array({4, 3}, 6));
  const std::function<Tensor<double>()> f = [&] { return sum(square(matmul(x, w))); };
  const auto expected = eager_gradients({w}, f)[0];
  {
    Tape tape;
    sum(w).backward();  // a gradient of ones
  }
  auto step = compile(std::vector<Tensor<double>>{w}, f);
  CHECK(w.grad() == xt::xarray<double>(xt::ones<double>({3, 2})));  // compile() left it alone
  step.run();
  CHECK(xt::allclose(w.grad(), expected + 1.0, 1e-15, 0));
  step.run();
  CHECK(xt::allclose(w.grad(), 2.0 * expected + 1.0, 1e-15, 0));
  // After zero_grad a run gives the parameter a gradient of its own; a gradient the caller
  // kept from an earlier run is not written over.
  w.zero_grad();
  step.run();
  const Tensor<double> kept = w.grad_tensor();
  w.zero_grad();
  w.mutable_value() *= 2.0;
  step.run();
  CHECK(xt::allclose(kept.value(), expected, 1e-15, 0));
  CHECK(xt::allclose(w.grad(), 2.0 * expected, 1e-14, 0));
}

TEST_CASE(
    "ops that neither the value nor a parameter's gradient needs are dropped; other leaves get no "
    "gradient") {
  Tensor<double> w(test::random_array({3}, 7), requires_grad);
  Tensor<double> other(test::random_array({3}, 8),
                       requires_grad);  // requires grad, not compiled for
  auto step = compile(std::vector<Tensor<double>>{w}, [&] {
    const auto unused = exp(other) * 3.0;  // recorded, needed by nothing
    return sum(exp(w) * sin(other));
  });
  CHECK(step.size() + 2 <= step.recorded_size());
  step.run();
  CHECK(xt::allclose(w.grad(), xt::exp(w.value()) * xt::sin(other.value()), 1e-15, 0));
  CHECK_FALSE(other.has_grad());
}

TEST_CASE("a custom op replays its forward and its tensor-op backward") {
  const CustomOp<double> cube(
      "cube",
      [](const std::vector<Tensor<double>>& in) {
        return xt::xarray<double>(xt::pow(in[0].value(), 3.0));
      },
      [](const CustomBackwardContext<double>& c) {
        return std::vector{c.grad_output() * 3.0 * square(c.input(0))};
      },
      differentiable_backward);
  Tensor<double> w(test::random_array({4}, 9), requires_grad);
  auto step = compile(std::vector<Tensor<double>>{w}, [&] { return sum(cube({w})); });
  w.mutable_value() = xt::xarray<double>{1.0, -2.0, 0.5, 3.0};
  CHECK(step.run() == doctest::Approx(1.0 - 8.0 + 0.125 + 27.0).epsilon(1e-15));
  CHECK(xt::allclose(w.grad(), xt::xarray<double>{3.0, 12.0, 0.75, 27.0}, 1e-15, 0));
}

TEST_CASE(
    "ops under a NoGradGuard inside f are replayed; a NoGradGuard around compile() changes "
    "nothing") {
  Tensor<double> w(xt::xarray<double>{1.0, -2.0}, requires_grad);
  Tensor<double> x(xt::xarray<double>{0.5, 0.25});
  const std::function<Tensor<double>()> f = [&] {
    Tensor<double> target;
    {
      NoGradGuard no_grad;
      target = x * 3.0 + 1.0;  // data, computed from an input
    }
    return sum(square(w * x - target));
  };
  auto step = [&] {
    NoGradGuard outside;
    return compile(std::vector<Tensor<double>>{w}, f);
  }();
  x.set_value(xt::xarray<double>{2.0, -1.0});
  const double value = step.run();
  double eager_value;
  {
    NoGradGuard no_grad;
    eager_value = f().value()();
  }
  CHECK(value == doctest::Approx(eager_value).epsilon(1e-15));
  CHECK(xt::allclose(w.grad(), eager_gradients({w}, f)[0], 1e-15, 0));
}

TEST_CASE(
    "a gradient the caller holds is not changed by the next run; a parameter listed twice gets it "
    "once") {
  Tensor<double> w(xt::xarray<double>{1.0, 2.0}, requires_grad);
  const std::function<Tensor<double>()> f = [&] { return sum(square(w)); };
  {
    Tape tape;
    sum(w * 5.0).backward();  // w's gradient before compile: 5, 5
  }
  auto step = compile(std::vector<Tensor<double>>{w, w}, f);
  CHECK(w.grad() == xt::xarray<double>{5.0, 5.0});  // kept through compile()
  step.run();
  const Tensor<double> held = w.grad_tensor();
  CHECK(held.value() == xt::xarray<double>{7.0, 9.0});
  step.run();  // no zero_grad: accumulates, into a new tensor since `held` is kept
  CHECK(held.value() == xt::xarray<double>{7.0, 9.0});
  CHECK(w.grad() == xt::xarray<double>{9.0, 13.0});
}

TEST_CASE("a parameter that no longer requires grad gets no gradient from run()") {
  Tensor<double> a(xt::xarray<double>{1.0, 2.0}, requires_grad),
      b(xt::xarray<double>{3.0}, requires_grad);
  auto step = compile(std::vector<Tensor<double>>{a, b}, [&] { return sum(a * b); });
  b.set_requires_grad(false);
  step.run();
  CHECK(a.grad() == xt::xarray<double>{3.0, 3.0});
  CHECK_FALSE(b.has_grad());
}

TEST_CASE("anomaly mode covers a compiled step's ops") {
  Tensor<double> w(xt::xarray<double>{4.0, 1.0}, requires_grad);
  auto step = compile(std::vector<Tensor<double>>{w}, [&] { return sum(sqrt(w)); });
  w.mutable_value() = xt::xarray<double>{4.0, -1.0};
  AnomalyModeGuard anomaly(true);
  CHECK_THROWS_WITH_AS(
      step.run(), doctest::Contains("compiled step: op 'sqrt' (op 0 of the step) made NaN or Inf"),
      TapeError);
  // An op that runs through its record (not an elementwise step): a product that overflows.
  Tensor<double> a(xt::xarray<double>{{1.0, 2.0}}, requires_grad);
  Tensor<double> b(xt::xarray<double>(xt::reshape_view(xt::xarray<double>{3.0, 4.0}, {2, 1})));
  auto product = compile(std::vector<Tensor<double>>{a}, [&] { return sum(matmul(a, b)); });
  a.mutable_value() = xt::xarray<double>{{1e200, 1e200}};
  b.mutable_value() = xt::reshape_view(xt::xarray<double>{1e200, 1e200}, {2, 1});
  CHECK_THROWS_WITH_AS(
      product.run(),
      doctest::Contains("compiled step: op 'matmul' (op 0 of the step) made NaN or Inf"),
      TapeError);
}

TEST_CASE("compile_value_and_grad gives what value_and_grad gives, at every point") {
  const auto rosenbrock = [](const std::vector<Tensor<double>>& v) {
    const auto x = v[0], y = v[1];
    return sum(square(1.0 - x) + 100.0 * square(y - square(x)));
  };
  auto compiled = functional::compile_value_and_grad(
      rosenbrock, std::vector<Tensor<double>>{Tensor<double>(0.0), Tensor<double>(0.0)});
  for (const auto& point :
       std::vector<std::pair<double, double>>{{-1.2, 1.0}, {0.5, 0.25}, {2.0, -3.0}}) {
    const std::vector<Tensor<double>> args{Tensor<double>(point.first),
                                           Tensor<double>(point.second)};
    const auto [value, grads] = compiled(args);
    const auto [eager_value, eager_grads] = functional::value_and_grad(rosenbrock, args);
    CHECK(value.value()() == eager_value.value()());
    CHECK(grads[0].value()() == eager_grads[0].value()());
    CHECK(grads[1].value()() == eager_grads[1].value()());
  }
  auto one =
      functional::compile_value_and_grad([](const Tensor<double>& x) { return sum(exp(x) * x); },
                                         Tensor<double>(xt::xarray<double>{0.0, 0.0}));
  const auto [v, g] = one(Tensor<double>(xt::xarray<double>{1.0, -1.0}));
  CHECK(v.value()() == doctest::Approx(std::exp(1.0) - std::exp(-1.0)));
  CHECK(g.value()(0) == doctest::Approx(2.0 * std::exp(1.0)));
  CHECK_THROWS_WITH_AS(one(Tensor<double>(xt::xarray<double>{1.0})),
                       doctest::Contains("argument 0 has shape (1,), compiled for (2,)"),
                       ShapeError);
}

TEST_CASE("compile() and run() refuse what they cannot do, naming it") {
  Tensor<double> w(test::random_array({2, 2}, 11), requires_grad);
  Tensor<double> x(test::random_array({3, 2}, 12));
  SUBCASE("a tensor f read changed shape") {
    auto step = compile(std::vector<Tensor<double>>{w}, [&] { return sum(matmul(x, w)); });
    x.set_value(test::random_array({5, 2}, 13));
    CHECK_THROWS_WITH_AS(step.run(), doctest::Contains("now has shape (5, 2) but had shape (3, 2)"),
                         ShapeError);
  }
  SUBCASE("a tensor f read from outside is gone") {
    auto input = std::make_unique<Tensor<double>>(test::random_array({3, 2}, 14));
    auto step = compile(std::vector<Tensor<double>>{w}, [&] { return sum(matmul(*input, w)); });
    double expected;
    {
      NoGradGuard no_grad;
      expected = sum(matmul(*input, w)).value()();
    }
    CHECK(step.run() == doctest::Approx(expected).epsilon(1e-15));
    input.reset();
    CHECK_THROWS_WITH_AS(step.run(), doctest::Contains("no longer exists outside the step"),
                         TapeError);
  }
  SUBCASE("a once_differentiable custom op") {
    const CustomOp<double> twice(
        "twice",
        [](const std::vector<Tensor<double>>& in) {
          return xt::xarray<double>(2.0 * in[0].value());
        },
        [](const CustomBackwardContext<double>& c) {
          return std::vector{Tensor<double>(xt::xarray<double>(2.0 * c.grad_output().value()))};
        },
        once_differentiable);
    CHECK_THROWS_WITH_AS(
        compile(std::vector<Tensor<double>>{w}, [&] { return sum(twice({w}) * w); }),
        doctest::Contains("'twice' cannot be run again"), TapeError);
    CHECK_FALSE(w.has_grad());  // the failed compile left the gradient as it was
  }
  SUBCASE("a tensor computed outside f from a parameter") {
    Tape outer;
    const auto h = w * 2.0;
    CHECK_THROWS_WITH_AS(compile(std::vector<Tensor<double>>{w}, [&] { return sum(h * w); }),
                         doctest::Contains("reads a tensor computed outside the function"),
                         TapeError);
  }
  SUBCASE("detach() inside f") {
    CHECK_THROWS_WITH_AS(
        compile(std::vector<Tensor<double>>{w}, [&] { return sum(square(w - w.detach())); }),
        doctest::Contains("calls detach()"), TapeError);
  }
  SUBCASE("a custom op whose backward makes a tensor from values") {
    const CustomOp<double> cube(
        "cube",
        [](const std::vector<Tensor<double>>& in) {
          return xt::xarray<double>(xt::pow(in[0].value(), 3.0));
        },
        [](const CustomBackwardContext<double>& c) {
          return std::vector{c.grad_output() * Tensor<double>(xt::xarray<double>(
                                                   3.0 * xt::square(c.input(0).value())))};
        },
        differentiable_backward);  // declared, wrongly: the check below catches it
    CHECK_THROWS_WITH_AS(
        compile(std::vector<Tensor<double>>{w}, [&] { return sum(cube({w})); }),
        doctest::Contains("custom op 'cube': its backward makes a tensor from values"), TapeError);
  }
  SUBCASE("the parameters are gone") {
    auto model = std::make_unique<nn::Linear<double>>(2, 1);
    auto step = compile(model->parameters(), [&] { return sum((*model)(x)); });
    step.run();
    model.reset();
    CHECK_THROWS_WITH_AS(step.run(), doctest::Contains("no longer exists outside the step"),
                         TapeError);
  }
  SUBCASE("no parameters, or none the result depends on") {
    CHECK_THROWS_WITH_AS(compile(std::vector<Tensor<double>>{}, [&] { return sum(w); }),
                         doctest::Contains("no parameters"), ValueError);
    Tensor<double> other(xt::xarray<double>{1.0}, requires_grad);
    CHECK_THROWS_WITH_AS(compile(std::vector<Tensor<double>>{other}, [&] { return sum(w); }),
                         doctest::Contains("does not depend on any of the 1 parameter(s) given"),
                         TapeError);
    CHECK_FALSE(w.has_grad());
  }
  SUBCASE("a parameter's gradient was given another shape") {
    auto step = compile(std::vector<Tensor<double>>{w}, [&] { return sum(matmul(x, w)); });
    step.run();
    w.mutable_grad() = xt::zeros<double>({3});
    CHECK_THROWS_WITH_AS(
        step.run(),
        "compiled step: a parameter of shape (2, 2) holds a gradient of shape (3,); call "
        "zero_grad() first",
        ShapeError);
    // Resized, then forgotten: the step's next gradient goes to a buffer of the right shape.
    w.zero_grad();
    step.run();
    CHECK(w.grad() == eager_gradients({w}, [&] { return sum(matmul(x, w)); })[0]);
  }
  SUBCASE("a gradient copied to the parameter (two parameters share it) was resized") {
    Tensor<double> a(xt::xarray<double>{1.0, 2.0}, requires_grad),
        b(xt::xarray<double>{3.0, 4.0}, requires_grad);
    auto step = compile(std::vector<Tensor<double>>{a, b}, [&] { return sum(a + b); });
    step.run();
    a.mutable_grad() = xt::zeros<double>({5});
    a.zero_grad();
    b.zero_grad();
    step.run();
    CHECK(a.grad() == xt::xarray<double>{1.0, 1.0});
    CHECK(b.grad() == xt::xarray<double>{1.0, 1.0});
  }
  SUBCASE("a result f stored outside was resized") {
    Tensor<double> hidden;
    auto step = compile(std::vector<Tensor<double>>{w}, [&] {
      hidden = matmul(x, w);
      return sum(tanh(hidden));
    });
    step.run();
    hidden.mutable_value() = xt::zeros<double>({1});
    CHECK_THROWS_WITH_AS(
        step.run(),
        "compiled step: the result of op 'matmul', which the step computes, now has shape (1,) but "
        "had shape (3, 2) at compile time; a tensor a step computes must keep its shape while the "
        "step is used",
        TapeError);
  }
  SUBCASE("f returns more than one number") {
    CHECK_THROWS_WITH_AS(compile(std::vector<Tensor<double>>{w}, [&] { return w * 2.0; }),
                         doctest::Contains("must return one number"), ValueError);
  }
  SUBCASE("f does not depend on the parameters") {
    CHECK_THROWS_WITH_AS(compile(std::vector<Tensor<double>>{w}, [&] { return sum(x); }),
                         doctest::Contains("does not depend on any tensor that requires grad"),
                         TapeError);
  }
  SUBCASE("a parameter that is not a leaf requiring grad") {
    CHECK_THROWS_WITH_AS(
        compile(std::vector<Tensor<double>>{x}, [&] { return sum(matmul(x, w)); }),
        doctest::Contains("parameter 0 (shape (3, 2)) is not a leaf that requires grad"),
        ValueError);
  }
}

TEST_CASE_TEMPLATE(
    "compile_sgd_step trains XOR as compile() and optim::SGD do, with the weight updates folded "
    "into their products",
    T, float, double) {
  examples::XorNetwork<T> separate(7, 0.5), folded(7, 0.5);
  auto step =
      compile(separate.model.parameters(), [&] { return separate.loss(separate.forward()); });
  auto sgd_step = compile_sgd_step(folded.model.parameters(), 0.5,
                                   [&] { return folded.loss(folded.forward()); });
  // Each layer's weight gradient is one product: its update is folded in, and that product
  // no longer runs on its own; the biases are updated as optim::SGD does.
  const auto ops = sgd_step.ops();
  CHECK(std::count(ops.begin(), ops.end(), "sgd update (folded into matmul)") == 2);
  CHECK(std::count(ops.begin(), ops.end(), "sgd update") == 2);
  CHECK(sgd_step.size() == step.size() - 2 + 4);
  const T tolerance = std::is_same_v<T, double> ? T(1e-12) : T(1e-5);
  for (int epoch = 0; epoch < 300; ++epoch) {
    const T loss = step.run();
    separate.optimizer.step();
    separate.optimizer.zero_grad();
    const T folded_loss = sgd_step.run();
    REQUIRE(std::abs(folded_loss - loss) <= tolerance * std::max(T(1), std::abs(loss)));
  }
  CHECK(largest_gap(separate.model.parameters(), folded.model.parameters()) <= tolerance);
  for (const auto& p : folded.model.parameters())
    CHECK_FALSE(p.has_grad());  // gradients are not touched
  // The learning rate can change between runs; 0 leaves the weights where they are.
  sgd_step.set_learning_rate(0);
  const auto before = folded.model.parameters()[0].value();
  sgd_step.run();
  CHECK(folded.model.parameters()[0].value() == before);
  CHECK(sgd_step.learning_rate() == 0);
  CHECK_THROWS_WITH_AS(
      sgd_step.set_learning_rate(-0.1),
      "SgdStep::set_learning_rate: the learning rate must be finite and >= 0, got -0.100000",
      ValueError);
  CHECK_THROWS_WITH_AS(
      compile_sgd_step(folded.model.parameters(), std::nan(""),
                       [&] { return folded.loss(folded.forward()); }),
      doctest::Contains("compile_sgd_step: the learning rate must be finite and >= 0, got nan"),
      ValueError);
}

TEST_CASE(
    "compile_sgd_step does not fold an update whose product reads a parameter, and then equals "
    "optim::SGD to the bit") {
  // d/dW sum(W W) = (W W)' products that read W itself: folding W's update into them would
  // read a half-updated W. A weight used twice has a sum for its gradient: not one product.
  const xt::xarray<double> w0 = test::random_array({3, 3}, 5, -0.5, 0.5);
  const xt::xarray<double> v0 = test::random_array({3, 2}, 6, -0.5, 0.5);
  Tensor<double> w1(w0, requires_grad), v1(v0, requires_grad), w2(w0, requires_grad),
      v2(v0, requires_grad);
  const auto f = [](const Tensor<double>& w, const Tensor<double>& v) {
    return sum(matmul(w, w)) + sum(square(matmul(w, v)));
  };
  auto step = compile(std::vector<Tensor<double>>{w1, v1}, [&] { return f(w1, v1); });
  optim::SGD<double> sgd({w1, v1}, 0.05);
  auto sgd_step =
      compile_sgd_step(std::vector<Tensor<double>>{w2, v2}, 0.05, [&] { return f(w2, v2); });
  const auto ops = sgd_step.ops();
  // w: its gradient is a sum; v: its gradient w^T (...) reads w.
  CHECK(std::count(ops.begin(), ops.end(), "sgd update") == 2);
  CHECK(std::count(ops.begin(), ops.end(), "sgd update (folded into matmul)") == 0);
  for (int i = 0; i < 20; ++i) {
    const double loss = step.run();
    sgd.step();
    sgd.zero_grad();
    REQUIRE(sgd_step.run() == loss);
  }
  CHECK(w2.value() == w1.value());
  CHECK(v2.value() == v1.value());
}

TEST_CASE("a tensor read by two compiled steps and dropped by the caller stops both") {
  Tensor<double> w(xt::xarray<double>{1.0, 2.0}, requires_grad);
  auto x = std::make_unique<Tensor<double>>(xt::xarray<double>{3.0, 4.0});
  auto a = std::make_unique<Compiled<double>>(
      compile(std::vector<Tensor<double>>{w}, [&] { return sum(w * *x); }));
  Compiled<double> b = compile(std::vector<Tensor<double>>{w}, [&] { return sum(w + *x); });
  CHECK(a->run() == 11.0);
  CHECK(b.run() == 10.0);
  x->mutable_value() = xt::xarray<double>{5.0, 6.0};
  CHECK(a->run() == 17.0);
  x.reset();  // only the two steps hold it now: its value can never change again
  CHECK_THROWS_WITH_AS(a->run(), doctest::Contains("no longer exists outside the step"), TapeError);
  CHECK_THROWS_WITH_AS(b.run(), doctest::Contains("no longer exists outside the step"), TapeError);
  a.reset();  // and when one of them is gone, the other still knows
  CHECK_THROWS_WITH_AS(b.run(), doctest::Contains("no longer exists outside the step"), TapeError);
  // A copy of a step shares its plan: it holds the tensor once, not twice.
  Tensor<double> y(xt::xarray<double>{1.0, 1.0});
  Compiled<double> c = compile(std::vector<Tensor<double>>{w}, [&] { return sum(w * y); });
  const Compiled<double> c_copy = c;
  CHECK(c.run() == 3.0);
  {
    Tensor<double> held = y;
    y = Tensor<double>(xt::xarray<double>{0.0, 0.0});
    CHECK(c.run() == 3.0);  // `held` still holds the old tensor
  }
  CHECK_THROWS_WITH_AS(c.run(), doctest::Contains("no longer exists outside the step"), TapeError);
}

TEST_CASE_TEMPLATE(
    "a Fashion-MNIST-shaped MLP: compiled steps, one per batch size, train exactly as eager steps",
    T, float, double) {
  // The fashion_mnist demo's network and loss (784-100-10 ReLU, softmax cross-entropy with
  // one-hot targets, SGD), on random images: batches of 16 and a last one of 5, the batch
  // written into the step's input tensors as the demo does.
  const auto make = [] {
    Generator random(21);
    return nn::MLP<T>({784, 100, 10}, nn::Activation::ReLU,
                      nn::MLPOptions()
                          .output_activation(nn::Activation::Identity)
                          .linear(nn::LinearOptions().generator(random)));
  };
  nn::MLP<T> eager = make(), compiled = make();
  optim::SGD<T> eager_sgd(eager.parameters(), 0.1), compiled_sgd(compiled.parameters(), 0.1);
  const xt::xarray<T> images = xt::cast<T>(test::random_array({37, 784}, 22, 0, 1));
  std::vector<std::size_t> labels(37);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = (i * 7) % 10;
  struct Step {
    Tensor<T> x, y;
    std::unique_ptr<Compiled<T>> run;
  };
  std::map<std::size_t, Step> steps;
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (std::size_t first = 0; first < labels.size(); first += 16) {
      const std::size_t n = std::min<std::size_t>(16, labels.size() - first);
      const xt::xarray<T> batch = xt::view(images, xt::range(first, first + n), xt::all());
      xt::xarray<T> one_hot = xt::zeros<T>({n, std::size_t{10}});
      for (std::size_t i = 0; i < n; ++i) one_hot(i, labels[first + i]) = T(1);
      T eager_loss;
      {
        Tape tape;
        const auto loss =
            nn::cross_entropy_with_probabilities(eager(Tensor<T>(batch)), Tensor<T>(one_hot));
        eager_loss = loss.value()();
        loss.backward();
      }
      eager_sgd.step();
      eager_sgd.zero_grad();
      auto [at, fresh] = steps.try_emplace(n, Step{Tensor<T>(batch), Tensor<T>(one_hot), nullptr});
      Step& step = at->second;
      if (fresh) {
        step.run = std::make_unique<Compiled<T>>(compile(compiled.parameters(), [&] {
          return nn::cross_entropy_with_probabilities(compiled(step.x), step.y);
        }));
      } else {
        step.x.mutable_value() = batch;
        step.y.mutable_value() = one_hot;
      }
      REQUIRE(step.run->run() == eager_loss);
      compiled_sgd.step();
      compiled_sgd.zero_grad();
    }
  }
  CHECK(steps.size() == 2);
  CHECK(largest_gap(eager.parameters(), compiled.parameters()) == T(0));
}

TEST_CASE("a compiled step's steady state allocates nothing and makes no node") {
  examples::XorNetwork<double> net(7, 0.5);
  auto step = compile(net.model.parameters(), [&] { return net.loss(net.forward()); });
  auto sgd_step =
      compile_sgd_step(net.model.parameters(), 0.5, [&] { return net.loss(net.forward()); });
  const auto train = [&] {
    for (int epoch = 0; epoch < 50; ++epoch) {
      step.run();
      net.optimizer.step();
      net.optimizer.zero_grad();
      sgd_step.run();
    }
  };
  train();  // the first runs hand the gradients to the parameters
  const std::size_t nodes = live_node_count();
  const std::size_t heap = mallinfo2().uordblks;
  const long before = allocations.load();
  train();
  CHECK(allocations.load() == before);  // not one operator new in 50 epochs
  CHECK(live_node_count() == nodes);
  CHECK(mallinfo2().uordblks == heap);
  const long eager_before = allocations.load();
  {
    Tape tape;
    net.loss(net.forward()).backward();  // an eager step: the count sees the library's news
  }
  CHECK(allocations.load() > eager_before + 20);
  net.optimizer.zero_grad();
  // A gradient the caller keeps from one run to the next is not written over: the step then
  // needs a new buffer for it, and says so by a new node.
  step.run();
  const Tensor<double> kept = net.model.parameters()[0].grad_tensor();
  net.optimizer.zero_grad();
  CHECK(live_node_count() == nodes);
  step.run();
  CHECK(live_node_count() == nodes + 1);
  net.optimizer.zero_grad();
}
