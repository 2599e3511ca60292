#include "tapegrad/optim/sgd.hpp"

#include <string>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "settings.hpp"
#include "tapegrad/tape.hpp"

namespace tapegrad::optim {

template <class T>
SGD<T>::SGD(std::vector<Tensor<T>> parameters, double learning_rate, const SGDOptions& options)
    : Optimizer<T>(std::move(parameters), learning_rate, "SGD"), options_(options) {
  using detail::Domain;
  detail::check_setting("SGD", "momentum", options.momentum(), Domain::non_negative);
  detail::check_setting("SGD", "dampening", options.dampening(), Domain::unit);
  detail::check_setting("SGD", "weight_decay", options.weight_decay(), Domain::non_negative);
  if (options.nesterov() && (options.momentum() == 0 || options.dampening() != 0)) {
    throw ValueError("SGD: nesterov needs a positive momentum and zero dampening, got momentum " +
                     detail::number_to_string(options.momentum()) + " and dampening " +
                     detail::number_to_string(options.dampening()));
  }
  momentum_buffers_ = this->zeros_like_parameters();
  momentum_updates_.assign(this->parameters_.size(), 0);
}

template <class T>
void SGD<T>::step() {
  const typename Optimizer<T>::InUse in_use(*this, "step()", true);
  NoGradGuard no_grad;
  const T lr = static_cast<T>(this->learning_rate());
  const T mu = static_cast<T>(options_.momentum());
  const T keep = static_cast<T>(1 - options_.dampening());
  const T decay = static_cast<T>(options_.weight_decay());
  if (mu != 0) {
    this->check_shapes({{"momentum_buffer", &momentum_buffers_}});
  } else {
    this->check_shapes({});  // no state: a resized parameter is fine, its gradient must fit
  }
  for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
    auto& p = this->parameters_[i];
    if (!p.has_grad()) continue;
    // xt::noalias: a plain `w -= lr * g` evaluates into a temporary array first (xtensor
    // guards against aliasing), a whole extra array and two passes per parameter per step.
    if (mu == 0 && decay == 0) {  // plain descent: no copy of the gradient
      // A plain loop: for the small arrays of a compiled step xtensor's assignment (its
      // shape and stride checks) costs more than the arithmetic. Same numbers.
      T* w = p.mutable_value().data();
      const T* g = p.grad().data();
      for (std::size_t k = 0, n = p.size(); k < n; ++k) w[k] -= lr * g[k];
      continue;
    }
    xt::xarray<T> g = p.grad();
    if (decay != 0) xt::noalias(g) += decay * p.value();
    if (mu != 0) {
      auto& b = momentum_buffers_[i];
      if (momentum_updates_[i]++ == 0) {  // the parameter's first update, which may come late
        b = g;
      } else {
        xt::noalias(b) = mu * b + keep * g;
      }
      if (options_.nesterov()) {
        xt::noalias(g) += mu * b;
      } else {
        g = b;
      }
    }
    xt::noalias(p.mutable_value()) -= lr * g;
  }
}

template <class T>
typename Optimizer<T>::StateSlots SGD<T>::state_slots() {
  typename Optimizer<T>::StateSlots slots;
  slots.settings = {{"momentum", options_.momentum()},
                    {"dampening", options_.dampening()},
                    {"nesterov", options_.nesterov() ? 1.0 : 0.0},
                    {"weight_decay", options_.weight_decay()}};
  if (options_.momentum() != 0) {  // without momentum b is never used: not worth a file's room
    slots.counts = {{"momentum_updates", &momentum_updates_}};
    slots.arrays = {{"momentum_buffer", &momentum_buffers_}};
  }
  return slots;
}

template class SGD<float>;
template class SGD<double>;

}  // namespace tapegrad::optim
