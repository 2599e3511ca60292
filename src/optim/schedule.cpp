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

SchedulerState LRScheduler::state() const {
  // state_slots() only hands out addresses; nothing is written through them here.
  const StateSlots slots = const_cast<LRScheduler*>(this)->state_slots();
  SchedulerState state;
  state.type = slots.type;
  state.settings = slots.settings;
  for (const auto& [name, value] : slots.rates) state.values.emplace_back(name, *value);
  for (const auto& [name, value] : slots.reals) state.values.emplace_back(name, *value);
  for (const auto& [name, value] : slots.counters) {
    state.values.emplace_back(name, static_cast<double>(*value));
  }
  return state;
}

namespace {

const double* find_value(const std::vector<std::pair<std::string, double>>& entries,
                         const std::string& name) {
  for (const auto& entry : entries) {
    if (entry.first == name) return &entry.second;
  }
  return nullptr;
}

}  // namespace

std::vector<std::string> LRScheduler::state_differences(const SchedulerState& state) const {
  const StateSlots slots = const_cast<LRScheduler*>(this)->state_slots();
  std::vector<std::string> differences;
  if (state.type != slots.type) {
    differences.push_back("the state is of " + printable_text(state.type) + ", this schedule is " +
                          slots.type);
    return differences;
  }
  for (const auto& [name, mine] : slots.settings) {
    const double* theirs = find_value(state.settings, name);
    if (!theirs) {
      differences.push_back("setting " + name + " is missing");
    } else if (!(*theirs == mine)) {
      differences.push_back(name + " is " + number_to_string(*theirs) + " in the state but " +
                            number_to_string(mine) + " here");
    }
  }
  for (const auto& entry : state.settings) {
    if (!find_value(slots.settings, entry.first)) {
      differences.push_back("unexpected setting " + printable_text(entry.first));
    }
  }
  std::vector<std::string> known;  // the values' names, to find unexpected ones
  auto check = [&](const std::string& name, const char* expected, auto valid) {
    known.push_back(name);
    const double* theirs = find_value(state.values, name);
    if (!theirs) {
      differences.push_back("value " + name + " is missing");
    } else if (!valid(*theirs)) {
      differences.push_back(name + " is " + number_to_string(*theirs) + ", expected " + expected);
    }
  };
  for (const auto& entry : slots.rates) {
    check(entry.first, "a finite number >= 0",
          [](double v) { return detail::in_domain(v, Domain::non_negative).first; });
  }
  for (const auto& entry : slots.reals) {
    check(entry.first, "a number (inf allowed, NaN not)", [](double v) { return !std::isnan(v); });
  }
  for (const auto& entry : slots.counters) {
    check(entry.first, "a whole number in [0, 2^53)",
          [](double v) { return v >= 0 && v < 0x1p53 && v == std::floor(v); });
  }
  for (const auto& entry : state.values) {
    if (std::find(known.begin(), known.end(), entry.first) == known.end()) {
      differences.push_back("unexpected value " + printable_text(entry.first));
    }
  }
  return differences;
}

void LRScheduler::load_state(const SchedulerState& state) {
  const auto differences = state_differences(state);
  const StateSlots slots = state_slots();
  if (!differences.empty()) {
    std::string message = slots.type + ": cannot load the state: ";
    for (std::size_t i = 0; i < differences.size(); ++i)
      message += (i ? "; " : "") + differences[i];
    throw ValueError(message);
  }
  for (const auto& [name, value] : slots.rates) *value = *find_value(state.values, name);
  for (const auto& [name, value] : slots.reals) *value = *find_value(state.values, name);
  for (const auto& [name, value] : slots.counters) {
    *value = static_cast<std::size_t>(*find_value(state.values, name));
  }
}

StepLR::StepLR(LearningRateHolder& optimizer, std::size_t step_size, double gamma)
    : optimizer_(optimizer),
      base_(optimizer.learning_rate()),
      gamma_(gamma),
      step_size_(step_size) {
  check_positive_count("StepLR", "step_size", step_size);
  check_setting("StepLR", "gamma", gamma, Domain::non_negative);
}
void StepLR::step() {
  ++epoch_;
  optimizer_.set_learning_rate(base_ * std::pow(gamma_, static_cast<double>(epoch_ / step_size_)));
}

LRScheduler::StateSlots StepLR::state_slots() {
  return {"StepLR",
          {{"step_size", static_cast<double>(step_size_)}, {"gamma", gamma_}},
          {{"base_lr", &base_}},
          {},
          {{"epoch", &epoch_}}};
}

ExponentialLR::ExponentialLR(LearningRateHolder& optimizer, double gamma)
    : optimizer_(optimizer), base_(optimizer.learning_rate()), gamma_(gamma) {
  check_setting("ExponentialLR", "gamma", gamma, Domain::non_negative);
}
void ExponentialLR::step() {
  ++epoch_;
  optimizer_.set_learning_rate(base_ * std::pow(gamma_, static_cast<double>(epoch_)));
}

LRScheduler::StateSlots ExponentialLR::state_slots() {
  return {"ExponentialLR", {{"gamma", gamma_}}, {{"base_lr", &base_}}, {}, {{"epoch", &epoch_}}};
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
  optimizer_.set_learning_rate(
      eta_min_ + (base_ - eta_min_) * (1 + std::cos(pi * e / static_cast<double>(t_max_))) / 2);
}

LRScheduler::StateSlots CosineAnnealingLR::state_slots() {
  return {"CosineAnnealingLR",
          {{"t_max", static_cast<double>(t_max_)}, {"eta_min", eta_min_}},
          {{"base_lr", &base_}},
          {},
          {{"epoch", &epoch_}}};
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

LRScheduler::StateSlots ReduceLROnPlateau::state_slots() {
  const auto& o = options_;
  return {"ReduceLROnPlateau",
          {{"factor", o.factor()},
           {"patience", static_cast<double>(o.patience())},
           {"threshold", o.threshold()},
           {"min_lr", o.min_lr()},
           {"cooldown", static_cast<double>(o.cooldown())},
           {"eps", o.eps()}},
          {},
          {{"best", &best_}},  // inf until a finite metric came
          {{"bad_epochs", &bad_epochs_}, {"cooldown_left", &cooldown_left_}}};
}

}  // namespace tapegrad::optim
