// Learning-rate schedules. Each changes an optimizer's learning rate when its step() is
// called (once per epoch, typically). StepLR, ExponentialLR and CosineAnnealingLR compute
// the rate from the one the optimizer had when the schedule was made; ReduceLROnPlateau
// scales the current rate.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad::optim {

/// @addtogroup optim
/// @{

/// A schedule's state as a checkpoint keeps it (see io::Checkpoint).
struct SchedulerState {
  /// "StepLR", "ExponentialLR", "CosineAnnealingLR" or "ReduceLROnPlateau".
  std::string type;
  /// The settings (step_size, gamma, ...), which load_state() requires equal.
  std::vector<std::pair<std::string, double>> settings;
  /// What the schedule has counted and learned ("epoch", "base_lr", "best", ...), which
  /// load_state() restores; a counter is a whole number below 2^53.
  std::vector<std::pair<std::string, double>> values;
};

/// The base of the learning-rate schedules, for checkpoints: their state, and restoring it.
/// (Their step() functions differ: ReduceLROnPlateau's takes the metric.)
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  /// A copy of the schedule's state.
  SchedulerState state() const;
  /// Every reason `state` cannot be loaded into this schedule, one sentence each, empty when
  /// load_state() would succeed: another type, a setting missing, unexpected or of another
  /// value, a value missing or unexpected, a counter that is not a whole number in
  /// [0, 2^53), a base rate that is not a finite number >= 0, a NaN best metric.
  std::vector<std::string> state_differences(const SchedulerState& state) const;
  /// Restores a state() taken from a schedule of the same type and settings; the
  /// optimizer's rate is not touched (the optimizer's own state holds it). Throws
  /// ValueError `<type>: cannot load the state: <differences>` (see state_differences())
  /// and then changes nothing.
  void load_state(const SchedulerState& state);

 protected:
  /// What state() copies and load_state() restores, by address.
  struct StateSlots {
    std::string type;                                            ///< the class's name
    std::vector<std::pair<std::string, double>> settings;        ///< name, value
    std::vector<std::pair<std::string, double*>> rates;          ///< finite and >= 0
    std::vector<std::pair<std::string, double*>> reals;          ///< any double but NaN
    std::vector<std::pair<std::string, std::size_t*>> counters;  ///< whole numbers
  };
  /// The schedule's slots.
  virtual StateSlots state_slots() = 0;
};

/// Multiplies the rate by gamma every step_size epochs: after the n-th step() call,
/// lr = base gamma^floor(n / step_size), with base the optimizer's rate when the schedule
/// was made. It keeps a reference to the optimizer, which must outlive it.
class StepLR : public LRScheduler {
 public:
  /// Throws ValueError `StepLR: <setting> must be <range>, got <value>` if step_size is 0
  /// or gamma is negative or not finite (a gamma above 1 raises the rate, as PyTorch allows).
  StepLR(LearningRateHolder& optimizer, std::size_t step_size, double gamma = 0.1);
  /// Counts one epoch and sets the optimizer's rate by the formula (overriding any change
  /// made in between). Throws ValueError if the new rate is not finite.
  void step();
  /// The number of step() calls so far.
  std::size_t epoch() const { return epoch_; }

 protected:
  /// Its settings and counters for state() and load_state().
  StateSlots state_slots() override;

 private:
  LearningRateHolder& optimizer_;
  double base_, gamma_;
  std::size_t step_size_, epoch_ = 0;
};

/// Multiplies the rate by gamma every epoch: after the n-th step() call, lr = base gamma^n,
/// with base the optimizer's rate when the schedule was made. It keeps a reference to the
/// optimizer, which must outlive it.
class ExponentialLR : public LRScheduler {
 public:
  /// Throws ValueError `ExponentialLR: gamma must be a finite number >= 0, got <value>` if
  /// gamma is negative or not finite (a gamma above 1 raises the rate, as PyTorch allows).
  ExponentialLR(LearningRateHolder& optimizer, double gamma);
  /// Counts one epoch and sets the optimizer's rate by the formula (overriding any change
  /// made in between). Throws ValueError if the new rate is not finite.
  void step();

 protected:
  /// Its settings and counters for state() and load_state().
  StateSlots state_slots() override;

 private:
  LearningRateHolder& optimizer_;
  double base_, gamma_;
  std::size_t epoch_ = 0;
};

/// Cosine annealing from base down to eta_min over t_max epochs, then eta_min: after the
/// n-th step() call, lr = eta_min + (base - eta_min) (1 + cos(pi min(n, t_max) / t_max)) / 2,
/// with base the optimizer's rate when the schedule was made. There is no restart. It keeps
/// a reference to the optimizer, which must outlive it.
class CosineAnnealingLR : public LRScheduler {
 public:
  /// Throws ValueError `CosineAnnealingLR: <setting> must be <range>, got <value>` if t_max
  /// is 0 or eta_min is negative or not finite.
  CosineAnnealingLR(LearningRateHolder& optimizer, std::size_t t_max, double eta_min = 0);
  /// Counts one epoch and sets the optimizer's rate by the formula (overriding any change
  /// made in between). Throws ValueError if the new rate is not finite.
  void step();

 protected:
  /// Its settings and counters for state() and load_state().
  StateSlots state_slots() override;

 private:
  LearningRateHolder& optimizer_;
  double base_, eta_min_;
  std::size_t t_max_, epoch_ = 0;
};

/// Settings of ReduceLROnPlateau, builder style: `ReduceLROnPlateauOptions().patience(5)`.
class ReduceLROnPlateauOptions {
 public:
  /// The factor a reduction multiplies the rate by (default 0.1); must be in (0, 1).
  ReduceLROnPlateauOptions& factor(double v) {
    factor_ = v;
    return *this;
  }
  /// The number of calls without improvement tolerated; the next one reduces the rate
  /// (default 10).
  ReduceLROnPlateauOptions& patience(std::size_t v) {
    patience_ = v;
    return *this;
  }
  /// A metric counts as better when below best (1 - threshold) (default 1e-4); must be in
  /// [0, 1).
  ReduceLROnPlateauOptions& threshold(double v) {
    threshold_ = v;
    return *this;
  }
  /// The floor of a reduction: the rate becomes max(lr factor, min_lr), or stays if it is
  /// already lower (default 0); must be finite and not negative.
  ReduceLROnPlateauOptions& min_lr(double v) {
    min_lr_ = v;
    return *this;
  }
  /// The number of calls after a reduction during which calls without improvement are not
  /// counted (default 0).
  ReduceLROnPlateauOptions& cooldown(std::size_t v) {
    cooldown_ = v;
    return *this;
  }
  /// The smallest reduction applied: a reduction by less than eps is skipped (default 1e-8,
  /// as in PyTorch); must be finite and not negative.
  ReduceLROnPlateauOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  /// The factor setting.
  double factor() const { return factor_; }
  /// The patience setting.
  std::size_t patience() const { return patience_; }
  /// The threshold setting.
  double threshold() const { return threshold_; }
  /// The min_lr setting.
  double min_lr() const { return min_lr_; }
  /// The cooldown setting.
  std::size_t cooldown() const { return cooldown_; }
  /// The eps setting.
  double eps() const { return eps_; }

 private:
  double factor_ = 0.1, threshold_ = 1e-4, min_lr_ = 0, eps_ = 1e-8;
  std::size_t patience_ = 10, cooldown_ = 0;
};

/// Reduces the rate when a metric to minimize stops improving, like PyTorch's
/// ReduceLROnPlateau in mode "min" with a relative threshold. Each step(metric) does:
///
///     if metric is finite and (no finite metric came before or metric < best (1 - threshold))
///         best = metric;  bad = 0
///     else
///         bad = bad + 1
///     if cooldown_left > 0:     cooldown_left = cooldown_left - 1;  bad = 0
///     else if bad > patience:   new = max(lr factor, min_lr)
///                               if lr - new > eps:  lr = new
///                               cooldown_left = cooldown;  bad = 0
///
/// bad and cooldown_left start at 0. A reduction never raises the rate: one already below
/// min_lr stays where it is. It keeps a reference to the optimizer, which must outlive it.
class ReduceLROnPlateau : public LRScheduler {
 public:
  /// Throws ValueError `ReduceLROnPlateau: <setting> must be <range>, got <value>` unless
  /// 0 < factor < 1, 0 <= threshold < 1, and min_lr and eps are finite and not negative.
  ReduceLROnPlateau(LearningRateHolder& optimizer,
                    const ReduceLROnPlateauOptions& options = ReduceLROnPlateauOptions());
  /// Takes one epoch's metric and updates the rate as above. Returns true when this call
  /// lowered the rate.
  bool step(double metric);

 protected:
  /// Its settings and counters for state() and load_state().
  StateSlots state_slots() override;

 private:
  LearningRateHolder& optimizer_;
  ReduceLROnPlateauOptions options_;
  double best_;
  std::size_t bad_epochs_ = 0, cooldown_left_ = 0;
};

/// @}

}  // namespace tapegrad::optim
