// A small network's gradients, layer by layer, from the tape beside the four BP equations
// (the BP-network article's delta rule, the BP-derivation article's BP1-BP4) and finite
// differences.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <sstream>

#include "common/cli.hpp"
#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;

namespace {

void print_quantity(const nn::BPQuantity& q, bool all) {
  std::printf("  %-6s  |tape - BP| = %.2e  |tape - FD| = %.2e\n", q.name.c_str(),
              q.tape_vs_equations, q.tape_vs_numeric);
  if (!all) return;
  const std::size_t columns = q.tape.dimension() == 2 ? q.tape.shape()[1] : q.tape.size();
  for (std::size_t k = 0; k < q.tape.size(); ++k) {
    const std::size_t r = k / columns, c = k % columns;
    std::printf("    [%zu,%zu] tape %+.12f  BP %+.12f  FD %+.12f\n", r, c, q.tape.data()[k],
                q.equations.data()[k], q.numeric.data()[k]);
  }
}

}  // namespace

namespace {

int run(int argc, char** argv) {
  CLI::App app{"The tape's gradients beside the four BP equations, layer by layer."};
  std::string sizes_text = "2,3,2", activation_text = "sigmoid", loss_text = "half_sse";
  std::size_t batch = 3;
  std::uint64_t seed = 1;
  bool quick = false;
  app.add_option("--sizes", sizes_text, "layer sizes, input first")->capture_default_str();
  app.add_option("--activation", activation_text, "sigmoid, tanh or relu")
      ->capture_default_str()
      ->check(CLI::IsMember({"sigmoid", "tanh", "relu"}));
  app.add_option("--loss", loss_text,
                 "half_sse (half the mean squared error, E = sum((t - y)^2) / 2N) or mse (the mean "
                 "squared error)")
      ->capture_default_str()
      ->check(CLI::IsMember({"half_sse", "mse"}));
  app.add_option("--batch", batch, "samples in the batch")
      ->capture_default_str()
      ->transform(examples::whole(1, 1000));
  app.add_option("--seed", seed, "seed of weights and data")
      ->transform(examples::seed_number())
      ->capture_default_str();
  app.add_flag("--quick", quick, "the same run (it is small)");
  CLI11_PARSE(app, argc, argv);

  // Every weight is checked by finite differences: small networks only.
  const auto sizes = examples::parse_sizes(sizes_text, "--sizes", 100, 2);
  const nn::Activation activation = activation_text == "tanh"   ? nn::Activation::Tanh
                                    : activation_text == "relu" ? nn::Activation::ReLU
                                                                : nn::Activation::Sigmoid;
  Generator random(seed);
  nn::MLP<double> mlp(sizes, activation,
                      nn::MLPOptions().linear(nn::LinearOptions().generator(random).bias_init(
                          nn::Init::normal(0, 0.5))));
  xt::xarray<double> x = xt::xarray<double>::from_shape({batch, sizes.front()});
  xt::xarray<double> t = xt::xarray<double>::from_shape({batch, sizes.back()});
  for (auto& value : x) value = random.uniform(-1, 1);
  for (auto& value : t) value = random.uniform(0, 1);

  const auto report =
      nn::check_mlp_bp(mlp, x, t, loss_text == "mse" ? nn::BPLoss::mse : nn::BPLoss::half_sse);
  std::printf("network %s, %s, loss %s = %.10f, batch of %zu\n", sizes_text.c_str(),
              activation_text.c_str(), loss_text.c_str(), report.loss, batch);
  std::printf(
      "BP1 delta_L = dC/da_L * f'(z_L)   BP2 delta_l = (delta_{l+1} W_{l+1}^T) * f'(z_l)\n"
      "BP3 dC/db_l = sum over samples of delta_l   BP4 dC/dW_l = a_{l-1}^T delta_l\n");
  const bool all = report.layers.size() <= 3 && mlp.parameter_count() <= 40;
  for (const auto& layer : report.layers) {
    std::printf("layer %zu\n", layer.layer);
    print_quantity(layer.delta, all);
    print_quantity(layer.bias, all);
    print_quantity(layer.weight, all);
  }
  std::printf("%s: %s\n", report.passed ? "agree" : "DISAGREE", report.message.c_str());
  return report.passed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
