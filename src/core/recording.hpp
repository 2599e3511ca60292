// How an op's result is recorded: make_result_from wraps its value and appends a Record to
// the active tape when an input requires grad (ops/op.hpp calls it for every built-in op,
// custom_op.cpp for the user's). Also constants (values that need no gradient) and
// GradModeGuard (whether ops record at all).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#include <xtensor/xnoalias.hpp>

#include "core/anomaly.hpp"
#include "core/backward_context.hpp"
#include "core/node_pool.hpp"
#include "core/record.hpp"
#include "core/tape_impl.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/tensor.hpp"

namespace tapegrad::detail {

/// Sets whether ops record, restoring the previous mode on destruction.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled);
  ~GradModeGuard();
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

/// Wraps a forward value as the result of the op `entry` (named `op`). If any input requires grad
/// and recording is on, appends a record to the active tape; with no tape the result is marked
/// untracked, so a later backward() can say what went wrong instead of returning a zero gradient.
template <class T>
Tensor<T> make_result_from(const OpEntry& entry, const char* op,
                           std::shared_ptr<NodeBase>&& value_node,
                           const std::shared_ptr<NodeBase>* const* inputs, std::size_t input_count,
                           AttrBox&& attrs) {
  Tensor<T> result = TensorAccess::wrap<T>(std::move(value_node));
  const bool grad_mode = grad_enabled();
  if (!grad_mode && !recording_everything) return result;
  bool any_requires_grad = false;
  if (grad_mode) {
    for (std::size_t i = 0; i < input_count; ++i) any_requires_grad |= (*inputs[i])->requires_grad;
  }
  // Under compile() an op on constants, or under a NoGradGuard, is recorded too (its result
  // requiring no grad), so that a compiled step recomputes it.
  if (!any_requires_grad && !recording_everything) return result;

  NodeBase& node = *result.node();
  node.requires_grad = any_requires_grad;
  TapeImpl* tape = active_tape();
  if (tape != nullptr && tape->spent && tape->in_use == 0) {
    release_records(*tape);  // what the last backward() used up: the tape records anew
    tape = active_tape();    // (a destructor it ran may have destroyed a Tape)
  }
  if (tape == nullptr) {
    node.untracked = any_requires_grad;
    return result;
  }
  if (any_requires_grad && anomaly_checks && !all_finite(static_cast<Node<T>&>(node).value)) {
    bool inputs_finite = true;
    std::string shapes;
    for (std::size_t i = 0; i < input_count; ++i) {
      const auto& in = static_cast<const Node<T>&>(**inputs[i]).value;
      inputs_finite = inputs_finite && all_finite(in);
      shapes += (i ? " and " : "") + shape_to_string(in.shape());
    }
    if (inputs_finite) report_forward_anomaly(op, shapes);
  }
  node.tape_serial = tape->serial;
  node.record_index = static_cast<std::uint32_t>(tape->records.size());
  Record& record = tape->records.emplace_back();
  record.entry = &entry;
  record.op = op;
  record.output = result.node();
  record.input_count = static_cast<std::uint32_t>(input_count);
  if (input_count > 2) record.more_inputs = std::make_shared<Record::MoreInputs>();
  for (std::size_t i = 0; i < input_count; ++i) {
    const auto& input = *inputs[i];
    if (i < 2) {
      record.first_inputs[i] = input;
      record.first_versions[i] = input->version;
    } else {
      record.more_inputs->nodes.push_back(input);
      record.more_inputs->versions.push_back(input->version);
    }
  }
  record.attrs = std::move(attrs);
  return result;
}

/// The forward value of an op: an array to wrap in a new node, or a node already filled
/// in place (see ops/kernels.hpp), which saves moving the array.
template <class T>
struct OpValue {
  OpValue(xt::xarray<T>&& array) : node(new_node<T>(std::move(array))) {}
  /// An xtensor expression, evaluated into storage from the array cache.
  template <class E, class = std::enable_if_t<xt::is_xexpression<E>::value>>
  OpValue(const E& expression) {
    const auto& shape = expression.shape();
    const Shape value_shape(shape.begin(), shape.end());
    if (!Node<T>::cacheable(value_shape)) {  // evaluating in place costs more than a move here
      node = new_node<T>(xt::xarray<T>(expression));
      return;
    }
    auto filled = new_node_of_shape<T>(value_shape);
    xt::noalias(filled->value) = expression;
    node = std::move(filled);
  }
  OpValue(std::shared_ptr<Node<T>>&& filled) : node(std::move(filled)) {}
  std::shared_ptr<NodeBase> node;
};

/// A constant (no gradient) tensor holding `value` (an array, or an expression evaluated into
/// storage from the array cache).
template <class T>
Tensor<T> constant(OpValue<T> value) {
  return TensorAccess::wrap<T>(std::move(value.node));
}

}  // namespace tapegrad::detail
