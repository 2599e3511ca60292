// Learning-rate schedules. Each changes an optimizer's learning rate when its step() is
// called (once per epoch, typically), starting from the rate the optimizer had when the
// schedule was made.
#pragma once

#include <cstddef>

#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad::optim {

/// lr = base gamma^floor(epoch / step_size).
class StepLR {
 public:
  StepLR(LearningRateHolder& optimizer, std::size_t step_size, double gamma = 0.1);
  void step();
  std::size_t epoch() const { return epoch_; }

 private:
  LearningRateHolder& optimizer_;
  double base_, gamma_;
  std::size_t step_size_, epoch_ = 0;
};

/// lr = base gamma^epoch.
class ExponentialLR {
 public:
  ExponentialLR(LearningRateHolder& optimizer, double gamma);
  void step();

 private:
  LearningRateHolder& optimizer_;
  double base_, gamma_;
  std::size_t epoch_ = 0;
};

/// lr = eta_min + (base - eta_min) (1 + cos(pi epoch / t_max)) / 2, for epoch <= t_max
/// (and eta_min after).
class CosineAnnealingLR {
 public:
  CosineAnnealingLR(LearningRateHolder& optimizer, std::size_t t_max, double eta_min = 0);
  void step();

 private:
  LearningRateHolder& optimizer_;
  double base_, eta_min_;
  std::size_t t_max_, epoch_ = 0;
};

class ReduceLROnPlateauOptions {
 public:
  ReduceLROnPlateauOptions& factor(double v) { factor_ = v; return *this; }
  ReduceLROnPlateauOptions& patience(std::size_t v) { patience_ = v; return *this; }
  /// A metric counts as better when below best (1 - threshold).
  ReduceLROnPlateauOptions& threshold(double v) { threshold_ = v; return *this; }
  ReduceLROnPlateauOptions& min_lr(double v) { min_lr_ = v; return *this; }
  ReduceLROnPlateauOptions& cooldown(std::size_t v) { cooldown_ = v; return *this; }
  double factor() const { return factor_; }
  std::size_t patience() const { return patience_; }
  double threshold() const { return threshold_; }
  double min_lr() const { return min_lr_; }
  std::size_t cooldown() const { return cooldown_; }

 private:
  double factor_ = 0.1, threshold_ = 1e-4, min_lr_ = 0;
  std::size_t patience_ = 10, cooldown_ = 0;
};

/// Multiplies the rate by `factor` (not below min_lr) when a metric to minimize has not
/// improved for more than `patience` calls; then waits `cooldown` calls.
class ReduceLROnPlateau {
 public:
  ReduceLROnPlateau(LearningRateHolder& optimizer,
                    const ReduceLROnPlateauOptions& options = ReduceLROnPlateauOptions());
  /// Returns true when this call reduced the rate.
  bool step(double metric);

 private:
  LearningRateHolder& optimizer_;
  ReduceLROnPlateauOptions options_;
  double best_;
  std::size_t bad_epochs_ = 0, cooldown_left_ = 0;
};

}  // namespace tapegrad::optim
