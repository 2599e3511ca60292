#include "tapegrad/custom_op.hpp"

#include "autograd.hpp"

namespace tapegrad {

template <class T>
struct CustomOp<T>::State {
  std::string name;
  Forward forward;
  Backward backward;
};

namespace {

template <class T>
void custom_rule(detail::BackwardContext<T>& c) {
  const auto& state = *static_cast<const typename CustomOp<T>::State*>(c.attrs().payload().get());
  std::vector<Tensor<T>> inputs;
  std::vector<bool> needs;
  for (std::size_t i = 0; i < c.input_count(); ++i) {
    inputs.push_back(c.input(i));
    needs.push_back(c.needs(i));
  }
  const auto grads =
      state.backward(CustomBackwardContext<T>(state.name, inputs, c.output(), c.grad(), needs));
  if (grads.size() != inputs.size()) {
    throw ShapeError("custom op '" + state.name + "': backward returned " + std::to_string(grads.size()) +
                     " gradients for " + std::to_string(inputs.size()) + " inputs");
  }
  for (std::size_t i = 0; i < grads.size(); ++i) {
    if (!needs[i]) continue;
    if (grads[i].shape() != inputs[i].shape()) {
      throw ShapeError("custom op '" + state.name + "': backward returned a gradient of shape " +
                       shape_to_string(grads[i].shape()) + " for input " + std::to_string(i) + " of shape " +
                       shape_to_string(inputs[i].shape()));
    }
    c.add(i, grads[i]);
  }
}

}  // namespace

template <class T>
void CustomBackwardContext<T>::check_index(const char* what, std::size_t i) const {
  if (i >= inputs_.size()) {
    throw ValueError("custom op '" + op_name_ + "': backward asked for " + what + "(" +
                     std::to_string(i) + ") but the op has " + std::to_string(inputs_.size()) +
                     " input(s)");
  }
}

template <class T>
const Tensor<T>& CustomBackwardContext<T>::input(std::size_t i) const {
  check_index("input", i);
  return inputs_[i];
}

template <class T>
bool CustomBackwardContext<T>::needs_grad(std::size_t i) const {
  check_index("needs_grad", i);
  return needs_grad_[i];
}

template <class T>
CustomOp<T>::CustomOp(std::string name, Forward forward, Backward backward)
    : state_(std::make_shared<const State>(State{std::move(name), std::move(forward), std::move(backward)})) {
  if (!state_->forward || !state_->backward) throw ValueError("CustomOp '" + state_->name + "': empty function");
}

template <class T>
const std::string& CustomOp<T>::name() const {
  return state_->name;
}

template <class T>
Tensor<T> CustomOp<T>::operator()(const std::vector<Tensor<T>>& inputs) const {
  xt::xarray<T> value;
  {
    NoGradGuard no_grad;
    value = state_->forward(inputs);
  }
  detail::Attrs attrs;
  attrs.payload() = state_;
  return detail::make_result<T>(state_->name.c_str(), std::move(value), inputs, &custom_rule<T>, std::move(attrs));
}

template class CustomBackwardContext<float>;
template class CustomBackwardContext<double>;
template class CustomOp<float>;
template class CustomOp<double>;

}  // namespace tapegrad
