#include "tapegrad/optim/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

namespace tapegrad::optim {

StepLR::StepLR(LearningRateHolder& optimizer, std::size_t step_size, double gamma)
    : optimizer_(optimizer), base_(optimizer.learning_rate()), gamma_(gamma), step_size_(step_size) {
  if (step_size == 0 || !(gamma >= 0)) throw ValueError("StepLR: step_size > 0 and gamma >= 0");
}
void StepLR::step() {
  ++epoch_;
  optimizer_.set_learning_rate(base_ * std::pow(gamma_, static_cast<double>(epoch_ / step_size_)));
}

ExponentialLR::ExponentialLR(LearningRateHolder& optimizer, double gamma)
    : optimizer_(optimizer), base_(optimizer.learning_rate()), gamma_(gamma) {
  if (!(gamma >= 0)) throw ValueError("ExponentialLR: gamma must not be negative");
}
void ExponentialLR::step() {
  ++epoch_;
  optimizer_.set_learning_rate(base_ * std::pow(gamma_, static_cast<double>(epoch_)));
}

CosineAnnealingLR::CosineAnnealingLR(LearningRateHolder& optimizer, std::size_t t_max,
                                     double eta_min)
    : optimizer_(optimizer), base_(optimizer.learning_rate()), eta_min_(eta_min), t_max_(t_max) {
  if (t_max == 0 || !(eta_min >= 0)) throw ValueError("CosineAnnealingLR: t_max > 0 and eta_min >= 0");
}
void CosineAnnealingLR::step() {
  ++epoch_;
  const double e = static_cast<double>(std::min(epoch_, t_max_));
  const double pi = 3.141592653589793;
  optimizer_.set_learning_rate(eta_min_ + (base_ - eta_min_) *
                                              (1 + std::cos(pi * e / static_cast<double>(t_max_))) / 2);
}

ReduceLROnPlateau::ReduceLROnPlateau(LearningRateHolder& optimizer,
                                     const ReduceLROnPlateauOptions& options)
    : optimizer_(optimizer), options_(options), best_(std::numeric_limits<double>::infinity()) {
  if (!(options.factor() > 0 && options.factor() < 1)) {
    throw ValueError("ReduceLROnPlateau: factor must be in (0, 1), got " +
                     std::to_string(options.factor()));
  }
  if (!(options.threshold() >= 0 && options.threshold() < 1)) {
    throw ValueError("ReduceLROnPlateau: threshold must be in [0, 1), got " +
                     std::to_string(options.threshold()));
  }
  for (const auto& [name, value] : {std::pair{"min_lr", options.min_lr()},
                                    std::pair{"eps", options.eps()}}) {
    if (!(value >= 0 && std::isfinite(value))) {
      throw ValueError(std::string("ReduceLROnPlateau: ") + name +
                       " must be finite and not negative, got " + std::to_string(value));
    }
  }
}

bool ReduceLROnPlateau::step(double metric) {
  // A non-finite metric is never an improvement (and never becomes the best).
  const bool first = best_ == std::numeric_limits<double>::infinity();
  if (std::isfinite(metric) && (first || metric < best_ * (1 - options_.threshold()))) {
    best_ = metric;
    bad_epochs_ = 0;
  } else {
    ++bad_epochs_;
  }
  if (cooldown_left_ > 0) {
    --cooldown_left_;
    bad_epochs_ = 0;
    return false;
  }
  if (bad_epochs_ > options_.patience()) {
    const double lr = optimizer_.learning_rate();
    const double reduced = std::max(lr * options_.factor(), options_.min_lr());
    // A rate already below min_lr stays where it is: a reduction never raises it.
    const bool changed = lr - reduced > options_.eps();
    if (changed) optimizer_.set_learning_rate(reduced);
    cooldown_left_ = options_.cooldown();
    bad_epochs_ = 0;
    return changed;
  }
  return false;
}

}  // namespace tapegrad::optim
