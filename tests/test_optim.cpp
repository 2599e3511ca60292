// Optimizers: the first updates against their formulas done by hand here, convergence on a
// quadratic bowl and on Rosenbrock, schedules, clipping and misuse.
#include <array>
#include <cmath>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;
using Vec = std::array<double, 3>;

namespace {

// L(p) = sum(c p^2 + d p): gradient 2 c p + d, minimum at -d / (2c).
const Vec c = {0.5, 1.5, 2.0};
const Vec d = {0.3, -0.2, 0.1};
const Vec start = {1.0, -2.0, 0.5};

Tensor<double> bowl(const Tensor<double>& p) {
  const Tensor<double> tc(Array{c[0], c[1], c[2]}), td(Array{d[0], d[1], d[2]});
  return sum(tc * square(p) + td * p);
}

Vec gradient(const Vec& p) {
  Vec g;
  for (int i = 0; i < 3; ++i) g[i] = 2 * c[i] * p[i] + d[i];
  return g;
}

// Runs three steps of an optimizer made by `make` and returns the parameters after each.
template <class Make>
std::vector<Vec> three_steps(Make make) {
  Tensor<double> p(Array{start[0], start[1], start[2]}, requires_grad);
  auto optimizer = make(std::vector{p});
  std::vector<Vec> trace;
  for (int step = 0; step < 3; ++step) {
    {
      Tape tape;
      bowl(p).backward();
    }
    optimizer.step();
    optimizer.zero_grad();
    trace.push_back({p.value()(0), p.value()(1), p.value()(2)});
  }
  return trace;
}

void check_trace(const std::vector<Vec>& got, const std::vector<Vec>& expected) {
  REQUIRE(got.size() == expected.size());
  for (std::size_t s = 0; s < got.size(); ++s) {
    for (int i = 0; i < 3; ++i) {
      INFO("step ", s + 1, " element ", i);
      CHECK(got[s][i] == doctest::Approx(expected[s][i]).epsilon(1e-14));
    }
  }
}

}  // namespace

TEST_CASE("SGD's first three updates follow the formula: plain, momentum, Nesterov, decay") {
  {
    Vec p = start;
    std::vector<Vec> expected;
    for (int s = 0; s < 3; ++s) {
      const Vec g = gradient(p);
      for (int i = 0; i < 3; ++i) p[i] -= 0.1 * g[i];
      expected.push_back(p);
    }
    check_trace(three_steps([](auto ps) { return optim::SGD<double>(ps, 0.1); }), expected);
  }
  for (bool nesterov : {false, true}) {
    const double lr = 0.05, mu = 0.9, damp = nesterov ? 0.0 : 0.2, wd = 0.01;
    Vec p = start, b{};
    std::vector<Vec> expected;
    for (int s = 0; s < 3; ++s) {
      Vec g = gradient(p);
      for (int i = 0; i < 3; ++i) {
        g[i] += wd * p[i];
        b[i] = s == 0 ? g[i] : mu * b[i] + (1 - damp) * g[i];
        p[i] -= lr * (nesterov ? g[i] + mu * b[i] : b[i]);
      }
      expected.push_back(p);
    }
    INFO("nesterov ", nesterov);
    check_trace(
        three_steps([&](auto ps) {
          return optim::SGD<double>(
              ps, lr,
              optim::SGDOptions().momentum(mu).dampening(damp).nesterov(nesterov).weight_decay(wd));
        }),
        expected);
  }
}

TEST_CASE("Adagrad's first three updates follow the formula") {
  const double lr = 0.2, decay = 0.05, eps = 1e-10, init = 0.1;
  Vec p = start, s{init, init, init};
  std::vector<Vec> expected;
  for (int t = 1; t <= 3; ++t) {
    const Vec g = gradient(p);
    const double rate = lr / (1 + (t - 1) * decay);
    for (int i = 0; i < 3; ++i) {
      s[i] += g[i] * g[i];
      p[i] -= rate * g[i] / (std::sqrt(s[i]) + eps);
    }
    expected.push_back(p);
  }
  check_trace(three_steps([&](auto ps) {
                return optim::Adagrad<double>(
                    ps, lr, optim::AdagradOptions().lr_decay(decay).initial_accumulator(init));
              }),
              expected);
}

TEST_CASE("RMSprop's first three updates follow the formula, centered with momentum") {
  for (bool centered : {false, true}) {
    const double lr = 0.01, alpha = 0.9, eps = 1e-8, mu = centered ? 0.5 : 0.0;
    Vec p = start, v{}, m{}, b{};
    std::vector<Vec> expected;
    for (int t = 0; t < 3; ++t) {
      const Vec g = gradient(p);
      for (int i = 0; i < 3; ++i) {
        v[i] = alpha * v[i] + (1 - alpha) * g[i] * g[i];
        m[i] = alpha * m[i] + (1 - alpha) * g[i];
        const double denominator = std::sqrt(centered ? v[i] - m[i] * m[i] : v[i]) + eps;
        b[i] = mu * b[i] + g[i] / denominator;
        p[i] -= lr * (mu > 0 ? b[i] : g[i] / denominator);
      }
      expected.push_back(p);
    }
    INFO("centered ", centered);
    check_trace(three_steps([&](auto ps) {
                  return optim::RMSprop<double>(
                      ps, lr, optim::RMSpropOptions().alpha(alpha).centered(centered).momentum(mu));
                }),
                expected);
  }
}

TEST_CASE("Adam's first three updates include the bias correction; AdamW decays decoupled") {
  struct Variant {
    bool decoupled, amsgrad;
    double decay;
  };
  for (auto variant : {Variant{false, false, 0.0}, Variant{false, false, 0.01},
                       Variant{false, true, 0.0}, Variant{true, false, 0.1}}) {
    const double lr = 0.1, b1 = 0.8, b2 = 0.95, eps = 1e-8;
    Vec p = start, m{}, v{}, vmax{};
    std::vector<Vec> expected;
    for (int t = 1; t <= 3; ++t) {
      Vec g = gradient(p);
      for (int i = 0; i < 3; ++i) {
        if (variant.decoupled) {
          p[i] *= 1 - lr * variant.decay;
        } else {
          g[i] += variant.decay * p[i];
        }
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        vmax[i] = std::max(vmax[i], v[i]);
        const double m_hat = m[i] / (1 - std::pow(b1, t));
        const double v_hat = (variant.amsgrad ? vmax[i] : v[i]) / (1 - std::pow(b2, t));
        p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
      }
      expected.push_back(p);
    }
    INFO("decoupled ", variant.decoupled, " amsgrad ", variant.amsgrad, " decay ", variant.decay);
    const auto options = optim::AdamOptions()
                             .betas(b1, b2)
                             .eps(eps)
                             .weight_decay(variant.decay)
                             .amsgrad(variant.amsgrad);
    if (variant.decoupled) {
      check_trace(three_steps([&](auto ps) { return optim::AdamW<double>(ps, lr, options); }),
                  expected);
    } else {
      check_trace(three_steps([&](auto ps) { return optim::Adam<double>(ps, lr, options); }),
                  expected);
    }
  }
}

namespace {

// Trains p on `loss` with a first-order optimizer for at most `budget` steps; returns the
// steps taken until |p - target| < tolerance (or budget + 1).
template <class Optimizer, class Loss>
int steps_to_converge(Optimizer& optimizer, Tensor<double>& p, Loss loss, const Array& target,
                      int budget, double tolerance) {
  for (int step = 1; step <= budget; ++step) {
    {
      Tape tape;
      loss(p).backward();
    }
    optimizer.step();
    optimizer.zero_grad();
    if (xt::amax(xt::abs(p.value() - target))() < tolerance) return step;
  }
  return budget + 1;
}

Tensor<double> rosenbrock(const Tensor<double>& p) {
  const auto x = narrow(p, 0, 0, 1);
  const auto y = narrow(p, 0, 1, 1);
  return sum(square(1.0 - x) + 100.0 * square(y - square(x)));
}

}  // namespace

TEST_CASE("every optimizer converges on a quadratic bowl") {
  const Array target = {-d[0] / (2 * c[0]), -d[1] / (2 * c[1]), -d[2] / (2 * c[2])};
  auto fresh = [] { return Tensor<double>(Array{start[0], start[1], start[2]}, requires_grad); };
  {
    auto p = fresh();
    optim::SGD<double> o({p}, 0.1);
    CHECK(steps_to_converge(o, p, bowl, target, 1000, 1e-8) <= 1000);
  }
  {
    auto p = fresh();
    optim::SGD<double> o({p}, 0.05, optim::SGDOptions().momentum(0.9).nesterov(true));
    CHECK(steps_to_converge(o, p, bowl, target, 1000, 1e-8) <= 1000);
  }
  {
    auto p = fresh();
    optim::Adagrad<double> o({p}, 0.5);
    CHECK(steps_to_converge(o, p, bowl, target, 5000, 1e-6) <= 5000);
  }
  {
    auto p = fresh();
    optim::RMSprop<double> o({p}, 0.01);
    CHECK(steps_to_converge(o, p, bowl, target, 5000, 1e-2) <= 5000);
  }
  {
    auto p = fresh();
    optim::Adam<double> o({p}, 0.05);
    CHECK(steps_to_converge(o, p, bowl, target, 5000, 1e-6) <= 5000);
  }
  {
    auto p = fresh();
    optim::LBFGS<double> o({p}, optim::LBFGSOptions().line_search(optim::LineSearch::none));
    o.step([&] { return bowl(p); });
    CHECK(xt::amax(xt::abs(p.value() - target))() < 1e-6);
  }
}

TEST_CASE("Newton solves a quadratic in one step") {
  Tensor<double> p(Array{start[0], start[1], start[2]}, requires_grad);
  optim::Newton<double> newton({p});
  const double before = newton.step([&] { return bowl(p); });
  CHECK(before ==
        doctest::Approx(bowl(Tensor<double>(Array{start[0], start[1], start[2]})).item()));
  for (int i = 0; i < 3; ++i)
    CHECK(p.value()(i) == doctest::Approx(-d[i] / (2 * c[i])).epsilon(1e-12));
  CHECK(newton.last_damping() == 0);
}

TEST_CASE(
    "Rosenbrock from (-1.5, 2): L-BFGS and Newton in few iterations, Adam and momentum in a "
    "budget") {
  const Array minimum = {1.0, 1.0};
  for (auto search : {optim::LineSearch::strong_wolfe, optim::LineSearch::backtracking}) {
    Tensor<double> p(Array{-1.5, 2.0}, requires_grad);
    optim::LBFGS<double> lbfgs({p}, optim::LBFGSOptions()
                                        .max_iterations(200)
                                        .max_evaluations(400)
                                        .tolerance_grad(1e-12)
                                        .tolerance_change(1e-14)
                                        .line_search(search));
    lbfgs.step([&] { return rosenbrock(p); });
    INFO("line search ", static_cast<int>(search), ": ", lbfgs.evaluations(), " evaluations");
    CHECK(xt::amax(xt::abs(p.value() - minimum))() < 1e-4);
    CHECK(lbfgs.evaluations() < 100);  // 53 (strong Wolfe) and 56 (backtracking) when written
  }
  {
    Tensor<double> p(Array{-1.5, 2.0}, requires_grad);
    optim::Newton<double> newton({p});
    int steps = 0;
    while (steps < 10 && xt::amax(xt::abs(p.value() - minimum))() >= 1e-4) {
      newton.step([&] { return rosenbrock(p); });
      ++steps;
    }
    INFO("Newton steps: ", steps);
    CHECK(steps < 10);  // 6 when written
  }
  {
    Tensor<double> p(Array{-1.5, 2.0}, requires_grad);
    optim::Adam<double> adam({p}, 0.02);
    const int steps = steps_to_converge(adam, p, rosenbrock, minimum, 5000, 1e-4);
    INFO("Adam steps: ", steps);
    CHECK(steps <= 5000);  // 2734 when written
  }
  {
    Tensor<double> p(Array{-1.5, 2.0}, requires_grad);
    optim::SGD<double> momentum({p}, 2e-4, optim::SGDOptions().momentum(0.9));
    const int steps = steps_to_converge(momentum, p, rosenbrock, minimum, 20000, 1e-4);
    INFO("momentum steps: ", steps);
    CHECK(steps <= 20000);  // 11494 when written
  }
}

TEST_CASE("learning-rate schedules") {
  Tensor<double> p(1.0, requires_grad);
  optim::SGD<double> sgd({p}, 1.0);
  optim::StepLR step_lr(sgd, 2, 0.5);
  std::vector<double> rates;
  for (int e = 0; e < 5; ++e) {
    step_lr.step();
    rates.push_back(sgd.learning_rate());
  }
  CHECK(rates == std::vector{1.0, 0.5, 0.5, 0.25, 0.25});

  sgd.set_learning_rate(2.0);
  optim::ExponentialLR exponential(sgd, 0.5);
  exponential.step();
  exponential.step();
  CHECK(sgd.learning_rate() == 0.5);

  sgd.set_learning_rate(1.0);
  optim::CosineAnnealingLR cosine(sgd, 4, 0.1);
  cosine.step();
  CHECK(sgd.learning_rate() == doctest::Approx(0.1 + 0.9 * (1 + std::cos(M_PI / 4)) / 2));
  cosine.step();
  cosine.step();
  cosine.step();
  CHECK(sgd.learning_rate() == doctest::Approx(0.1));

  sgd.set_learning_rate(1.0);
  optim::ReduceLROnPlateau plateau(sgd, optim::ReduceLROnPlateauOptions().patience(2).factor(0.5));
  CHECK_FALSE(plateau.step(10));
  CHECK_FALSE(plateau.step(9));    // better
  CHECK_FALSE(plateau.step(9));    // 1 bad
  CHECK_FALSE(plateau.step(9.5));  // 2 bad
  CHECK(plateau.step(9.2));        // 3 bad > patience: reduce
  CHECK(sgd.learning_rate() == 0.5);
}

TEST_CASE("clip_grad_norm scales all gradients together") {
  Tensor<double> a(Array{3.0}, requires_grad), b(Array{4.0}, requires_grad);
  {
    Tape tape;
    (sum(a * a) / 2.0 + sum(b * b) / 2.0).backward();  // gradients 3 and 4: norm 5
  }
  std::vector<Tensor<double>> params{a, b};
  CHECK(optim::clip_grad_norm(params, 10.0) == doctest::Approx(5.0));
  CHECK(a.grad()(0) == 3.0);
  CHECK(optim::clip_grad_norm(params, 1.0) == doctest::Approx(5.0));
  CHECK(a.grad()(0) == doctest::Approx(0.6).epsilon(1e-6));
  CHECK(b.grad()(0) == doctest::Approx(0.8).epsilon(1e-6));
  CHECK_THROWS_AS(optim::clip_grad_norm(params, -1.0), ValueError);
}

TEST_CASE("optimizers refuse misuse with clear messages") {
  Tensor<double> constant(Array{1.0});
  CHECK_THROWS_WITH_AS(optim::SGD<double>({constant}, 0.1),
                       doctest::Contains("does not require grad"), ValueError);
  Tensor<double> p(Array{1.0}, requires_grad);
  CHECK_THROWS_WITH_AS(optim::SGD<double>({p}, -0.1),
                       doctest::Contains("SGD: lr must be a finite number >= 0, got -0.1"),
                       ValueError);
  CHECK_THROWS_AS(optim::Adam<double>({p}, std::nan("")), ValueError);
  CHECK_THROWS_AS(optim::SGD<double>({p, p}, 0.1), ValueError);
  CHECK_THROWS_AS(optim::SGD<double>({p}, 0.1, optim::SGDOptions().nesterov(true)), ValueError);
  optim::SGD<double> sgd({p}, 0.1);
  CHECK_THROWS_AS(sgd.set_learning_rate(INFINITY), ValueError);
  optim::LBFGS<double> lbfgs({p});
  CHECK_THROWS_WITH_AS(lbfgs.step(), doctest::Contains("call step(loss)"), TapeError);
  optim::Newton<double> newton({p});
  CHECK_THROWS_AS(newton.step(), TapeError);
  Tensor<double> pair(Array{1.0, 2.0}, requires_grad);
  optim::LBFGS<double> lbfgs_pair({pair});
  CHECK_THROWS_WITH_AS(lbfgs_pair.step([&] { return pair * 2.0; }),
                       doctest::Contains("single value"), ShapeError);
  Tensor<double> big(xt::xarray<double>(xt::zeros<double>({100, 100})), requires_grad);
  CHECK_THROWS_WITH_AS(optim::Newton<double>({big}), doctest::Contains("use LBFGS"), ValueError);
}

TEST_CASE("step() records nothing and bumps versions, so a stale tape refuses backward") {
  Tensor<double> p(Array{1.0, 2.0}, requires_grad);
  optim::SGD<double> sgd({p}, 0.1);
  Tape tape;
  const auto loss = sum(square(p));
  loss.backward();
  const std::size_t records = tape.size();
  sgd.step();
  CHECK(tape.size() == records);
  CHECK_THROWS_AS(loss.backward(), TapeError);
}

TEST_CASE("L-BFGS never steps into NaN or uphill") {
  // x ln x from x = 1: the first trial step lands on x = 0 (NaN loss); the minimum is 1/e.
  for (auto search : {optim::LineSearch::strong_wolfe, optim::LineSearch::backtracking,
                      optim::LineSearch::none}) {
    Tensor<double> x(Array{1.0}, requires_grad);
    optim::LBFGS<double> lbfgs({x}, optim::LBFGSOptions().line_search(search).max_iterations(50));
    const auto loss = [&] { return sum(x * log(x)); };
    lbfgs.step(loss);
    INFO("line search ", static_cast<int>(search), ", x = ", x.value()(0));
    CHECK(std::isfinite(x.value()(0)));
    CHECK(x.value()(0) > 0);
    if (search != optim::LineSearch::none)
      CHECK(x.value()(0) == doctest::Approx(1 / std::exp(1.0)).epsilon(1e-6));
  }
  // Out of evaluations in the middle of a backtracking search: keep the old point.
  Tensor<double> x(Array{1.0}, requires_grad);
  optim::LBFGS<double> one({x}, optim::LBFGSOptions()
                                    .line_search(optim::LineSearch::backtracking)
                                    .max_iterations(1)
                                    .max_evaluations(2));
  one.step([&] { return sum(x * log(x)); });
  CHECK(x.value()(0) == 1.0);
  Tensor<double> bad(Array{-1.0}, requires_grad);
  optim::LBFGS<double> start_nan({bad});
  CHECK_THROWS_WITH_AS(start_nan.step([&] { return sum(log(bad)); }),
                       doctest::Contains("not finite"), ValueError);
}

TEST_CASE("ReduceLROnPlateau ignores a non-finite metric") {
  Tensor<double> p(1.0, requires_grad);
  optim::SGD<double> sgd({p}, 1.0);
  optim::ReduceLROnPlateau plateau(sgd, optim::ReduceLROnPlateauOptions().patience(1).factor(0.5));
  CHECK_FALSE(plateau.step(std::nan("")));
  CHECK_FALSE(plateau.step(5.0));  // the first finite metric is the best
  CHECK_FALSE(plateau.step(4.0));  // improves
  CHECK_FALSE(plateau.step(4.0));  // 1 bad
  CHECK(plateau.step(4.0));        // 2 bad > patience
  CHECK(sgd.learning_rate() == 0.5);
}

TEST_CASE("a parameter's first update starts its state, as in PyTorch, even when it comes late") {
  // Call 1: only a has a gradient. Call 2: both. b's update at call 2 is its first.
  const double ga = 2.0, gb = -3.0, lr = 0.1;
  auto give = [](Tensor<double>& p, double g) {
    Tape tape;
    sum(p * g).backward();
  };
  {  // SGD with momentum and dampening: the buffer starts at g itself, not (1 - dampening) g.
    Tensor<double> a(Array{1.0}, requires_grad), b(Array{1.0}, requires_grad);
    optim::SGD<double> sgd({a, b}, lr, optim::SGDOptions().momentum(0.9).dampening(0.5));
    give(a, ga);
    sgd.step();
    sgd.zero_grad();
    give(a, ga);
    give(b, gb);
    sgd.step();
    CHECK(b.value()(0) == doctest::Approx(1.0 - lr * gb).epsilon(1e-15));
    const double a_expected = 1.0 - lr * ga - lr * (0.9 * ga + 0.5 * ga);
    CHECK(a.value()(0) == doctest::Approx(a_expected).epsilon(1e-15));
  }
  {  // Adam: b's bias correction uses t = 1 at its first update, so the step is lr g / (|g| + eps).
    Tensor<double> a(Array{1.0}, requires_grad), b(Array{1.0}, requires_grad);
    optim::Adam<double> adam({a, b}, lr);
    give(a, ga);
    adam.step();
    adam.zero_grad();
    give(a, ga);
    give(b, gb);
    adam.step();
    CHECK(b.value()(0) == doctest::Approx(1.0 - lr * gb / (std::abs(gb) + 1e-8)).epsilon(1e-15));
  }
  {  // Adagrad with lr_decay: b's first update has t = 1, so no decay yet.
    Tensor<double> a(Array{1.0}, requires_grad), b(Array{1.0}, requires_grad);
    optim::Adagrad<double> adagrad({a, b}, lr, optim::AdagradOptions().lr_decay(0.5));
    give(a, ga);
    adagrad.step();
    adagrad.zero_grad();
    give(a, ga);
    give(b, gb);
    adagrad.step();
    CHECK(b.value()(0) == doctest::Approx(1.0 - lr * gb / (std::abs(gb) + 1e-10)).epsilon(1e-15));
    const double a_after_first = 1.0 - lr * ga / (std::abs(ga) + 1e-10);
    const double a_expected = a_after_first - lr / 1.5 * ga / (std::sqrt(2 * ga * ga) + 1e-10);
    CHECK(a.value()(0) == doctest::Approx(a_expected).epsilon(1e-15));
  }
}

TEST_CASE("SGD refuses NaN settings; ReduceLROnPlateau never raises the rate and checks min_lr") {
  Tensor<double> p(Array{1.0}, requires_grad);
  CHECK_THROWS_WITH_AS(optim::SGD<double>({p}, 0.1, optim::SGDOptions().momentum(std::nan(""))),
                       doctest::Contains("SGD: momentum must be a finite number >= 0, got nan"),
                       ValueError);
  CHECK_THROWS_AS(optim::SGD<double>({p}, 0.1, optim::SGDOptions().weight_decay(std::nan(""))),
                  ValueError);

  optim::SGD<double> sgd({p}, 0.001);
  optim::ReduceLROnPlateau plateau(sgd, optim::ReduceLROnPlateauOptions().patience(0).min_lr(0.01));
  CHECK_FALSE(plateau.step(1.0));
  CHECK_FALSE(plateau.step(1.0));  // 1 bad > patience: a reduction, but 0.001 is below min_lr
  CHECK(sgd.learning_rate() == 0.001);
  CHECK_THROWS_AS(optim::ReduceLROnPlateau(sgd, optim::ReduceLROnPlateauOptions().min_lr(-1)),
                  ValueError);
  CHECK_THROWS_AS(optim::ReduceLROnPlateau(sgd, optim::ReduceLROnPlateauOptions().min_lr(INFINITY)),
                  ValueError);
}

TEST_CASE("L-BFGS's strong-Wolfe search, out of doublings, keeps the last point it checked") {
  // f = -x falls forever, so the search doubles the step (1, 2, 4, ..., 2^24) without a
  // bracket; past x = 2e7 the loss is NaN, and the 26th trial, 2^25, lands there.
  Tensor<double> x(Array{0.0}, requires_grad);
  optim::LBFGS<double> lbfgs({x}, optim::LBFGSOptions().max_iterations(1).max_evaluations(100));
  lbfgs.step([&] { return sum(-x + 0.0 * log(2e7 - x)); });
  CHECK(x.value()(0) == 16777216.0);
}

TEST_CASE("ReduceLROnPlateau skips a reduction below eps, as PyTorch does, and checks settings") {
  Tensor<double> p(Array{1.0}, requires_grad);
  optim::SGD<double> sgd({p}, 1e-8);
  optim::ReduceLROnPlateau plateau(sgd, optim::ReduceLROnPlateauOptions().patience(0));
  CHECK_FALSE(plateau.step(1.0));
  CHECK_FALSE(plateau.step(1.0));  // 1e-8 -> 1e-9 is a change of 9e-9 < eps = 1e-8
  CHECK(sgd.learning_rate() == 1e-8);
  using Options = optim::ReduceLROnPlateauOptions;
  CHECK_THROWS_WITH_AS(optim::ReduceLROnPlateau(sgd, Options().threshold(std::nan(""))),
                       doctest::Contains("threshold"), ValueError);
  CHECK_THROWS_AS(optim::ReduceLROnPlateau(sgd, Options().eps(-1)), ValueError);
  CHECK_THROWS_WITH_AS(optim::ReduceLROnPlateau(sgd, Options().factor(2)),
                       doctest::Contains("got 2"), ValueError);
}

TEST_CASE("Newton on a singular Hessian damps a rounding-noise pivot instead of stepping to 1e12") {
  // (x + y)^2 + 0.001 (x - y): H = [[2, 2], [2, 2]] is singular, and its Cholesky pivot for
  // the second row is rounding noise. Accepting it gave a step of 4.5e12.
  for (const Vec& from : {Vec{1.0, 2.0, 0}, Vec{0.3, -0.7, 0}, Vec{-1.1, 0.1, 0}}) {
    Tensor<double> p(Array{from[0], from[1]}, requires_grad);
    optim::Newton<double> newton({p});
    const auto loss = [&] {
      const auto x = narrow(p, 0, 0, 1), y = narrow(p, 0, 1, 1);
      return sum(square(x + y) + 0.001 * (x - y));
    };
    const double before = newton.step(loss);
    const double step =
        std::max(std::abs(p.value()(0) - from[0]), std::abs(p.value()(1) - from[1]));
    const double after = loss().item();
    INFO("from (", from[0], ", ", from[1], "): step ", step, ", loss ", before, " -> ", after,
         ", damping ", newton.last_damping());
    CHECK(std::isfinite(step));
    CHECK(step < 1e6);
    CHECK(after <= before);
    CHECK(after > -1e3);  // the loss falls along x - y, but not by a rounding-noise step
    CHECK(newton.last_damping() > 0);
  }
}

TEST_CASE("Newton<float> judges pivots by float's rounding, not double's") {
  // (0.1 x + 0.3 y)^2 + 0.001 (x - y): singular, computed in float.
  Tensor<float> p(xt::xarray<float>{1.0f, 2.0f}, requires_grad);
  optim::Newton<float> newton({p});
  const auto loss = [&] {
    const auto x = narrow(p, 0, 0, 1), y = narrow(p, 0, 1, 1);
    return sum(square(x * 0.1f + y * 0.3f) + (x - y) * 0.001f);
  };
  newton.step(loss);
  const double step = std::max(std::abs(p.value()(0) - 1.0), std::abs(p.value()(1) - 2.0));
  INFO("step ", step, ", damping ", newton.last_damping());
  CHECK(newton.last_damping() > 0);
  CHECK(step < 1e6);
}

TEST_CASE("clip_grad_norm: inf only measures, 0 zeroes, and a float gradient is scaled in double") {
  // Gradients set through a recorded identity: g = the seed.
  const auto with_gradient = [](auto values) {
    using T = typename decltype(values)::value_type;
    Tensor<T> p(decltype(values)(xt::zeros<T>(values.shape())), requires_grad);
    Tape tape;
    (p * 1.0).backward(Tensor<T>(values));
    return std::vector<Tensor<T>>{p};
  };
  auto params = with_gradient(Array{3.0, 4.0});
  CHECK(optim::clip_grad_norm(params, INFINITY) == 5.0);
  CHECK(params[0].grad() == Array{3.0, 4.0});
  CHECK(optim::clip_grad_norm(params, 0.0) == 5.0);
  CHECK(params[0].grad() == Array{0.0, 0.0});
  // (3e38, 1) to norm 1e-8: the scale 3.3e-47 is below float's range, the results are not.
  auto floats = with_gradient(xt::xarray<float>{3e38f, 1e30f});
  optim::clip_grad_norm(floats, 1e-8);
  CHECK(floats[0].grad()(0) == doctest::Approx(1e-8).epsilon(1e-5));
  CHECK(floats[0].grad()(1) == doctest::Approx(1e-8 / 3e8).epsilon(1e-5));
}

TEST_CASE("Newton names a NaN or infinite loss, gradient or Hessian, and does not move") {
  Tensor<double> p(Array{1.0, 2.0}, requires_grad);
  optim::Newton<double> newton({p});
  const Array start_value = p.value();
  const auto message = [&](const optim::Newton<double>::LossFunction& loss) {
    try {
      newton.step(loss);
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no ValueError");
  };
  // A NaN loss with a finite gradient and Hessian (the NaN is a constant).
  const Tensor<double> nan_constant(Array{std::nan("")});
  std::string m = message([&] { return sum(square(p)) + sum(nan_constant); });
  CHECK_MESSAGE(m.find("Newton: the loss is NaN") != std::string::npos, m);
  // sqrt below 0: the loss, gradient and Hessian are all NaN.
  m = message([&] { return sum(sqrt(p - 3.0)); });
  CHECK_MESSAGE(m.find("Newton: the loss is NaN") != std::string::npos, m);
  // A finite loss with a NaN gradient: x sqrt(x) at x = 0 gives 0 * inf in the product rule.
  const Tensor<double> shift(start_value);
  m = message([&] { return sum((p - shift) * sqrt(p - shift)); });
  CHECK_MESSAGE(m.find("Newton: the gradient is NaN") != std::string::npos, m);
  // A finite loss and gradient with an infinite Hessian: 1e308 x^2 at x = 1e-200.
  Tensor<double> tiny(Array{1e-200}, requires_grad);
  optim::Newton<double> at_tiny({tiny});
  try {
    at_tiny.step([&] { return sum(square(tiny)) * 1e308; });
    FAIL("no error");
  } catch (const ValueError& e) {
    m = e.what();
  }
  CHECK_MESSAGE(m.find("Newton: the Hessian is inf") != std::string::npos, m);
  CHECK(tiny.value()(0) == 1e-200);
  CHECK(xt::all(xt::equal(p.value(), start_value)));
}

namespace {

// An exception of the test's own, with a payload, to see that it passes through unchanged.
struct LossFailure : std::runtime_error {
  explicit LossFailure(int c)
      : std::runtime_error("loss failed at call " + std::to_string(c)), call(c) {}
  int call;
};

}  // namespace

TEST_CASE("L-BFGS restores the last accepted point when the loss function throws") {
  // A reference run of m iterations from the start ends at the accepted point x_m after
  // calls_m evaluations. A run of more iterations that throws at evaluation calls_m + 1,
  // the first trial of iteration m + 1, must leave the parameters at x_m, bit for bit; a
  // throw at evaluation 1 or 2 leaves them at the start.
  for (auto search : {optim::LineSearch::strong_wolfe, optim::LineSearch::backtracking,
                      optim::LineSearch::none}) {
    const auto options = optim::LBFGSOptions().line_search(search).max_evaluations(100);
    std::vector<std::pair<int, Array>> cases = {{1, Array{-1.5, 2.0}}, {2, Array{-1.5, 2.0}}};
    for (std::size_t m = 1; m <= 3; ++m) {
      Tensor<double> p(Array{-1.5, 2.0}, requires_grad);
      optim::LBFGS<double> reference({p}, optim::LBFGSOptions(options).max_iterations(m));
      reference.step([&] { return rosenbrock(p); });
      cases.emplace_back(static_cast<int>(reference.evaluations()) + 1, p.value());
    }
    for (const auto& [throw_at, expected] : cases) {
      INFO("line search ", static_cast<int>(search), ", throw at evaluation ", throw_at);
      Tensor<double> q(Array{-1.5, 2.0}, requires_grad);
      optim::LBFGS<double> lbfgs({q}, optim::LBFGSOptions(options).max_iterations(10));
      int call = 0;
      try {
        lbfgs.step([&] {
          if (++call == throw_at) throw LossFailure(call);
          return rosenbrock(q);
        });
        FAIL("no exception");
      } catch (const LossFailure& e) {
        CHECK(e.call == throw_at);
        CHECK(std::string(e.what()) == "loss failed at call " + std::to_string(throw_at));
      }
      CHECK(q.value()(0) == expected(0));
      CHECK(q.value()(1) == expected(1));
    }
  }
}

TEST_CASE("every refused optimizer, schedule and clip setting is named with its value") {
  Tensor<double> p(Array{1.0}, requires_grad);
  const std::vector<Tensor<double>> ps{p};
  optim::SGD<double> holder(ps, 0.1);
  const double nan = std::nan(""), inf = INFINITY;
  using optim::LineSearch;
  struct Refusal {
    std::function<void()> make;
    std::string who, setting, value;
  };
  using SGDo = optim::SGDOptions;
  using Adagrado = optim::AdagradOptions;
  using RMSo = optim::RMSpropOptions;
  using Adamo = optim::AdamOptions;
  using LBFGSo = optim::LBFGSOptions;
  using Newtono = optim::NewtonOptions;
  using Plateauo = optim::ReduceLROnPlateauOptions;
  const std::vector<Refusal> refusals = {
      // the learning rate, through every constructor and the setter
      {[&] { optim::SGD<double>(ps, -0.1); }, "SGD", "lr", "-0.1"},
      {[&] { optim::SGD<double>(ps, nan); }, "SGD", "lr", "nan"},
      {[&] { holder.set_learning_rate(inf); }, "SGD", "lr", "inf"},
      {[&] { optim::Adagrad<double>(ps, inf); }, "Adagrad", "lr", "inf"},
      {[&] { optim::RMSprop<double>(ps, -1); }, "RMSprop", "lr", "-1"},
      {[&] { optim::Adam<double>(ps, nan); }, "Adam", "lr", "nan"},
      {[&] { optim::AdamW<double>(ps, -0.5); }, "AdamW", "lr", "-0.5"},
      {[&] { optim::LBFGS<double>(ps, LBFGSo().lr(nan)); }, "LBFGS", "lr", "nan"},
      {[&] { optim::Newton<double>(ps, Newtono().lr(inf)); }, "Newton", "lr", "inf"},
      // SGD
      {[&] { optim::SGD<double>(ps, 0.1, SGDo().momentum(inf)); }, "SGD", "momentum", "inf"},
      {[&] { optim::SGD<double>(ps, 0.1, SGDo().momentum(nan)); }, "SGD", "momentum", "nan"},
      {[&] { optim::SGD<double>(ps, 0.1, SGDo().momentum(-0.9)); }, "SGD", "momentum", "-0.9"},
      {[&] { optim::SGD<double>(ps, 0.1, SGDo().dampening(1.5)); }, "SGD", "dampening", "1.5"},
      {[&] { optim::SGD<double>(ps, 0.1, SGDo().dampening(-0.1)); }, "SGD", "dampening", "-0.1"},
      {[&] { optim::SGD<double>(ps, 0.1, SGDo().dampening(nan)); }, "SGD", "dampening", "nan"},
      {[&] { optim::SGD<double>(ps, 0.1, SGDo().weight_decay(inf)); }, "SGD", "weight_decay",
       "inf"},
      {[&] { optim::SGD<double>(ps, 0.1, SGDo().weight_decay(-1e-4)); }, "SGD", "weight_decay",
       "-0.0001"},
      {[&] { optim::SGD<double>(ps, 0.1, SGDo().nesterov(true)); }, "SGD", "nesterov",
       "momentum 0"},
      {[&] { optim::SGD<double>(ps, 0.1, SGDo().nesterov(true).momentum(0.9).dampening(0.1)); },
       "SGD", "nesterov", "dampening 0.1"},
      // Adagrad
      {[&] { optim::Adagrad<double>(ps, 0.1, Adagrado().lr_decay(-1)); }, "Adagrad", "lr_decay",
       "-1"},
      {[&] { optim::Adagrad<double>(ps, 0.1, Adagrado().lr_decay(inf)); }, "Adagrad", "lr_decay",
       "inf"},
      {[&] { optim::Adagrad<double>(ps, 0.1, Adagrado().weight_decay(nan)); }, "Adagrad",
       "weight_decay", "nan"},
      {[&] { optim::Adagrad<double>(ps, 0.1, Adagrado().initial_accumulator(-0.1)); }, "Adagrad",
       "initial_accumulator", "-0.1"},
      {[&] { optim::Adagrad<double>(ps, 0.1, Adagrado().initial_accumulator(inf)); }, "Adagrad",
       "initial_accumulator", "inf"},
      {[&] { optim::Adagrad<double>(ps, 0.1, Adagrado().eps(0)); }, "Adagrad", "eps", "0"},
      {[&] { optim::Adagrad<double>(ps, 0.1, Adagrado().eps(nan)); }, "Adagrad", "eps", "nan"},
      // RMSprop
      {[&] { optim::RMSprop<double>(ps, 0.1, RMSo().alpha(1.5)); }, "RMSprop", "alpha", "1.5"},
      {[&] { optim::RMSprop<double>(ps, 0.1, RMSo().alpha(1)); }, "RMSprop", "alpha", "1"},
      {[&] { optim::RMSprop<double>(ps, 0.1, RMSo().alpha(-0.1)); }, "RMSprop", "alpha", "-0.1"},
      {[&] { optim::RMSprop<double>(ps, 0.1, RMSo().alpha(nan)); }, "RMSprop", "alpha", "nan"},
      {[&] { optim::RMSprop<double>(ps, 0.1, RMSo().eps(inf)); }, "RMSprop", "eps", "inf"},
      {[&] { optim::RMSprop<double>(ps, 0.1, RMSo().eps(-1e-8)); }, "RMSprop", "eps", "-1e-08"},
      {[&] { optim::RMSprop<double>(ps, 0.1, RMSo().weight_decay(-1)); }, "RMSprop", "weight_decay",
       "-1"},
      {[&] { optim::RMSprop<double>(ps, 0.1, RMSo().momentum(inf)); }, "RMSprop", "momentum",
       "inf"},
      {[&] { optim::RMSprop<double>(ps, 0.1, RMSo().momentum(nan)); }, "RMSprop", "momentum",
       "nan"},
      // Adam and AdamW
      {[&] { optim::Adam<double>(ps, 0.1, Adamo().betas(1, 0.999)); }, "Adam", "beta1", "1"},
      {[&] { optim::Adam<double>(ps, 0.1, Adamo().betas(-0.1, 0.999)); }, "Adam", "beta1", "-0.1"},
      {[&] { optim::Adam<double>(ps, 0.1, Adamo().betas(0.9, nan)); }, "Adam", "beta2", "nan"},
      {[&] { optim::Adam<double>(ps, 0.1, Adamo().betas(0.9, 1.0000001)); }, "Adam", "beta2",
       "1.0000001"},
      {[&] { optim::Adam<double>(ps, 0.1, Adamo().eps(inf)); }, "Adam", "eps", "inf"},
      {[&] { optim::Adam<double>(ps, 0.1, Adamo().eps(nan)); }, "Adam", "eps", "nan"},
      {[&] { optim::Adam<double>(ps, 0.1, Adamo().eps(0)); }, "Adam", "eps", "0"},
      {[&] { optim::Adam<double>(ps, 0.1, Adamo().weight_decay(-0.01)); }, "Adam", "weight_decay",
       "-0.01"},
      {[&] { optim::AdamW<double>(ps, 0.1, Adamo().weight_decay(inf)); }, "AdamW", "weight_decay",
       "inf"},
      {[&] { optim::AdamW<double>(ps, 0.1, Adamo().betas(0.9, 1)); }, "AdamW", "beta2", "1"},
      // LBFGS
      {[&] { optim::LBFGS<double>(ps, LBFGSo().max_iterations(0)); }, "LBFGS", "max_iterations",
       "0"},
      {[&] { optim::LBFGS<double>(ps, LBFGSo().history_size(0)); }, "LBFGS", "history_size", "0"},
      {[&] { optim::LBFGS<double>(ps, LBFGSo().tolerance_grad(-1)); }, "LBFGS", "tolerance_grad",
       "-1"},
      {[&] { optim::LBFGS<double>(ps, LBFGSo().tolerance_grad(nan)); }, "LBFGS", "tolerance_grad",
       "nan"},
      {[&] { optim::LBFGS<double>(ps, LBFGSo().tolerance_change(inf)); }, "LBFGS",
       "tolerance_change", "inf"},
      {[&] { optim::LBFGS<double>(ps, LBFGSo().tolerance_change(-1e-9)); }, "LBFGS",
       "tolerance_change", "-1e-09"},
      {[&] { optim::LBFGS<double>(ps, LBFGSo().line_search(static_cast<LineSearch>(7))); }, "LBFGS",
       "line_search", "7"},
      // Newton
      {[&] { optim::Newton<double>(ps, Newtono().damping(-1)); }, "Newton", "damping", "-1"},
      {[&] { optim::Newton<double>(ps, Newtono().damping(inf)); }, "Newton", "damping", "inf"},
      {[&] { optim::Newton<double>(ps, Newtono().damping(nan)); }, "Newton", "damping", "nan"},
      {[&] { optim::Newton<double>(ps, Newtono().max_parameters(0)); }, "Newton", "max_parameters",
       "0"},
      // schedules
      {[&] { optim::StepLR(holder, 0); }, "StepLR", "step_size", "0"},
      {[&] { optim::StepLR(holder, 2, -0.5); }, "StepLR", "gamma", "-0.5"},
      {[&] { optim::StepLR(holder, 2, inf); }, "StepLR", "gamma", "inf"},
      {[&] { optim::StepLR(holder, 2, nan); }, "StepLR", "gamma", "nan"},
      {[&] { optim::ExponentialLR(holder, -1); }, "ExponentialLR", "gamma", "-1"},
      {[&] { optim::ExponentialLR(holder, inf); }, "ExponentialLR", "gamma", "inf"},
      {[&] { optim::ExponentialLR(holder, nan); }, "ExponentialLR", "gamma", "nan"},
      {[&] { optim::CosineAnnealingLR(holder, 0); }, "CosineAnnealingLR", "t_max", "0"},
      {[&] { optim::CosineAnnealingLR(holder, 10, -0.1); }, "CosineAnnealingLR", "eta_min", "-0.1"},
      {[&] { optim::CosineAnnealingLR(holder, 10, inf); }, "CosineAnnealingLR", "eta_min", "inf"},
      {[&] { optim::CosineAnnealingLR(holder, 10, nan); }, "CosineAnnealingLR", "eta_min", "nan"},
      {[&] { optim::ReduceLROnPlateau(holder, Plateauo().factor(0)); }, "ReduceLROnPlateau",
       "factor", "0"},
      {[&] { optim::ReduceLROnPlateau(holder, Plateauo().factor(1)); }, "ReduceLROnPlateau",
       "factor", "1"},
      {[&] { optim::ReduceLROnPlateau(holder, Plateauo().factor(nan)); }, "ReduceLROnPlateau",
       "factor", "nan"},
      {[&] { optim::ReduceLROnPlateau(holder, Plateauo().threshold(1)); }, "ReduceLROnPlateau",
       "threshold", "1"},
      {[&] { optim::ReduceLROnPlateau(holder, Plateauo().threshold(-0.1)); }, "ReduceLROnPlateau",
       "threshold", "-0.1"},
      {[&] { optim::ReduceLROnPlateau(holder, Plateauo().min_lr(-1)); }, "ReduceLROnPlateau",
       "min_lr", "-1"},
      {[&] { optim::ReduceLROnPlateau(holder, Plateauo().min_lr(inf)); }, "ReduceLROnPlateau",
       "min_lr", "inf"},
      {[&] { optim::ReduceLROnPlateau(holder, Plateauo().eps(nan)); }, "ReduceLROnPlateau", "eps",
       "nan"},
      {[&] { optim::ReduceLROnPlateau(holder, Plateauo().eps(-1)); }, "ReduceLROnPlateau", "eps",
       "-1"},
      // clipping
      {[&] {
         auto q = ps;
         optim::clip_grad_norm(q, -1);
       },
       "clip_grad_norm", "max_norm", "-1"},
      {[&] {
         auto q = ps;
         optim::clip_grad_norm(q, nan);
       },
       "clip_grad_norm", "max_norm", "nan"},
  };
  for (const auto& r : refusals) {
    INFO(r.who, " ", r.setting, " ", r.value);
    std::string message = "no ValueError";
    try {
      r.make();
    } catch (const ValueError& e) {
      message = e.what();
    }
    INFO("message: ", message);
    CHECK(message.rfind(r.who + ": ", 0) == 0);  // starts with the name
    CHECK(message.find(r.setting) != std::string::npos);
    const auto got = message.find("got ");
    CHECK(got != std::string::npos);
    CHECK(message.find(r.value, got) != std::string::npos);
  }
  CHECK(holder.learning_rate() == 0.1);  // the refused setter kept the old rate
}

TEST_CASE("the edges of each setting's range are accepted") {
  Tensor<double> p(Array{1.0}, requires_grad);
  const std::vector<Tensor<double>> ps{p};
  CHECK_NOTHROW(optim::SGD<double>(ps, 0, optim::SGDOptions().momentum(0).dampening(1)));
  CHECK_NOTHROW(optim::SGD<double>(ps, 0.1, optim::SGDOptions().momentum(1.5).weight_decay(0)));
  CHECK_NOTHROW(optim::RMSprop<double>(ps, 0.1, optim::RMSpropOptions().alpha(0).eps(1e-300)));
  CHECK_NOTHROW(optim::Adam<double>(ps, 0.1, optim::AdamOptions().betas(0, 0.9999999)));
  CHECK_NOTHROW(
      optim::Adagrad<double>(ps, 0.1, optim::AdagradOptions().lr_decay(0).initial_accumulator(0)));
  CHECK_NOTHROW(optim::LBFGS<double>(
      ps, optim::LBFGSOptions().tolerance_grad(0).tolerance_change(0).line_search(
              optim::LineSearch::none)));
  CHECK_NOTHROW(optim::Newton<double>(ps, optim::NewtonOptions().damping(0).max_parameters(1)));
  optim::SGD<double> sgd(ps, 0.1);
  CHECK_NOTHROW(optim::StepLR(sgd, 1, 0));
  CHECK_NOTHROW(optim::ExponentialLR(sgd, 2));  // a growing rate is allowed, as in PyTorch
  CHECK_NOTHROW(
      optim::ReduceLROnPlateau(sgd, optim::ReduceLROnPlateauOptions().threshold(0).eps(0)));
}

TEST_CASE(
    "clip_grad_norm and clip_grad_value take a model's or an optimizer's parameter list directly") {
  nn::Linear<double> layer(3, 2);
  optim::SGD<double> sgd(layer.parameters(), 0.1);
  {
    Tape tape;
    sum(square(layer(Tensor<double>(xt::xarray<double>{{1.0, -2.0, 3.0}})) * 100.0)).backward();
  }
  const double before = optim::clip_grad_norm(layer.parameters(), 1.0);  // a temporary list
  CHECK(before > 1.0);
  CHECK(optim::clip_grad_norm(sgd.parameters(), INFINITY) == doctest::Approx(1.0).epsilon(1e-5));
  optim::clip_grad_value(sgd.parameters(), 0.25);
  for (const auto& p : layer.parameters()) {
    CHECK(xt::amax(xt::abs(p.grad()))() <= 0.25);
  }
}

TEST_CASE(
    "clip_grad_value clamps each element, keeps NaN, skips missing gradients and checks its "
    "bound") {
  Tensor<float> a(xt::xarray<float>{1.0f, 1.0f, 1.0f, 1.0f}, requires_grad);
  Tensor<float> b(xt::xarray<float>{1.0f}, requires_grad);  // no gradient
  {
    Tape tape;
    sum(a * Tensor<float>(xt::xarray<float>{-3.0f, 0.5f, 2.0f, NAN}))
        .backward();  // d/da: those four
  }
  optim::clip_grad_value(std::vector<Tensor<float>>{a, b}, 1.0);
  CHECK(a.grad()(0) == -1.0f);
  CHECK(a.grad()(1) == 0.5f);
  CHECK(a.grad()(2) == 1.0f);
  CHECK(std::isnan(a.grad()(3)));
  CHECK_FALSE(b.has_grad());
  optim::clip_grad_value(std::vector<Tensor<float>>{a}, 1e300);  // beyond float's range: no change
  CHECK(a.grad()(0) == -1.0f);
  CHECK_THROWS_WITH_AS(optim::clip_grad_value(std::vector<Tensor<float>>{a}, -1.0),
                       "clip_grad_value: clip_value must be a number >= 0 (inf allowed), got -1",
                       ValueError);
}

TEST_CASE("clip_grad_norm refuses a non-finite norm by default, and leaves it alone when asked") {
  const auto give = [](Tensor<double>& p, const Array& g) {  // p's gradient becomes g
    Tape tape;
    sum(p * Tensor<double>(g)).backward();
  };
  for (const double bad : {double(INFINITY), std::nan("")}) {
    Tensor<double> a(Array{3.0}, requires_grad), b(Array{1.0, 2.0}, requires_grad);
    give(a, Array{3.0});
    give(b, Array{1.0, bad});
    std::vector<Tensor<double>> params{a, b};
    const std::string name = std::isnan(bad) ? "nan" : "inf";
    INFO("bad gradient element ", name);
    try {
      optim::clip_grad_norm(params, 1.0);
      FAIL("no error");
    } catch (const ValueError& e) {
      const std::string message = e.what();
      INFO(message);
      CHECK(message.rfind("clip_grad_norm: ", 0) == 0);
      CHECK(message.find("norm is " + name) != std::string::npos);
      CHECK(message.find("parameter 1") != std::string::npos);
    }
    CHECK(a.grad()(0) == 3.0);  // nothing was scaled
    CHECK(b.grad()(0) == 1.0);
    const double norm = optim::clip_grad_norm(params, 1.0, false);
    CHECK(std::isnan(norm) == std::isnan(bad));
    CHECK(!std::isfinite(norm));
    CHECK(a.grad()(0) == 3.0);  // not made 0 or NaN
    CHECK(b.grad()(0) == 1.0);
  }
  // Finite gradients whose squares overflow have a finite norm and are clipped.
  Tensor<double> big(Array{3e200, 4e200}, requires_grad);
  give(big, Array{3e200, 4e200});
  std::vector<Tensor<double>> params{big};
  CHECK(optim::clip_grad_norm(params, 1.0) == doctest::Approx(5e200));
  CHECK(big.grad()(0) == doctest::Approx(0.6));
  CHECK(big.grad()(1) == doctest::Approx(0.8));
}

namespace {

// p's gradient becomes g (of p's shape): the backward of sum(p * g).
void give_gradient(Tensor<double>& p, const Array& g) {
  Tape tape;
  sum(p * Tensor<double>(g)).backward();
}

using MakeOptimizer =
    std::function<std::unique_ptr<optim::Optimizer<double>>(std::vector<Tensor<double>>)>;

// The first-order optimizers that keep arrays per parameter, with the name of the array
// their refusals name.
struct Stateful {
  const char* name;
  const char* state;
  MakeOptimizer make;
};

std::vector<Stateful> stateful_optimizers() {
  return {
      {"SGD", "momentum_buffer",
       [](auto ps) {
         return std::make_unique<optim::SGD<double>>(ps, 0.1, optim::SGDOptions().momentum(0.9));
       }},
      {"Adagrad", "sum", [](auto ps) { return std::make_unique<optim::Adagrad<double>>(ps, 0.1); }},
      {"RMSprop", "square_avg",
       [](auto ps) {
         return std::make_unique<optim::RMSprop<double>>(
             ps, 0.01, optim::RMSpropOptions().centered(true).momentum(0.5));
       }},
      {"Adam", "exp_avg", [](auto ps) { return std::make_unique<optim::Adam<double>>(ps, 0.1); }},
      {"AdamW", "exp_avg",
       [](auto ps) {
         return std::make_unique<optim::AdamW<double>>(ps, 0.1, optim::AdamOptions().amsgrad(true));
       }},
  };
}

}  // namespace

TEST_CASE("an optimizer refuses a parameter resized after it was made, naming it and both shapes") {
  // set_value takes any shape (documented), but the optimizer's arrays were made for the old
  // one: more elements overflowed Adam's moments, as many in another shape mixed them up.
  for (const auto& made : stateful_optimizers()) {
    for (const Shape& resized : {Shape{3, 3}, Shape{3, 2}}) {
      INFO(std::string(made.name), " resized to ", shape_to_string(resized));
      Tensor<double> b(Array{0.5, -0.5, 1.0}, requires_grad);
      Tensor<double> w(test::random_array({2, 3}, 1), requires_grad);
      auto optimizer = made.make({b, w});
      give_gradient(b, Array{1.0, 2.0, 3.0});
      give_gradient(w, test::random_array({2, 3}, 2));
      optimizer->step();
      optimizer->zero_grad();
      w.set_value(test::random_array(resized, 3));
      give_gradient(b, Array{1.0, 2.0, 3.0});
      give_gradient(w, test::random_array(resized, 4));
      const Array b_before = b.value(), w_before = w.value();
      const std::string expected = std::string(made.name) + ": parameter 1 has shape " +
                                   shape_to_string(resized) + " but its state (" + made.state +
                                   ") has shape (2, 3): the parameter changed shape after the "
                                   "optimizer was made; make a new optimizer, or load_state() a "
                                   "state of the new shapes";
      CHECK_THROWS_WITH_AS(optimizer->step(), expected.c_str(), ShapeError);
      CHECK(b.value() == b_before);  // a refused step moves no parameter, not even the first
      CHECK(w.value() == w_before);
      // A state made for the new shapes (here by a fresh optimizer) makes it whole again.
      optimizer->load_state(made.make({b, w})->state());
      optimizer->step();
      CHECK(w.value() != w_before);
      CHECK(xt::all(xt::isfinite(w.value())));
    }
  }
}

TEST_CASE("a gradient of another shape than its parameter is refused by every update") {
  // mutable_grad() can assign an array of any shape: Adam read past a shorter one, plain SGD
  // broadcast it over the parameter, SGD with momentum threw xtensor's broadcast_error.
  auto cases = stateful_optimizers();
  cases.push_back(
      {"SGD", "", [](auto ps) { return std::make_unique<optim::SGD<double>>(ps, 0.1); }});
  cases.push_back({"SGD", "", [](auto ps) {
                     return std::make_unique<optim::SGD<double>>(
                         ps, 0.1, optim::SGDOptions().weight_decay(0.1));
                   }});
  const char* expected =
      ": parameter 1 has shape (2, 3) but its gradient has shape (3,); expected a gradient of "
      "the parameter's shape (was it changed through mutable_grad()?)";
  for (const auto& made : cases) {
    INFO(std::string(made.name), " ", std::string(made.state));
    Tensor<double> b(Array{0.5, -0.5, 1.0}, requires_grad);
    Tensor<double> w(test::random_array({2, 3}, 1), requires_grad);
    auto optimizer = made.make({b, w});
    give_gradient(b, Array{1.0, 2.0, 3.0});
    give_gradient(w, test::random_array({2, 3}, 2));
    w.mutable_grad() = Array{1.0, 2.0, 3.0};
    const Array b_before = b.value(), w_before = w.value();
    CHECK_THROWS_WITH_AS(optimizer->step(), (made.name + std::string(expected)).c_str(),
                         ShapeError);
    CHECK(b.value() == b_before);
    CHECK(w.value() == w_before);
  }
  for (const auto& clip : {"clip_grad_norm", "clip_grad_value"}) {
    INFO(clip);
    Tensor<double> b(Array{0.5, -0.5, 1.0}, requires_grad);
    Tensor<double> w(test::random_array({2, 3}, 1), requires_grad);
    give_gradient(b, Array{1.0, 2.0, 3.0});
    give_gradient(w, test::random_array({2, 3}, 2));
    w.mutable_grad() = Array{10.0, 20.0, 30.0};
    const std::vector<Tensor<double>> params{b, w};
    const auto run = [&] {
      if (std::string(clip) == "clip_grad_norm") {
        optim::clip_grad_norm(params, 1.0);
      } else {
        optim::clip_grad_value(params, 1.0);
      }
    };
    CHECK_THROWS_WITH_AS(run(), (clip + std::string(expected)).c_str(), ShapeError);
    CHECK(b.grad() == Array{1.0, 2.0, 3.0});  // nothing clipped
  }
}

TEST_CASE("plain SGD, which keeps no state, updates a resized parameter whose gradient matches") {
  Tensor<double> w(test::random_array({2, 3}, 1), requires_grad);
  optim::SGD<double> sgd({w}, 0.5);
  const Array resized = test::random_array({4, 2}, 2), g = test::random_array({4, 2}, 3);
  w.set_value(resized);
  give_gradient(w, g);
  sgd.step();
  CHECK(w.value() == Array(resized - 0.5 * g));
}

TEST_CASE("L-BFGS refuses a parameter resized after it was made; Newton re-checks its limit") {
  Tensor<double> p(Array{start[0], start[1], start[2]}, requires_grad);
  optim::LBFGS<double> lbfgs({p});
  lbfgs.step([&] { return bowl(p); });  // the curvature history now holds vectors of 3
  p.set_value(Array{1.0, 2.0});
  const auto loss = [&] { return sum(square(p)); };
  CHECK_THROWS_WITH_AS(lbfgs.step(loss),
                       "LBFGS: parameter 0 has shape (2,) but its state (the curvature history) "
                       "has shape (3,): the parameter changed shape after the optimizer was made; "
                       "make a new optimizer",
                       ShapeError);
  CHECK(p.value() == Array{1.0, 2.0});

  // Newton keeps nothing from step to step: a resized parameter is fine within max_parameters,
  // and refused beyond it (the dense Hessian is the limit's reason) before any Hessian is made.
  Tensor<double> q(Array{1.0, 2.0}, requires_grad);
  optim::Newton<double> newton({q}, optim::NewtonOptions().max_parameters(4));
  q.set_value(Array{1.0, 2.0, 3.0});
  newton.step([&] { return sum(square(q - 1.0)); });
  CHECK(xt::allclose(q.value(), Array{1.0, 1.0, 1.0}));
  q.set_value(xt::ones<double>({3, 3}));
  CHECK_THROWS_WITH_AS(newton.step([&] { return sum(square(q)); }),
                       "Newton: 9 parameter elements exceed max_parameters (4); the dense Hessian "
                       "would be too large, use LBFGS",
                       ValueError);
}

TEST_CASE(
    "an optimizer used from a second thread while its owner is in a call is refused (thread)") {
  // The loss function runs inside step(loss): there a second thread finds the optimizer busy.
  Tensor<double> p(Array{1.0, 2.0}, requires_grad);
  optim::LBFGS<double> lbfgs({p}, optim::LBFGSOptions().max_iterations(1));
  std::vector<std::string> refusals;
  int calls = 0;
  const auto loss = [&] {
    lbfgs.zero_grad();  // the owner may nest its calls, as PyTorch's closures do
    if (calls++ == 0) {
      std::thread other([&] {
        for (const auto& call :
             {std::function<void()>([&] { lbfgs.zero_grad(); }),
              std::function<void()>([&] { lbfgs.load_state({}); }),
              std::function<void()>([&] { lbfgs.step([&] { return sum(p); }); })}) {
          try {
            call();
            refusals.push_back("not refused");
          } catch (const TapeError& e) {
            refusals.push_back(e.what());
          } catch (const std::exception& e) {
            refusals.push_back(std::string("another error: ") + e.what());
          }
        }
      });
      other.join();
    }
    return sum(square(p));
  };
  lbfgs.step(loss);
  const std::string tail =
      " runs in another thread; an optimizer, and the parameters it updates, belong to one "
      "thread at a time (docs/threads.md)";
  REQUIRE(refusals.size() == 3);
  CHECK(refusals[0] == "LBFGS: zero_grad() called while step(loss)" + tail);
  CHECK(refusals[1] == "LBFGS: load_state() called while step(loss)" + tail);
  CHECK(refusals[2] == "LBFGS: step(loss) called while step(loss)" + tail);
  // Free again once the owner's call has returned: another thread may take it over.
  std::thread later([&] { lbfgs.zero_grad(); });
  later.join();
  CHECK(!p.has_grad());
}

TEST_CASE(
    "two threads sharing a parameter: a step and a zero_grad() that meet are refused (thread)") {
  // docs/threads.md: unsupported, but it must be an error, not a use-after-free (SGD::step
  // read a gradient that the other thread's zero_grad() freed). A step holds a claim on each
  // of its parameters; here it is taken by hand, so that the meeting is certain.
  Tensor<double> w(Array{{1.0, 2.0}, {3.0, 4.0}}, requires_grad);
  give_gradient(w, Array{{1.0, 1.0}, {1.0, 1.0}});
  optim::SGD<double> sgd({w}, 0.1);
  const std::string tail =
      " in another thread; an optimizer, and the parameters it updates, "
      "belong to one thread at a time (docs/threads.md)";
  const auto in_other_thread = [](const std::function<void()>& call) {
    std::string message = "not refused";
    std::thread([&] {
      try {
        call();
      } catch (const TapeError& e) {
        message = e.what();
      }
    }).join();
    return message;
  };
  REQUIRE(detail::claim_gradient(*w.node(), detail::GradientUse::optimizer_step) ==
          detail::GradientClaim::taken);
  CHECK(in_other_thread([&] { w.zero_grad(); }) ==
        "zero_grad: this tensor of shape (2, 2) is being changed by an optimizer's step() in "
        "another thread; a tensor belongs to one thread at a time (docs/threads.md)");
  CHECK(in_other_thread([&] { sgd.zero_grad(); }).rfind("zero_grad: this tensor", 0) == 0);
  CHECK(in_other_thread([&] { sgd.step(); }) ==
        "SGD: step() cannot update parameter 0 (shape (2, 2)): it is being changed by an "
        "optimizer's step()" +
            tail);
  CHECK(w.has_grad());
  CHECK(w.value() == Array{{1.0, 2.0}, {3.0, 4.0}});
  // A backward() adding to w while a step holds it (the sweep claims the leaves it adds to).
  CHECK(in_other_thread([&] {
          Tape tape;
          sum(w * w).backward();
        }) ==
        "backward: input 0 of 'mul' (record 0), a leaf of shape (2, 2), is being changed "
        "by an optimizer's step() in another thread at this moment; threads must not "
        "share leaf tensors (a leaf's gradient is not locked): give each thread its own "
        "model (docs/threads.md)");
  detail::release_gradient(*w.node());
  REQUIRE(detail::claim_gradient(*w.node(), detail::GradientUse::zero_grad) ==
          detail::GradientClaim::taken);
  CHECK(in_other_thread([&] { sgd.step(); }) ==
        "SGD: step() cannot update parameter 0 (shape (2, 2)): it is being changed by "
        "zero_grad()" +
            tail);
  detail::release_gradient(*w.node());
  // A refused step left both the optimizer and its parameters free.
  CHECK(in_other_thread([&] { sgd.step(); }) == "not refused");
  CHECK(w.value()(0, 0) == doctest::Approx(0.9));
}

TEST_CASE("two threads training one model meet with an error, never a use-after-free (thread)") {
  // The program: thread A steps while thread B clears the gradients, through the same
  // optimizer or another one over the same parameter. Before, SGD::step read the gradient
  // B's zero_grad() had freed (AddressSanitizer: heap-use-after-free). The backward passes
  // are kept apart from the clearing by a lock, so that only the refusals below can come (a
  // backward() meeting a step is refused too: see the test above).
  Tensor<double> w(test::random_array({64, 64}, 1), requires_grad);
  const Tensor<double> x(test::random_array({16, 64}, 2));
  optim::SGD<double> sgd({w}, 1e-6, optim::SGDOptions().momentum(0.9));
  optim::SGD<double> other({w}, 1e-6, optim::SGDOptions().momentum(0.9));
  const std::string tail =
      " in another thread; an optimizer, and the parameters it updates, "
      "belong to one thread at a time (docs/threads.md)";
  const std::set<std::string> expected = {
      "SGD: zero_grad() called while step() runs" + tail,
      "SGD: step() called while zero_grad() runs" + tail,
      "SGD: step() cannot update parameter 0 (shape (64, 64)): it is being changed by "
      "zero_grad()" +
          tail,
      "zero_grad: this tensor of shape (64, 64) is being changed by an optimizer's step() in "
      "another thread; a tensor belongs to one thread at a time (docs/threads.md)"};
  // A claim given back between the refusal and the reading of its holder's use is named
  // "another change".
  const std::set<std::string> also = {
      "SGD: step() cannot update parameter 0 (shape (64, 64)): it is being changed by "
      "another change" +
          tail,
      "zero_grad: this tensor of shape (64, 64) is being changed by another change in "
      "another thread; a tensor belongs to one thread at a time (docs/threads.md)"};
  for (optim::SGD<double>* clearing : {&sgd, &other}) {
    std::mutex lock, messages_lock;
    std::vector<std::string> messages;
    const auto note = [&](const std::exception& e) {
      const std::lock_guard<std::mutex> guard(messages_lock);
      messages.push_back(e.what());
    };
    std::thread a([&] {
      for (int i = 0; i < 500; ++i) {
        try {
          {
            const std::lock_guard<std::mutex> guard(lock);
            Tape tape;
            sum(square(matmul(x, w))).backward();
          }
          sgd.step();
        } catch (const std::exception& e) {
          note(e);
        }
      }
    });
    std::thread b([&] {
      for (int i = 0; i < 500; ++i) {
        try {
          const std::lock_guard<std::mutex> guard(lock);
          clearing->zero_grad();
        } catch (const std::exception& e) {
          note(e);
        }
      }
    });
    a.join();
    b.join();
    MESSAGE(messages.size(), " calls refused, clearing through ",
            std::string(clearing == &sgd ? "the same optimizer" : "another optimizer"));
    for (const auto& message : messages) {
      CHECK_MESSAGE(expected.count(message) + also.count(message) == 1, message);
    }
    CHECK(xt::all(xt::isfinite(w.value())));
  }
}
