// XOR training: tapegrad against the same network written by hand with xtensor and seed
// 000's delta formulas (the floor: no framework), timed in one process. (The cost of one
// recorded op is bench_chain's.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>

#include "common.hpp"
#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmath.hpp>

#include "common/xor_network.hpp"

extern "C" void openblas_set_num_threads(int threads);

namespace {

using bench::Clock;
using bench::median;
using bench::seconds_since;
using Array = xt::xarray<double>;

Array sigmoid(const Array& x) { return 1.0 / (1.0 + xt::exp(-x)); }

// Seed 000's update(), line for line: the analytic deltas, no tape.
struct HandWrittenXor {
  Array x, t, w1, b1, w2, b2;
  explicit HandWrittenXor(const examples::XorNetwork<double>& init)
      : x(init.inputs.value()), t(init.targets.value()), w1(init.layer(0).weight().value()),
        b1(init.layer(0).bias().value()), w2(init.layer(1).weight().value()),
        b2(init.layer(1).bias().value()) {}

  void train_epoch(double lr) {
    const double n = static_cast<double>(x.shape()[0]);
    const Array l1 = sigmoid(xt::linalg::dot(x, w1) + b1);
    const Array l2 = sigmoid(xt::linalg::dot(l1, w2) + b2);
    const Array delta_l2 = (t - l2) * l2 * (1.0 - l2);
    const Array delta_l1 = xt::linalg::dot(delta_l2, xt::transpose(w2)) * l1 * (1.0 - l1);
    w2 += lr * xt::linalg::dot(xt::transpose(l1), delta_l2) / n;
    w1 += lr * xt::linalg::dot(xt::transpose(x), delta_l1) / n;
    b2 += lr * xt::mean(delta_l2, {0});
    b1 += lr * xt::mean(delta_l1, {0});
  }
};

double max_difference(const Array& a, const Array& b) { return xt::amax(xt::abs(a - b))(); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"XOR training time: tapegrad vs hand-written xtensor BP."};
  long epochs = 100001;
  int runs = 5;
  bool quick = false;
  std::uint64_t seed = 1;
  app.add_option("--epochs", epochs, "epochs per run")->capture_default_str();
  app.add_option("--runs", runs, "runs of each (the median is reported)")->capture_default_str();
  app.add_option("--seed", seed, "seed of the initial weights")->capture_default_str();
  app.add_flag("--quick", quick, "a short smoke run (asserts nothing about speed)");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    epochs = 2001;
    runs = 1;
  }
  const double lr = 0.1;
  // Both trainings use the same BLAS; one thread keeps OpenBLAS's idle workers from
  // competing for the 2 cores with 4x10 matrices that never need them.
  openblas_set_num_threads(1);

  std::vector<double> hand_times, tape_times;
  double weight_gap = 0;
  for (int run = 0; run < runs; ++run) {
    examples::XorNetwork<double> net(seed, lr);
    HandWrittenXor hand(net);

    auto start = Clock::now();
    for (long e = 0; e < epochs; ++e) hand.train_epoch(lr);
    hand_times.push_back(seconds_since(start));

    start = Clock::now();
    for (long e = 0; e < epochs; ++e) net.train_epoch();
    tape_times.push_back(seconds_since(start));

    weight_gap = std::max({max_difference(hand.w1, net.layer(0).weight().value()),
                           max_difference(hand.w2, net.layer(1).weight().value()),
                           max_difference(hand.b1, net.layer(0).bias().value()),
                           max_difference(hand.b2, net.layer(1).bias().value())});
  }
  const double hand = median(hand_times);
  const double tape = median(tape_times);
  std::printf("XOR 2-10-1 sigmoid, float64, %ld full-batch epochs, median of %d runs, "
              "1 OpenBLAS thread\n", epochs, runs);
  std::printf("  hand-written xtensor BP : %8.3f s  (%6.2f us/epoch)\n", hand, 1e6 * hand / epochs);
  std::printf("  tapegrad                : %8.3f s  (%6.2f us/epoch)\n", tape, 1e6 * tape / epochs);
  std::printf("  ratio tapegrad / hand   : %8.2f x\n", tape / hand);
  std::printf("  largest weight difference after training: %.3g\n", weight_gap);

  if (weight_gap > 1e-6) {
    std::printf("error: tapegrad and the hand-written BP disagree\n");
    return 1;
  }
  return 0;
}
