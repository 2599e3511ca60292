#include "tapegrad/optim/optimizer.hpp"

#include <algorithm>
#include <string>

#include "settings.hpp"

namespace tapegrad::optim {

LearningRateHolder::LearningRateHolder(double learning_rate, std::string name)
    : learning_rate_(0), name_(std::move(name)) {
  set_learning_rate(learning_rate);
}

void LearningRateHolder::set_learning_rate(double learning_rate) {
  detail::check_setting(name_, "lr", learning_rate, detail::Domain::non_negative);
  learning_rate_ = learning_rate;
}

template <class T>
Optimizer<T>::Optimizer(std::vector<Tensor<T>> parameters, double learning_rate, std::string name)
    : LearningRateHolder(learning_rate, std::move(name)), parameters_(std::move(parameters)) {
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    if (!parameters_[i].requires_grad()) {
      throw ValueError(this->name() + ": parameter " + std::to_string(i) + " (shape " +
                       shape_to_string(parameters_[i].shape()) +
                       ") does not require grad, so it would never change");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (parameters_[i].same_node(parameters_[j])) {
        throw ValueError(this->name() + ": parameter " + std::to_string(i) +
                         " is the same tensor as parameter " + std::to_string(j));
      }
    }
  }
}

template <class T>
void Optimizer<T>::zero_grad() {
  for (auto& p : parameters_) p.zero_grad();
}

template <class T>
std::vector<xt::xarray<T>> Optimizer<T>::zeros_like_parameters() const {
  std::vector<xt::xarray<T>> state;
  for (const auto& p : parameters_) state.push_back(xt::zeros<T>(p.shape()));
  return state;
}

template <class T>
typename Optimizer<T>::StateSlots Optimizer<T>::state_slots() {
  throw ValueError(this->name() +
                   ": its state cannot be saved (checkpoints hold the state of SGD, Adagrad, "
                   "RMSprop, Adam, AdamW and Newton)");
}

template <class T>
OptimizerState<T> Optimizer<T>::state() const {
  // state_slots() only hands out addresses; nothing is written through them here.
  const StateSlots slots = const_cast<Optimizer*>(this)->state_slots();
  OptimizerState<T> state;
  state.type = this->name();
  state.learning_rate = this->learning_rate();
  state.settings = slots.settings;
  for (const auto& [name, values] : slots.counts) state.counts.emplace_back(name, *values);
  for (const auto& [name, values] : slots.arrays) state.arrays.emplace_back(name, *values);
  return state;
}

namespace {

// The names of `entries` ("a", "b") for a message.
template <class Entries>
std::string names_of(const Entries& entries) {
  std::string out;
  for (const auto& entry : entries) out += (out.empty() ? "" : ", ") + entry.first;
  return out.empty() ? "none" : out;
}

// Compares the entries by name, in order: a missing or an unexpected name is a difference,
// and `compare` adds those of two entries with the same name.
template <class Expected, class Given, class Compare>
void compare_entries(const char* what, const Expected& expected, const Given& given,
                     std::vector<std::string>& differences, Compare compare) {
  for (const auto& [name, value] : expected) {
    auto found = std::find_if(given.begin(), given.end(),
                              [&name = name](const auto& entry) { return entry.first == name; });
    if (found == given.end()) {
      differences.push_back(std::string(what) + " " + name + " is missing");
    } else {
      compare(name, value, found->second);
    }
  }
  for (const auto& entry : given) {
    auto found = std::find_if(expected.begin(), expected.end(),
                              [&entry](const auto& e) { return e.first == entry.first; });
    if (found == expected.end()) {
      differences.push_back("unexpected " + std::string(what) + " " + entry.first + " (this " +
                            "optimizer's are: " + names_of(expected) + ")");
    }
  }
}

}  // namespace

template <class T>
std::vector<std::string> Optimizer<T>::state_differences(const OptimizerState<T>& state) const {
  const StateSlots slots = const_cast<Optimizer*>(this)->state_slots();
  std::vector<std::string> differences;
  if (state.type != this->name()) {
    // Another optimizer's settings and arrays would only add noise to the message.
    differences.push_back("the state is of " + state.type + ", this optimizer is " + this->name());
    return differences;
  }
  if (!detail::in_domain(state.learning_rate, detail::Domain::non_negative).first) {
    differences.push_back("learning rate " + number_to_string(state.learning_rate) +
                          " is not a finite number >= 0");
  }
  compare_entries("setting", slots.settings, state.settings, differences,
                  [&](const std::string& name, double mine, double theirs) {
                    if (!(mine == theirs)) {
                      differences.push_back(name + " is " + number_to_string(theirs) +
                                            " in the state but " + number_to_string(mine) +
                                            " here");
                    }
                  });
  const std::size_t n = parameters_.size();
  compare_entries("counter", slots.counts, state.counts, differences,
                  [&](const std::string& name, const std::vector<std::size_t>*,
                      const std::vector<std::size_t>& theirs) {
                    if (theirs.size() != n) {
                      differences.push_back(name + " has " + std::to_string(theirs.size()) +
                                            " entries, one per parameter, but this optimizer has " +
                                            std::to_string(n) + " parameters");
                    }
                  });
  compare_entries("array", slots.arrays, state.arrays, differences,
                  [&](const std::string& name, const std::vector<xt::xarray<T>>*,
                      const std::vector<xt::xarray<T>>& theirs) {
                    if (theirs.size() != n) {
                      differences.push_back(name + " has " + std::to_string(theirs.size()) +
                                            " arrays, one per parameter, but this optimizer has " +
                                            std::to_string(n) + " parameters");
                      return;
                    }
                    for (std::size_t i = 0; i < n; ++i) {
                      const Shape shape(theirs[i].shape().begin(), theirs[i].shape().end());
                      if (shape != parameters_[i].shape()) {
                        differences.push_back(name + " of parameter " + std::to_string(i) +
                                              " has shape " + shape_to_string(shape) +
                                              ", the parameter " +
                                              shape_to_string(parameters_[i].shape()));
                      }
                    }
                  });
  return differences;
}

template <class T>
void Optimizer<T>::load_state(const OptimizerState<T>& state) {
  const auto differences = state_differences(state);
  if (!differences.empty()) {
    std::string message = this->name() + ": cannot load the state: ";
    for (std::size_t i = 0; i < differences.size(); ++i)
      message += (i ? "; " : "") + differences[i];
    throw ValueError(message);
  }
  const StateSlots slots = state_slots();
  this->set_learning_rate(state.learning_rate);
  for (const auto& [name, values] : slots.counts) {
    for (const auto& entry : state.counts) {
      if (entry.first == name) *values = entry.second;
    }
  }
  for (const auto& [name, values] : slots.arrays) {
    for (const auto& entry : state.arrays) {
      if (entry.first == name) *values = entry.second;
    }
  }
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace tapegrad::optim
