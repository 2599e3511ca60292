#include "tapegrad/optim/optimizer.hpp"

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

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace tapegrad::optim
