// Optimizer: the base of every parameter-update rule.
#pragma once

#include <cstddef>
#include <string>
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
  /// Clears every parameter's gradient (has_grad() becomes false).
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
  /// parameters. Throws as state().
  std::vector<std::string> state_differences(const OptimizerState<T>& state) const;
  /// Restores a state() taken from an optimizer of the same type and settings over
  /// parameters of the same shapes: the learning rate, counters and arrays. Throws
  /// ValueError `<name>: cannot load the state: <differences>` listing every difference
  /// (see state_differences()), and then changes nothing.
  void load_state(const OptimizerState<T>& state);

 protected:
  /// What state() copies and load_state() restores, by address: the settings (values) and
  /// the per-parameter counters and arrays (pointers into the optimizer).
  struct StateSlots {
    std::vector<std::pair<std::string, double>> settings;                     ///< name, value
    std::vector<std::pair<std::string, std::vector<std::size_t>*>> counts;    ///< one per parameter
    std::vector<std::pair<std::string, std::vector<xt::xarray<T>>*>> arrays;  ///< one per parameter
  };
  /// The optimizer's slots. Optimizers with a state override it; this default throws
  /// ValueError `<name>: its state cannot be saved ...`.
  virtual StateSlots state_slots();

  /// One state array per parameter, zeros of its shape.
  std::vector<xt::xarray<T>> zeros_like_parameters() const;

  /// The parameters, in the order given to the constructor.
  std::vector<Tensor<T>> parameters_;
};

extern template class Optimizer<float>;
extern template class Optimizer<double>;

/// @}

}  // namespace tapegrad::optim
