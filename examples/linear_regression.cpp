// Linear regression y = 2x + noise learned by per-sample gradient descent (the TensorFlow example
// of the gradient-descent article, "BP神经网络反向传播之计算过程分解"), the gradient from the tape,
// beside the exact least-squares solution.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <xtensor-blas/xlinalg.hpp>

#include "common/cli.hpp"
#include "common/output.hpp"
#include "common/plot.hpp"
#include "tapegrad/tapegrad.hpp"

using tapegrad::Tensor;
using Array = xt::xarray<double>;

namespace {

int run(int argc, char** argv) {
  CLI::App app{"Fit y = W x + b to y = 2x + 0.3 N(0, 1) by per-sample gradient descent."};
  int epochs = 20, every = 2;
  double learning_rate = 0.01;
  std::uint64_t seed = 1;
  std::string plot_prefix = "linear_regression", out = ".";
  bool quick = false;
  app.add_option("--epochs", epochs, "passes over the 100 points")
      ->capture_default_str()
      ->transform(examples::whole(1, 1000000));
  app.add_option("--lr", learning_rate, "learning rate")
      ->capture_default_str()
      ->check(examples::positive());
  app.add_option("--seed", seed, "seed of the noise and of W's start")
      ->transform(examples::seed_number())
      ->capture_default_str();
  app.add_option("--every", every, "print every this many epochs")
      ->capture_default_str()
      ->transform(examples::whole(1, 1000000));
  app.add_option("--plot", plot_prefix,
                 "prefix of the two PNGs, PREFIX_fit.png and PREFIX_loss.png ('' for none)")
      ->capture_default_str();
  examples::add_out_option(app, out, "--plot");
  app.add_flag("--quick", quick, "the same run (it is short)");
  CLI11_PARSE(app, argc, argv);
  plot_prefix = examples::out_path(out, plot_prefix);
  if (!plot_prefix.empty()) examples::make_out_folder(out);

  // The data: 100 points evenly spaced in [-1, 1], y = 2x + 0.3 N(0, 1).
  tapegrad::Generator random(seed);
  const std::size_t n = 100;
  Array x = xt::linspace<double>(-1.0, 1.0, n);
  Array y = Array::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) y(i) = 2 * x(i) + 0.3 * random.normal();

  // z = W x + b, W ~ N(0, 1), b = 0; cost = mean((Y - z)^2).
  Tensor<double> w(Array{random.normal()}, tapegrad::requires_grad);
  Tensor<double> b(Array{0.0}, tapegrad::requires_grad);
  tapegrad::optim::SGD<double> descent({w, b}, learning_rate);
  auto cost_on = [&](const Tensor<double>& inputs, const Tensor<double>& targets) {
    return mean(square(targets - (w * inputs + b)));
  };
  std::vector<double> step_index, step_loss;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    for (std::size_t i = 0; i < n; ++i) {  // one sample at a time, in order
      tapegrad::Tape tape;
      const auto loss = cost_on(Tensor<double>(Array{x(i)}), Tensor<double>(Array{y(i)}));
      loss.backward();
      descent.step();
      descent.zero_grad();
      step_index.push_back(static_cast<double>(step_index.size()));
      step_loss.push_back(loss.item());
    }
    if (epoch % every == 0) {
      tapegrad::NoGradGuard no_grad;
      std::printf("Epoch %d cost= %.8f W= %.7f b= %.7f\n", epoch + 1,
                  cost_on(Tensor<double>(x), Tensor<double>(y)).item(), w.value()(0), b.value()(0));
    }
  }
  tapegrad::NoGradGuard no_grad;
  const double cost = cost_on(Tensor<double>(x), Tensor<double>(y)).item();
  std::printf("Finished! cost= %.8f W= %.7f b= %.7f\n", cost, w.value()(0), b.value()(0));

  // The exact least-squares fit from LAPACK (xtensor-blas's lstsq, OpenBLAS's dgelsd).
  Array design = Array::from_shape({n, 2});
  for (std::size_t i = 0; i < n; ++i) {
    design(i, 0) = x(i);
    design(i, 1) = 1;
  }
  const Array exact = std::get<0>(xt::linalg::lstsq(design, y));
  std::printf("least squares (LAPACK): W= %.7f b= %.7f; gradient descent is off by %.2e and %.2e\n",
              exact(0), exact(1), std::abs(w.value()(0) - exact(0)),
              std::abs(b.value()(0) - exact(1)));

  if (!plot_prefix.empty()) {
    std::vector<double> xs(x.begin(), x.end()), ys(y.begin(), y.end()), fit, exact_fit;
    for (double v : xs) {
      fit.push_back(w.value()(0) * v + b.value()(0));
      exact_fit.push_back(exact(0) * v + exact(1));
    }
    const bool fitted = examples::Plot()
                            .title("y = 2x + 0.3 N(0,1): the fitted line")
                            .labels("x", "y")
                            .command("set key top left")
                            .add({"data", xs, ys, "points pt 7 ps 0.7 lc rgb '#d01010'"})
                            .add({"gradient descent", xs, fit, "lines lw 2 lc rgb '#1060d0'"})
                            .add({"least squares", xs, exact_fit, "lines dt 2 lw 2 lc rgb 'black'"})
                            .save(plot_prefix + "_fit.png");
    // Moving average of the per-sample loss, window 10, as the article smooths its curve.
    std::vector<double> average;
    for (std::size_t i = 0; i < step_loss.size(); ++i) {
      if (i < 10) {
        average.push_back(step_loss[i]);
        continue;
      }
      double s = 0;
      for (std::size_t k = i - 10; k < i; ++k) s += step_loss[k];
      average.push_back(s / 10);
    }
    // The mean of each epoch's per-sample losses, at the epoch's middle: the trend under the
    // sawtooth.
    std::vector<double> epoch_middle, epoch_mean;
    for (std::size_t start = 0; start + n <= step_loss.size(); start += n) {
      double s = 0;
      for (std::size_t k = start; k < start + n; ++k) s += step_loss[k];
      epoch_middle.push_back(static_cast<double>(start) + static_cast<double>(n) / 2);
      epoch_mean.push_back(s / static_cast<double>(n));
    }
    const bool loss =
        examples::Plot()
            .title(
                "Per-sample loss (Y - z)^{2} of each update. The sawtooth repeats every epoch: "
                "the " +
                std::to_string(n) +
                " samples are\nvisited in the same fixed order (x from -1 to 1), " +
                "so each epoch meets the same large and small errors in turn")
            .labels("update (one sample each; " + std::to_string(n) + " per epoch)", "loss")
            .log_y()
            .command("set key top right box opaque")
            .command("set xtics " + std::to_string(2 * n) +
                     "\nset mxtics 2\nset grid xtics mxtics ytics")  // a line per epoch
            .add({"per-sample loss, moving average of 10 updates", step_index, average,
                  "lines lc rgb '#80a8e0'"})
            .add({"mean over each epoch", epoch_middle, epoch_mean,
                  "linespoints lw 3 pt 7 ps 0.8 lc rgb '#c02000'"})
            .save(plot_prefix + "_loss.png");
    if (fitted && loss)
      std::printf("plots: %s_fit.png %s_loss.png\n", plot_prefix.c_str(), plot_prefix.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
