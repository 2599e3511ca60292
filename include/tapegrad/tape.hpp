// Tape: the RAII scope that records operations, and the no-grad guard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace tapegrad {

/// @addtogroup autograd
/// @{

namespace detail {
struct TapeImpl;
}

/// Records every operation on tensors that require grad, from its construction to its
/// destruction, on the current thread.
///
///     tapegrad::Tape tape;          // before the forward pass
///     auto loss = f(w);             // recorded
///     loss.backward();              // w.grad() now holds d loss / d w
///
/// - Records are kept in creation order, so backward() is one reverse loop (no recursion,
///   no sorting): a chain of millions of ops is fine.
/// - Destroying the tape frees every intermediate result. Tensors the user still holds keep
///   their values, but backward() through them then throws TapeError.
/// - Tapes nest: a Tape made while another is active becomes the active one until it is
///   destroyed. backward() from a result of the inner tape continues into the outer ones.
/// - The active tape is per thread; tensors recorded on one thread cannot be
///   differentiated from another, and a Tape must be destroyed on the thread that made it
///   (otherwise the process aborts with a message). Two threads may train at once with
///   their own tapes as long as they do not run backward into the same leaf tensors at the
///   same time (a leaf's gradient is not locked).
/// - A backward() uses up the records it sweeps (as PyTorch frees the graph): a second
///   backward() through them throws TapeError instead of adding the same gradient again.
///   `y.backward(retain_graph)` keeps them for another sweep, which then adds its gradient
///   again (call zero_grad() between calls for a per-call result).
/// - Once a backward() without retain_graph leaves no record that could be swept again (each
///   is used up, or makes a result that nothing outside the tape holds), the next op recorded
///   on the tape first releases them and the intermediate results only they held, as
///   PyTorch frees its graph: a Tape kept around a whole training loop stays as small as one
///   Tape per step. (Until then, graph_dot() still shows them.) Results you hold keep their
///   values; backward() through one of them throws TapeError ("already swept ...
///   released"). A result recorded on the tape that no backward() uses (a metric computed
///   with ops on tensors that require grad) keeps all of the tape's records while you hold
///   it when a backward() ends: compute such values under a NoGradGuard, or from value().
/// - A Tape destroyed while a backward() sweeps it (by a hook, or a custom op's backward)
///   stops recording at once; the sweep finishes on its records, which are freed when it
///   ends.
/// - Tapes alive on all threads are registered, so that an error can say whether a tensor's
///   tape was destroyed or belongs to another thread.
/// - When a tape dies, its record array is kept for the thread's next tape if it holds at
///   most 4 MiB of records; a longer tape's array is freed.
class Tape {
 public:
  /// Starts recording: the new tape becomes the calling thread's active tape.
  Tape();
  /// Frees every record and the intermediate results only the tape held, and makes the
  /// enclosing tape (if any) active again. Aborts the process if called on another thread
  /// than the one that made the tape.
  ~Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;
  Tape(Tape&&) = delete;
  Tape& operator=(Tape&&) = delete;

  /// Number of operations recorded on this tape since it was made, those whose records were
  /// released after a backward() included; ops recorded on a nested tape count there, not
  /// here. Throws TapeError if called on another thread than the tape's (which may be
  /// recording on it).
  std::size_t size() const;
  /// The serial number of this tape's records (never 0, unique in the process). It changes,
  /// to a new unique number, after 2^31 recorded ops, when the tape next releases its records.
  /// Throws TapeError if called on another thread than the tape's.
  std::uint64_t serial() const;

  /// The innermost tape of the calling thread, or nullptr.
  static Tape* active();

 private:
  void check_owner(const char* function) const;
  std::unique_ptr<detail::TapeImpl> impl_;
};

/// Whether operations are recorded on this thread: true unless a NoGradGuard is alive or a
/// backward() without create_graph is running (backward(create_graph) records even under a
/// NoGradGuard).
bool grad_enabled();

/// While alive, operations on this thread are not recorded and their results are constants:
/// for evaluation, or for updating parameters in place.
class NoGradGuard {
 public:
  /// Turns recording off for the calling thread.
  NoGradGuard();
  /// Restores the recording mode that was in force when the guard was made.
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

/// Whether anomaly mode is on for this thread (off unless an AnomalyModeGuard is alive).
bool anomaly_mode();

/// While alive, this thread looks for the first NaN or Inf:
/// - a recorded op whose inputs are finite but whose result is not throws TapeError naming
///   the op and its input shapes (the forward op that made the NaN); ops that are not
///   recorded are not checked;
/// - during backward, a rule that sends a NaN or Inf gradient to an input throws TapeError
///   naming the op, its record index and its input shapes.
/// It costs a scan of every value, so turn it on to hunt a problem, not for production.
class AnomalyModeGuard {
 public:
  /// Sets anomaly mode for the calling thread to `on`; `AnomalyModeGuard(false)` turns it
  /// off inside a scope where an outer guard turned it on.
  explicit AnomalyModeGuard(bool on = true);
  /// Restores the mode that was in force when the guard was made.
  ~AnomalyModeGuard();
  AnomalyModeGuard(const AnomalyModeGuard&) = delete;
  AnomalyModeGuard& operator=(const AnomalyModeGuard&) = delete;

 private:
  bool previous_;
};

/// @}

}  // namespace tapegrad
