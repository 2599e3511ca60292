// What a backward rule sees (BackwardContext), and the one function through which every
// gradient reaches a node.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <utility>

#include "core/anomaly.hpp"
#include "core/record.hpp"
#include "core/sweep.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/tensor.hpp"

namespace tapegrad::detail {

/// Moves node references in and out of tensors without touching the reference counts.
struct TensorAccess {
  /// A tensor on `node`, which must hold a Node<T> (the caller knows it from the record).
  template <class T>
  static Tensor<T> wrap(std::shared_ptr<NodeBase> node) {
    return Tensor<T>(std::move(node));
  }
  template <class T>
  static Tensor<T> borrow(std::shared_ptr<NodeBase>& from) {
    Tensor<T> t{typename Tensor<T>::Empty{}};
    t.node_ = std::move(from);
    return t;
  }
  template <class T>
  static void give_back(Tensor<T>& t, std::shared_ptr<NodeBase>& to) {
    to = std::move(t.node_);
  }
  template <class T>
  static std::shared_ptr<NodeBase> take(Tensor<T>&& t) {
    return std::move(t.node_);
  }
};

/// Adds `gradient` to `target`'s gradient (the heart of the chain rule's sum over paths).
template <class T>
void accumulate_gradient(NodeBase& target, Tensor<T>&& gradient, Sweep& sweep,
                         std::size_t input_position);

/// What a backward rule sees: its record's inputs and output as tensors and the gradient
/// flowing into the output. The engine sends the gradients the rule returns on with add().
///
/// The context borrows the record's references for the rule's duration and gives them back
/// when it ends, even by an exception; the output's gradient is consumed.
template <class T>
class BackwardContext {
 public:
  BackwardContext(Record& record, Sweep& sweep)
      : record_(record),
        sweep_(sweep),
        grad_(TensorAccess::borrow<T>(record.output->grad)),
        output_(TensorAccess::borrow<T>(record.output)),
        first_{TensorAccess::borrow<T>(record.first_inputs[0]),
               TensorAccess::borrow<T>(record.first_inputs[1])} {
    if (anomaly_checks) {
      sweep.current_shapes.clear();
      for (std::size_t i = 0; i < record.input_count; ++i) {
        const Shape& shape =
            i < 2 ? first_[i].shape()
                  : static_cast<const Node<T>&>(*record.more_inputs->nodes[i - 2]).value.shape();
        sweep.current_shapes += (i ? " and " : "") + shape_to_string(shape);
      }
    }
  }
  ~BackwardContext() {
    TensorAccess::give_back(output_, record_.output);
    TensorAccess::give_back(first_[0], record_.first_inputs[0]);
    TensorAccess::give_back(first_[1], record_.first_inputs[1]);
  }
  BackwardContext(const BackwardContext&) = delete;
  BackwardContext& operator=(const BackwardContext&) = delete;

  /// Input i (inputs beyond the second, for concat, are returned by copy).
  Tensor<T> input(std::size_t i) const {
    return i < 2 ? first_[i] : TensorAccess::wrap<T>(record_.more_inputs->nodes[i - 2]);
  }
  const Tensor<T>& output() const { return output_; }
  /// The gradient of the differentiated result with respect to this op's output.
  const Tensor<T>& grad() const { return grad_; }
  bool needs(std::size_t i) const { return node_of(i).requires_grad; }
  std::size_t input_count() const { return record_.input_count; }
  /// The record's attributes (an op's rule gets its own typed Attrs passed instead).
  const AttrBox& attrs() const { return record_.attrs; }

  /// Sends `gradient` (same shape as input i) to input i.
  void add(std::size_t i, Tensor<T> gradient) {
    if (needs(i)) accumulate_gradient(node_of(i), std::move(gradient), sweep_, i);
  }

 private:
  NodeBase& node_of(std::size_t i) const {
    return i < 2 ? *first_[i].node() : *record_.more_inputs->nodes[i - 2];
  }

  Record& record_;
  Sweep& sweep_;
  Tensor<T> grad_;
  Tensor<T> output_;
  std::array<Tensor<T>, 2> first_;
};

}  // namespace tapegrad::detail
