// The chain of sin on ADOL-C's tape, for bench_chain (built only when CMake finds ADOL-C).
#pragma once

#include <adolc/adolc.h>

#include <algorithm>

namespace bench {

// y = sin(sin(... sin(x))) traced on one ADOL-C tape, its derivative taken, the tape removed.
// The buffers are sized from a first trace so that the whole tape stays in memory: past a
// buffer ADOL-C writes files, and with buffers of exactly the traced sizes it was several
// times slower (the headroom of 4096 entries each fixed that), so the heap it holds is its
// tape plus that headroom.
class AdolcChain {
 public:
  enum class Reverse { Gradient, KeptTaylors };

  // A first trace of `length` sins with buffers large enough for any chain, to learn the
  // sizes the tape needs.
  explicit AdolcChain(long length) {
    const unsigned roomy = static_cast<unsigned>(4 * length + 64);
    trace(length, 1, roomy, roomy, roomy, roomy);
    std::size_t stats[STAT_SIZE] = {};
    tapestats(tag_, stats);
    auto room = [](std::size_t entries) { return static_cast<unsigned>(entries + 4096); };
    ops_ = room(stats[NUM_OPERATIONS]);
    locs_ = room(stats[NUM_LOCATIONS]);
    vals_ = room(stats[NUM_VALUES]);
    tays_ = room(stats[TAY_STACK_SIZE]);
    removeTape(tag_, ADOLC_REMOVE_COMPLETELY);
  }

  // Records the chain and returns dy/dx: with Gradient, trace_on/trace_off and then
  // gradient() (which replays the tape forward before the reverse sweep); with KeptTaylors,
  // trace_on(keep = 1), which keeps the values for fos_reverse() directly. `at_peak` runs
  // between recording and the reverse sweep.
  template <class AtPeak>
  double derivative(long length, Reverse reverse, AtPeak&& at_peak) {
    const int keep = reverse == Reverse::KeptTaylors ? 1 : 0;
    trace(length, keep, ops_, locs_, vals_, tays_);
    at_peak();
    double gradient_value = 0;
    if (reverse == Reverse::KeptTaylors) {
      double weight = 1;
      fos_reverse(tag_, 1, 1, &weight, &gradient_value);
    } else {
      gradient(tag_, 1, &x_, &gradient_value);
    }
    removeTape(tag_, ADOLC_REMOVE_COMPLETELY);
    return gradient_value;
  }

  // Whether every trace so far kept its operations, locations and values in memory.
  bool in_memory() const { return !wrote_files_; }

 private:
  void trace(long length, int keep, unsigned ops, unsigned locs, unsigned vals, unsigned tays) {
    trace_on(tag_, keep, ops, locs, vals, tays);
    adouble x;
    x <<= x_;
    adouble y = x;
    for (long i = 0; i < length; ++i) y = sin(y);
    double value = 0;
    y >>= value;
    trace_off();
    std::size_t stats[STAT_SIZE] = {};
    tapestats(tag_, stats);
    wrote_files_ = wrote_files_ || stats[OP_FILE_ACCESS] != 0 || stats[LOC_FILE_ACCESS] != 0 ||
                   stats[VAL_FILE_ACCESS] != 0;
  }

  short tag_ = 1;
  double x_ = 1.0;
  unsigned ops_ = 0, locs_ = 0, vals_ = 0, tays_ = 0;
  bool wrote_files_ = false;
};

}  // namespace bench
