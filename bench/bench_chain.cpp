// Per-op cost of the tape: a chain of 0-d multiplications recorded, reversed and freed,
// against a minimal scalar tape written here (no tensors, no checks: the floor).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>

#include "common.hpp"

#include "tapegrad/tapegrad.hpp"

namespace {

using bench::Clock;
using bench::median;
using bench::seconds_since;

// The smallest useful reverse-mode tape: each entry knows its parent and local derivative.
struct ScalarTape {
  struct Entry {
    double value, local;
    std::size_t parent;
  };
  std::vector<Entry> entries;
  std::size_t leaf(double v) {
    entries.push_back({v, 0, SIZE_MAX});
    return entries.size() - 1;
  }
  std::size_t scale(std::size_t x, double c) {
    entries.push_back({entries[x].value * c, c, x});
    return entries.size() - 1;
  }
  double gradient_of_leaf(std::size_t result) const {
    std::vector<double> adjoint(entries.size(), 0.0);
    adjoint[result] = 1;
    for (std::size_t i = result + 1; i-- > 1;) {
      if (entries[i].parent != SIZE_MAX) adjoint[entries[i].parent] += adjoint[i] * entries[i].local;
    }
    return adjoint[0];
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Per-op cost of recording, reversing and freeing a chain of 0-d ops."};
  long length = 1000000;
  int runs = 5;
  bool quick = false;
  app.add_option("--length", length, "ops in the chain")->capture_default_str();
  app.add_option("--runs", runs, "runs (medians)")->capture_default_str();
  app.add_flag("--quick", quick, "a chain of 10^5, one run");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    length = 100000;
    runs = 1;
  }
  const double factor = 1.0000001;
  std::vector<double> floor_times, tape_times;
  double floor_gradient = 0, tape_gradient = 0;
  for (int r = 0; r < runs; ++r) {
    auto start = Clock::now();
    {
      ScalarTape t;
      std::size_t y = t.leaf(1.0);
      for (long i = 0; i < length; ++i) y = t.scale(y, factor);
      floor_gradient = t.gradient_of_leaf(y);
    }
    floor_times.push_back(std::chrono::duration<double>(Clock::now() - start).count());

    tapegrad::Tensor<double> x(1.0, tapegrad::requires_grad);
    const tapegrad::Tensor<double> c(factor);
    start = Clock::now();
    {
      tapegrad::Tape tape;
      tapegrad::Tensor<double> y = x;
      for (long i = 0; i < length; ++i) y = y * c;
      y.backward();
    }
    tape_times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    tape_gradient = x.grad()();
  }
  const double f = 1e9 * median(floor_times) / static_cast<double>(length);
  const double t = 1e9 * median(tape_times) / static_cast<double>(length);
  std::printf("chain of %ld 0-d ops, record + backward + free, median of %d\n", length, runs);
  std::printf("  minimal scalar tape : %7.1f ns per op\n  tapegrad            : %7.1f ns per op\n  ratio               : %7.1f x\n",
              f, t, t / f);
  std::printf("  gradients agree: %s (%.12g vs %.12g)\n",
              std::abs(floor_gradient - tape_gradient) < 1e-9 * floor_gradient ? "yes" : "NO", floor_gradient, tape_gradient);
  return std::abs(floor_gradient - tape_gradient) < 1e-9 * floor_gradient ? 0 : 1;
}
