#include "tapegrad/optim/optimizer.hpp"

#include <cmath>
#include <string>

namespace tapegrad::optim {

LearningRateHolder::LearningRateHolder(double learning_rate) : learning_rate_(0) {
  set_learning_rate(learning_rate);
}

void LearningRateHolder::set_learning_rate(double learning_rate) {
  if (!std::isfinite(learning_rate) || learning_rate < 0) {
    throw ValueError("optimizer: the learning rate must be finite and not negative, got " +
                     std::to_string(learning_rate));
  }
  learning_rate_ = learning_rate;
}

template <class T>
Optimizer<T>::Optimizer(std::vector<Tensor<T>> parameters, double learning_rate)
    : LearningRateHolder(learning_rate), parameters_(std::move(parameters)) {
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    if (!parameters_[i].requires_grad()) {
      throw ValueError("optimizer: parameter " + std::to_string(i) + " (shape " +
                       shape_to_string(parameters_[i].shape()) +
                       ") does not require grad, so it would never change");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (parameters_[i].same_node(parameters_[j])) {
        throw ValueError("optimizer: parameter " + std::to_string(i) +
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

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace tapegrad::optim
