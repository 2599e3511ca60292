#include "tapegrad/optim/adaptive.hpp"

#include <cmath>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "settings.hpp"
#include "tapegrad/tape.hpp"

namespace tapegrad::optim {

using detail::check_setting;
using detail::Domain;

template <class T>
Adagrad<T>::Adagrad(std::vector<Tensor<T>> parameters, double learning_rate,
                    const AdagradOptions& options)
    : Optimizer<T>(std::move(parameters), learning_rate, "Adagrad"), options_(options) {
  check_setting("Adagrad", "lr_decay", options.lr_decay(), Domain::non_negative);
  check_setting("Adagrad", "weight_decay", options.weight_decay(), Domain::non_negative);
  check_setting("Adagrad", "initial_accumulator", options.initial_accumulator(),
                Domain::non_negative);
  check_setting("Adagrad", "eps", options.eps(), Domain::positive);
  sums_ = this->zeros_like_parameters();
  for (auto& s : sums_) s.fill(static_cast<T>(options.initial_accumulator()));
  updates_.assign(this->parameters_.size(), 0);
}

template <class T>
void Adagrad<T>::step() {
  const typename Optimizer<T>::InUse in_use(*this, "step()", true);
  NoGradGuard no_grad;
  this->check_shapes({{"sum", &sums_}});
  for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
    auto& p = this->parameters_[i];
    if (!p.has_grad()) continue;
    const auto t = static_cast<double>(++updates_[i]);
    const double rate = this->learning_rate() / (1 + (t - 1) * options_.lr_decay());
    xt::xarray<T> g = p.grad();
    if (options_.weight_decay() != 0)
      xt::noalias(g) += static_cast<T>(options_.weight_decay()) * p.value();
    xt::noalias(sums_[i]) += g * g;
    xt::noalias(p.mutable_value()) -=
        static_cast<T>(rate) * g / (xt::sqrt(sums_[i]) + static_cast<T>(options_.eps()));
  }
}

template <class T>
RMSprop<T>::RMSprop(std::vector<Tensor<T>> parameters, double learning_rate,
                    const RMSpropOptions& options)
    : Optimizer<T>(std::move(parameters), learning_rate, "RMSprop"), options_(options) {
  check_setting("RMSprop", "alpha", options.alpha(), Domain::below_one);
  check_setting("RMSprop", "eps", options.eps(), Domain::positive);
  check_setting("RMSprop", "weight_decay", options.weight_decay(), Domain::non_negative);
  check_setting("RMSprop", "momentum", options.momentum(), Domain::non_negative);
  squares_ = this->zeros_like_parameters();
  means_ = this->zeros_like_parameters();
  buffers_ = this->zeros_like_parameters();
}

template <class T>
void RMSprop<T>::step() {
  const typename Optimizer<T>::InUse in_use(*this, "step()", true);
  NoGradGuard no_grad;
  // The arrays of the options in use: the others are never read (nor loaded).
  const bool centered = options_.centered(), momentum = options_.momentum() > 0;
  if (centered && momentum) {
    this->check_shapes(
        {{"square_avg", &squares_}, {"grad_avg", &means_}, {"momentum_buffer", &buffers_}});
  } else if (centered) {
    this->check_shapes({{"square_avg", &squares_}, {"grad_avg", &means_}});
  } else if (momentum) {
    this->check_shapes({{"square_avg", &squares_}, {"momentum_buffer", &buffers_}});
  } else {
    this->check_shapes({{"square_avg", &squares_}});
  }
  const T lr = static_cast<T>(this->learning_rate());
  const T alpha = static_cast<T>(options_.alpha());
  const T eps = static_cast<T>(options_.eps());
  for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
    auto& p = this->parameters_[i];
    if (!p.has_grad()) continue;
    xt::xarray<T> g = p.grad();
    if (options_.weight_decay() != 0)
      xt::noalias(g) += static_cast<T>(options_.weight_decay()) * p.value();
    xt::noalias(squares_[i]) = alpha * squares_[i] + (T(1) - alpha) * g * g;
    xt::xarray<T> denominator;
    if (options_.centered()) {
      xt::noalias(means_[i]) = alpha * means_[i] + (T(1) - alpha) * g;
      denominator = xt::sqrt(squares_[i] - means_[i] * means_[i]) + eps;
    } else {
      denominator = xt::sqrt(squares_[i]) + eps;
    }
    if (options_.momentum() > 0) {
      xt::noalias(buffers_[i]) =
          static_cast<T>(options_.momentum()) * buffers_[i] + g / denominator;
      xt::noalias(p.mutable_value()) -= lr * buffers_[i];
    } else {
      xt::noalias(p.mutable_value()) -= lr * g / denominator;
    }
  }
}

template <class T>
Adam<T>::Adam(std::vector<Tensor<T>> parameters, double learning_rate, const AdamOptions& options)
    : Adam(std::move(parameters), learning_rate, options, false) {}

template <class T>
Adam<T>::Adam(std::vector<Tensor<T>> parameters, double learning_rate, const AdamOptions& options,
              bool decoupled_weight_decay)
    : Optimizer<T>(std::move(parameters), learning_rate, decoupled_weight_decay ? "AdamW" : "Adam"),
      options_(options),
      decoupled_(decoupled_weight_decay) {
  const std::string& who = this->name();
  check_setting(who, "beta1", options.beta1(), Domain::below_one);
  check_setting(who, "beta2", options.beta2(), Domain::below_one);
  check_setting(who, "eps", options.eps(), Domain::positive);
  check_setting(who, "weight_decay", options.weight_decay(), Domain::non_negative);
  first_ = this->zeros_like_parameters();
  second_ = this->zeros_like_parameters();
  if (options.amsgrad()) second_max_ = this->zeros_like_parameters();
  updates_.assign(this->parameters_.size(), 0);
}

template <class T>
void Adam<T>::step() {
  const typename Optimizer<T>::InUse in_use(*this, "step()", true);
  NoGradGuard no_grad;
  if (options_.amsgrad()) {
    this->check_shapes(
        {{"exp_avg", &first_}, {"exp_avg_sq", &second_}, {"max_exp_avg_sq", &second_max_}});
  } else {
    this->check_shapes({{"exp_avg", &first_}, {"exp_avg_sq", &second_}});
  }
  const double lr = this->learning_rate();
  const T b1 = static_cast<T>(options_.beta1());
  const T b2 = static_cast<T>(options_.beta2());
  const T eps = static_cast<T>(options_.eps());
  const T decay = static_cast<T>(options_.weight_decay());
  for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
    auto& p = this->parameters_[i];
    if (!p.has_grad()) continue;
    const auto t = static_cast<double>(++updates_[i]);
    const T correction1 = static_cast<T>(1 - std::pow(options_.beta1(), t));
    const T correction2 = static_cast<T>(1 - std::pow(options_.beta2(), t));
    // One pass over the parameter, its gradient and its moments (the expressions of
    // torch.optim.Adam, term for term): xtensor's expressions took a pass each and a copy of
    // the gradient.
    const T* g = p.grad().data();
    T* value = p.mutable_value().data();
    T* m = first_[i].data();
    T* v = second_[i].data();
    T* v_max = options_.amsgrad() ? second_max_[i].data() : nullptr;
    const T rate = static_cast<T>(lr), shrink = T(1) - rate * decay;
    const bool coupled_decay = decay != 0 && !decoupled_,
               decoupled_decay = decay != 0 && decoupled_;
    for (std::size_t j = 0, n = p.value().size(); j < n; ++j) {
      if (decoupled_decay) value[j] *= shrink;
      const T gj = coupled_decay ? g[j] + decay * value[j] : g[j];
      m[j] = b1 * m[j] + (T(1) - b1) * gj;
      v[j] = b2 * v[j] + (T(1) - b2) * gj * gj;
      T second = v[j];
      if (v_max != nullptr) second = v_max[j] = std::max(v_max[j], v[j]);
      value[j] -= rate * (m[j] / correction1) / (std::sqrt(second / correction2) + eps);
    }
  }
}

template <class T>
typename Optimizer<T>::StateSlots Adagrad<T>::state_slots() {
  typename Optimizer<T>::StateSlots slots;
  slots.settings = {{"lr_decay", options_.lr_decay()},
                    {"weight_decay", options_.weight_decay()},
                    {"initial_accumulator", options_.initial_accumulator()},
                    {"eps", options_.eps()}};
  slots.counts = {{"step", &updates_}};
  slots.arrays = {{"sum", &sums_}};
  slots.non_negative = {"sum"};
  return slots;
}

template <class T>
typename Optimizer<T>::StateSlots RMSprop<T>::state_slots() {
  typename Optimizer<T>::StateSlots slots;
  slots.settings = {{"alpha", options_.alpha()},
                    {"eps", options_.eps()},
                    {"weight_decay", options_.weight_decay()},
                    {"momentum", options_.momentum()},
                    {"centered", options_.centered() ? 1.0 : 0.0}};
  slots.arrays = {{"square_avg", &squares_}};
  if (options_.centered()) slots.arrays.emplace_back("grad_avg", &means_);
  if (options_.momentum() > 0) slots.arrays.emplace_back("momentum_buffer", &buffers_);
  slots.non_negative = {"square_avg"};
  return slots;
}

template <class T>
typename Optimizer<T>::StateSlots Adam<T>::state_slots() {
  typename Optimizer<T>::StateSlots slots;
  slots.settings = {{"beta1", options_.beta1()},
                    {"beta2", options_.beta2()},
                    {"eps", options_.eps()},
                    {"weight_decay", options_.weight_decay()},
                    {"amsgrad", options_.amsgrad() ? 1.0 : 0.0}};
  slots.counts = {{"step", &updates_}};
  slots.arrays = {{"exp_avg", &first_}, {"exp_avg_sq", &second_}};
  if (options_.amsgrad()) slots.arrays.emplace_back("max_exp_avg_sq", &second_max_);
  slots.non_negative = {"exp_avg_sq", "max_exp_avg_sq"};
  return slots;
}

template class Adagrad<float>;
template class Adagrad<double>;
template class RMSprop<float>;
template class RMSprop<double>;
template class Adam<float>;
template class Adam<double>;

}  // namespace tapegrad::optim
