// Defining an op of your own: a forward on values, a backward written with tensor ops and
// declared so (differentiable_backward), then gradcheck, gradgradcheck, a second derivative,
// and training with it. Here: softsign(x) = x / (1 + |x|), with derivative 1 / (1 + |x|)^2.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "common/cli.hpp"
#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

namespace {

int run(int argc, char** argv) {
  CLI::App app{"A custom op: softsign with its own backward, checked and trained with."};
  bool quick = false;
  app.add_flag("--quick", quick, "the same run (it is short)");
  CLI11_PARSE(app, argc, argv);

  const auto forward = [](const std::vector<Tensor<double>>& in) {
    const Array& x = in[0].value();
    return Array(x / (1.0 + xt::abs(x)));
  };
  // d/dx x / (1 + |x|) = 1 / (1 + |x|)^2, written with tensor ops on grad_output() and the
  // input, so it can be differentiated again: declared differentiable_backward.
  const auto backward = [](const CustomBackwardContext<double>& c) {
    return std::vector{c.grad_output() / square(1.0 + abs(c.input(0)))};
  };
  const CustomOp<double> softsign("softsign", forward, backward, differentiable_backward);
  const TensorFunction<double> of_softsign = [&](const std::vector<Tensor<double>>& in) {
    return softsign({in[0]});
  };
  const std::vector<Tensor<double>> at = {Tensor<double>(Array{-2.0, -0.3, 0.4, 1.7})};

  // 1. The tape's gradient of the new op against finite differences.
  const auto report = gradcheck<double>(of_softsign, at);
  std::printf("gradcheck: %s\n", report.message.c_str());
  // 2. The declaration: second derivatives through the backward against finite differences
  //    of the gradient.
  const auto second_order = gradgradcheck<double>(of_softsign, at);
  std::printf("gradgradcheck: %s\n", second_order.message.c_str());

  // 3. A second derivative through the custom backward: d2/dx2 softsign = -2 sign(x) / (1 + |x|)^3.
  const auto h = functional::hessian([&](const Tensor<double>& x) { return sum(softsign({x})); },
                                     Tensor<double>(Array{0.5}));
  std::printf("second derivative at 0.5: tape %.10f, formula %.10f\n", h.value()(0, 0),
              -2.0 / (1.5 * 1.5 * 1.5));
  // Without the declaration the backward counts as first order only, and a second derivative
  // is refused by name rather than computed wrong.
  const CustomOp<double> undeclared("softsign", forward, backward);
  try {
    functional::hessian([&](const Tensor<double>& x) { return sum(undeclared({x})); },
                        Tensor<double>(Array{0.5}));
    std::printf("undeclared: a second derivative went through (it should not)\n");
    return 1;
  } catch (const TapeError& e) {
    std::printf("undeclared: hessian refused: %.60s...\n", e.what());
  }

  // 4. Training with it: a 1-8-1 network with softsign hidden units fits sin(x) on [-3, 3].
  Generator random(3);
  nn::Linear<double> first(1, 8, nn::LinearOptions().generator(random)),
      second(8, 1, nn::LinearOptions().generator(random));
  std::vector<Tensor<double>> params = first.parameters();
  for (const auto& p : second.parameters()) params.push_back(p);
  optim::Adam<double> adam(params, 0.02);
  Array xs = Array::from_shape({64, 1}), ys = Array::from_shape({64, 1});
  for (std::size_t i = 0; i < 64; ++i) {
    xs(i, 0) = -3.0 + 6.0 * static_cast<double>(i) / 63.0;
    ys(i, 0) = std::sin(xs(i, 0));
  }
  const Tensor<double> x(xs), y(ys);
  double loss = 0;
  for (int step = 0; step < 2000; ++step) {
    Tape tape;
    const auto l = nn::mse(second(softsign({first(x)})), y);
    l.backward();
    loss = l.item();
    adam.step();
    adam.zero_grad();
  }
  std::printf("fit of sin(x) with softsign units: mean squared error %.5f after 2000 Adam steps\n",
              loss);
  return report.passed && second_order.passed && loss < 0.01 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
