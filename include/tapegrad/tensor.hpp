// Tensor<T>: a cheap handle to a value that the tape can differentiate.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <type_traits>

#include <xtensor/xarray.hpp>

#include "tapegrad/error.hpp"

namespace tapegrad {

namespace detail {

/// What the tape needs to know of a node, whatever its element type. Nodes never point to
/// other nodes (only to their own gradient), so no ownership cycle can form and freeing a
/// long graph never recurses. Nodes are only made by allocate_shared<Node<T>>, whose control
/// block destroys the right type, so the destructor needs no vtable.
struct NodeBase {
  NodeBase() noexcept;
  ~NodeBase();
  NodeBase(const NodeBase&) = delete;
  NodeBase& operator=(const NodeBase&) = delete;

  /// The gradient, itself a node so that backward(create_graph) can differentiate it.
  std::shared_ptr<NodeBase> grad;
  /// Serial number of the Tape that recorded this node; 0 for leaves and constants.
  std::uint64_t tape_serial = 0;
  /// Position of the node's record on its tape.
  std::uint32_t record_index = 0;
  /// Bumped by every in-place change, so backward can refuse stale saved values.
  std::uint32_t version = 0;
  bool requires_grad = false;
  /// Computed from tensors that require grad while no tape was active: not differentiable.
  bool untracked = false;

  bool is_leaf() const { return tape_serial == 0 && !untracked; }
};

template <class T>
struct Node final : NodeBase {
  explicit Node(xt::xarray<T>&& v) : value(std::move(v)) {}
  /// A value of the given shape, elements uninitialized.
  explicit Node(const Shape& shape) : value(xt::xarray<T>::from_shape(shape)) {}
  xt::xarray<T> value;
};

struct TensorAccess;

}  // namespace detail

/// Number of tensor nodes alive in the process (all threads). A test of memory hygiene:
/// it returns to its old value once a tape and the tensors made under it are gone.
std::size_t live_node_count();

/// Tag for a tensor whose gradient is wanted: `Tensor<double> w(values, requires_grad);`.
struct RequiresGrad {
  bool on;
};
inline constexpr RequiresGrad requires_grad{true};

/// Tag for `y.backward(create_graph)`: record the backward pass itself, so that the
/// gradients it produces can be differentiated again (second derivatives, Hessians).
struct BackwardMode {
  bool create_graph;
};
inline constexpr BackwardMode create_graph{true};

/// A value (an `xt::xarray<T>`, T = float or double) plus, when it requires grad, a gradient.
///
/// Copies are cheap and share the same node: a Tensor is a handle, like a `torch::Tensor`.
/// Operations on tensors that require grad are recorded on the active `Tape` (see tape.hpp);
/// `backward()` then fills the gradients of the leaves.
///
/// Gradients of leaves accumulate across backward() calls until zero_grad(), as in PyTorch.
///
/// double is the default: `Tensor<>` is `Tensor<double>`, and class template argument
/// deduction makes `tapegrad::Tensor x(values);` a double tensor when the values do not say.
template <class T = double>
class Tensor {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "tapegrad::Tensor supports float and double");

 public:
  using value_type = T;
  using Array = xt::xarray<T>;

  /// A 0-d constant holding 0.
  Tensor();
  Tensor(Array value, RequiresGrad rg = RequiresGrad{false});
  /// A 0-d tensor (shape `()`).
  Tensor(T scalar, RequiresGrad rg = RequiresGrad{false});
  /// Nested lists, as xt::xarray takes them: `Tensor<double>({{1, 2}, {3, 4}})`.
  /// (Braces around a single number, `Tensor<double>{2.0}`, make a 1-d tensor, as in xtensor.)
  Tensor(xt::nested_initializer_list_t<T, 1> values, RequiresGrad rg = RequiresGrad{false});
  Tensor(xt::nested_initializer_list_t<T, 2> values, RequiresGrad rg = RequiresGrad{false});
  Tensor(xt::nested_initializer_list_t<T, 3> values, RequiresGrad rg = RequiresGrad{false});
  Tensor(xt::nested_initializer_list_t<T, 4> values, RequiresGrad rg = RequiresGrad{false});
  /// A column of shape (n, 1). (Writing it as `{{1}, {2}}` is ambiguous in C++: each `{1}`
  /// could be a braced scalar.)
  static Tensor column(std::initializer_list<T> values, RequiresGrad rg = RequiresGrad{false});

  /// Wraps a node made by the library (internal; the node must hold a `Node<T>`).
  explicit Tensor(std::shared_ptr<detail::NodeBase> node) : node_(std::move(node)) {}

  const Array& value() const { return typed().value; }
  /// The value for an in-place change (optimizers). Bumps the version counter, so a backward
  /// that needs the old value throws instead of using the changed one.
  Array& mutable_value();
  /// Replaces the value (any shape for a leaf); bumps the version counter.
  void set_value(Array value);

  const Shape& shape() const { return typed().value.shape(); }
  std::size_t size() const { return typed().value.size(); }
  std::size_t dim() const { return typed().value.dimension(); }
  /// The single element of a tensor of size 1. Throws ValueError otherwise.
  T item() const;

  bool requires_grad() const { return node_->requires_grad; }
  /// Turns gradient tracking on or off for a leaf. Throws TapeError on a recorded result.
  Tensor& set_requires_grad(bool on = true);
  /// True for tensors the user made (not results of recorded ops).
  bool is_leaf() const { return node_->is_leaf(); }

  bool has_grad() const { return node_->grad != nullptr; }
  /// The accumulated gradient, same shape as the value. Throws TapeError if there is none
  /// (no backward yet, or the tensor does not take part in the differentiated result).
  /// The reference is valid until the next backward() or zero_grad() on this tensor.
  const Array& grad() const;
  /// The gradient for an in-place change (gradient clipping). Throws TapeError if there is
  /// none.
  Array& mutable_grad();
  /// The gradient as a tensor; after backward(create_graph) it is recorded and can be
  /// differentiated again.
  Tensor grad_tensor() const;
  /// Forgets the accumulated gradient (has_grad() becomes false).
  void zero_grad() { node_->grad.reset(); }

  /// A new constant tensor with a copy of the value, cut off from the graph.
  Tensor detach() const;

  /// Reverse sweep from this tensor, which must have a single element, with seed 1.
  /// Throws TapeError if the tensor was not recorded, its tape is gone, or a value it needs
  /// was changed in place. See tape.hpp for the semantics of repeated calls.
  void backward(BackwardMode mode = BackwardMode{false}) const;
  /// Reverse sweep with an explicit seed gradient of the same shape as this tensor.
  void backward(const Tensor& seed, BackwardMode mode = BackwardMode{false}) const;

  /// The node (internal: for the library's records).
  const std::shared_ptr<detail::NodeBase>& node() const { return node_; }
  /// True if both handles refer to the same node.
  bool same_node(const Tensor& other) const { return node_ == other.node_; }

 private:
  friend struct detail::TensorAccess;
  struct Empty {};
  explicit Tensor(Empty) {}  // a handle with no node, only for the sweep's borrowed handles

  detail::Node<T>& typed() const { return static_cast<detail::Node<T>&>(*node_); }

  // Untyped, so that the tape's records and the tensors share one pointer type and a
  // backward rule can borrow the record's references by move instead of copying them
  // (each copy of a shared_ptr is an atomic operation).
  std::shared_ptr<detail::NodeBase> node_;
};

template <class T>
std::ostream& operator<<(std::ostream& out, const Tensor<T>& tensor);

extern template class Tensor<float>;
extern template class Tensor<double>;

}  // namespace tapegrad
