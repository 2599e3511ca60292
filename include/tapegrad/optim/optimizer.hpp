// Optimizer: the base of every parameter-update rule.
#pragma once

#include <atomic>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tapegrad/tensor.hpp"

/// Optimizers, learning-rate schedules and gradient clipping.
namespace tapegrad::optim {

/// @addtogroup optim
/// @{

/// What learning-rate schedules need of an optimizer, whatever its element type: the rate
/// and a way to change it.
class LearningRateHolder {
 public:
  /// `name` is the optimizer's name in error messages ("SGD", "Adam", ...). Throws
  /// ValueError `<name>: lr must be a finite number >= 0, got <rate>` for a negative or
  /// non-finite rate.
  explicit LearningRateHolder(double learning_rate, std::string name = "optimizer");
  virtual ~LearningRateHolder() = default;
  /// The current learning rate (lr in the update formulas).
  double learning_rate() const { return learning_rate_; }
  /// Replaces the rate; the next step() uses it. Throws ValueError for a negative or
  /// non-finite rate, as the constructor does (and then keeps the old one).
  void set_learning_rate(double learning_rate);
  /// The optimizer's name, as its error messages start.
  const std::string& name() const { return name_; }

 private:
  double learning_rate_;
  std::string name_;
};

/// An optimizer's state as a checkpoint keeps it (see io::Checkpoint): which optimizer it
/// is, the settings a resumed run must share, and what it has accumulated so far.
template <class T = double>
struct OptimizerState {
  /// The optimizer's name(): "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Newton".
  std::string type;
  /// The current learning rate (a schedule may have changed it); restored by load_state().
  double learning_rate = 0;
  /// The settings that change the updates (momentum, betas, eps, weight_decay, ...; a flag
  /// as 0 or 1), in the optimizer's order. load_state() requires them equal, not restored.
  std::vector<std::pair<std::string, double>> settings;
  /// Counters with one value per parameter, in parameter order (Adam's "step": the t of
  /// each parameter).
  std::vector<std::pair<std::string, std::vector<std::size_t>>> counts;
  /// Arrays with one per parameter, of its shape, in parameter order (Adam's "exp_avg" and
  /// "exp_avg_sq", SGD's "momentum_buffer", ...).
  std::vector<std::pair<std::string, std::vector<xt::xarray<T>>>> arrays;
};

/// Base of the optimizers: holds the parameters and updates them from their gradients.
///
/// The parameters are Tensor handles, so the optimizer changes the caller's tensors. step()
/// changes values in place (through mutable_value(), so a tape that still needs the old
/// values refuses to run backward); the update itself records nothing on any tape (L-BFGS
/// and Newton evaluate the loss on a tape of their own). The first-order optimizers (SGD,
/// Adagrad, RMSprop, Adam, AdamW) skip parameters without a gradient and leave the
/// gradients as they are: call zero_grad() before the next backward(). L-BFGS and Newton
/// count a missing gradient as zeros. T is float or double.
///
/// Shapes. The arrays an optimizer keeps per parameter (moments, momentum buffers, sums,
/// L-BFGS's curvature history) are made at construction, for the parameters' shapes then.
/// Each step checks, before it changes any parameter, that every parameter it updates still
/// has that shape and that its gradient has the parameter's shape; otherwise it throws
/// ShapeError naming the optimizer, the parameter's index and both shapes, and nothing
/// changes. So a parameter resized with set_value() (which takes any shape) after the
/// optimizer was made is refused, as PyTorch refuses a state of another size: make a new
/// optimizer, or load_state() a state of the new shapes. (PyTorch makes the state at a
/// parameter's first update; here a resize before the first step is refused too.) An update
/// that keeps no state, plain SGD (no momentum) and Newton, updates a resized parameter whose
/// gradient has its new shape; Newton checks max_parameters again at each step.
///
/// Threads. An optimizer, and the parameters it updates, belong to one thread at a time
/// (docs/threads.md). step(), zero_grad() and load_state() called while another thread is
/// inside one of them on the same optimizer throw TapeError naming the optimizer and both
/// calls, instead of reading a gradient the other thread frees; the same thread may nest
/// them (zero_grad() in the loss function of L-BFGS or Newton, as PyTorch's closures do).
/// A first-order step() also claims each parameter while it updates it, as
/// Tensor::zero_grad() does while it drops a gradient: another optimizer's step() over a
/// shared parameter, or its zero_grad(), in another thread at that moment throws TapeError
/// too. (backward() takes no claim: a sweep adding to a shared gradient while a step reads
/// it is not detected.) The cost: one atomic exchange per call and one per parameter.
template <class T = double>
class Optimizer : public LearningRateHolder {
 public:
  /// `name` starts the optimizer's error messages. Throws ValueError if a parameter does not
  /// require grad, the same tensor appears twice, or the learning rate is negative or not
  /// finite.
  Optimizer(std::vector<Tensor<T>> parameters, double learning_rate,
            std::string name = "optimizer");

  /// One update from the current gradients.
  virtual void step() = 0;
  /// Clears every parameter's gradient (has_grad() becomes false). Throws TapeError while
  /// another thread is in this optimizer's step() (see "Threads" above).
  void zero_grad();
  /// The parameters, in the order given to the constructor.
  const std::vector<Tensor<T>>& parameters() const { return parameters_; }

  /// A copy of the optimizer's state: its type, learning rate, settings, and the counters
  /// and arrays its updates carry from step to step. SGD, Adagrad, RMSprop, Adam, AdamW and
  /// Newton have one; L-BFGS throws ValueError `LBFGS: its state cannot be saved ...`.
  OptimizerState<T> state() const;
  /// Every reason `state` cannot be loaded into this optimizer, one sentence each, empty
  /// when load_state() would succeed: another type, a setting missing, unexpected or of
  /// another value, a learning rate that is negative or not finite, a counter or array
  /// missing or unexpected, or one whose number of entries or shapes do not match the
  /// parameters; a count of 2^53 or more; an array element that is NaN or infinite, or
  /// negative in a second moment or sum of squares (Adam's exp_avg_sq and max_exp_avg_sq,
  /// RMSprop's square_avg, Adagrad's sum), whose next step would be NaN. Names that came
  /// with the state are shown escaped (printable_text()). Throws as state().
  std::vector<std::string> state_differences(const OptimizerState<T>& state) const;
  /// Restores a state() taken from an optimizer of the same type and settings over
  /// parameters of the same shapes: the learning rate, counters and arrays. Throws
  /// ValueError `<name>: cannot load the state: <differences>` listing every difference
  /// (see state_differences()), and then changes nothing. The arrays loaded have the
  /// parameters' current shapes, so it also fits the optimizer to resized parameters.
  void load_state(const OptimizerState<T>& state);

 protected:
  /// What state() copies and load_state() restores, by address: the settings (values) and
  /// the per-parameter counters and arrays (pointers into the optimizer).
  struct StateSlots {
    std::vector<std::pair<std::string, double>> settings;                     ///< name, value
    std::vector<std::pair<std::string, std::vector<std::size_t>*>> counts;    ///< one per parameter
    std::vector<std::pair<std::string, std::vector<xt::xarray<T>>*>> arrays;  ///< one per parameter
    /// The arrays (by name) whose elements must be >= 0: second moments and sums of squares.
    std::vector<std::string> non_negative;
  };
  /// The optimizer's slots. Optimizers with a state override it; this default throws
  /// ValueError `<name>: its state cannot be saved ...`.
  virtual StateSlots state_slots();

  /// One state array per parameter, zeros of its shape.
  std::vector<xt::xarray<T>> zeros_like_parameters() const;

  /// One kind of array an optimizer keeps per parameter, by its state() name.
  using StateArrays = std::pair<const char*, const std::vector<xt::xarray<T>>*>;
  /// What each first-order step() calls before changing anything: throws ShapeError unless
  /// every parameter that has a gradient has a gradient of its own shape and, for each of
  /// `states`, the shape of its array there: `<name>: parameter 1 has shape (3, 3) but its
  /// state (exp_avg) has shape (2, 3): ...` or `<name>: parameter 1 has shape (2, 3) but its
  /// gradient has shape (3,); ...`. A shape compare per parameter and array.
  void check_shapes(std::initializer_list<StateArrays> states) const;
  /// Throws ShapeError `<name>: parameter i has shape <now> but its state (<state>) has shape
  /// <made>: ...`; `loadable` adds the advice to load_state() a state of the new shapes.
  [[noreturn]] void refuse_state_shape(std::size_t i, const char* state, const Shape& made,
                                       bool loadable = true) const;

  /// Marks the optimizer as used by the calling thread for the scope of one call (step(),
  /// zero_grad(), load_state()). Throws TapeError `<name>: <call> called while <call> runs
  /// in another thread; ...` if another thread is inside one of them; the same thread may
  /// nest them. One atomic exchange on entry and one store on exit. With
  /// `claim_parameters` (a first-order step(), which calls no code of the user's) it also
  /// claims every parameter (detail::claim_gradient, GradientUse::optimizer_step), so that
  /// another optimizer's step(), a zero_grad() or a backward() adding to a shared parameter in
  /// another thread is refused, and
  /// throws TapeError `<name>: step() cannot update parameter i (shape ...): it is being
  /// changed by zero_grad() in another thread; ...` if one of them holds a parameter.
  class InUse {
   public:
    /// Enters `call` ("step()") of `optimizer`; throws as above.
    InUse(const Optimizer& optimizer, const char* call, bool claim_parameters = false);
    /// Leaves the call (the outermost of the thread's nested calls frees the optimizer).
    ~InUse();
    InUse(const InUse&) = delete;             ///< Not copyable.
    InUse& operator=(const InUse&) = delete;  ///< Not copyable.

   private:
    void release();

    const Optimizer* optimizer_;
    bool outermost_;
    xt::svector<tapegrad::detail::NodeBase*, 8> claimed_;  // the parameters this call claimed
  };

  /// The parameters, in the order given to the constructor.
  std::vector<Tensor<T>> parameters_;

 private:
  // The thread inside one of the calls InUse guards, and which call; a copy of an optimizer
  // starts free.
  struct Owner {
    Owner() = default;
    Owner(const Owner&) noexcept {}
    Owner& operator=(const Owner&) noexcept { return *this; }
    mutable std::atomic<std::thread::id> thread{};
    mutable std::atomic<const char*> call{nullptr};
  };
  Owner owner_;
};

extern template class Optimizer<float>;
extern template class Optimizer<double>;

/// @}

}  // namespace tapegrad::optim
