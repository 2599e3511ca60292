// XOR training: tapegrad against the same network written by hand as fast as we know how
// with the same libraries (the floor: no framework), timed alternately in one process. (The
// cost of one recorded op is bench_chain's; larger networks are bench_mlp's.)
#include <cblas.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>
#include <xtensor/xtensor.hpp>

#include "common.hpp"
#include "common/xor_network.hpp"

namespace {

using bench::Clock;
using bench::median;
using bench::minor_faults;
using bench::seconds_since;
using Matrix = xt::xtensor<double, 2>;
using Vector = xt::xtensor<double, 1>;

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// The 2-10-1 sigmoid network's gradient step for E = sum((T - Y)^2) / (2N), with every buffer
// allocated once, the transposes left to CBLAS's flags, and the SGD update folded into the
// weight-gradient GEMMs (beta = 1). The deltas are kept N times too large, and 1/N goes into
// the update's alpha.
struct HandWrittenXor {
  Matrix x, t, w1, w2, a1, y, d1, d2;
  Vector b1, b2;
  int n, in, hidden, out;

  explicit HandWrittenXor(const examples::XorNetwork<double>& init)
      : x(init.inputs.value()),
        t(init.targets.value()),
        w1(init.layer(0).weight().value()),
        w2(init.layer(1).weight().value()),
        b1(init.layer(0).bias().value()),
        b2(init.layer(1).bias().value()),
        n(static_cast<int>(x.shape(0))),
        in(static_cast<int>(w1.shape(0))),
        hidden(static_cast<int>(w1.shape(1))),
        out(static_cast<int>(w2.shape(1))) {
    a1 = Matrix::from_shape({x.shape(0), w1.shape(1)});
    d1 = Matrix::from_shape(a1.shape());
    y = Matrix::from_shape({x.shape(0), w2.shape(1)});
    d2 = Matrix::from_shape(y.shape());
  }

  void train_epoch(double lr) {
    // Forward: A1 = sigmoid(X W1 + b1), Y = sigmoid(A1 W2 + b2).
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hidden, in, 1.0, x.data(), in,
                w1.data(), hidden, 0.0, a1.data(), hidden);
    add_bias_sigmoid(a1.data(), b1.data(), hidden);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, out, hidden, 1.0, a1.data(), hidden,
                w2.data(), out, 0.0, y.data(), out);
    add_bias_sigmoid(y.data(), b2.data(), out);
    // Backward: D2 = (Y - T) Y (1 - Y); D1 = (D2 W2^T) A1 (1 - A1), with the old W2.
    double* d2p = d2.data();
    const double *yp = y.data(), *tp = t.data();
    for (int k = 0; k < n * out; ++k) d2p[k] = (yp[k] - tp[k]) * yp[k] * (1.0 - yp[k]);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, hidden, out, 1.0, d2p, out, w2.data(),
                out, 0.0, d1.data(), hidden);
    double* d1p = d1.data();
    const double* a1p = a1.data();
    for (int k = 0; k < n * hidden; ++k) d1p[k] *= a1p[k] * (1.0 - a1p[k]);
    // Update: W -= (lr / N) A^T D, b -= (lr / N) sum over rows of D.
    const double step = lr / n;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hidden, out, n, -step, a1p, hidden, d2p,
                out, 1.0, w2.data(), out);
    update_bias(b2.data(), d2p, out, step);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, hidden, n, -step, x.data(), in, d1p,
                hidden, 1.0, w1.data(), hidden);
    update_bias(b1.data(), d1p, hidden, step);
  }

  void add_bias_sigmoid(double* z, const double* b, int cols) const {
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < cols; ++j) z[i * cols + j] = sigmoid(z[i * cols + j] + b[j]);
    }
  }
  void update_bias(double* b, const double* d, int cols, double step) const {
    for (int j = 0; j < cols; ++j) {
      double sum = 0;
      for (int i = 0; i < n; ++i) sum += d[i * cols + j];
      b[j] -= step * sum;
    }
  }
};

template <class A, class B>
double max_difference(const A& a, const B& b) {
  double gap = 0;
  for (std::size_t k = 0; k < a.size(); ++k) {
    gap = std::max(gap, std::abs(a.data()[k] - b.data()[k]));
  }
  return gap;
}

struct Timing {
  std::vector<double> seconds;
  long faults = 0;
  template <class F>
  void run(long epochs, F&& train_epoch) {
    const long faults_before = minor_faults();
    const auto start = Clock::now();
    for (long e = 0; e < epochs; ++e) train_epoch();
    seconds.push_back(seconds_since(start));
    faults += minor_faults() - faults_before;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"XOR training time: tapegrad vs the fastest hand-written BP (CBLAS)."};
  long epochs = 100001;
  int runs = 5;
  bool quick = false;
  std::uint64_t seed = 1;
  app.add_option("--epochs", epochs, "epochs per run")->capture_default_str();
  app.add_option("--runs", runs, "runs of each (the median is reported)")->capture_default_str();
  app.add_option("--seed", seed, "seed of the initial weights")->capture_default_str();
  app.add_flag("--quick", quick, "a short smoke run (asserts nothing about speed)");
  std::string only;
  app.add_option("--only", only, "time one side alone, for a profiler (its figures only)")
      ->check(CLI::IsMember({"hand", "eager", "compiled", "sgd-step"}));
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    epochs = 2001;
    runs = 1;
  }
  const double lr = 0.1;
  // Both trainings use the same BLAS; one thread keeps OpenBLAS's idle workers from
  // competing for the 2 cores with 4x10 matrices that never need them.
  openblas_set_num_threads(1);

  Timing hand_timing, tape_timing, compiled_timing, sgd_step_timing;
  double weight_gap = 0;
  for (int run = 0; run < runs; ++run) {
    examples::XorNetwork<double> net(seed, lr), compiled_net(seed, lr), sgd_net(seed, lr);
    HandWrittenXor hand(net);
    auto step = tapegrad::compile(compiled_net.model.parameters(),
                                  [&] { return compiled_net.loss(compiled_net.forward()); });
    auto sgd_step = tapegrad::compile_sgd_step(sgd_net.model.parameters(), lr,
                                               [&] { return sgd_net.loss(sgd_net.forward()); });
    auto time_hand = [&] { hand_timing.run(epochs, [&] { hand.train_epoch(lr); }); };
    auto time_tape = [&] { tape_timing.run(epochs, [&] { net.train_epoch(); }); };
    auto time_compiled = [&] {
      compiled_timing.run(epochs, [&] {
        step.run();
        compiled_net.optimizer.step();
        compiled_net.optimizer.zero_grad();
      });
    };
    auto time_sgd_step = [&] { sgd_step_timing.run(epochs, [&] { sgd_step.run(); }); };
    // Each run in a different order, so that none is always first or last.
    const std::function<void()> order[4] = {time_hand, time_tape, time_compiled, time_sgd_step};
    for (int k = 0; k < 4; ++k) {
      const int side = (run + k) % 4;
      if (only.empty() ||
          only == std::array<const char*, 4>{"hand", "eager", "compiled", "sgd-step"}[side]) {
        order[side]();
      }
    }
    for (const auto* trained : {&net, &compiled_net, &sgd_net}) {
      if (!only.empty()) break;
      weight_gap =
          std::max({weight_gap, max_difference(hand.w1, trained->layer(0).weight().value()),
                    max_difference(hand.w2, trained->layer(1).weight().value()),
                    max_difference(hand.b1, trained->layer(0).bias().value()),
                    max_difference(hand.b2, trained->layer(1).bias().value())});
    }
  }
  if (!only.empty()) {
    const Timing& timing = only == "hand"       ? hand_timing
                           : only == "eager"    ? tape_timing
                           : only == "compiled" ? compiled_timing
                                                : sgd_step_timing;
    std::printf("%s alone: %.2f us/epoch (median of %d runs; no comparison)\n", only.c_str(),
                1e6 * median(timing.seconds) / epochs, runs);
    return 0;
  }
  const double hand = median(hand_timing.seconds);
  const double tape = median(tape_timing.seconds);
  const double compiled = median(compiled_timing.seconds);
  const double sgd_stepped = median(sgd_step_timing.seconds);
  const double total_epochs = static_cast<double>(epochs) * runs;
  std::printf(
      "XOR 2-10-1 sigmoid, float64, %ld full-batch epochs, median of %d alternating runs, "
      "1 OpenBLAS thread\n",
      epochs, runs);
  std::printf(
      "  hand-written (CBLAS, buffers reused) : %8.3f s  (%6.2f us/epoch, %.4f page "
      "faults/epoch)\n",
      hand, 1e6 * hand / epochs, hand_timing.faults / total_epochs);
  std::printf(
      "  tapegrad                             : %8.3f s  (%6.2f us/epoch, %.4f page "
      "faults/epoch)\n",
      tape, 1e6 * tape / epochs, tape_timing.faults / total_epochs);
  std::printf(
      "  tapegrad, compiled step (compile())  : %8.3f s  (%6.2f us/epoch, %.4f page "
      "faults/epoch)\n",
      compiled, 1e6 * compiled / epochs, compiled_timing.faults / total_epochs);
  std::printf(
      "  compiled with its update (sgd step)  : %8.3f s  (%6.2f us/epoch, %.4f page "
      "faults/epoch)\n",
      sgd_stepped, 1e6 * sgd_stepped / epochs, sgd_step_timing.faults / total_epochs);
  std::printf("  ratio tapegrad / hand                : %8.2f x\n", tape / hand);
  std::printf("  ratio compiled / hand                : %8.2f x\n", compiled / hand);
  std::printf("  ratio sgd step / hand                : %8.2f x\n", sgd_stepped / hand);
  std::printf("  largest weight difference after training: %.3g\n", weight_gap);

  if (weight_gap > 1e-6) {
    std::printf("error: tapegrad and the hand-written BP disagree\n");
    return 1;
  }
  return 0;
}
