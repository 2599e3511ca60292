#include "tapegrad/optim/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "settings.hpp"

namespace tapegrad::optim {

using detail::check_positive_count;
using detail::check_setting;
using detail::Domain;

StepLR::StepLR(LearningRateHolder& optimizer, std::size_t step_size, double gamma)
    : optimizer_(optimizer), base_(optimizer.learning_rate()), gamma_(gamma), step_size_(step_size) {
  check_positive_count("StepLR", "step_size", step_size);
  check_setting("StepLR", "gamma", gamma, Domain::non_negative);
}
void StepLR::step() {
  ++epoch_;
  optimizer_.set_learning_rate(base_ * std::pow(gamma_, static_cast<double>(epoch_ / step_size_)));
}

ExponentialLR::ExponentialLR(LearningRateHolder& optimizer, double gamma)
    : optimizer_(optimizer), base_(optimizer.learning_rate()), gamma_(gamma) {
  check_setting("ExponentialLR", "gamma", gamma, Domain::non_negative);
}
void ExponentialLR::step() {
  ++epoch_;
  optimizer_.set_learning_rate(base_ * std::pow(gamma_, static_cast<double>(epoch_)));
}

CosineAnnealingLR::CosineAnnealingLR(LearningRateHolder& optimizer, std::size_t t_max,
                                     double eta_min)
    : optimizer_(optimizer), base_(optimizer.learning_rate()), eta_min_(eta_min), t_max_(t_max) {
  check_positive_count("CosineAnnealingLR", "t_max", t_max);
  check_setting("CosineAnnealingLR", "eta_min", eta_min, Domain::non_negative);
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
  check_setting("ReduceLROnPlateau", "factor", options.factor(), Domain::open_unit);
  check_setting("ReduceLROnPlateau", "threshold", options.threshold(), Domain::below_one);
  check_setting("ReduceLROnPlateau", "min_lr", options.min_lr(), Domain::non_negative);
  check_setting("ReduceLROnPlateau", "eps", options.eps(), Domain::non_negative);
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
