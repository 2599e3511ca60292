// Per-op cost of the tape: a chain of 0-d sin ops recorded, reversed and freed, against a
// minimal scalar tape written here (no tensors, no checks: the floor) and, when CMake found
// it, ADOL-C's tape. Time, heap held per op at the peak, and page faults per op.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include "common.hpp"
#include "tapegrad/tapegrad.hpp"

#ifdef TAPEGRAD_BENCH_ADOLC
#include "chain_adolc.hpp"
#endif

namespace {

using bench::Clock;
using bench::median;
using bench::minor_faults;
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
  std::size_t sin_of(std::size_t x) {
    const double v = entries[x].value;
    entries.push_back({std::sin(v), std::cos(v), x});
    return entries.size() - 1;
  }
  double gradient_of_leaf(std::size_t result) const {
    std::vector<double> adjoint(entries.size(), 0.0);
    adjoint[result] = 1;
    for (std::size_t i = result + 1; i-- > 1;) {
      if (entries[i].parent != SIZE_MAX)
        adjoint[entries[i].parent] += adjoint[i] * entries[i].local;
    }
    return adjoint[0];
  }
};

// Bytes malloc has handed out and not taken back: small chunks plus mmapped ones.
std::size_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// One way of taking d/dx of the chain: records `length` sins from x = 1, calls at_peak just
// before the reverse sweep, and returns the derivative, its tape freed.
using Chain = std::function<double(long length, const std::function<void()>& at_peak)>;

struct Contender {
  const char* name;
  Chain derivative;
  std::vector<double> seconds;
  long faults = 0;
  double bytes_per_op = 0, gradient = 0;

  void time(long length) {
    const long faults_before = minor_faults();
    const auto start = Clock::now();
    gradient = derivative(length, [] {});
    seconds.push_back(seconds_since(start));
    faults += minor_faults() - faults_before;
  }
  // An untimed run that reads the heap before recording and at the peak.
  void measure_heap(long length) {
    const std::size_t before = heap_in_use();
    std::size_t peak = before;
    derivative(length, [&] { peak = heap_in_use(); });
    bytes_per_op = (static_cast<double>(peak) - static_cast<double>(before)) / length;
  }
};

double floor_chain(long length, const std::function<void()>& at_peak) {
  ScalarTape t;
  std::size_t y = t.leaf(1.0);
  for (long i = 0; i < length; ++i) y = t.sin_of(y);
  at_peak();
  return t.gradient_of_leaf(y);
}

double tapegrad_chain(long length, const std::function<void()>& at_peak) {
  tapegrad::Tensor<double> x(1.0, tapegrad::requires_grad);
  {
    tapegrad::Tape tape;
    tapegrad::Tensor<double> y = x;
    for (long i = 0; i < length; ++i) y = tapegrad::sin(y);
    at_peak();
    y.backward();
  }
  return x.grad()();
}

// The same chain compiled once (tapegrad::compile, outside the timing) and replayed: each
// derivative re-runs the recorded sin, cos and product kernels, recording nothing.
struct ReplayedChain {
  tapegrad::Tensor<double> x{1.0, tapegrad::requires_grad};
  std::unique_ptr<tapegrad::Compiled<double>> step;
  long length = 0;
  double plan_bytes_per_op = 0;

  double operator()(long n, const std::function<void()>& at_peak) {
    if (!step || n != length) {
      step.reset();
      const std::size_t before = heap_in_use();
      step = std::make_unique<tapegrad::Compiled<double>>(
          tapegrad::compile(std::vector<tapegrad::Tensor<double>>{x}, [&] {
            tapegrad::Tensor<double> y = x;
            for (long i = 0; i < n; ++i) y = tapegrad::sin(y);
            return y;
          }));
      plan_bytes_per_op = (static_cast<double>(heap_in_use()) - static_cast<double>(before)) / n;
      length = n;
    }
    x.zero_grad();
    at_peak();
    step->run();
    return x.grad()();
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Per-op cost of recording, reversing and freeing a chain of 0-d sin ops."};
  long length = 1000000;
  int runs = 5;
  bool quick = false;
  app.add_option("--length", length, "ops in the chain")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--runs", runs, "runs (medians)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--quick", quick, "a chain of 10^5, one run");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    length = 100000;
    runs = 1;
  }

  std::vector<Contender> contenders;
  contenders.push_back({"minimal scalar tape", floor_chain, {}});
  contenders.push_back({"tapegrad", tapegrad_chain, {}});
  auto replayed = std::make_shared<ReplayedChain>();
  contenders.push_back(
      {"tapegrad, compiled, replayed",
       [replayed](long n, const std::function<void()>& at_peak) { return (*replayed)(n, at_peak); },
       {}});
  (*replayed)(length, [] {});  // compiled once, before any timing
#ifdef TAPEGRAD_BENCH_ADOLC
  bench::AdolcChain adolc(length);
  using Reverse = bench::AdolcChain::Reverse;
  contenders.push_back({"ADOL-C, gradient()",
                        [&](long n, const std::function<void()>& at_peak) {
                          return adolc.derivative(n, Reverse::Gradient, at_peak);
                        },
                        {}});
  contenders.push_back({"ADOL-C, keep + fos_reverse",
                        [&](long n, const std::function<void()>& at_peak) {
                          return adolc.derivative(n, Reverse::KeptTaylors, at_peak);
                        },
                        {}});
#endif

  // Alternate the order, so that none always runs on a warmer (or more fragmented) heap.
  for (int r = 0; r < runs; ++r) {
    if (r % 2 == 0) {
      for (auto& c : contenders) c.time(length);
    } else {
      for (auto it = contenders.rbegin(); it != contenders.rend(); ++it) it->time(length);
    }
  }
  for (auto& c : contenders) c.measure_heap(length);

  const double n = static_cast<double>(length);
  const double floor_ns = 1e9 * median(contenders[0].seconds) / n;
  std::printf(
      "chain of %ld 0-d sin ops (y = sin y from x = 1), record + backward + free, median of %d "
      "alternating runs;\nheap = bytes malloc holds per op just before the reverse sweep; "
      "faults = minor page faults per op\n",
      length, runs);
  std::printf("  %-28s %9s %8s %10s %10s\n", "", "ns/op", "ratio", "heap B/op", "faults/op");
  bool agree = true;
  for (const auto& c : contenders) {
    const double ns = 1e9 * median(c.seconds) / n;
    std::printf("  %-28s %9.1f %7.1fx %10.1f %10.4f\n", c.name, ns, ns / floor_ns, c.bytes_per_op,
                static_cast<double>(c.faults) / (n * runs));
    agree = agree && std::abs(c.gradient - contenders[0].gradient) <=
                         1e-9 * std::abs(contenders[0].gradient);
  }
#ifdef TAPEGRAD_BENCH_ADOLC
  std::printf(
      "  (ADOL-C's heap is its tape's buffers, sized from a first trace; %s; gradient()\n"
      "   replays the tape forward before the reverse sweep, so its peak is later)\n",
      adolc.in_memory() ? "no tape files written" : "it WROTE TAPE FILES");
#else
  std::printf("  ADOL-C: not found at configure time (apt-get install libadolc-dev)\n");
#endif
  std::printf(
      "  (the compiled chain's plan holds %.0f heap bytes per op for as long as the step lives:\n"
      "   the forward and backward records, their nodes and buffers; its heap B/op above is what "
      "a\n"
      "   replay adds)\n",
      replayed->plan_bytes_per_op);
  std::printf("  gradients agree: %s (", agree ? "yes" : "NO");
  for (const auto& c : contenders)
    std::printf("%s%.12g", &c == &contenders[0] ? "" : ", ", c.gradient);
  std::printf(")\n");
  return agree ? 0 : 1;
}
