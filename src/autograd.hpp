// Internals shared by the op files: records, the tape's storage, the backward context and
// the one function that turns a forward result into a recorded tensor.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include <xtensor/xstorage.hpp>

#include "tapegrad/error.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/tensor.hpp"

namespace tapegrad::detail {

/// The plain values an op's backward needs besides its inputs and output.
struct Attrs {
  double scalar = 0;
  std::ptrdiff_t axis = 0;
  Shape shape;                     // a shape the backward restores or reduces to
  std::vector<std::size_t> ints;   // axes, a permutation or row indices
};

struct Record;
struct Sweep;
using Dispatch = void (*)(const Record&, Sweep&);
using AnyFunction = void (*)();

/// One recorded operation. The tape owns its records; a record owns its nodes (never the
/// other way round), so dropping the tape frees the whole graph without recursion.
struct Record {
  Dispatch dispatch = nullptr;  // calls `rule` with the element type restored
  AnyFunction rule = nullptr;
  const char* op = "";
  std::shared_ptr<NodeBase> output;
  std::array<std::shared_ptr<NodeBase>, 2> first_inputs;
  std::vector<std::shared_ptr<NodeBase>> more_inputs;  // only for ops of 3+ inputs
  std::array<std::uint32_t, 2> first_versions{};
  std::vector<std::uint32_t> more_versions;
  std::uint32_t input_count = 0;
  std::uint32_t output_version = 0;
  Attrs attrs;

  const std::shared_ptr<NodeBase>& input(std::size_t i) const {
    return i < 2 ? first_inputs[i] : more_inputs[i - 2];
  }
  std::uint32_t recorded_version(std::size_t i) const {
    return i < 2 ? first_versions[i] : more_versions[i - 2];
  }
};

struct TapeImpl {
  Tape* owner = nullptr;
  std::uint64_t serial = 0;
  std::vector<Record> records;
};

/// The live tapes of the calling thread, outermost first.
std::vector<TapeImpl*>& tape_stack();
inline TapeImpl* active_tape() {
  auto& stack = tape_stack();
  return stack.empty() ? nullptr : stack.back();
}

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
  xt::svector<std::uint64_t, 8> reachable_tapes;  // serials of the tapes being swept
  std::size_t pending = 0;  // recorded nodes holding a gradient not yet propagated
  const Record* current = nullptr;
  std::size_t current_index = 0;
};

/// Adds `gradient` to `target`'s gradient (the heart of the chain rule's sum over paths).
template <class T>
void accumulate_gradient(NodeBase& target, const Tensor<T>& gradient, Sweep& sweep,
                         std::size_t input_position);

/// What a backward rule sees: its record's inputs and output as tensors, the gradient
/// flowing into the output, and where to send each input's gradient.
template <class T>
class BackwardContext {
 public:
  BackwardContext(const Record& record, Sweep& sweep) : record_(record), sweep_(sweep) {}

  template <class U = T>
  Tensor<U> input(std::size_t i) const {
    return Tensor<U>(std::static_pointer_cast<Node<U>>(record_.input(i)));
  }
  Tensor<T> output() const { return Tensor<T>(std::static_pointer_cast<Node<T>>(record_.output)); }
  /// The gradient of the differentiated result with respect to this op's output.
  Tensor<T> grad() const {
    return Tensor<T>(std::static_pointer_cast<Node<T>>(record_.output->grad));
  }
  bool needs(std::size_t i) const { return record_.input(i)->requires_grad; }
  std::size_t input_count() const { return record_.input_count; }
  const Attrs& attrs() const { return record_.attrs; }

  /// Sends `gradient` (same shape as input i) to input i.
  template <class U = T>
  void add(std::size_t i, const Tensor<U>& gradient) {
    if (needs(i)) accumulate_gradient(*record_.input(i), gradient, sweep_, i);
  }

 private:
  const Record& record_;
  Sweep& sweep_;
};

template <class T>
using BackwardRule = void (*)(BackwardContext<T>&);

template <class T>
void dispatch_rule(const Record& record, Sweep& sweep) {
  BackwardContext<T> context(record, sweep);
  reinterpret_cast<BackwardRule<T>>(record.rule)(context);
}

/// Wraps a forward value as the result of `op`. If any input requires grad and recording is
/// on, appends a record to the active tape; with no tape the result is marked untracked, so
/// a later backward() can say what went wrong instead of returning a zero gradient.
template <class T, class InputRange>
Tensor<T> make_result_from(const char* op, xt::xarray<T>&& value, const InputRange& inputs,
                           std::size_t input_count, BackwardRule<T> rule, Attrs&& attrs) {
  auto node = std::make_shared<Node<T>>(std::move(value));
  bool any_requires_grad = false;
  for (std::size_t i = 0; i < input_count; ++i) any_requires_grad |= inputs[i]->requires_grad;
  if (!any_requires_grad || !grad_enabled()) return Tensor<T>(std::move(node));

  node->requires_grad = true;
  TapeImpl* tape = active_tape();
  if (tape == nullptr) {
    node->untracked = true;
    return Tensor<T>(std::move(node));
  }
  node->tape_serial = tape->serial;
  node->record_index = static_cast<std::uint32_t>(tape->records.size());
  Record& record = tape->records.emplace_back();
  record.dispatch = &dispatch_rule<T>;
  record.rule = reinterpret_cast<AnyFunction>(rule);
  record.op = op;
  record.output = node;
  record.input_count = static_cast<std::uint32_t>(input_count);
  for (std::size_t i = 0; i < input_count; ++i) {
    if (i < 2) {
      record.first_inputs[i] = inputs[i];
      record.first_versions[i] = inputs[i]->version;
    } else {
      record.more_inputs.push_back(inputs[i]);
      record.more_versions.push_back(inputs[i]->version);
    }
  }
  record.attrs = std::move(attrs);
  return Tensor<T>(std::move(node));
}

template <class T>
Tensor<T> make_result(const char* op, xt::xarray<T>&& value, const Tensor<T>& x,
                      BackwardRule<T> rule, Attrs&& attrs = {}) {
  const std::array<std::shared_ptr<NodeBase>, 1> inputs{x.node()};
  return make_result_from<T>(op, std::move(value), inputs, 1, rule, std::move(attrs));
}

template <class T>
Tensor<T> make_result(const char* op, xt::xarray<T>&& value, const Tensor<T>& a,
                      const Tensor<T>& b, BackwardRule<T> rule, Attrs&& attrs = {}) {
  const std::array<std::shared_ptr<NodeBase>, 2> inputs{a.node(), b.node()};
  return make_result_from<T>(op, std::move(value), inputs, 2, rule, std::move(attrs));
}

template <class T>
Tensor<T> make_result(const char* op, xt::xarray<T>&& value, const std::vector<Tensor<T>>& xs,
                      BackwardRule<T> rule, Attrs&& attrs = {}) {
  std::vector<std::shared_ptr<NodeBase>> inputs;
  inputs.reserve(xs.size());
  for (const auto& x : xs) inputs.push_back(x.node());
  return make_result_from<T>(op, std::move(value), inputs, inputs.size(), rule,
                             std::move(attrs));
}

/// A constant (no gradient) tensor holding `value`.
template <class T>
Tensor<T> constant(xt::xarray<T>&& value) {
  return Tensor<T>(std::make_shared<Node<T>>(std::move(value)));
}

/// Resolves a possibly negative axis against `dimension`; throws ValueError naming `op`.
std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t dimension);

/// The shape that NumPy broadcasting gives `a` and `b`; throws ShapeError naming `op`.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

}  // namespace tapegrad::detail
