// Memory over a long training: 100,000 steps of a small MLP; resident memory must stay flat
// after the first steps, and the live-node count must return to where it started.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "tapegrad/tapegrad.hpp"

namespace {
long resident_kib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Resident memory over 100,000 training steps of a small MLP."};
  long steps = 100000;
  bool quick = false;
  app.add_option("--steps", steps, "training steps")->capture_default_str();
  app.add_flag("--quick", quick, "10,000 steps");
  CLI11_PARSE(app, argc, argv);
  if (quick) steps = 10000;

  using namespace tapegrad;
  const std::size_t nodes_before = live_node_count();
  long after_warmup = 0, peak = 0;
  {
    Generator random(1);
    nn::MLP<double> model({4, 16, 16, 1}, nn::Activation::Tanh,
                          nn::MLPOptions().linear(nn::LinearOptions().generator(random)));
    optim::Adam<double> adam(model.parameters(), 1e-3);
    xt::xarray<double> x = xt::xarray<double>::from_shape({32, 4}),
                       t = xt::xarray<double>::from_shape({32, 1});
    for (auto& v : x) v = random.uniform(-1, 1);
    for (auto& v : t) v = random.uniform(0, 1);
    const Tensor<double> inputs(x), targets(t);
    for (long step = 1; step <= steps; ++step) {
      {
        Tape tape;
        nn::mse(model(inputs), targets).backward();
      }
      adam.step();
      adam.zero_grad();
      if (step == 1000) after_warmup = resident_kib();
      if (step >= 1000) peak = std::max(peak, resident_kib());
    }
  }
  const std::size_t nodes_after = live_node_count();
  std::printf(
      "%ld steps of a 4-16-16-1 MLP (Adam, batch 32): resident %ld KiB after 1000 steps, at most "
      "%ld KiB "
      "after (growth %ld KiB); live nodes %zu before, %zu after\n",
      steps, after_warmup, peak, peak - after_warmup, nodes_before, nodes_after);
  const bool flat = peak - after_warmup <= 256 && nodes_after == nodes_before;
  std::printf("memory %s\n", flat ? "flat" : "GROWS");
  return flat ? 0 : 1;
}
