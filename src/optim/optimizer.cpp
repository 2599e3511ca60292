#include "tapegrad/optim/optimizer.hpp"

#include <algorithm>
#include <cmath>
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
  const InUse in_use(*this, "zero_grad()");
  for (auto& p : parameters_) p.zero_grad();
}

namespace {

const char* const kOneThread =
    "; an optimizer, and the parameters it updates, belong to one thread at a time "
    "(docs/threads.md)";

}  // namespace

template <class T>
Optimizer<T>::InUse::InUse(const Optimizer& optimizer, const char* call, bool claim_parameters)
    : optimizer_(&optimizer), outermost_(true) {
  const std::thread::id me = std::this_thread::get_id();
  std::thread::id holder{};
  if (!optimizer.owner_.thread.compare_exchange_strong(holder, me, std::memory_order_acquire)) {
    if (holder == me) {  // nested in the same thread: the outer call frees it
      outermost_ = false;
      return;
    }
    const char* other = optimizer.owner_.call.load(std::memory_order_relaxed);
    throw TapeError(optimizer.name() + ": " + call + " called while " +
                    (other != nullptr ? other : "another of its calls") +
                    " runs in another thread" + kOneThread);
  }
  optimizer.owner_.call.store(call, std::memory_order_relaxed);
  if (!claim_parameters) return;
  const auto& parameters = optimizer.parameters_;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    tapegrad::detail::NodeBase& node = *parameters[i].node();
    const auto claim =
        tapegrad::detail::claim_gradient(node, tapegrad::detail::GradientUse::optimizer_step);
    if (claim == tapegrad::detail::GradientClaim::taken) {
      claimed_.push_back(&node);
    } else if (claim == tapegrad::detail::GradientClaim::refused) {
      const char* other = tapegrad::detail::gradient_use_name(tapegrad::detail::gradient_use(node));
      release();
      throw TapeError(optimizer.name() + ": " + call + " cannot update parameter " +
                      std::to_string(i) + " (shape " + shape_to_string(parameters[i].shape()) +
                      "): it is being changed by " + other + " in another thread" + kOneThread);
    }
  }
}

template <class T>
Optimizer<T>::InUse::~InUse() {
  if (outermost_) release();
}

template <class T>
void Optimizer<T>::InUse::release() {
  for (tapegrad::detail::NodeBase* node : claimed_) tapegrad::detail::release_gradient(*node);
  claimed_.clear();
  optimizer_->owner_.call.store(nullptr, std::memory_order_relaxed);
  optimizer_->owner_.thread.store(std::thread::id{}, std::memory_order_release);
}

template <class T>
void Optimizer<T>::check_shapes(std::initializer_list<StateArrays> states) const {
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor<T>& p = parameters_[i];
    if (!p.has_grad()) continue;
    for (const auto& [name, arrays] : states) {
      const auto& made = (*arrays)[i].shape();
      if (made != p.shape()) refuse_state_shape(i, name, made);
    }
    if (p.grad().shape() != p.shape()) {
      detail::refuse_gradient_shape(this->name(), i, p.shape(), p.grad().shape());
    }
  }
}

template <class T>
void Optimizer<T>::refuse_state_shape(std::size_t i, const char* state, const Shape& made,
                                      bool loadable) const {
  throw ShapeError(this->name() + ": parameter " + std::to_string(i) + " has shape " +
                   shape_to_string(parameters_[i].shape()) + " but its state (" + state +
                   ") has shape " + shape_to_string(made) +
                   ": the parameter changed shape after the optimizer was made; make a new "
                   "optimizer" +
                   (loadable ? ", or load_state() a state of the new shapes" : ""));
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
  for (const auto& entry : entries) out += (out.empty() ? "" : ", ") + printable_text(entry.first);
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
      differences.push_back(std::string(what) + " " + printable_text(name) + " is missing");
    } else {
      compare(name, value, found->second);
    }
  }
  for (const auto& entry : given) {
    auto found = std::find_if(expected.begin(), expected.end(),
                              [&entry](const auto& e) { return e.first == entry.first; });
    if (found == expected.end()) {
      differences.push_back("unexpected " + std::string(what) + " " + printable_text(entry.first) +
                            " (this " + "optimizer's are: " + names_of(expected) + ")");
    }
  }
}

// A counter with one value per parameter, each a whole number below 2^53 (the step t
// enters the updates as a double).
void check_counts(const std::string& name, const std::vector<std::size_t>& counts,
                  std::size_t parameters, std::vector<std::string>& differences) {
  if (counts.size() != parameters) {
    differences.push_back(printable_text(name) + " has " + std::to_string(counts.size()) +
                          " entries, one per parameter, but this optimizer has " +
                          std::to_string(parameters) + " parameters");
    return;
  }
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] >= (std::size_t{1} << 53)) {
      differences.push_back(printable_text(name) + " of parameter " + std::to_string(i) + " is " +
                            std::to_string(counts[i]) + ", expected a count below 2^53");
    }
  }
}

// One array per parameter, of its shape, every element finite (and >= 0 for the second
// moments and sums: a negative one is the square root of nothing, and the next step NaN).
template <class T>
void check_arrays(const std::string& name, const std::vector<xt::xarray<T>>& arrays,
                  const std::vector<Tensor<T>>& parameters, bool non_negative,
                  std::vector<std::string>& differences) {
  const std::size_t n = parameters.size();
  if (arrays.size() != n) {
    differences.push_back(printable_text(name) + " has " + std::to_string(arrays.size()) +
                          " arrays, one per parameter, but this optimizer has " +
                          std::to_string(n) + " parameters");
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::string which = printable_text(name) + " of parameter " + std::to_string(i);
    if (arrays[i].shape() != parameters[i].shape()) {
      differences.push_back(which + " has shape " + shape_to_string(arrays[i].shape()) +
                            ", the parameter " + shape_to_string(parameters[i].shape()));
      continue;
    }
    const T* values = arrays[i].data();
    for (std::size_t k = 0, size = arrays[i].size(); k < size; ++k) {
      if (std::isfinite(values[k]) && !(non_negative && values[k] < 0)) continue;
      differences.push_back(which + " holds " + number_to_string(static_cast<double>(values[k])) +
                            " at flat index " + std::to_string(k) + "; expected finite values" +
                            (non_negative ? " >= 0" : ""));
      break;
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
    differences.push_back("the state is of " + printable_text(state.type) + ", this optimizer is " +
                          this->name());
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
  compare_entries("counter", slots.counts, state.counts, differences,
                  [&](const std::string& name, const std::vector<std::size_t>*,
                      const std::vector<std::size_t>& theirs) {
                    check_counts(name, theirs, parameters_.size(), differences);
                  });
  compare_entries("array", slots.arrays, state.arrays, differences,
                  [&](const std::string& name, const std::vector<xt::xarray<T>>*,
                      const std::vector<xt::xarray<T>>& theirs) {
                    const bool non_negative =
                        std::find(slots.non_negative.begin(), slots.non_negative.end(), name) !=
                        slots.non_negative.end();
                    check_arrays(name, theirs, parameters_, non_negative, differences);
                  });
  return differences;
}

template <class T>
void Optimizer<T>::load_state(const OptimizerState<T>& state) {
  const InUse in_use(*this, "load_state()");
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
