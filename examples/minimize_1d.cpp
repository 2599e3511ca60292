// Gradient descent on y = (x + 1)^2 - 1 from x = 13 with lr 0.9 (the gradient-descent article's
// 1-d example), the gradient from the tape. It reproduces the article's 57 iterates digit for
// digit.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <optional>

#include "common/cli.hpp"
#include "common/format.hpp"
#include "common/minimize_1d_function.hpp"
#include "common/output.hpp"
#include "common/plot.hpp"
#include "tapegrad/tapegrad.hpp"

using tapegrad::Tensor;

namespace {
Tensor<double> objective(const Tensor<double>& x) { return examples::minimize_1d_function(x); }
}  // namespace

namespace {

int run(int argc, char** argv) {
  CLI::App app{"Minimize y = (x + 1)^2 - 1 by gradient descent, the gradient from the tape."};
  double start = 13, learning_rate = 0.9, precision = 1e-4;
  long max_iterations = 10000;
  std::string plot = "minimize_1d.png", out = ".";
  bool quick = false;
  bool compiled = false;
  app.add_option("--start", start, "the first x")->capture_default_str()->check(examples::finite());
  app.add_option("--lr", learning_rate, "learning rate")
      ->capture_default_str()
      ->check(examples::positive());
  app.add_option("--precision", precision, "stop when |dy/dx| is below this")
      ->capture_default_str()
      ->check(examples::non_negative());
  app.add_option("--max-iterations", max_iterations, "at most this many updates")
      ->capture_default_str()
      ->transform(examples::whole(0, 100000000));
  app.add_option("--plot", plot, "PNG of the path on the curve ('' for none)")
      ->capture_default_str();
  examples::add_out_option(app, out, "--plot");
  app.add_flag("--quick", quick, "the same run (it is short already)");
  app.add_flag("--compiled", compiled,
               "record the step once and replay it (tapegrad::compile): the same iterates");
  CLI11_PARSE(app, argc, argv);
  plot = examples::out_path(out, plot);
  if (!plot.empty()) examples::make_out_folder(out);

  Tensor<double> x(start, tapegrad::requires_grad);
  tapegrad::optim::SGD<double> descent({x}, learning_rate);
  std::vector<double> path{start};
  long updates = 0;
  std::optional<tapegrad::Compiled<double>> step;
  if (compiled)
    step = tapegrad::compile(std::vector<Tensor<double>>{x}, [&] { return objective(x); });
  for (long i = 0; i < max_iterations; ++i) {
    if (step) {
      step->run();  // y and dy/dx at the current x, replayed
    } else {
      tapegrad::Tape tape;
      objective(x).backward();
    }
    if (std::abs(x.grad()()) < precision) break;  // converged: |dy/dx| below the precision
    descent.step();
    descent.zero_grad();
    ++updates;
    path.push_back(x.item());
    std::printf("iteration %ld: x = %s\n", i, examples::shortest(x.item()).c_str());
  }
  tapegrad::NoGradGuard no_grad;
  const double y = objective(x).item();
  std::printf("minimum (x, y) = (%s, %s) after %ld updates\n", examples::shortest(x.item()).c_str(),
              examples::shortest(y).c_str(), updates);

  if (!plot.empty()) {
    std::vector<double> cx, cy, py;
    for (double v = -15; v <= 15; v += 0.25) {
      cx.push_back(v);
      cy.push_back((v + 1) * (v + 1) - 1);
    }
    for (double v : path) py.push_back((v + 1) * (v + 1) - 1);
    const bool drawn =
        examples::Plot()
            .title("Gradient descent on y = (x+1)^2 - 1 from x = " + examples::shortest(start) +
                   ", lr " + examples::shortest(learning_rate))
            .labels("x", "y")
            .add({"y = (x+1)^2 - 1", cx, cy, "lines lw 2 lc rgb '#c8a000'"})
            .add({"path of x", path, py, "linespoints pt 7 ps 0.7 lc rgb '#d01010'"})
            .save(plot);
    if (drawn) std::printf("plot: %s\n", plot.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
