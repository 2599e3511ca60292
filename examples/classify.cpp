// The sklearn article's experiment ("Python机器学习——BP(反向传播)神经网络算法"). Generated
// data (make_classification: 1000 samples, 20 features, 2 informative, 2 redundant), a 75/25
// split; logistic regression from graph ops as the linear baseline; the width sweep of a
// two-hidden-layer logistic MLP trained with L-BFGS (as sklearn's MLPClassifier with solver
// lbfgs, alpha 1e-5); then the 20-10-10-1 ReLU network with MSE and gradient descent, lr 0.1,
// test loss every 100 steps.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "common/cli.hpp"
#include "common/output.hpp"
#include "common/plot.hpp"
#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

namespace {

Tensor<double> column(const Array& labels) {
  Array c = labels;
  c.reshape({labels.size(), std::size_t{1}});
  return Tensor<double>(c);
}

double accuracy(const Tensor<double>& logits, const Array& labels) {
  std::size_t correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i)
    correct += (logits.value()(i, 0) > 0) == (labels(i) > 0.5);
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

// Cross-entropy on logits plus sklearn's L2 penalty alpha/2 sum(W^2) / n.
Tensor<double> penalized_loss(nn::Module<double>& model, const Tensor<double>& x,
                              const Tensor<double>& y, double alpha) {
  Tensor<double> loss = nn::binary_cross_entropy_with_logits(model(x), y);
  for (const auto& [name, p] : model.named_parameters()) {
    if (name.find("weight") != std::string::npos) {
      loss = loss + sum(square(p)) * (0.5 * alpha / static_cast<double>(x.shape()[0]));
    }
  }
  return loss;
}

double train_lbfgs(nn::Module<double>& model, const Tensor<double>& x, const Tensor<double>& y,
                   double alpha, std::size_t iterations) {
  optim::LBFGS<double> lbfgs(model.parameters(), optim::LBFGSOptions()
                                                     .max_iterations(iterations)
                                                     .max_evaluations(iterations * 5 / 4)
                                                     .history_size(10));
  lbfgs.step([&] { return penalized_loss(model, x, y, alpha); });
  NoGradGuard no_grad;
  return penalized_loss(model, x, y, alpha).item();
}

}  // namespace

namespace {

int run(int argc, char** argv) {
  CLI::App app{
      "The sklearn article's classification experiment (make_classification, a logistic "
      "baseline, MLPs of growing width), every gradient from the tape."};
  std::uint64_t seed = 1;
  std::size_t iterations = 200, first_width = 5, last_width = 100, width_step = 5;
  int gd_steps = 1000;
  std::string plot = "classify_widths.png", out = ".";
  bool quick = false;
  app.add_option("--seed", seed, "seed of the data, the split and the weights")
      ->transform(examples::seed_number())
      ->capture_default_str();
  app.add_option("--iterations", iterations, "L-BFGS iterations per model (sklearn's max_iter)")
      ->capture_default_str()
      ->transform(examples::whole(1, 100000));
  app.add_option("--first-width", first_width, "smallest hidden width")
      ->capture_default_str()
      ->transform(examples::whole(1, 10000));
  app.add_option("--last-width", last_width, "largest hidden width")
      ->capture_default_str()
      ->transform(examples::whole(1, 10000));
  app.add_option("--width-step", width_step, "width increment")
      ->capture_default_str()
      ->transform(examples::whole(1, 10000));
  app.add_option("--steps", gd_steps, "gradient-descent steps of the ReLU network")
      ->capture_default_str()
      ->transform(examples::whole(0, 10000000));
  app.add_option("--plot", plot, "PNG of test accuracy against width ('' for none)")
      ->capture_default_str();
  examples::add_out_option(app, out, "--plot");
  app.add_flag("--quick", quick, "widths 5, 50, 100 only");
  CLI11_PARSE(app, argc, argv);
  plot = examples::out_path(out, plot);
  if (last_width < first_width) {
    throw std::invalid_argument("--last-width " + std::to_string(last_width) +
                                " is below --first-width " + std::to_string(first_width) +
                                ": no width to try");
  }
  if (!plot.empty()) examples::make_out_folder(out);

  const auto data = data::make_classification(
      data::ClassificationOptions().samples(1000).features(20).informative(2).redundant(2).seed(
          seed));
  auto [train, test] = data::train_test_split(data, 0.25, seed);
  data::Standardizer<double> scale;
  const Tensor<double> x_train(scale.fit_transform(train.features));
  const Tensor<double> x_test(scale.transform(test.features));
  const Tensor<double> y_train = column(train.targets), y_test = column(test.targets);
  std::printf(
      "make_classification: %zu training and %zu test samples, 20 features (2 informative, 2 "
      "redundant)\n",
      train.size(), test.size());

  // The linear baseline: logistic regression, x W + b with cross-entropy, by L-BFGS.
  Generator random(seed);
  nn::Linear<double> logistic(20, 1, nn::LinearOptions().generator(random));
  train_lbfgs(logistic, x_train, y_train, 1e-5, iterations);
  const double baseline = accuracy(logistic(x_test), test.targets);
  std::printf("logistic regression (linear baseline): test accuracy %.4f\n", baseline);

  // The width sweep.
  std::vector<double> widths, accuracies;
  std::vector<std::size_t> sweep;
  if (quick) {
    sweep = {5, 50, 100};
  } else {
    for (std::size_t i = first_width; i <= last_width; i += width_step) sweep.push_back(i);
  }
  double best = 0;
  std::size_t best_width = 0;
  std::printf("MLP 20-i-i-1, logistic hidden units, L-BFGS %zu iterations, alpha 1e-5:\n",
              iterations);
  for (std::size_t i : sweep) {
    nn::MLP<double> mlp({20, i, i, 1}, nn::Activation::Sigmoid,
                        nn::MLPOptions()
                            .output_activation(nn::Activation::Identity)
                            .linear(nn::LinearOptions().generator(random)));
    const double loss = train_lbfgs(mlp, x_train, y_train, 1e-5, iterations);
    const double acc = accuracy(mlp(x_test), test.targets);
    std::printf("  i = %3zu: training loss %.3g, test accuracy %.4f\n", i, loss, acc);
    widths.push_back(static_cast<double>(i));
    accuracies.push_back(acc);
    if (acc > best) best = acc, best_width = i;
  }
  std::printf("best MLP: i = %zu, test accuracy %.4f (chance 0.5, logistic regression %.4f)\n",
              best_width, best, baseline);

  // The TensorFlow part of the sklearn article: 20-10-10-1 ReLU, MSE on the 0/1 labels, GD lr 0.1.
  nn::MLP<double> relu_net(
      {20, 10, 10, 1}, nn::Activation::ReLU,
      nn::MLPOptions()
          .output_activation(nn::Activation::Identity)
          .linear(nn::LinearOptions().weight_init(nn::Init::he_uniform()).generator(random)));
  optim::SGD<double> descent(relu_net.parameters(), 0.1);
  std::printf("20-10-10-1 ReLU network, MSE, gradient descent lr 0.1:\n");
  for (int step = 1; step <= gd_steps; ++step) {
    {
      Tape tape;
      nn::mse(relu_net(x_train), y_train).backward();
    }
    descent.step();
    descent.zero_grad();
    if (step % 100 == 0) {
      NoGradGuard no_grad;
      std::printf("  step %4d: test loss %.5f\n", step, nn::mse(relu_net(x_test), y_test).item());
    }
  }
  {
    NoGradGuard no_grad;
    const auto out = relu_net(x_test);
    std::size_t correct = 0;
    for (std::size_t k = 0; k < test.size(); ++k)
      correct += (out.value()(k, 0) > 0.5) == (test.targets(k) > 0.5);
    std::printf("  test accuracy (threshold 0.5): %.4f\n",
                static_cast<double>(correct) / static_cast<double>(test.size()));
  }

  if (!plot.empty() &&
      examples::Plot()
          .title("Two-hidden-layer logistic MLP: test accuracy against width")
          .labels("hidden units per layer (i)", "test accuracy")
          .command("set yrange [0.5:1]")
          .add({"MLP 20-i-i-1", widths, accuracies, "linespoints pt 7 lc rgb '#1060d0'"})
          .add({"logistic regression",
                {widths.front(), widths.back()},
                {baseline, baseline},
                "lines dt 2 lw 2 lc rgb 'black'"})
          .save(plot)) {
    std::printf("plot: %s\n", plot.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
