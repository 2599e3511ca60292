// Fashion-MNIST MLP 784-100-10 ReLU, softmax cross-entropy, batch 64, SGD lr 0.1, one epoch,
// one OpenBLAS thread: tapegrad against the same training written by hand with CBLAS and the
// analytic gradients (the floor), in float32 and float64. Each run happens in a
// child process so that its peak memory (ru_maxrss) is its own; times are medians.
#include <cblas.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <vector>
#include <xtensor/xmath.hpp>
#include <xtensor/xtensor.hpp>

#include "common.hpp"
#include "tapegrad/tapegrad.hpp"

extern "C" void openblas_set_num_threads(int threads);

namespace {

using bench::Clock;
using bench::median;
using bench::seconds_since;

struct Setup {
  std::size_t images = 60000, batch = 64, hidden = 100;
  double learning_rate = 0.1;
  std::uint64_t seed = 1;
};

// The same batches, in the same order, for both implementations.
template <class T>
void fill_batch(const xt::xarray<T>& images, const std::vector<std::size_t>& labels,
                const std::vector<std::size_t>& order, std::size_t first, std::size_t count,
                xt::xarray<T>& x, std::vector<std::size_t>& y) {
  x.resize({count, std::size_t{784}});
  y.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::copy_n(images.data() + order[first + i] * 784, 784, x.data() + i * 784);
    y[i] = labels[order[first + i]];
  }
}

template <class T>
struct Weights {
  xt::xarray<T> w1, b1, w2, b2;
  explicit Weights(const Setup& s) {
    tapegrad::Generator random(s.seed);
    w1 = xt::xarray<T>::from_shape({std::size_t{784}, s.hidden});
    w2 = xt::xarray<T>::from_shape({s.hidden, std::size_t{10}});
    tapegrad::nn::Init::he_uniform().fill(w1, random);
    tapegrad::nn::Init::he_uniform().fill(w2, random);
    b1 = xt::zeros<T>({s.hidden});
    b2 = xt::zeros<T>({std::size_t{10}});
  }
};

// C = alpha op(A) op(B) + beta C on row-major buffers, through CBLAS.
template <class T>
void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          const T* b, T beta, T* c) {
  const auto lda = static_cast<int>(ta ? m : k), ldb = static_cast<int>(tb ? k : n);
  const auto fa = ta ? CblasTrans : CblasNoTrans, fb = tb ? CblasTrans : CblasNoTrans;
  const auto mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, fa, fb, mi, ni, ki, alpha, a, lda, b, ldb, beta, c, ni);
  } else {
    cblas_dgemm(CblasRowMajor, fa, fb, mi, ni, ki, alpha, a, lda, b, ldb, beta, c, ni);
  }
}

// The floor: forward, the analytic gradients of softmax cross-entropy through the MLP, the
// update; the fastest we can write with the same libraries: buffers allocated once, GEMMs
// with transpose flags, the SGD update folded into the weight-gradient GEMMs (beta = 1),
// the elementwise work in plain loops.
template <class T>
double hand_epoch(const Setup& s, const tapegrad::data::FashionMnist<T>& data,
                  const std::vector<std::size_t>& order, Weights<T>& w) {
  const T lr = static_cast<T>(s.learning_rate);
  const std::size_t hidden = s.hidden;
  xt::xarray<T> x;
  std::vector<std::size_t> y;
  xt::xtensor<T, 2> h = xt::xtensor<T, 2>::from_shape({s.batch, hidden});
  xt::xtensor<T, 2> z = xt::xtensor<T, 2>::from_shape({s.batch, std::size_t{10}});
  xt::xtensor<T, 2> dh = xt::xtensor<T, 2>::from_shape({s.batch, hidden});
  double loss_sum = 0;
  for (std::size_t first = 0; first < s.images; first += s.batch) {
    const std::size_t n = std::min(s.batch, s.images - first);
    fill_batch(data.train_images, data.train_labels, order, first, n, x, y);
    gemm<T>(false, false, n, hidden, 784, T(1), x.data(), w.w1.data(), T(0), h.data());
    T* hp = h.data();
    const T* b1 = w.b1.data();
    for (std::size_t i = 0; i < n; ++i, hp += hidden)
      for (std::size_t j = 0; j < hidden; ++j) hp[j] = std::max(hp[j] + b1[j], T(0));
    gemm<T>(false, false, n, 10, hidden, T(1), h.data(), w.w2.data(), T(0), z.data());
    // softmax - onehot, divided by n: dC/dz
    const T* b2 = w.b2.data();
    for (std::size_t i = 0; i < n; ++i) {
      T* zi = z.data() + i * 10;
      T m = zi[0] + b2[0];
      for (std::size_t c = 0; c < 10; ++c) m = std::max(m, zi[c] + b2[c]);
      T total = 0;
      for (std::size_t c = 0; c < 10; ++c) total += (zi[c] = std::exp(zi[c] + b2[c] - m));
      loss_sum -= std::log(zi[y[i]] / total);
      const T scale = T(1) / (total * T(n));
      for (std::size_t c = 0; c < 10; ++c) zi[c] = zi[c] * scale - (c == y[i] ? T(1) / T(n) : T(0));
    }
    // dh uses W2 before its update; then each weight update is one GEMM.
    gemm<T>(false, true, n, hidden, 10, T(1), z.data(), w.w2.data(), T(0), dh.data());
    for (std::size_t k = 0; k < n * hidden; ++k)
      dh.data()[k] = h.data()[k] > 0 ? dh.data()[k] : T(0);
    gemm<T>(true, false, hidden, 10, n, -lr, h.data(), z.data(), T(1), w.w2.data());
    gemm<T>(true, false, 784, hidden, n, -lr, x.data(), dh.data(), T(1), w.w1.data());
    T* gb2 = w.b2.data();
    for (std::size_t c = 0; c < 10; ++c) {
      T g = 0;
      for (std::size_t i = 0; i < n; ++i) g += z.data()[i * 10 + c];
      gb2[c] -= lr * g;
    }
    T* gb1 = w.b1.data();
    for (std::size_t j = 0; j < hidden; ++j) {
      T g = 0;
      for (std::size_t i = 0; i < n; ++i) g += dh.data()[i * hidden + j];
      gb1[j] -= lr * g;
    }
  }
  return loss_sum / static_cast<double>(s.images);
}

enum Side { kHand, kTape, kCompiled, kSgdStep };

// An epoch as a user of tapegrad writes it: eager (kTape); with one step per batch size
// recorded once (tapegrad::compile) and replayed, the labels given as a one-hot tensor
// (kCompiled); the same with the SGD update in the step (tapegrad::compile_sgd_step).
template <class T>
double tape_epoch(const Setup& s, const tapegrad::data::FashionMnist<T>& data,
                  const std::vector<std::size_t>& order, const Weights<T>& init, Side side) {
  const bool compiled = side != kTape;
  using tapegrad::Tensor;
  tapegrad::nn::MLP<T> model(
      {784, s.hidden, 10}, tapegrad::nn::Activation::ReLU,
      tapegrad::nn::MLPOptions().output_activation(tapegrad::nn::Activation::Identity));
  auto params = model.parameters();
  params[0].set_value(init.w1);
  params[1].set_value(init.b1);
  params[2].set_value(init.w2);
  params[3].set_value(init.b2);
  tapegrad::optim::SGD<T> sgd(params, s.learning_rate);
  xt::xarray<T> x;
  std::vector<std::size_t> y;
  struct CompiledStep {
    Tensor<T> x, y;
    std::unique_ptr<tapegrad::Compiled<T>> run;
    std::unique_ptr<tapegrad::SgdStep<T>> sgd_run;
  };
  std::map<std::size_t, std::unique_ptr<CompiledStep>> steps;
  double loss_sum = 0;
  for (std::size_t first = 0; first < s.images; first += s.batch) {
    const std::size_t n = std::min(s.batch, s.images - first);
    if (compiled) {
      // The batch goes straight into the step's input tensors (mutable_value(), the same
      // shape): no copy besides the one the hand-written epoch makes too.
      auto& step = steps[n];
      if (!step) {
        step = std::make_unique<CompiledStep>(CompiledStep{
            Tensor<T>(xt::xarray<T>(xt::zeros<T>({n, std::size_t{784}}))),
            Tensor<T>(xt::xarray<T>(xt::zeros<T>({n, std::size_t{10}}))), nullptr, nullptr});
        CompiledStep& c = *step;
        const auto loss = [&model, &c] {
          return tapegrad::nn::cross_entropy_with_probabilities(model(c.x), c.y);
        };
        if (side == kSgdStep) {
          c.sgd_run = std::make_unique<tapegrad::SgdStep<T>>(
              tapegrad::compile_sgd_step(params, s.learning_rate, loss));
        } else {
          c.run = std::make_unique<tapegrad::Compiled<T>>(tapegrad::compile(params, loss));
        }
      }
      fill_batch(data.train_images, data.train_labels, order, first, n, step->x.mutable_value(), y);
      auto& one_hot = step->y.mutable_value();
      std::fill(one_hot.data(), one_hot.data() + one_hot.size(), T(0));
      for (std::size_t i = 0; i < n; ++i) one_hot(i, y[i]) = T(1);
      if (side == kSgdStep) {
        loss_sum += static_cast<double>(step->sgd_run->run()) * static_cast<double>(n);
        continue;  // the update was part of the step
      }
      loss_sum += static_cast<double>(step->run->run()) * static_cast<double>(n);
    } else {
      fill_batch(data.train_images, data.train_labels, order, first, n, x, y);
      tapegrad::Tape tape;
      const auto loss = tapegrad::nn::cross_entropy(model(Tensor<T>(x)), y);
      loss.backward();
      loss_sum += static_cast<double>(loss.item()) * static_cast<double>(n);
    }
    sgd.step();
    sgd.zero_grad();
  }
  return loss_sum / static_cast<double>(s.images);
}

struct Measurement {
  double seconds = 0, loss = 0;
  long peak_kib = 0;
};

// Runs `work` in a child process: its time and loss come back through a pipe, its peak
// resident memory from wait4.
template <class Work>
Measurement in_child(Work work) {
  int channel[2];
  if (::pipe(channel) != 0) std::exit(1);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(channel[0]);
    const Measurement m = work();
    if (::write(channel[1], &m, sizeof m) != static_cast<ssize_t>(sizeof m)) ::_exit(2);
    ::_exit(0);
  }
  ::close(channel[1]);
  Measurement m;
  if (::read(channel[0], &m, sizeof m) != static_cast<ssize_t>(sizeof m)) {
    std::fprintf(stderr, "a benchmark child failed\n");
    std::exit(1);
  }
  ::close(channel[0]);
  int status = 0;
  struct rusage usage;
  ::wait4(child, &status, 0, &usage);
  m.peak_kib = usage.ru_maxrss;
  return m;
}

template <class T>
bool compare(const char* type, const Setup& s, int runs) {
  std::vector<double> times[4];
  long peak[4] = {0, 0, 0, 0};
  double loss[4] = {0, 0, 0, 0};
  for (int r = 0; r < runs; ++r) {
    auto run = [&](Side side) {
      return in_child([&] {
        openblas_set_num_threads(1);
        const auto data = tapegrad::data::load_fashion_mnist<T>();
        tapegrad::Generator random(s.seed + 100);
        const auto order = tapegrad::data::random_permutation(data.train_labels.size(), random);
        Weights<T> w(s);
        const auto start = Clock::now();
        const double l =
            side == kHand ? hand_epoch(s, data, order, w) : tape_epoch(s, data, order, w, side);
        return Measurement{std::chrono::duration<double>(Clock::now() - start).count(), l, 0};
      });
    };
    // Each run in a different order, so that none is always first.
    for (int k = 0; k < 4; ++k) {
      const auto side = static_cast<Side>((r + k) % 4);
      const auto m = run(side);
      times[side].push_back(m.seconds);
      peak[side] = std::max(peak[side], m.peak_kib);
      loss[side] = m.loss;
    }
  }
  const double h = median(times[kHand]), t = median(times[kTape]), c = median(times[kCompiled]),
               f = median(times[kSgdStep]);
  const auto ratio = [&](Side side) {
    return static_cast<double>(peak[side]) / static_cast<double>(peak[kHand]);
  };
  std::printf(
      "%-7s hand-written %.3f s  tapegrad %.3f s (%.2fx)  compiled %.3f s (%.2fx)  sgd step %.3f s "
      "(%.2fx)\n"
      "        peak memory %.0f / %.0f / %.0f / %.0f MiB (%.2fx, %.2fx, %.2fx) | mean training "
      "loss %.6f / "
      "%.6f / %.6f / %.6f\n",
      type, h, t, t / h, c, c / h, f, f / h, peak[kHand] / 1024.0, peak[kTape] / 1024.0,
      peak[kCompiled] / 1024.0, peak[kSgdStep] / 1024.0, ratio(kTape), ratio(kCompiled),
      ratio(kSgdStep), loss[kHand], loss[kTape], loss[kCompiled], loss[kSgdStep]);
  const double tolerance = sizeof(T) == 4 ? 1e-3 : 1e-9;
  return std::abs(loss[kHand] - loss[kTape]) < tolerance && loss[kCompiled] == loss[kTape] &&
         std::abs(loss[kSgdStep] - loss[kTape]) < tolerance;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Fashion-MNIST MLP epoch: tapegrad vs hand-written BP on the same OpenBLAS."};
  Setup setup;
  int runs = 3;
  bool quick = false;
  app.add_option("--runs", runs, "runs of each (medians)")->capture_default_str();
  app.add_option("--images", setup.images, "training images per epoch")->capture_default_str();
  app.add_option("--batch", setup.batch, "images per step")->capture_default_str();
  app.add_flag("--quick", quick, "6400 images, one run");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    setup.images = 6400;
    runs = 1;
  }
  if (!tapegrad::data::fashion_mnist_available()) {
    std::printf(
        "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): nothing to "
        "measure\n");
    return 0;
  }
  std::printf(
      "Fashion-MNIST 784-%zu-10 ReLU, softmax cross-entropy, batch %zu, SGD lr %g, %zu images, 1 "
      "OpenBLAS "
      "thread, median of %d\n",
      setup.hidden, setup.batch, setup.learning_rate, setup.images, runs);
  const bool same32 = compare<float>("float32", setup, runs);
  const bool same64 = compare<double>("float64", setup, runs);
  if (!same32 || !same64) {
    std::printf("error: the two trainings disagree\n");
    return 1;
  }
  return 0;
}
