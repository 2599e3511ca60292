// MLP training step, W-W-W-W with ReLU after the first two layers, MSE loss, plain SGD:
// tapegrad as a user writes it against the same step written by hand as fast as we know how
// with the same libraries, over a grid of widths and batch sizes, timed alternately in one
// process. Both start from the same weights and must end with the same ones.
#include <cblas.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>
#include <xtensor/xtensor.hpp>

#include "common.hpp"
#include "tapegrad/tapegrad.hpp"

namespace {

using bench::Clock;
using bench::median;
using bench::minor_faults;
using bench::seconds_since;
using Matrix = xt::xtensor<double, 2>;
using Vector = xt::xtensor<double, 1>;
namespace nn = tapegrad::nn;

// The model as a user of tapegrad writes it: forward, loss and backward inside a Tape scope,
// then the optimizer's step.
struct TapegradMlp {
  tapegrad::Generator random;
  nn::MLP<double> model;
  tapegrad::optim::SGD<double> sgd;
  tapegrad::Tensor<double> x, target;

  TapegradMlp(std::size_t width, std::size_t layers, const Matrix& inputs, const Matrix& targets,
              double lr, std::uint64_t seed)
      : random(seed),
        model(std::vector<std::size_t>(layers + 1, width), nn::Activation::ReLU,
              nn::MLPOptions()
                  .output_activation(nn::Activation::Identity)
                  .linear(nn::LinearOptions().generator(random))),
        sgd(model.parameters(), lr),
        x(xt::xarray<double>(inputs)),
        target(xt::xarray<double>(targets)) {}

  std::unique_ptr<tapegrad::Compiled<double>> compiled;  // set by compile_step()
  std::unique_ptr<tapegrad::SgdStep<double>> sgd_step;   // set by compile_sgd_step()

  // From now on, step() replays one recorded step (tapegrad::compile) instead of recording.
  void compile_step() {
    compiled = std::make_unique<tapegrad::Compiled<double>>(
        tapegrad::compile(model.parameters(), [this] { return nn::mse(model(x), target); }));
  }

  // From now on, step() replays one recorded step with the SGD update in it
  // (tapegrad::compile_sgd_step: the weight updates folded into their gradients' products).
  void compile_sgd_step(double lr) {
    sgd_step = std::make_unique<tapegrad::SgdStep<double>>(tapegrad::compile_sgd_step(
        model.parameters(), lr, [this] { return nn::mse(model(x), target); }));
  }

  void step() {
    if (sgd_step) {
      sgd_step->run();
      return;
    }
    if (compiled) {
      compiled->run();
    } else {
      tapegrad::Tape tape;
      tapegrad::Tensor<double> loss = nn::mse(model(x), target);
      loss.backward();
    }
    sgd.step();
    sgd.zero_grad();
  }
};

// The same step by hand: buffers allocated once, GEMMs through CBLAS with the transposes in
// its flags (GEMV and GER for a batch of one, faster there for wide layers), bias and ReLU fused in
// one loop, and the SGD update folded into the weight-gradient GEMM (beta = 1 on W itself). The
// deltas are kept unscaled; the MSE's 2 / (B W) goes into the updates' alpha.
struct HandWrittenMlp {
  std::vector<Matrix> w;  // w[l]: (in, out) of layer l
  std::vector<Vector> b;  // b[l]: (out,)
  std::vector<Matrix> a;  // a[0] = X, a[l + 1] = layer l's output
  std::vector<Matrix> d;  // d[l]: dLoss/dZ of layer l, unscaled
  Matrix t;
  double lr;
  int batch;

  HandWrittenMlp(const nn::MLP<double>& init, const Matrix& inputs, const Matrix& targets,
                 double learning_rate)
      : t(targets), lr(learning_rate), batch(static_cast<int>(inputs.shape(0))) {
    a.push_back(inputs);
    for (const auto& layer : init.linear_layers()) {
      w.emplace_back(layer->weight().value());
      b.emplace_back(layer->bias().value());
      a.push_back(Matrix::from_shape({inputs.shape(0), layer->out_features()}));
      d.push_back(Matrix::from_shape({inputs.shape(0), layer->out_features()}));
    }
  }

  static int rows(const Matrix& m) { return static_cast<int>(m.shape(0)); }
  static int cols(const Matrix& m) { return static_cast<int>(m.shape(1)); }

  void step() {
    const std::size_t layers = w.size();
    for (std::size_t l = 0; l < layers; ++l) {
      const int in = rows(w[l]), out = cols(w[l]);
      double* z = a[l + 1].data();
      if (batch == 1) {  // z = W^T x; GEMM would first copy all of W into its panels
        cblas_dgemv(CblasRowMajor, CblasTrans, in, out, 1.0, w[l].data(), out, a[l].data(), 1, 0.0,
                    z, 1);
      } else {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, out, in, 1.0, a[l].data(), in,
                    w[l].data(), out, 0.0, z, out);
      }
      const double* bias = b[l].data();
      // Two loops without branches inside, so that the compiler vectorizes both.
      const bool relu = l + 1 < layers;
      for (int i = 0; i < batch; ++i) {
        double* row = z + static_cast<std::ptrdiff_t>(i) * out;
        if (relu) {
          for (int j = 0; j < out; ++j) row[j] = std::max(row[j] + bias[j], 0.0);
        } else {
          for (int j = 0; j < out; ++j) row[j] += bias[j];
        }
      }
    }
    // mse = sum((Y - T)^2) / (B out): dY = scale (Y - T).
    const double scale = 2.0 / static_cast<double>(a.back().size());
    {
      double* dy = d.back().data();
      const double *y = a.back().data(), *tp = t.data();
      for (std::size_t k = 0; k < t.size(); ++k) dy[k] = y[k] - tp[k];
    }
    for (std::size_t l = layers; l-- > 0;) {
      const int in = rows(w[l]), out = cols(w[l]);
      if (l > 0) {
        // The layer below's delta needs the old W: dA = D W^T, then the ReLU's mask.
        double* below = d[l - 1].data();
        if (batch == 1) {
          cblas_dgemv(CblasRowMajor, CblasNoTrans, in, out, 1.0, w[l].data(), out, d[l].data(), 1,
                      0.0, below, 1);
        } else {
          cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, in, out, 1.0, d[l].data(),
                      out, w[l].data(), out, 0.0, below, in);
        }
        const double* act = a[l].data();
        for (std::size_t k = 0; k < d[l - 1].size(); ++k) {
          below[k] = act[k] > 0 ? below[k] : 0.0;
        }
      }
      const double step = lr * scale;
      if (batch == 1) {  // a rank-1 update
        cblas_dger(CblasRowMajor, in, out, -step, a[l].data(), 1, d[l].data(), 1, w[l].data(), out);
      } else {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, batch, -step, a[l].data(), in,
                    d[l].data(), out, 1.0, w[l].data(), out);
      }
      double* bias = b[l].data();
      const double* delta = d[l].data();
      for (int i = 0; i < batch; ++i) {
        for (int j = 0; j < out; ++j)
          bias[j] -= step * delta[static_cast<std::ptrdiff_t>(i) * out + j];
      }
    }
  }
};

// max |hand - tapegrad| / max |tapegrad| over each parameter; the largest.
double largest_relative_difference(const HandWrittenMlp& hand, const TapegradMlp& tape) {
  double worst = 0;
  auto compare = [&](const double* h, const xt::xarray<double>& v) {
    double gap = 0, size = 0;
    for (std::size_t k = 0; k < v.size(); ++k) {
      gap = std::max(gap, std::abs(h[k] - v.data()[k]));
      size = std::max(size, std::abs(v.data()[k]));
    }
    worst = std::max(worst, size > 0 ? gap / size : gap);
  };
  const auto& layers = tape.model.linear_layers();
  for (std::size_t l = 0; l < layers.size(); ++l) {
    compare(hand.w[l].data(), layers[l]->weight().value());
    compare(hand.b[l].data(), layers[l]->bias().value());
  }
  return worst;
}

struct Side {
  std::vector<double> seconds;
  long faults = 0, steps = 0;
  template <class F>
  void run(long n, F&& step) {
    const long faults_before = minor_faults();
    const auto start = Clock::now();
    for (long s = 0; s < n; ++s) step();
    seconds.push_back(seconds_since(start));
    faults += minor_faults() - faults_before;
    steps += n;
  }
  double per_step(long n) const { return median(seconds) / static_cast<double>(n); }
  double faults_per_step() const {
    return static_cast<double>(faults) / static_cast<double>(steps);
  }
};

struct Cell {
  std::size_t width, batch;
  long steps;
  double hand, tape, compiled, fused, hand_faults, tape_faults, compiled_faults, fused_faults, gap;
};

Matrix random_matrix(tapegrad::Generator& random, std::size_t rows, std::size_t cols) {
  Matrix m = Matrix::from_shape({rows, cols});
  for (auto& v : m) v = random.uniform(-1, 1);
  return m;
}

Cell run_cell(std::size_t width, std::size_t batch, int rounds, long fixed_steps, double target,
              std::uint64_t seed) {
  const double lr = 0.01;
  const std::size_t layers = 3;
  tapegrad::Generator data(seed + 1);
  const Matrix inputs = random_matrix(data, batch, width);
  const Matrix targets = random_matrix(data, batch, width);
  TapegradMlp tape(width, layers, inputs, targets, lr, seed);
  TapegradMlp compiled(width, layers, inputs, targets, lr, seed);
  compiled.compile_step();
  TapegradMlp fused(width, layers, inputs, targets, lr, seed);
  fused.compile_sgd_step(lr);
  HandWrittenMlp hand(tape.model, inputs, targets, lr);

  // Both take every step, untimed ones included, so that their weights can be compared.
  // The first step of each warms the allocator and the caches; then steps are doubled until
  // tapegrad's take a few milliseconds, which sets the steps per round.
  long steps = fixed_steps;
  long calibration_steps = 0;  // taken by the eager and hand-written sides only
  tape.step();
  compiled.step();
  fused.step();
  hand.step();
  if (steps <= 0) {
    long n = 1;
    double tape_seconds = 0, hand_seconds = 0;
    for (;;) {
      auto start = Clock::now();
      for (long s = 0; s < n; ++s) tape.step();
      tape_seconds = seconds_since(start);
      calibration_steps += n;
      start = Clock::now();
      for (long s = 0; s < n; ++s) hand.step();
      hand_seconds = seconds_since(start);
      if (tape_seconds > 0.004 || n >= (1L << 20)) break;
      n *= 2;
    }
    // A round lasts about `target` on tapegrad's side, at least 5 ms on the hand side, and
    // three steps.
    const double tape_step = tape_seconds / n, hand_step = hand_seconds / n;
    steps =
        std::max(3L, static_cast<long>(std::ceil(std::max(target / tape_step, 0.005 / hand_step))));
  }

  // The untimed steps above were taken by tapegrad's eager side only: the compiled sides
  // catch up, so that all four end on the same weights.
  Side hand_side, tape_side, compiled_side, fused_side;
  for (long s = 0; s < calibration_steps; ++s) {
    compiled.step();
    fused.step();
  }
  for (int r = 0; r < rounds; ++r) {
    // Each round in a different order, so that none is always first or last.
    for (int k = 0; k < 4; ++k) {
      switch ((r + k) % 4) {
        case 0:
          hand_side.run(steps, [&] { hand.step(); });
          break;
        case 1:
          tape_side.run(steps, [&] { tape.step(); });
          break;
        case 2:
          compiled_side.run(steps, [&] { compiled.step(); });
          break;
        default:
          fused_side.run(steps, [&] { fused.step(); });
          break;
      }
    }
  }
  return {width,
          batch,
          steps,
          hand_side.per_step(steps),
          tape_side.per_step(steps),
          compiled_side.per_step(steps),
          fused_side.per_step(steps),
          hand_side.faults_per_step(),
          tape_side.faults_per_step(),
          compiled_side.faults_per_step(),
          fused_side.faults_per_step(),
          std::max({largest_relative_difference(hand, tape),
                    largest_relative_difference(hand, compiled),
                    largest_relative_difference(hand, fused)})};
}

std::string time_text(double seconds) {
  char text[32];
  if (seconds < 1e-3) {
    std::snprintf(text, sizeof text, "%.2f us", 1e6 * seconds);
  } else {
    std::snprintf(text, sizeof text, "%.2f ms", 1e3 * seconds);
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "MLP training step (W-W-W-W, ReLU, MSE, SGD), float64: tapegrad vs the "
      "fastest hand-written BP (CBLAS), over widths W and batch sizes B."};
  std::vector<std::size_t> widths{4, 16, 64, 256, 1024};
  std::vector<std::size_t> batches{1, 16, 256};
  int rounds = 9;
  double round_ms = 30;
  std::uint64_t seed = 1;
  bool quick = false;
  app.add_option("--widths", widths, "widths W (input = hidden = output)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--batches", batches, "batch sizes B")->delimiter(',')->capture_default_str();
  app.add_option("--rounds", rounds, "alternating rounds per cell (medians)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--round-ms", round_ms, "tapegrad's time per round, in milliseconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", seed, "seed of the weights and the data")->capture_default_str();
  app.add_flag("--quick", quick,
               "a small grid, one round of 20 steps (asserts agreement, never speed)");
  CLI11_PARSE(app, argc, argv);
  long fixed_steps = 0;
  if (quick) {
    widths = {4, 64};
    batches = {1, 16};
    rounds = 1;
    fixed_steps = 20;
  }
  for (std::size_t v : widths) {
    if (v == 0) {
      std::fprintf(stderr, "--widths: expected widths of at least 1, got 0\n");
      return 2;
    }
  }
  for (std::size_t v : batches) {
    if (v == 0) {
      std::fprintf(stderr, "--batches: expected batch sizes of at least 1, got 0\n");
      return 2;
    }
  }
  // One thread for both: the comparison is of the code around the GEMMs, not of OpenBLAS's
  // threading (and the machine is shared).
  openblas_set_num_threads(1);

  std::printf(
      "MLP W-W-W-W (ReLU, ReLU, identity), MSE, SGD lr 0.01, float64, 1 OpenBLAS thread; "
      "per step: forward + backward + update;\nmedian of %d alternating rounds; "
      "faults = minor page faults per step (tape: the largest of tapegrad's three); compiled = "
      "tapegrad::compile, the step recorded once and replayed;\nsgd step = "
      "tapegrad::compile_sgd_step, "
      "the same with the SGD update in it (folded into the weight-gradient GEMMs);\n"
      "diff = largest relative weight difference at the end\n",
      rounds);
  std::printf("%6s %5s %8s %12s %12s %7s %12s %7s %12s %7s %12s %12s %9s\n", "W", "B", "steps",
              "hand", "tapegrad", "ratio", "compiled", "ratio", "sgd step", "ratio", "hand faults",
              "tape faults", "diff");
  const auto start = Clock::now();
  double worst_gap = 0;
  for (std::size_t width : widths) {
    for (std::size_t batch : batches) {
      const Cell c = run_cell(width, batch, rounds, fixed_steps, round_ms / 1e3, seed);
      std::printf("%6zu %5zu %8ld %12s %12s %6.2fx %12s %6.2fx %12s %6.2fx %12.2f %12.2f %9.1e\n",
                  c.width, c.batch, c.steps, time_text(c.hand).c_str(), time_text(c.tape).c_str(),
                  c.tape / c.hand, time_text(c.compiled).c_str(), c.compiled / c.hand,
                  time_text(c.fused).c_str(), c.fused / c.hand, c.hand_faults,
                  std::max({c.tape_faults, c.compiled_faults, c.fused_faults}), c.gap);
      std::fflush(stdout);
      worst_gap = std::max(worst_gap, c.gap);
    }
  }
  std::printf("largest relative weight difference: %.3g (total %.0f s)\n", worst_gap,
              seconds_since(start));
  if (!(worst_gap <= 1e-9)) {
    std::printf("error: tapegrad and the hand-written BP disagree\n");
    return 1;
  }
  return 0;
}
