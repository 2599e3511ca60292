// Gradient-descent variants (the BP-network article's batch, stochastic and mini-batch descent, and
// more) on one normalized linear-regression problem: h(x) = theta_0 + theta^T x,
// J = 1/(2m) sum (h - y)^2, features standardized, theta from 0. Batch, stochastic and mini-batch
// descent, momentum, Adam, L-BFGS and Newton: iterations, time and final cost, and one plot of cost
// against iterations. Then the BP-network article's delta rule for one sigmoid neuron, from the
// tape. With
// --compiled, the five first-order methods replay a step recorded once per batch size instead of
// recording every gradient (the same numbers).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <xtensor-blas/xlinalg.hpp>

#include "common/cli.hpp"
#include "common/output.hpp"
#include "common/plot.hpp"
#include "common/regression_gradient.hpp"
#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

namespace {

struct Problem {
  Tensor<double> x, y;  // (m, n) standardized, (m, 1)
  double best_cost = 0;
};

struct Result {
  std::string name;
  long iterations = 0;
  double milliseconds = 0, cost = 0;
  std::vector<double> curve;     // full-data cost after each iteration
  double theta_1 = 0, bias = 0;  // the final first weight and bias
};

Tensor<double> cost(const Tensor<double>& theta, const Tensor<double>& bias,
                    const Tensor<double>& x, const Tensor<double>& y) {
  return examples::regression_cost(theta, bias, x, y);
}

// Runs `step` until every parameter change is below epsilon or the budget is spent.
Result run(const std::string& name, const Problem& p, long budget, double epsilon,
           const std::function<void(Tensor<double>&, Tensor<double>&, long)>& step) {
  Tensor<double> theta(Array(xt::zeros<double>({p.x.shape()[1], std::size_t{1}})), requires_grad);
  Tensor<double> bias(Array{0.0}, requires_grad);
  Result r{name, 0, 0, 0, {}, 0, 0};
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < budget; ++i) {
    const Array before_theta = theta.value(), before_bias = bias.value();
    step(theta, bias, i);
    ++r.iterations;
    NoGradGuard no_grad;
    r.curve.push_back(cost(theta, bias, p.x, p.y).item());
    const double change = std::max(xt::amax(xt::abs(theta.value() - before_theta))(),
                                   xt::amax(xt::abs(bias.value() - before_bias))());
    if (change < epsilon) break;
  }
  r.milliseconds =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  r.cost = r.curve.back();
  r.theta_1 = theta.value()(0, 0);
  r.bias = bias.value()(0);
  return r;
}

}  // namespace

namespace {

int run(int argc, char** argv) {
  CLI::App app{"Batch, stochastic and mini-batch descent, momentum, Adam, L-BFGS and Newton."};
  std::uint64_t seed = 1;
  double epsilon = 1e-6;
  long budget = 5000;
  std::size_t samples = 500, features = 5, batch = 32;
  std::string plot = "gd_variants.png", out = ".";
  bool quick = false;
  bool compiled = false;
  app.add_option("--seed", seed, "seed of the data and the sample order")
      ->transform(examples::seed_number())
      ->capture_default_str();
  app.add_option("--samples", samples, "m")
      ->capture_default_str()
      ->transform(examples::whole(1, 1000000));
  app.add_option("--features", features, "n")
      ->capture_default_str()
      ->transform(examples::whole(1, 1000));
  app.add_option("--batch-size", batch, "mini-batch size")
      ->capture_default_str()
      ->transform(examples::whole(1, 1000000));
  app.add_option("--epsilon", epsilon, "stop when every step is below this")
      ->capture_default_str()
      ->check(examples::non_negative());
  app.add_option("--budget", budget, "at most this many iterations per method")
      ->capture_default_str()
      ->transform(examples::whole(1, 100000000));
  app.add_option("--plot", plot, "PNG of cost against iterations ('' for none)")
      ->capture_default_str();
  examples::add_out_option(app, out, "--plot");
  app.add_flag("--quick", quick, "a budget of 1000 iterations");
  app.add_flag("--compiled", compiled,
               "the first-order methods replay a step recorded once per batch size "
               "(tapegrad::compile); the same numbers. L-BFGS and Newton stay eager");
  CLI11_PARSE(app, argc, argv);
  plot = examples::out_path(out, plot);
  if (!plot.empty()) examples::make_out_folder(out);
  if (quick) budget = std::min(budget, 1000L);

  const auto raw = data::make_regression(samples, features, 10.0, seed);
  data::Standardizer<double> scale;
  Problem p;
  p.x = Tensor<double>(scale.fit_transform(raw.features));
  Array y = raw.targets;
  y.reshape({samples, std::size_t{1}});
  p.y = Tensor<double>(y);
  // The exact minimum of J, from LAPACK, for reference.
  Array design = xt::ones<double>({samples, features + 1});
  for (std::size_t i = 0; i < samples; ++i)
    for (std::size_t j = 0; j < features; ++j) design(i, j) = p.x.value()(i, j);
  const Array solution = std::get<0>(xt::linalg::lstsq(design, y));
  {
    const Array residual = Array(xt::linalg::dot(design, solution)) - y;
    p.best_cost = xt::sum(residual * residual)() / (2.0 * static_cast<double>(samples));
  }

  std::vector<Result> results;
  data::Dataset<double> dataset(p.x.value(), y);
  double descent_seconds = 0;  // gradients and updates of the first-order methods
  long descent_steps = 0;
  auto descent = [&](const std::string& name, std::size_t batch_size, auto make_optimizer) {
    data::DataLoader<double> loader(dataset, batch_size, data::LoaderOptions().seed(seed));
    std::unique_ptr<optim::Optimizer<double>> optimizer;
    std::unique_ptr<examples::RegressionGradient<double>> gradient;  // eager, or compiled steps
    std::vector<typename data::DataLoader<double>::Batch> epoch;
    std::size_t next = 0;
    results.push_back(
        run(name, p, budget, epsilon, [&](Tensor<double>& theta, Tensor<double>& bias, long) {
          if (!optimizer) optimizer = make_optimizer(std::vector<Tensor<double>>{theta, bias});
          if (!gradient)
            gradient =
                std::make_unique<examples::RegressionGradient<double>>(theta, bias, compiled);
          if (next == epoch.size()) {
            epoch = loader.epoch();
            next = 0;
          }
          const auto& b = epoch[next++];
          const auto start = std::chrono::steady_clock::now();
          (*gradient)(b.features, b.targets);
          optimizer->step();
          optimizer->zero_grad();
          descent_seconds +=
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          ++descent_steps;
        }));
  };
  auto sgd = [](double lr, double momentum = 0) {
    return [=](std::vector<Tensor<double>> params) -> std::unique_ptr<optim::Optimizer<double>> {
      return std::make_unique<optim::SGD<double>>(params, lr,
                                                  optim::SGDOptions().momentum(momentum));
    };
  };
  descent("batch gradient descent", samples, sgd(0.1));
  descent("stochastic (batch 1)", 1, sgd(0.01));
  descent("mini-batch (" + std::to_string(batch) + ")", batch, sgd(0.05));
  descent("momentum 0.9 (batch)", samples, sgd(0.05, 0.9));
  descent("Adam (batch)", samples,
          [](std::vector<Tensor<double>> params) -> std::unique_ptr<optim::Optimizer<double>> {
            return std::make_unique<optim::Adam<double>>(params, 0.5);
          });
  for (const bool newton : {false, true}) {
    std::unique_ptr<optim::LBFGS<double>> lbfgs;
    std::unique_ptr<optim::Newton<double>> newton_method;
    results.push_back(
        run(newton ? "Newton" : "L-BFGS", p, budget, epsilon,
            [&](Tensor<double>& theta, Tensor<double>& bias, long) {
              const auto loss = [&] { return cost(theta, bias, p.x, p.y); };
              if (newton) {
                if (!newton_method)
                  newton_method = std::make_unique<optim::Newton<double>>(std::vector{theta, bias});
                newton_method->step(loss);
              } else {
                if (!lbfgs)
                  lbfgs = std::make_unique<optim::LBFGS<double>>(
                      std::vector{theta, bias}, optim::LBFGSOptions().max_iterations(1));
                lbfgs->step(loss);
              }
            }));
  }

  std::printf(
      "linear regression, m = %zu, n = %zu, features standardized; least-squares cost J* = %.6f\n",
      samples, features, p.best_cost);
  std::printf("%-26s %10s %10s %14s %12s\n", "method", "iterations", "time ms", "final cost",
              "J - J*");
  for (const auto& r : results) {
    std::printf("%-26s %10ld %10.1f %14.6f %12.2e\n", r.name.c_str(), r.iterations, r.milliseconds,
                r.cost, r.cost - p.best_cost);
  }

  std::printf("summary: iterations until every step < %g:", epsilon);
  for (const auto& r : results) {
    std::printf(" %s %ld%s;", r.name.c_str(), r.iterations,
                r.iterations == budget ? " (budget spent)" : "");
  }
  std::printf("\n");
  // L-BFGS and Newton evaluate the loss themselves, under a tape of their own, and Newton's
  // Hessian is a backward pass through the gradient: no compiled step gives them those.
  // Every digit (%.17g gives a double back exactly): an eager and a compiled run print the same.
  std::printf("final (theta_1, bias):");
  for (const auto& r : results)
    std::printf(" %s (%.17g, %.17g);", r.name.c_str(), r.theta_1, r.bias);
  std::printf("\n");
  std::printf(
      "descent time: %.3f s for %ld gradient steps of the first-order methods (%s); "
      "L-BFGS and Newton eager\n",
      descent_seconds, descent_steps,
      compiled ? "compiled steps, one per batch size, replayed" : "eager: recorded every step");

  // The BP-network article's delta rule for one sigmoid neuron: dw_i = eta (t - y) f'(net) x_i.
  {
    const Array x = {0.5, -1.2, 0.8};
    const double target = 1.0, eta = 0.5;
    Tensor<double> w(Array{0.3, 0.1, -0.4}, requires_grad);
    Tape tape;
    const auto out = sigmoid(sum(w * Tensor<double>(x)));
    (0.5 * square(target - out)).backward();
    const double o = out.item();
    double gap = 0;
    std::printf(
        "delta rule, one sigmoid neuron: dw = -eta dE/dw (tape) vs eta (t - y) y (1 - y) x_i\n");
    for (std::size_t i = 0; i < 3; ++i) {
      const double tape_dw = -eta * w.grad()(i), rule = eta * (target - o) * o * (1 - o) * x(i);
      gap = std::max(gap, std::abs(tape_dw - rule));
      std::printf("  w%zu: tape %+.12f  rule %+.12f\n", i + 1, tape_dw, rule);
    }
    std::printf("delta rule: tape and formula %s (largest difference %.1e)\n",
                gap < 1e-15 ? "agree" : "DISAGREE", gap);
  }

  if (!plot.empty()) {
    // J is a sum near J*: below about J* times the machine epsilon, J - J* is rounding
    // noise (0 or negative for Newton, which lands on the minimum in one step), and a log
    // axis cannot show it. Such values are drawn at that floor, and the picture says so.
    const double floor = std::max(std::numeric_limits<double>::epsilon() * p.best_cost, 1e-30);
    char floor_text[32];
    std::snprintf(floor_text, sizeof floor_text, "%.1e", floor);
    examples::Plot chart;
    chart
        .title(std::string(
                   "J - J* against iterations. Below the floor J* × 2^{-52} (machine epsilon) = ") +
               floor_text +
               ",\nJ - J* is rounding noise: drawn on the floor (J = J* to machine precision)")
        .labels("iteration (log)", "J - J* (log)")
        .size(1000, 700)
        .log_y()
        .command("set logscale x")
        .command("set key below center horizontal maxrows 3 box")
        .command("set bmargin 8")
        .command("set format y '10^{%L}'")
        .command(std::string("set yrange [") + floor_text + " / 20:*]");
    const char* colors[] = {"#1060d0", "#d01010", "#20a020", "#a020a0",
                            "#e08000", "black",   "#808080"};
    std::size_t longest = 1;
    for (std::size_t k = 0; k < results.size(); ++k) {
      std::vector<double> it, gap;
      long on_floor = 0;  // the first iteration at the floor, from 1; 0 if none
      for (std::size_t i = 0; i < results[k].curve.size(); ++i) {
        it.push_back(static_cast<double>(i + 1));
        const double above = results[k].curve[i] - p.best_cost;
        if (above <= floor && on_floor == 0) on_floor = static_cast<long>(i + 1);
        gap.push_back(std::max(above, floor));
      }
      longest = std::max(longest, it.size());
      std::string title = results[k].name;
      if (on_floor) title += " (on the floor from iteration " + std::to_string(on_floor) + ")";
      // Few iterations: points too, so that a curve lying on the floor still shows.
      const std::string style = it.size() <= 20 ? "linespoints pt 7 ps 1.3 lw 2" : "lines lw 2";
      chart.add({title, it, gap, style + " lc rgb '" + colors[k % 7] + "'"});
    }
    chart.add({"floor",
               {1.0, static_cast<double>(longest)},
               {floor, floor},
               "lines dt 2 lw 1 lc rgb '#404040'"});
    if (chart.save(plot)) std::printf("plot: %s\n", plot.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
