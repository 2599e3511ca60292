// Internals shared by the op files: records, the tape's storage, the backward context and
// the one function that turns a forward result into a recorded tensor.
#pragma once

#include <array>
#include <string>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include <xtensor/xnoalias.hpp>
#include <xtensor/xstorage.hpp>

#include "tapegrad/error.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/tensor.hpp"
#include "core/node_pool.hpp"
#include "core/record.hpp"

namespace tapegrad::detail {

struct TapeImpl {
  Tape* owner = nullptr;
  std::thread::id thread;
  std::uint64_t serial = 0;
  RecordArena records;
};

/// The live tapes of the calling thread, outermost first.
std::vector<TapeImpl*>& tape_stack();
inline TapeImpl* active_tape() {
  auto& stack = tape_stack();
  return stack.empty() ? nullptr : stack.back();
}

/// Anomaly mode of the calling thread (see AnomalyModeGuard).
extern thread_local bool anomaly_checks;

/// True if every element is finite.
template <class T>
bool all_finite(const xt::xarray<T>& a) {
  // A plain loop: xtensor's iterators over an empty array offset a null pointer.
  const T* data = a.data();
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!(data[i] - data[i] == T(0))) return false;  // NaN and Inf give NaN here
  }
  return true;
}

/// Throws TapeError for a recorded op that made NaN or Inf from finite inputs.
[[noreturn]] void report_forward_anomaly(const char* op, const std::string& shapes);

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

/// State of one reverse sweep.
struct Sweep {
  bool create_graph = false;
  /// Set by backward_into: the only leaves that receive gradients; the sweep then stays on
  /// the root's tape and drops what would flow anywhere else.
  const std::vector<const NodeBase*>* only_into = nullptr;
  xt::svector<std::uint64_t, 8> reachable_tapes;  // serials of the tapes being swept
  std::size_t pending = 0;  // recorded nodes holding a gradient not yet propagated
  const char* current_op = "";
  std::string current_shapes;  // the current record's input shapes, kept in anomaly mode
  std::size_t current_index = 0;
};

/// backward() from `root` with `seed`, adding gradients only to `leaves` and sweeping only
/// the records of root's own tape: for the helpers that differentiate a function of leaf
/// copies of their own (functional::grad and its kin, gradcheck). A function that reads the
/// caller's parameters or results of the caller's tape would otherwise add to those
/// parameters' gradients and use up the caller's records, where PyTorch's autograd.grad
/// touches neither.
template <class T>
void backward_into(const Tensor<T>& root, const Tensor<T>& seed, BackwardMode mode,
                   const std::vector<Tensor<T>>& leaves);

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

/// What a backward rule sees: its record's inputs and output as tensors, the gradient
/// flowing into the output, and where to send each input's gradient.
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
        const Shape& shape = i < 2 ? first_[i].shape()
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
  const Attrs& attrs() const { return record_.attrs; }

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

template <class T>
using BackwardRule = void (*)(BackwardContext<T>&);

template <class T>
void dispatch_rule(Record& record, Sweep& sweep) {
  BackwardContext<T> context(record, sweep);
  reinterpret_cast<BackwardRule<T>>(record.rule)(context);
}

/// Wraps a forward value as the result of `op`. If any input requires grad and recording is
/// on, appends a record to the active tape; with no tape the result is marked untracked, so
/// a later backward() can say what went wrong instead of returning a zero gradient.
template <class T>
Tensor<T> make_result_from(const char* op, std::shared_ptr<NodeBase>&& value_node,
                           const std::shared_ptr<NodeBase>* const* inputs,
                           std::size_t input_count, BackwardRule<T> rule, Attrs&& attrs) {
  Tensor<T> result = TensorAccess::wrap<T>(std::move(value_node));
  bool any_requires_grad = false;
  for (std::size_t i = 0; i < input_count; ++i) any_requires_grad |= (*inputs[i])->requires_grad;
  if (!any_requires_grad || !grad_enabled()) return result;

  NodeBase& node = *result.node();
  node.requires_grad = true;
  TapeImpl* tape = active_tape();
  if (tape == nullptr) {
    node.untracked = true;
    return result;
  }
  if (anomaly_checks && !all_finite(static_cast<Node<T>&>(node).value)) {
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
  record.dispatch = &dispatch_rule<T>;
  record.rule = reinterpret_cast<AnyFunction>(rule);
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
/// in place (see kernels.hpp), which saves moving the array.
template <class T>
struct OpValue {
  OpValue(xt::xarray<T>&& array) : node(new_node<T>(std::move(array))) {}
  /// An xtensor expression, evaluated into storage from the array cache.
  template <class E, class = std::enable_if_t<xt::is_xexpression<E>::value>>
  OpValue(const E& expression) {
    const auto& shape = expression.shape();
    auto filled = new_node_of_shape<T>(Shape(shape.begin(), shape.end()));
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

template <class T>
Tensor<T> make_result(const char* op, OpValue<T> value, const Tensor<T>& x,
                      BackwardRule<T> rule, Attrs&& attrs = {}) {
  const std::shared_ptr<NodeBase>* inputs[] = {&x.node()};
  return make_result_from<T>(op, std::move(value.node), inputs, 1, rule, std::move(attrs));
}

template <class T>
Tensor<T> make_result(const char* op, OpValue<T> value, const Tensor<T>& a, const Tensor<T>& b,
                      BackwardRule<T> rule, Attrs&& attrs = {}) {
  const std::shared_ptr<NodeBase>* inputs[] = {&a.node(), &b.node()};
  return make_result_from<T>(op, std::move(value.node), inputs, 2, rule, std::move(attrs));
}

template <class T>
Tensor<T> make_result(const char* op, OpValue<T> value, const std::vector<Tensor<T>>& xs,
                      BackwardRule<T> rule, Attrs&& attrs = {}) {
  std::vector<const std::shared_ptr<NodeBase>*> inputs;
  inputs.reserve(xs.size());
  for (const auto& x : xs) inputs.push_back(&x.node());
  return make_result_from<T>(op, std::move(value.node), inputs.data(), inputs.size(), rule,
                             std::move(attrs));
}


/// Resolves a possibly negative axis against `dimension`; throws ValueError naming `op`.
std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t dimension);

/// The shape that NumPy broadcasting gives `a` and `b`; throws ShapeError naming `op`.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

}  // namespace tapegrad::detail
