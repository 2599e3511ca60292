// The reverse sweep: the records from the result's down, each rule's gradients summed into
// its inputs' nodes, and the checks that make misuse an error instead of a wrong gradient.
#include "core/sweep.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>
#include <xtensor/xbuilder.hpp>

#include "core/anomaly.hpp"
#include "core/backward_context.hpp"
#include "core/hooks.hpp"
#include "core/node_pool.hpp"
#include "core/recording.hpp"
#include "core/tape_impl.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

namespace detail {

namespace {

// The swept tape with this serial, or null.
const SweptTape* swept_tape(const Sweep& sweep, std::uint64_t serial) {
  for (const SweptTape& swept : sweep.tapes) {
    if (swept.serial == serial) return &swept;
  }
  return nullptr;
}

// Whether `target`, a recorded node, lies on a record the sweep goes through.
bool reaches(const Sweep& sweep, const NodeBase& target) {
  const SweptTape* swept = swept_tape(sweep, target.tape_serial);
  return swept != nullptr && target.record_index >= swept->first;
}

// Holds the sweep's tapes (TapeImpl::in_use) until it ends, so that no record is released
// under it; then gives back its claims and frees the tapes whose Tape was destroyed meanwhile.
class HeldTapes {
 public:
  explicit HeldTapes(Sweep& sweep) : sweep_(sweep) {}
  HeldTapes(const HeldTapes&) = delete;
  HeldTapes& operator=(const HeldTapes&) = delete;
  void hold(TapeImpl* tape) {
    sweep_.tapes.push_back({tape, tape->serial, tape->records.first()});
    ++tape->in_use;
  }
  ~HeldTapes() {
    sweep_.claims.release();  // before any leaf can die with its records
    // Marked first, then freed: freeing one runs destructors of user code, which may destroy
    // another Tape of the list whose state is then freed at once (no sweep left on it).
    for (SweptTape& swept : sweep_.tapes) {
      swept.to_free = --swept.tape->in_use == 0 && swept.tape->orphaned;
    }
    for (const SweptTape& swept : sweep_.tapes) {
      if (swept.to_free) delete swept.tape;
    }
  }

 private:
  Sweep& sweep_;
};

const char* const kSweepAgain =
    "; a second sweep would add the same gradient again. Pass tapegrad::retain_graph to the "
    "earlier backward() to sweep the records again, or record the forward pass anew";

std::string where(const Sweep& sweep) {
  return "'" + std::string(sweep.current_op) + "' (record " + std::to_string(sweep.current_index) +
         ")";
}

void check_versions(const Record& record, const Sweep& sweep) {
  for (std::size_t i = 0; i < record.input_count; ++i) {
    const auto now = record.input(i)->version;
    if (now != record.recorded_version(i)) {
      throw TapeError("backward: input " + std::to_string(i) + " of " + where(sweep) +
                      " was changed in place after it was recorded (version " +
                      std::to_string(record.recorded_version(i)) + ", now " + std::to_string(now) +
                      "); backward needs the old value: change it only after backward()");
    }
  }
  if (record.output->version != record.output_version) {
    throw TapeError("backward: the result of " + where(sweep) +
                    " was changed in place after it was recorded; backward needs it");
  }
}

// Leaves no half-propagated gradient on a recorded result after a failed sweep. (Leaves keep
// what they received before the failure, as in PyTorch: undoing it would mean buffering
// every leaf's gradient until the sweep ends.)
void drop_partial_gradients(const Sweep& sweep) {
  for (const SweptTape& swept : sweep.tapes) {
    auto& records = swept.tape->records;
    for (std::size_t i = swept.first; i < records.size(); ++i) {
      if (!records[i].output->is_leaf()) records[i].output->grad.reset();
    }
  }
}

}  // namespace

namespace {

// Adds `gradient` to the one in `slot` (or puts it there: then returns true). A leaf's
// gradient (`own`) gets a buffer of its own, since mutable_grad() and clipping change it in
// place.
template <class T>
bool add_gradient(std::shared_ptr<NodeBase>& slot, bool own, Tensor<T>&& gradient, Sweep& sweep,
                  std::size_t input_position) {
  if (!slot) {
    auto node = TensorAccess::take(std::move(gradient));
    if (own && !sweep.create_graph && node.use_count() > 1) {
      // Someone else holds this buffer (another input's gradient, the caller's seed).
      const auto& shared = static_cast<const Node<T>&>(*node).value;
      auto copy = new_node_of_shape<T>(shared.shape());
      std::copy(shared.data(), shared.data() + shared.size(), copy->value.data());
      node = std::move(copy);
    }
    slot = std::move(node);
    return true;
  }
  Tensor<T> old = TensorAccess::wrap<T>(slot);
  if (old.shape() != gradient.shape()) {
    throw ShapeError("backward of " + where(sweep) + ": input " + std::to_string(input_position) +
                     " holds a gradient of shape " + shape_to_string(old.shape()) +
                     " from before its value was resized to " + shape_to_string(gradient.shape()) +
                     "; call zero_grad() first");
  }
  if (sweep.create_graph) {
    slot = add(old, gradient).node();
  } else if (slot.use_count() == 2 && !old.requires_grad()) {
    // Only the slot and `old` hold this buffer: add in place (a plain loop: xtensor's
    // `+=` evaluates into a temporary array first).
    T* into = static_cast<Node<T>&>(*slot).value.data();
    const T* from = gradient.value().data();
    for (std::size_t i = 0, n = gradient.size(); i < n; ++i) into[i] += from[i];
  } else {
    auto sum = new_node_of_shape<T>(old.shape());
    const T* a = old.value().data();
    const T* b = gradient.value().data();
    T* out = sum->value.data();
    for (std::size_t i = 0; i < old.size(); ++i) out[i] = a[i] + b[i];
    slot = std::move(sum);
  }
  return false;
}

// The node's hooks, in order, on its gradient.
template <class T>
Tensor<T> run_hooks(NodeBase& node, Tensor<T> gradient) {
  if (!node.extras || !node.extras->has_hooks()) return gradient;
  // A copy of the list: a hook may register or remove hooks on this tensor.
  const auto hooks = static_cast<TypedExtras<T>&>(*node.extras).hooks;
  for (std::size_t k = 0; k < hooks.size(); ++k) {
    Tensor<T> replaced = hooks[k].second(gradient);
    if (replaced.shape() != gradient.shape()) {
      throw ShapeError("backward: hook " + std::to_string(k) + " of a tensor of shape " +
                       shape_to_string(gradient.shape()) + " returned a gradient of shape " +
                       shape_to_string(replaced.shape()) +
                       "; a hook must keep the gradient's shape");
    }
    gradient = std::move(replaced);
  }
  return gradient;
}

// A recorded result whose gradient is complete, before its record passes it on: its hooks,
// then its kept gradient (retain_grad).
template <class T>
void intercept_result(NodeBase& node, Sweep& sweep) {
  Tensor<T> gradient = run_hooks(node, TensorAccess::wrap<T>(node.grad));
  node.grad = gradient.node();
  NodeExtras& extras = *node.extras;
  if (!extras.retain) return;
  // Without create_graph a copy: the gradient's buffer may be added to in place later.
  Tensor<T> kept = sweep.create_graph ? gradient : Tensor<T>(gradient.value());
  if (!extras.retained) {
    extras.retained = kept.node();
  } else {
    add_gradient(extras.retained, false, std::move(kept), sweep, 0);
  }
}

// The end of a sweep: each hooked leaf's gradient of this sweep through its hooks, then
// added to its own.
template <class T>
void finish_hooked_leaves(Sweep& sweep) {
  sweep.current_op = "(a leaf's hooks)";
  for (NodeBase* leaf : sweep.hooked_leaves) {
    NodeExtras& extras = *leaf->extras;
    extras.in_sweep = false;
    Tensor<T> gradient = run_hooks(*leaf, TensorAccess::wrap<T>(std::move(extras.pending)));
    extras.pending.reset();
    add_gradient(leaf->grad, true, std::move(gradient), sweep, 0);
  }
  sweep.hooked_leaves.clear();
}

void forget_hooked_leaves(Sweep& sweep) {
  for (NodeBase* leaf : sweep.hooked_leaves) {
    leaf->extras->in_sweep = false;
    leaf->extras->pending.reset();
  }
  sweep.hooked_leaves.clear();
}

}  // namespace

template <class T>
void accumulate_gradient(NodeBase& target, Tensor<T>&& gradient, Sweep& sweep,
                         std::size_t input_position) {
  auto& target_value = static_cast<Node<T>&>(target).value;
  if (gradient.shape() != target_value.shape()) {
    throw ShapeError("backward of " + where(sweep) + " produced a gradient of shape " +
                     shape_to_string(gradient.shape()) + " for input " +
                     std::to_string(input_position) + " of shape " +
                     shape_to_string(target_value.shape()) + " (a bug in that op's rule)");
  }
  if (anomaly_checks && !all_finite(gradient.value())) {
    throw TapeError("anomaly mode: the backward of " + where(sweep) + ", inputs of shape(s) " +
                    sweep.current_shapes + ", produced NaN or Inf in the gradient of input " +
                    std::to_string(input_position) +
                    " (this is the first op of the reverse sweep to do so)");
  }
  if (sweep.only_into != nullptr) {
    // Nothing outside the helper's own tape can lead to its leaves (they were made inside
    // it), and no other leaf is to be touched.
    const bool wanted = target.is_leaf()
                            ? std::find(sweep.only_into->begin(), sweep.only_into->end(),
                                        &target) != sweep.only_into->end()
                            : !target.untracked && reaches(sweep, target);
    if (!wanted) return;
  }
  if (target.untracked) {
    throw TapeError("backward: input " + std::to_string(input_position) + " of " + where(sweep) +
                    " was computed while no Tape was active, so its own inputs were not "
                    "recorded; create the Tape before the whole forward pass");
  }
  if (!target.is_leaf()) {
    const SweptTape* swept = swept_tape(sweep, target.tape_serial);
    if (swept == nullptr) {
      throw TapeError("backward: input " + std::to_string(input_position) + " of " + where(sweep) +
                      " " + gone_tape_reason(target.tape_serial) +
                      ", or detach() the value to use it as a constant");
    }
    if (target.record_index < swept->first) {  // reported when the rule returns (propagate)
      if (sweep.released_input == Sweep::kNone) {
        sweep.released_input = input_position;
        sweep.released_record = target.record_index;
      }
      return;
    }
  } else if (!sweep.claims.take(target)) {
    throw TapeError("backward: input " + std::to_string(input_position) + " of " + where(sweep) +
                    ", a leaf of shape " + shape_to_string(target_value.shape()) +
                    ", is being changed by " + gradient_use_name(gradient_use(target)) +
                    " in another thread at this moment; "
                    "threads must not share leaf tensors (a leaf's gradient is not locked): give "
                    "each thread its own model (docs/threads.md)");
  }
  if (target.is_leaf() && target.extras && target.extras->has_hooks()) {
    // Summed apart, so that the hooks see this sweep's gradient once, whole, at its end.
    NodeExtras& extras = *target.extras;
    if (!extras.in_sweep) {
      extras.in_sweep = true;
      sweep.hooked_leaves.push_back(&target);
    }
    add_gradient(extras.pending, false, std::move(gradient), sweep, input_position);
    return;
  }
  const bool fresh =
      add_gradient(target.grad, target.is_leaf(), std::move(gradient), sweep, input_position);
  if (fresh && !target.is_leaf()) ++sweep.pending;
}

template void accumulate_gradient<float>(NodeBase&, Tensor<float>&&, Sweep&, std::size_t);
template void accumulate_gradient<double>(NodeBase&, Tensor<double>&&, Sweep&, std::size_t);

namespace {

void propagate(Record& record, std::size_t index, Sweep& sweep) {
  sweep.current_op = record.op;
  sweep.current_index = index;
  if (record.used_up) {
    throw TapeError("backward: " + where(sweep) +
                    " was already swept by an earlier backward(), which used up its records" +
                    kSweepAgain);
  }
  check_versions(record, sweep);
  record.entry->backward(record, sweep);  // consumes the output's gradient
  if (sweep.released_input != Sweep::kNone) {
    throw TapeError("backward: input " + std::to_string(sweep.released_input) + " of " +
                    where(sweep) + " was made by record " + std::to_string(sweep.released_record) +
                    ", already swept by an earlier backward(), which used up its records and "
                    "released them" +
                    kSweepAgain);
  }
  --sweep.pending;
}

template <class T>
void run_backward(const Tensor<T>& root, const Tensor<T>& seed, BackwardMode mode,
                  const std::vector<const NodeBase*>* only_into = nullptr,
                  std::size_t first_record = 0) {
  const bool create_graph = mode.create_graph;
  const bool retain_graph = mode.create_graph || mode.retain_graph;
  const std::shared_ptr<NodeBase> held_root = root.node();  // a hook may drop the caller's
  NodeBase& node = *held_root;
  if (!node.requires_grad) {
    throw TapeError(
        "backward: this tensor does not require grad: none of the tensors it was computed "
        "from requires grad, or it was computed under a NoGradGuard");
  }
  if (node.untracked) {
    throw TapeError(
        "backward: no Tape was active when this tensor was computed, so nothing was "
        "recorded; create a `tapegrad::Tape tape;` before the forward pass");
  }
  Sweep sweep;
  sweep.create_graph = create_graph;
  sweep.only_into = only_into;
  HeldTapes held(sweep);
  GradModeGuard recording(create_graph);
  if (node.is_leaf()) {
    sweep.current_op = "(leaf)";
    try {
      accumulate_gradient(node, Tensor<T>(seed), sweep, 0);
      finish_hooked_leaves<T>(sweep);
    } catch (...) {
      forget_hooked_leaves(sweep);
      throw;
    }
    return;
  }
  const auto& stack = tape_stack();
  std::size_t innermost = stack.size();
  for (std::size_t t = 0; t < stack.size(); ++t) {
    if (stack[t]->serial == node.tape_serial) innermost = t;
  }
  if (innermost == stack.size()) {
    throw TapeError("backward: this tensor " + gone_tape_reason(node.tape_serial));
  }
  if (node.record_index < stack[innermost]->records.first()) {
    throw TapeError("backward: this tensor's record (record " + std::to_string(node.record_index) +
                    ") was already swept by an earlier backward(), which used up its records "
                    "and released them" +
                    kSweepAgain);
  }
  for (std::size_t t = only_into != nullptr ? innermost : 0; t <= innermost; ++t) {
    held.hold(stack[t]);
  }
  if (only_into != nullptr) {  // the caller's records below first_record are not swept
    sweep.tapes.back().first = std::max(sweep.tapes.back().first, first_record);
  }

  node.grad = seed.node();
  sweep.pending = 1;
  try {
    for (std::size_t t = sweep.tapes.size(); t-- > 0 && sweep.pending > 0;) {
      SweptTape& swept = sweep.tapes[t];
      TapeImpl& tape = *swept.tape;
      std::size_t i = t + 1 == sweep.tapes.size() ? node.record_index + 1 : tape.records.size();
      while (i-- > swept.first && sweep.pending > 0) {
        Record& record = tape.records[i];  // chunks never move: valid while ops record
        NodeBase& output = *record.output;
        if (!output.grad) continue;
        swept.swept = true;
        if (output.extras) {
          sweep.current_op = record.op;
          sweep.current_index = i;
          intercept_result<T>(output, sweep);
        }
        if (create_graph) {
          // The rule borrows the record's references while it runs and appends records to
          // the active tape, which may be this one: work on a copy, so that a walk of this
          // tape during the rule (a custom op's check) sees the record whole.
          Record copy = record;
          propagate(copy, i, sweep);
        } else {
          propagate(record, i, sweep);
          if (!retain_graph) {
            record.used_up = true;
            ++tape.used_up;
          }
        }
      }
    }
    finish_hooked_leaves<T>(sweep);
  } catch (...) {
    drop_partial_gradients(sweep);
    forget_hooked_leaves(sweep);
    throw;
  }
  if (retain_graph) return;
  for (const SweptTape& swept : sweep.tapes) {
    TapeImpl& tape = *swept.tape;
    if (swept.swept && tape.in_use == 1 && !tape.orphaned) note_spent_records(tape);
  }
}

}  // namespace

template <class T>
void backward_into(const Tensor<T>& root, const Tensor<T>& seed, BackwardMode mode,
                   const std::vector<Tensor<T>>& leaves, std::size_t first_record) {
  std::vector<const NodeBase*> nodes;
  for (const auto& leaf : leaves) nodes.push_back(leaf.node().get());
  run_backward(root, seed, mode, &nodes, first_record);
}

template void backward_into<float>(const Tensor<float>&, const Tensor<float>&, BackwardMode,
                                   const std::vector<Tensor<float>>&, std::size_t);
template void backward_into<double>(const Tensor<double>&, const Tensor<double>&, BackwardMode,
                                    const std::vector<Tensor<double>>&, std::size_t);

}  // namespace detail

template <class T>
void Tensor<T>::backward(BackwardMode mode) const {
  if (size() != 1) {
    throw TapeError("backward: the tensor has shape " + shape_to_string(shape()) +
                    ", not a single element; pass a seed gradient of that shape "
                    "(y.backward(seed)) or reduce it first (sum, mean)");
  }
  detail::run_backward(*this, Tensor(Array(xt::ones<T>(shape()))), mode);
}

template <class T>
void Tensor<T>::backward(const Tensor& seed, BackwardMode mode) const {
  if (seed.shape() != shape()) {
    throw ShapeError("backward: the seed gradient has shape " + shape_to_string(seed.shape()) +
                     " but the tensor has shape " + shape_to_string(shape()));
  }
  detail::run_backward(*this, seed, mode);
}

template void Tensor<float>::backward(BackwardMode) const;
template void Tensor<double>::backward(BackwardMode) const;
template void Tensor<float>::backward(const Tensor&, BackwardMode) const;
template void Tensor<double>::backward(const Tensor&, BackwardMode) const;

}  // namespace tapegrad
