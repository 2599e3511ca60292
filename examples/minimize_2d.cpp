// The gradient-descent article's two-dimensional function ("BP神经网络反向传播之计算过程分解"),
// f(x, y) =
// -(e^-(x^2+y^2) - 2 e^-((x-1)^2+(y-1)^2)) / 2. First the article's hand-derived gradient is
// checked against the tape (it is wrong); then gradient descent from (1, 1) with lr 0.001 runs on
// the tape's gradient until |grad| < 0.001; Newton's method and L-BFGS start from the same point
// for comparison. With --compiled, the descent's gradients (and Newton's convergence test) replay a
// step recorded once; Newton's steps and L-BFGS stay eager. The same numbers either way.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>

#include "common/cli.hpp"
#include "common/format.hpp"
#include "common/minimize_2d_function.hpp"
#include "common/output.hpp"
#include "common/plot.hpp"
#include "tapegrad/tapegrad.hpp"

using tapegrad::Tensor;
using Array = xt::xarray<double>;

namespace {

Tensor<double> f(const Tensor<double>& v) { return examples::minimize_2d_function(v); }

double f_value(double x, double y) {
  return -0.5 * (std::exp(-x * x - y * y) - 2 * std::exp(-(x - 1) * (x - 1) - (y - 1) * (y - 1)));
}

// The article's derivation, checked here (never used to descend): (2x, 2y) e^-(x^2+y^2).
std::vector<Array> seed_hand_gradient(const std::vector<Array>& point) {
  const double x = point[0](0), y = point[0](1), e = std::exp(-(x * x + y * y));
  return {Array{2 * x * e, 2 * y * e}};
}

std::string pair_short(double a, double b) {
  char text[64];
  std::snprintf(text, sizeof text, "(%g, %g)", a, b);
  return text;
}

std::string pair(double a, double b) {
  char text[96];
  std::snprintf(text, sizeof text, "(%.6f, %.6f)", a, b);
  return text;
}

}  // namespace

namespace {

int run(int argc, char** argv) {
  CLI::App app{
      "Check the gradient-descent article's hand gradient, then minimize its 2-d function "
      "with the tape."};
  double x0 = 1, y0 = 1, learning_rate = 0.001, precision = 0.001;
  long max_iterations = 1000000;
  std::string plot = "minimize_2d.png", out = ".";
  bool quick = false;
  bool compiled = false;
  app.add_option("--x", x0, "start x")->capture_default_str()->check(examples::finite());
  app.add_option("--y", y0, "start y")->capture_default_str()->check(examples::finite());
  app.add_option("--lr", learning_rate, "learning rate of gradient descent")
      ->capture_default_str()
      ->check(examples::positive());
  app.add_option("--precision", precision, "stop when the gradient's 2-norm is below this")
      ->capture_default_str()
      ->check(examples::non_negative());
  app.add_option("--max-iterations", max_iterations, "at most this many descent steps")
      ->capture_default_str()
      ->transform(examples::whole(0, 100000000));
  app.add_option("--plot", plot, "PNG of the paths over the function's map ('' for none)")
      ->capture_default_str();
  examples::add_out_option(app, out, "--plot");
  app.add_flag("--quick", quick, "the same run (it takes well under a second)");
  app.add_flag("--compiled", compiled,
               "the descent's gradients replay a step recorded once (tapegrad::compile): the same "
               "numbers. Newton's steps and L-BFGS stay eager");
  CLI11_PARSE(app, argc, argv);
  plot = examples::out_path(out, plot);
  if (!plot.empty()) examples::make_out_folder(out);

  // 1. The article's hand gradient against the tape, at the start and along the descent.
  Tensor<double> v(Array{x0, y0}, tapegrad::requires_grad);
  tapegrad::optim::SGD<double> descent({v}, learning_rate);
  std::vector<double> px{x0}, py{y0};
  long iterations = 0;
  std::vector<std::vector<Array>> checkpoints{{Array{x0, y0}}};
  double norm = 0;
  std::optional<tapegrad::Compiled<double>> gradient;
  if (compiled) gradient = tapegrad::compile(std::vector<Tensor<double>>{v}, [&] { return f(v); });
  const auto descent_start = std::chrono::steady_clock::now();
  for (; iterations < max_iterations; ++iterations) {
    if (gradient) {
      gradient->run();  // f and its gradient at the current v, replayed
    } else {
      tapegrad::Tape tape;
      f(v).backward();
    }
    norm = std::hypot(v.grad()(0), v.grad()(1));
    if (norm < precision) break;
    descent.step();
    descent.zero_grad();
    if (iterations % 50 == 0) {
      px.push_back(v.value()(0));
      py.push_back(v.value()(1));
    }
    if (iterations % 2000 == 1999) checkpoints.push_back({Array(v.value())});
  }
  const double descent_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - descent_start).count();
  px.push_back(v.value()(0));
  py.push_back(v.value()(1));

  tapegrad::GradcheckOptions names;
  names.names = {"(x, y)"};
  const auto report = tapegrad::check_hand_gradient<double>(
      [](const std::vector<Tensor<double>>& p) { return f(p[0]); }, seed_hand_gradient, checkpoints,
      names);
  std::printf(
      "1. The gradient-descent article's hand gradient (2x e^-(x^2+y^2), 2y e^-(x^2+y^2)) against "
      "the tape, at %zu points:\n",
      checkpoints.size());
  std::printf("   verdict: %s\n", report.passed ? "right" : "wrong");
  std::printf("   %s\n", report.message.c_str());
  {
    tapegrad::Tape tape;
    Tensor<double> at(Array{x0, y0}, tapegrad::requires_grad);
    f(at).backward();
    const auto hand = seed_hand_gradient({Array{x0, y0}})[0];
    std::printf("   at the start %s: hand %s, tape %s\n", pair(x0, y0).c_str(),
                pair(hand(0), hand(1)).c_str(), pair(at.grad()(0), at.grad()(1)).c_str());
    std::printf(
        "   the right gradient: (x e1 - 2(x-1) e2, y e1 - 2(y-1) e2), e1 = e^-(x^2+y^2), "
        "e2 = e^-((x-1)^2+(y-1)^2)\n");
  }

  // 2. Gradient descent on the tape's gradient.
  std::printf("2. Gradient descent, lr %s, from %s: %s after %ld steps, f = %.10f, |grad| = %.2e\n",
              examples::shortest(learning_rate).c_str(), pair(x0, y0).c_str(),
              pair(v.value()(0), v.value()(1)).c_str(), iterations,
              f_value(v.value()(0), v.value()(1)), norm);

  // Every digit (%.17g gives a double back exactly): an eager and a compiled run print the same.
  std::printf("   its last point: (%.17g, %.17g)\n", v.value()(0), v.value()(1));

  // 3. Newton and L-BFGS from the same start.
  Tensor<double> n(Array{x0, y0}, tapegrad::requires_grad);
  tapegrad::optim::Newton<double> newton({n});
  std::vector<double> nx{x0}, ny{y0};
  int newton_steps = 0;
  std::optional<tapegrad::functional::CompiledValueAndGrad<double>> value_and_grad;
  if (compiled) value_and_grad = tapegrad::functional::compile_value_and_grad(f, n);
  for (; newton_steps < 100; ++newton_steps) {
    const auto g = value_and_grad ? (*value_and_grad)(n).second : tapegrad::functional::grad(f, n);
    if (std::hypot(g.value()(0), g.value()(1)) < precision) break;
    newton.step([&] { return f(n); });
    nx.push_back(n.value()(0));
    ny.push_back(n.value()(1));
  }
  std::printf(
      "3. Newton (damped where the Hessian is not positive definite): %s after %d steps, f = "
      "%.10f\n",
      pair(n.value()(0), n.value()(1)).c_str(), newton_steps, f_value(n.value()(0), n.value()(1)));
  Tensor<double> l(Array{x0, y0}, tapegrad::requires_grad);
  tapegrad::optim::LBFGS<double> lbfgs(
      {l}, tapegrad::optim::LBFGSOptions().max_iterations(100).tolerance_grad(precision / 10));
  lbfgs.step([&] { return f(l); });
  std::printf("   L-BFGS (strong Wolfe): %s after %zu function evaluations, f = %.10f\n",
              pair(l.value()(0), l.value()(1)).c_str(), lbfgs.evaluations(),
              f_value(l.value()(0), l.value()(1)));
  // Newton's Hessian is a backward pass through the gradient, and L-BFGS evaluates the loss
  // under a tape of its own: a compiled step gives neither.
  std::printf("descent time: %.3f s for %ld gradients (%s); Newton's steps and L-BFGS eager\n",
              descent_seconds, iterations + (iterations < max_iterations ? 1 : 0),
              compiled ? "compiled step, replayed" : "eager: recorded every step");

  if (!plot.empty()) {
    // L-BFGS's iterates for the picture: the same run again, one iteration per step() (the
    // (s, y) pairs carry over between calls, so the iterates are the same), stopping at the
    // printed run's last point. The printed run above is left as it is: a step() of its own
    // costs one more evaluation.
    std::vector<double> lx{x0}, ly{y0};
    {
      Tensor<double> r(Array{x0, y0}, tapegrad::requires_grad);
      tapegrad::optim::LBFGS<double> replay(
          {r},
          tapegrad::optim::LBFGSOptions().max_iterations(1).max_evaluations(125).tolerance_grad(
              precision / 10));
      for (int k = 0; k < 100 && (r.value()(0) != l.value()(0) || r.value()(1) != l.value()(1));
           ++k) {
        replay.step([&] { return f(r); });
        lx.push_back(r.value()(0));
        ly.push_back(r.value()(1));
      }
    }
    std::ostringstream grid;
    grid << "$grid << EOD\n";
    for (double gx = -2; gx <= 2.0001; gx += 0.05) {
      for (double gy = -2; gy <= 2.0001; gy += 0.05)
        grid << gx << ' ' << gy << ' ' << f_value(gx, gy) << '\n';
      grid << '\n';
    }
    grid << "EOD\n";
    // From a point with x = y the gradient keeps x = y (f is symmetric in x and y): the
    // three paths then share the diagonal, and only their markers tell them apart.
    const std::string diagonal_note =
        x0 == y0
            ? "(from a point with x = y every path stays on the diagonal x = y: f is symmetric)"
            : "";
    const std::string script =
        grid.str() + examples::data_block("gd", px, py) + examples::data_block("newton", nx, ny) +
        examples::data_block("lbfgs", lx, ly) +
        "set terminal pngcairo size 900,900 enhanced font 'sans,11'\n"
        "set output " +
        examples::gnuplot_quote(plot) +
        "\n"
        "set title \"f(x, y) = -(e^{-(x^2+y^2)} - 2e^{-((x-1)^2+(y-1)^2)})/2: three minimizers "
        "from " +
        pair_short(x0, y0) + (diagonal_note.empty() ? "" : "\\n" + diagonal_note) +
        "\"\n"
        "set title offset 0, 1\nset xlabel 'x'\nset ylabel 'y'\nset cblabel 'f(x, y)'\nset view "
        "map\nset size ratio -1\n"
        "set xrange [-2:2]\nset yrange [-2:2]\n"
        "set contour base\nset cntrparam levels 15\nunset clabel\n"
        "set key at screen 0.12, 0.095 left top vertical Left reverse box opaque fc rgb '#d0d0d0' "
        "samplen 4 width 2\n"
        "set bmargin at screen 0.17\nset tmargin at screen 0.87\n"
        "set palette rgbformulae 33,13,10\n"
        "splot $grid using 1:2:3 with pm3d notitle, $grid using 1:2:3 with lines lc rgb '#404040' "
        "nosurface notitle, "
        "$gd using 1:2:(0) with linespoints nocontours lw 7 pt 7 ps 0.5 lc rgb 'black' title "
        "'gradient descent: " +
        std::to_string(iterations) +
        " steps (a dot every 50th)', "
        "$lbfgs using 1:2:(0) with points nocontours pt 9 ps 3 lc rgb 'black' notitle, "
        "$lbfgs using 1:2:(0) with linespoints nocontours lw 3 pt 9 ps 2 lc rgb 'white' title "
        "'L-BFGS: " +
        std::to_string(lx.size() - 1) + " iterations (" + std::to_string(lbfgs.evaluations()) +
        " evaluations of f)', "
        "$newton using 1:2:(0) with linespoints nocontours dt 2 lw 2 pt 5 ps 1.3 lc rgb '#ff00ff' "
        "title 'Newton: " +
        std::to_string(newton_steps) + " steps'\n";
    if (examples::run_gnuplot(script)) std::printf("plot: %s\n", plot.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
