// Tensor<T>: a cheap handle to a value that the tape can differentiate.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>
#include <xtensor/xarray.hpp>

#include "tapegrad/error.hpp"
#include "tapegrad/index.hpp"

namespace tapegrad {

/// @addtogroup tensors
/// @{

namespace detail {

struct NodeExtras;

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
  /// References that compiled steps (compile.hpp) hold to this node as a tensor they read
  /// from outside: a step whose input is held by steps only can tell that nobody can change
  /// it any more, however many steps read it.
  std::atomic<std::uint32_t> compiled_holds{0};
  /// Bumped by every in-place change, so backward can refuse stale saved values. 64 bits, so
  /// that it cannot wrap around to a recorded value.
  std::uint64_t version = 0;
  bool requires_grad = false;
  /// Computed from tensors that require grad while no tape was active: not differentiable.
  bool untracked = false;
  /// What the thread holding gradient_writer does with the gradient (a GradientUse), for
  /// the message that refuses another thread.
  std::atomic<std::uint8_t> gradient_use{0};
  /// The thread changing this node's gradient now (its thread_token()), 0 when none: a
  /// backward() adding to a leaf, an optimizer's step(), zero_grad(). Another thread that
  /// finds it taken is refused (TapeError) instead of freeing or reading what this one
  /// changes; the same thread may nest them.
  std::atomic<std::uint32_t> gradient_writer{0};
  /// Hooks and a kept gradient (core/hooks.hpp), only for the nodes the user asked them for.
  std::unique_ptr<NodeExtras> extras;

  bool is_leaf() const { return tape_serial == 0 && !untracked; }
};

/// A number for the calling thread, never 0 and different for every thread alive (taken
/// from a process-wide counter when the thread first asks).
inline std::uint32_t thread_token() noexcept {
  static std::atomic<std::uint32_t> next{1};
  thread_local std::uint32_t token = 0;  // constant-initialized: no guard on each call
  while (token == 0) token = next.fetch_add(1, std::memory_order_relaxed);
  return token;
}

/// What a thread does with a gradient while it holds NodeBase::gradient_writer, so that two
/// threads sharing a tensor (unsupported, docs/threads.md) are refused rather than one
/// freeing what the other reads.
enum class GradientUse : std::uint8_t {
  none = 0,
  backward = 1,        ///< a sweep adding to a leaf's gradient
  optimizer_step = 2,  ///< an optimizer's step(), over all its parameters
  zero_grad = 3,       ///< Tensor::zero_grad()
};
/// "backward()", "an optimizer's step()", "zero_grad()" ("another change" for none).
const char* gradient_use_name(GradientUse use);

/// The outcome of claim_gradient().
enum class GradientClaim {
  taken,         ///< the calling thread took it: give it back with release_gradient()
  already_mine,  ///< the calling thread held it already (a nested call): nothing to give back
  refused,       ///< another thread holds it
};
/// Claims `node`'s gradient for the calling thread and `use`: an atomic load, and one
/// compare-and-swap when it was free.
inline GradientClaim claim_gradient(NodeBase& node, GradientUse use) noexcept {
  const std::uint32_t me = thread_token();
  std::uint32_t holder = node.gradient_writer.load(std::memory_order_acquire);
  if (holder == me) return GradientClaim::already_mine;
  if (holder != 0 ||
      !node.gradient_writer.compare_exchange_strong(holder, me, std::memory_order_acq_rel)) {
    return GradientClaim::refused;
  }
  node.gradient_use.store(static_cast<std::uint8_t>(use), std::memory_order_relaxed);
  return GradientClaim::taken;
}
/// Gives back a claim that claim_gradient() reported `taken`.
inline void release_gradient(NodeBase& node) noexcept {
  node.gradient_use.store(0, std::memory_order_relaxed);
  node.gradient_writer.store(0, std::memory_order_release);
}
/// What the thread holding `node`'s gradient does with it (none if it was just given back).
inline GradientUse gradient_use(const NodeBase& node) noexcept {
  return static_cast<GradientUse>(node.gradient_use.load(std::memory_order_relaxed));
}

/// An array of `shape`, elements uninitialized, on storage from the calling thread's cache
/// when it holds a block of that many elements (see memory.hpp).
template <class T>
xt::xarray<T> array_of_shape(const Shape& shape);
/// Hands `array`'s storage to the calling thread's cache (or frees it); `array` is then
/// empty and only fit to be destroyed.
template <class T>
void recycle_array(xt::xarray<T>& array) noexcept;

extern template xt::xarray<float> array_of_shape<float>(const Shape&);
extern template xt::xarray<double> array_of_shape<double>(const Shape&);
extern template void recycle_array<float>(xt::xarray<float>&) noexcept;
extern template void recycle_array<double>(xt::xarray<double>&) noexcept;

template <class T>
struct Node final : NodeBase {
  explicit Node(xt::xarray<T>&& v) : value(std::move(v)) {}
  /// A value of the given shape, elements uninitialized.
  explicit Node(const Shape& shape)
      : value(cacheable(shape) ? array_of_shape<T>(shape) : xt::xarray<T>::from_shape(shape)) {}
  ~Node() {
    if (value.storage().size() >= kCachedElements) recycle_array(value);
  }
  /// Arrays this large and larger go through the array cache (memory.hpp); smaller ones are
  /// left to malloc, whose own per-thread cache keeps blocks up to about 1 KiB.
  static constexpr std::size_t kCachedElements = 1024 / sizeof(T);
  static bool cacheable(const Shape& shape) {
    std::size_t size = 1;
    for (const std::size_t extent : shape) size *= extent;
    return size >= kCachedElements;
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  xt::xarray<T> value;
};

struct TensorAccess;

}  // namespace detail

/// Number of tensor nodes alive in the process (all threads), gradients included. A test of
/// memory hygiene: it returns to its old value once a tape and the tensors made under it are
/// gone.
std::size_t live_node_count();

/// Tag for a tensor whose gradient is wanted: `Tensor<double> w(values, requires_grad);`.
struct RequiresGrad {
  bool on;  ///< True: the tensor requires grad.
};
/// The tag value that turns gradient tracking on (see RequiresGrad).
inline constexpr RequiresGrad requires_grad{true};

/// How backward() treats the graph it sweeps; pass one of the tags `create_graph` or
/// `retain_graph`, or nothing for the default (first derivatives, graph used once).
struct BackwardMode {
  /// True: the backward pass is recorded on the active tape, so that the gradients it
  /// produces can be differentiated again (second derivatives, Hessians). Implies
  /// retain_graph, as in PyTorch.
  bool create_graph = false;
  /// True: the records swept stay usable for another backward() through them. By default a
  /// backward() marks every record it sweeps as used, and a second backward() that reaches
  /// one throws TapeError instead of adding the same gradient again.
  bool retain_graph = false;
};
/// `y.backward(create_graph)`: record the backward pass (see BackwardMode::create_graph).
inline constexpr BackwardMode create_graph{true, true};
/// `y.backward(retain_graph)`: keep the records for another backward() through them (see
/// BackwardMode::retain_graph).
inline constexpr BackwardMode retain_graph{false, true};

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
  using value_type = T;         ///< The element type, float or double.
  using Array = xt::xarray<T>;  ///< The type of the value and of the gradient.

  /// A 0-d constant holding 0.
  Tensor();
  /// A tensor holding `value` (any shape); it requires grad if `rg` says so. Throws
  /// ShapeError, naming `Tensor` and the shape, if the shape's number of elements does not fit
  /// (see checked_size: an xt::xarray's size() is that number modulo 2^64, so such an array
  /// holds fewer elements than its shape says), or if the array's storage does not hold that
  /// number of elements.
  Tensor(Array value, RequiresGrad rg = RequiresGrad{false});
  /// A 0-d tensor (shape `()`).
  Tensor(T scalar, RequiresGrad rg = RequiresGrad{false});
  /// A 1-d tensor from a list, as xt::xarray takes it: `Tensor<double>({1, 2, 3})` has shape (3,).
  /// (Braces around a single number, `Tensor<double>{2.0}`, make a 1-d tensor, as in xtensor.)
  Tensor(xt::nested_initializer_list_t<T, 1> values, RequiresGrad rg = RequiresGrad{false});
  /// A 2-d tensor from nested lists, one inner list per row: `Tensor<double>({{1, 2}, {3, 4}})`
  /// has shape (2, 2).
  Tensor(xt::nested_initializer_list_t<T, 2> values, RequiresGrad rg = RequiresGrad{false});
  /// A 3-d tensor from lists nested three deep.
  Tensor(xt::nested_initializer_list_t<T, 3> values, RequiresGrad rg = RequiresGrad{false});
  /// A 4-d tensor from lists nested four deep.
  Tensor(xt::nested_initializer_list_t<T, 4> values, RequiresGrad rg = RequiresGrad{false});
  /// A column of shape (n, 1). (Writing it as `{{1}, {2}}` is ambiguous in C++: each `{1}`
  /// could be a braced scalar.)
  static Tensor column(std::initializer_list<T> values, RequiresGrad rg = RequiresGrad{false});
  /// A tensor of `shape` holding `values` in row-major order (the last axis varies fastest),
  /// as torch.tensor(values).reshape(shape): `Tensor<double>::from({1, 2, 3, 4, 5, 6}, {2, 3})`
  /// has rows {1, 2, 3} and {4, 5, 6}. Any shape, () (one value) and extents of 0 (no values)
  /// included. Throws ShapeError, naming `Tensor::from`, the number of values and the shape,
  /// if the shape's number of elements is not values.size(), or if the shape has more
  /// elements than fit in memory (see checked_size).
  static Tensor from(const std::vector<T>& values, const Shape& shape,
                     RequiresGrad rg = RequiresGrad{false});

  /// The value, read only.
  const Array& value() const { return typed().value; }
  /// The value for an in-place change (optimizers). Bumps the version counter, so a later
  /// backward() through a record that used or made this tensor throws TapeError instead of
  /// using the changed value.
  ///
  /// What the version check can and cannot see (as with PyTorch's `.data`): the counter is
  /// bumped when mutable_value(), set_value() or mutable_grad() is *called*, not when the
  /// returned reference is written. A change made through a reference obtained after the
  /// op was recorded is caught; a reference obtained *before* the op was recorded and written
  /// after it is not, and backward() then uses the new value silently. Take the reference
  /// for the change you make right away, never keep it across a forward pass. Changes through
  /// `value().data()` after a const_cast, or through xtensor views of another array sharing
  /// nothing with the tensor, are not seen either. The counter is 64 bits and cannot wrap.
  Array& mutable_value();
  /// Replaces the value with one of any shape; bumps the version counter, as mutable_value()
  /// does. The gradient is kept when the shape stays and dropped when it changes (a gradient
  /// of the old shape means nothing for the new value). A value resized through
  /// mutable_value() keeps its old gradient, and the next backward() that adds to it throws
  /// ShapeError; call zero_grad() after such a resize. Throws ShapeError, naming `set_value`,
  /// as the constructor from an xt::xarray does (the tensor is then unchanged). (An array
  /// resized through mutable_value() is not checked: resize it to a shape that fits.)
  void set_value(Array value);

  /// The shape of the value.
  const Shape& shape() const { return typed().value.shape(); }
  /// The number of elements (the product of the extents; 1 for a 0-d tensor).
  std::size_t size() const { return typed().value.size(); }
  /// The number of axes (0 for a scalar).
  std::size_t dim() const { return typed().value.dimension(); }
  /// The single element of a tensor of size 1, whatever its shape (`()`, `(1,)`, `(1, 1)`, ...).
  /// Throws ValueError if the size is not 1.
  T item() const;

  /// Whether operations on this tensor are recorded and it can receive a gradient.
  bool requires_grad() const { return node_->requires_grad; }
  /// Turns gradient tracking on or off for a leaf; returns `*this`. Throws TapeError if the
  /// tensor is not a leaf (use detach() to get a leaf copy).
  Tensor& set_requires_grad(bool on = true);
  /// Whether the tensor is a leaf: one the user made, or the result of an op that was not
  /// recorded because no input required grad or a NoGradGuard was alive. The result of a
  /// recorded op is not a leaf, nor is one computed from tensors that require grad while no
  /// Tape was active.
  bool is_leaf() const { return node_->is_leaf(); }

  /// Whether the tensor holds a gradient (see grad()).
  bool has_grad() const;
  /// The accumulated gradient, same shape as the value. Leaves keep a gradient, and results
  /// of recorded ops marked with retain_grad(); backward() passes the gradients of other
  /// results on to their inputs without keeping them. Throws TapeError if there is none (no
  /// backward yet, a recorded result without retain_grad(), or a tensor that does not take
  /// part in the differentiated result), saying which. The reference is valid until the next
  /// backward() or zero_grad() on this tensor.
  const Array& grad() const;
  /// The gradient for an in-place change (gradient clipping). Throws TapeError if there is
  /// none, as grad() does.
  Array& mutable_grad();
  /// The gradient as a tensor sharing its node; after backward(create_graph) it is recorded and
  /// can be differentiated again. Throws TapeError if there is none, as grad() does.
  Tensor grad_tensor() const;
  /// Forgets the accumulated gradient (has_grad() becomes false). Throws TapeError, changing
  /// nothing, while another thread's optimizer step() is updating this tensor (two threads
  /// sharing a tensor are not supported, docs/threads.md: this refuses the case that would
  /// free a gradient the other thread reads).
  void zero_grad();

  /// Keeps the gradient of this tensor, the result of a recorded op, when backward() passes
  /// it on, as PyTorch's retain_grad(): grad() then returns it, summed over backward() calls
  /// until zero_grad(). It is the gradient after this tensor's hooks (register_hook). With
  /// create_graph it is recorded, so grad_tensor() can be differentiated again. A leaf keeps
  /// its gradient anyway: there it changes nothing. Returns *this.
  Tensor& retain_grad();
  /// Whether grad() holds this tensor's gradient after backward(): a leaf, or a result marked
  /// with retain_grad().
  bool retains_grad() const;
  /// Calls `hook` with this tensor's gradient during each backward() sweep that reaches it;
  /// returns an id for remove_hook(). `hook` takes `const Tensor&` and returns either nothing
  /// (it reads the gradient) or a Tensor of the same shape, which replaces the gradient.
  ///
  /// When: on a recorded result, once per sweep, when its gradient is complete (every
  /// contribution summed) and before it is passed on to the inputs, so a replacement changes
  /// the gradients of everything it was computed from; on a leaf, once per sweep, on the sum
  /// of what that sweep sends it, before it is added to grad() (so it sees this backward()'s
  /// gradient, not the accumulated one), as PyTorch's hooks. Several hooks run in the order
  /// they were registered, each given the previous one's result. With create_graph the
  /// gradient is a recorded tensor, and what a hook computes from it with tensor ops is
  /// recorded too, so second derivatives go through the hook.
  ///
  /// A hook that throws stops the backward() as any error there does. A hook that returns a
  /// tensor of another shape makes backward() throw ShapeError. The tensor keeps its hooks,
  /// so a hook must not hold a copy of the tensor it is registered on (that copy would keep
  /// the tensor alive for ever): capture it by reference, or remove the hook. A compiled step
  /// (compile.hpp) cannot run hooks: compile() refuses a function that reaches a tensor
  /// with a hook or retain_grad().
  template <class F>
  std::size_t register_hook(F hook) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&, const Tensor&>>) {
      return add_hook([hook](const Tensor& gradient) mutable {
        hook(gradient);
        return gradient;
      });
    } else {
      return add_hook([hook](const Tensor& gradient) mutable { return Tensor(hook(gradient)); });
    }
  }
  /// Removes the hook with this id (from register_hook); an unknown id is ignored.
  void remove_hook(std::size_t id);

  /// A new constant tensor (a leaf that does not require grad) with a copy of the value, cut
  /// off from the graph.
  Tensor detach() const;

  /// Reverse sweep from this tensor, which must have a single element (any shape of size 1),
  /// with seed 1: adds d this / d leaf to the gradient of every leaf that requires grad and
  /// that this tensor was computed from. Called on such a leaf itself, it adds 1 to its
  /// gradient. With `create_graph` the sweep is recorded (see grad_tensor()); without it,
  /// nothing the sweep computes is recorded.
  ///
  /// The records a sweep goes through are used up, as PyTorch frees a graph after
  /// backward(): a second backward() that reaches one of them (from this tensor again, or
  /// from another result computed from the same intermediates) throws TapeError naming the
  /// op, instead of silently adding the same gradient a second time. Pass `retain_graph`
  /// (or `create_graph`, which implies it) to the first call to keep them usable; each call
  /// then adds its gradient again, to be cleared with zero_grad() as needed.
  ///
  /// Throws TapeError if the tensor has more than one element, does not require grad, was
  /// computed while no Tape was active, or its tape is gone (destroyed, or another thread's);
  /// or if, during the sweep, a record was used up by an earlier backward() (see above), an
  /// input or result of a record was changed in place after it was recorded, or an input was
  /// computed while no Tape was active or recorded on a destroyed tape. In anomaly mode it also
  /// throws TapeError at the first NaN or Inf gradient (see AnomalyModeGuard). Throws ShapeError if
  /// an op's backward produces a gradient of the wrong shape (a bug in that op, or in a CustomOp's
  /// backward). After an exception the gradients of recorded results are dropped, but leaves keep
  /// what the sweep had already added to theirs. See tape.hpp for the semantics of repeated calls.
  void backward(BackwardMode mode = BackwardMode{}) const;
  /// Reverse sweep with an explicit seed gradient of the same shape as this tensor: adds the
  /// vector-Jacobian product to each leaf's gradient, element j of a leaf getting
  /// sum over i of seed[i] * d this[i] / d leaf[j]. Throws ShapeError if the seed's shape
  /// differs from this tensor's; otherwise throws as backward() does, without the
  /// single-element requirement.
  void backward(const Tensor& seed, BackwardMode mode = BackwardMode{}) const;
  /// Refused at compile time: a bool, a number or an enumerator is not a seed. (Without this
  /// overload, `y.backward(false)` would turn `false` into a 0-d seed of value 0 and give a
  /// zero gradient, and `y.backward(true)` a seed of 1 instead of create_graph.)
  template <class S, class = std::enable_if_t<std::is_arithmetic_v<S> || std::is_enum_v<S>>>
  void backward(S, BackwardMode = BackwardMode{}) const {
    static_assert(!std::is_arithmetic_v<S> && !std::is_enum_v<S>,
                  "tapegrad: backward() takes no bool or number: write y.backward(), "
                  "y.backward(tapegrad::create_graph), y.backward(tapegrad::retain_graph) or "
                  "y.backward(seed_tensor)");
  }

  /// x.select(axis, i) is select(x, axis, i) (ops.hpp): the sub-tensor at position i along
  /// an axis, that axis dropped; x[:, i] in NumPy is x.select(1, i).
  Tensor select(std::ptrdiff_t axis, std::ptrdiff_t index) const;
  /// x.slice(axis, start, stop, step) is slice(x, axis, start, stop, step) (ops.hpp): Python's
  /// x[..., start:stop:step, ...] along one axis; `{}` for an absent bound.
  Tensor slice(std::ptrdiff_t axis, std::optional<std::ptrdiff_t> start,
               std::optional<std::ptrdiff_t> stop, std::ptrdiff_t step = 1) const;
  /// x.index({...}) is index(x, {...}) (ops.hpp): positions and Slices over the leading axes,
  /// NumPy's x[1, :, 2:5]; x.index({all, t, all}) is x[:, t, :].
  Tensor index(const std::vector<Index>& indices) const;

  /// The node (internal: for the library's records).
  const std::shared_ptr<detail::NodeBase>& node() const { return node_; }
  /// True if both handles refer to the same node.
  bool same_node(const Tensor& other) const { return node_ == other.node_; }

 private:
  friend struct detail::TensorAccess;
  std::size_t add_hook(std::function<Tensor(const Tensor&)> hook);
  /// Where this tensor's gradient is kept: the node's grad, or the kept gradient of a result
  /// marked with retain_grad().
  const std::shared_ptr<detail::NodeBase>& gradient_slot() const;
  struct Empty {};
  explicit Tensor(Empty) {}  // a handle with no node, only for the sweep's borrowed handles
  // Wraps a node the library made, which must hold a Node<T>: private (detail::TensorAccess)
  // because nothing in a NodeBase says its element type.
  explicit Tensor(std::shared_ptr<detail::NodeBase> node) : node_(std::move(node)) {}

  detail::Node<T>& typed() const { return static_cast<detail::Node<T>&>(*node_); }

  // Untyped, so that the tape's records and the tensors share one pointer type and a
  // backward rule can borrow the record's references by move instead of copying them
  // (each copy of a shared_ptr is an atomic operation).
  std::shared_ptr<detail::NodeBase> node_;
};

/// Prints `Tensor<double>(shape (2, 2), requires_grad)` (", requires_grad" only when it does),
/// a newline, then the value as xtensor prints it. Returns `out`.
template <class T>
std::ostream& operator<<(std::ostream& out, const Tensor<T>& tensor);

extern template class Tensor<float>;
extern template class Tensor<double>;

/// @}

}  // namespace tapegrad
