#include "tapegrad/custom_op.hpp"

#include "core/backward_context.hpp"
#include "core/recording.hpp"
#include "core/tape_impl.hpp"

namespace tapegrad {

template <class T>
struct CustomOp<T>::State {
  std::string name;
  Forward forward;
  Backward backward;
  bool differentiable = false;  // declared differentiable_backward
  bool tagged_once = false;     // declared once_differentiable (the default, said explicitly)
};

namespace {

// Records `value` as the result of a custom op (or of its gradient) on `inputs`.
template <class T>
Tensor<T> record_custom(const detail::OpEntry& entry, const char* name, xt::xarray<T>&& value,
                        const std::vector<Tensor<T>>& inputs, detail::AttrBox&& attrs) {
  std::vector<const std::shared_ptr<detail::NodeBase>*> nodes;
  nodes.reserve(inputs.size());
  for (const auto& x : inputs) nodes.push_back(&x.node());
  return detail::make_result_from<T>(entry, name, detail::new_node<T>(std::move(value)),
                                     nodes.data(), nodes.size(), std::move(attrs));
}

template <class T>
using State = typename CustomOp<T>::State;

template <class T>
const State<T>& state_of(const detail::AttrBox& attrs) {
  return *static_cast<const State<T>*>(attrs.shared().get());
}

template <class T>
void first_order_only_backward(detail::Record& record, detail::Sweep&) {
  const auto& state = state_of<T>(record.attrs);
  const std::string what =
      state.tagged_once
          ? "' was declared once_differentiable: its gradient"
          : "': its backward is not declared differentiable_backward, so its gradient";
  throw TapeError("custom op '" + state.name + what +
                  " cannot be differentiated again (a second derivative: hessian, hvp, jvp, "
                  "forward-mode jacobian, or a backward through a gradient that "
                  "backward(create_graph) gave). If the backward is built from tensor ops on "
                  "grad_output() and the inputs, declare it: CustomOp(name, forward, backward, "
                  "tapegrad::differentiable_backward), and check it with gradgradcheck");
}

template <class T>
void first_order_only_forward(detail::Record& record) {
  throw TapeError("custom op '" + state_of<T>(record.attrs).name +
                  "': the gradient of an op whose backward is not declared "
                  "differentiable_backward is a value its backward computed, not an op that can "
                  "be run again");
}

// The records of the gradients of an op whose backward is first order only (see first_order_only).
template <class T>
const detail::OpEntry first_order_only_entry{"first_order_only", &first_order_only_backward<T>,
                                             &first_order_only_forward<T>, false};

// The gradient of a first-order-only op under backward(create_graph): its value, recorded
// as depending on grad_output and the op's inputs, with a backward that refuses.
template <class T>
Tensor<T> first_order_only(const detail::AttrBox& op_attrs, const Tensor<T>& gradient,
                           const std::vector<Tensor<T>>& depends_on) {
  detail::AttrBox attrs;
  attrs.share(op_attrs.shared());  // keeps the name alive for the record
  return record_custom<T>(first_order_only_entry<T>, state_of<T>(op_attrs).name.c_str(),
                          xt::xarray<T>(gradient.value()), depends_on, std::move(attrs));
}

// Whether `gradient` was computed from `grad_output` by the records the user's backward
// appended to `tape` (those from index `first` on): a walk back from the gradient through
// those records' inputs. A gradient computed on raw values is cut off from grad_output.
bool computed_from(const detail::NodeBase& gradient, const detail::NodeBase& grad_output,
                   const detail::TapeImpl* tape, std::size_t first) {
  if (&gradient == &grad_output) return true;
  if (tape == nullptr) return false;
  const auto made_here = [&](const detail::NodeBase& node) {
    return node.tape_serial == tape->serial && node.record_index >= first &&
           node.record_index < tape->records.size();
  };
  std::vector<bool> seen(tape->records.size() - first, false);
  std::vector<const detail::NodeBase*> pending{&gradient};
  while (!pending.empty()) {
    const detail::NodeBase* node = pending.back();
    pending.pop_back();
    if (!made_here(*node) || seen[node->record_index - first]) continue;
    seen[node->record_index - first] = true;
    const auto& record = tape->records[node->record_index];
    for (std::size_t i = 0; i < record.input_count; ++i) {
      const detail::NodeBase* input = record.input(i).get();
      if (input == &grad_output) return true;
      pending.push_back(input);
    }
  }
  return false;
}

template <class T>
void custom_rule(detail::BackwardContext<T>& c);

// OpEntry::backward of a custom op.
template <class T>
void custom_backward(detail::Record& record, detail::Sweep& sweep) {
  detail::BackwardContext<T> context(record, sweep);
  custom_rule(context);
}

// OpEntry::forward of a custom op: the user's forward again, on the inputs' current values.
template <class T>
void custom_forward(detail::Record& record) {
  const auto& state = state_of<T>(record.attrs);
  std::vector<Tensor<T>> inputs;
  for (std::size_t i = 0; i < record.input_count; ++i) {
    inputs.push_back(detail::TensorAccess::wrap<T>(record.input(i)));
  }
  xt::xarray<T> value;
  {
    NoGradGuard no_grad;
    value = state.forward(inputs);
  }
  auto& out = static_cast<detail::Node<T>&>(*record.output).value;
  if (value.shape() != out.shape()) {
    throw ShapeError("custom op '" + state.name + "': run again, its forward returned shape " +
                     shape_to_string(value.shape()) + " where it first returned " +
                     shape_to_string(out.shape()));
  }
  std::copy(value.data(), value.data() + value.size(), out.data());
}

template <class T>
const detail::OpEntry custom_entry{"custom", &custom_backward<T>, &custom_forward<T>};

// Sends the gradients the user's backward returns on: checks their number and shapes, and
// under backward(create_graph) that they were computed with tensor ops.
template <class T>
void custom_rule(detail::BackwardContext<T>& c) {
  const auto& state = state_of<T>(c.attrs());
  std::vector<Tensor<T>> inputs;
  std::vector<bool> needs;
  for (std::size_t i = 0; i < c.input_count(); ++i) {
    inputs.push_back(c.input(i));
    needs.push_back(c.needs(i));
  }
  const CustomBackwardContext<T> context(state.name, inputs, c.output(), c.grad(), needs);
  // Recording is on during a sweep exactly when it is backward(create_graph).
  const bool create_graph = grad_enabled();
  if (create_graph && detail::recording_everything && !state.differentiable) {
    throw TapeError("compile: custom op '" + state.name +
                    "' cannot be run again in a compiled step: its backward is not declared "
                    "differentiable_backward, so its gradient would be a value fixed at compile "
                    "time; write the backward with tensor ops on grad_output() and the inputs "
                    "and declare it: CustomOp(name, forward, backward, "
                    "tapegrad::differentiable_backward)");
  }
  const detail::TapeImpl* tape = detail::active_tape();
  const std::size_t first_record = tape == nullptr ? 0 : tape->records.size();
  std::vector<Tensor<T>> grads;
  const std::uint64_t constants_before = detail::constants_made;
  {
    detail::GradModeGuard recording(create_graph && state.differentiable);
    grads = state.backward(context);
  }
  if (detail::recording_everything && state.differentiable &&
      detail::constants_made != constants_before) {
    throw TapeError("compile: custom op '" + state.name +
                    "': its backward makes a tensor from values (a Tensor constructor), which a "
                    "compiled step would keep at its compile-time value; write the backward with "
                    "tensor ops on its inputs and grad_output() (numbers as scalar operands: "
                    "g * 3.0)");
  }
  if (grads.size() != inputs.size()) {
    throw ShapeError("custom op '" + state.name + "': backward returned " +
                     std::to_string(grads.size()) + " gradients for " +
                     std::to_string(inputs.size()) + " inputs");
  }
  for (std::size_t i = 0; i < grads.size(); ++i) {
    if (!needs[i]) continue;
    if (grads[i].shape() != inputs[i].shape()) {
      throw ShapeError("custom op '" + state.name + "': backward returned a gradient of shape " +
                       shape_to_string(grads[i].shape()) + " for input " + std::to_string(i) +
                       " of shape " + shape_to_string(inputs[i].shape()));
    }
    if (!create_graph) {
      c.add(i, grads[i]);
    } else if (!state.differentiable) {
      std::vector<Tensor<T>> depends_on{c.grad()};
      for (const auto& input : inputs) {
        if (input.requires_grad()) depends_on.push_back(input);
      }
      // A NaN here is the backward's: c.add reports it as such, not as a forward op's.
      const auto gradient = [&] {
        AnomalyModeGuard checked_by_add(false);
        return first_order_only(c.attrs(), grads[i], depends_on);
      }();
      c.add(i, gradient);
    } else if ((c.grad().requires_grad() || detail::recording_everything) &&
               !computed_from(*grads[i].node(), *c.grad().node(), tape, first_record)) {
      throw TapeError(
          "custom op '" + state.name +
          "': under backward(create_graph) its backward returned a "
          "gradient for input " +
          std::to_string(i) +
          " that is not computed from grad_output() with tensor ops (it was computed on raw "
          "values), so what comes after the op would be cut off from the second derivative; "
          "the op was declared differentiable_backward: write the backward with tensor ops, "
          "or drop the declaration");
    } else {
      c.add(i, grads[i]);
    }
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
CustomOp<T>::CustomOp(std::string name, Forward forward, Backward backward, bool differentiable,
                      bool tagged_once)
    : state_(std::make_shared<const State>(State{
          std::move(name), std::move(forward), std::move(backward), differentiable, tagged_once})) {
  if (!state_->forward || !state_->backward)
    throw ValueError("CustomOp '" + state_->name + "': empty function");
}

template <class T>
CustomOp<T>::CustomOp(std::string name, Forward forward, Backward backward)
    : CustomOp(std::move(name), std::move(forward), std::move(backward), false, false) {}

template <class T>
CustomOp<T>::CustomOp(std::string name, Forward forward, Backward backward, OnceDifferentiable)
    : CustomOp(std::move(name), std::move(forward), std::move(backward), false, true) {}

template <class T>
CustomOp<T>::CustomOp(std::string name, Forward forward, Backward backward, DifferentiableBackward)
    : CustomOp(std::move(name), std::move(forward), std::move(backward), true, false) {}

template <class T>
bool CustomOp<T>::backward_is_differentiable() const {
  return state_->differentiable;
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
  detail::AttrBox attrs;
  attrs.share(state_);
  return record_custom<T>(custom_entry<T>, state_->name.c_str(), std::move(value), inputs,
                          std::move(attrs));
}

template class CustomBackwardContext<float>;
template class CustomBackwardContext<double>;
template class CustomOp<float>;
template class CustomOp<double>;

}  // namespace tapegrad
