// compile(): f and its gradient recorded once (every op, even on constants, so that nothing
// is left computed from compile-time values), the records needed kept in order, then laid out
// as a flat plan: elementwise ops become steps (a kernel pointer and the slots of its values,
// no record), their intermediate values one array shared by values whose lives do not
// overlap; every other op keeps its record and runs its forward kernel (OpEntry::forward).
#include "tapegrad/compile.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/anomaly.hpp"
#include "core/compiling.hpp"
#include "core/hooks.hpp"
#include "core/node_pool.hpp"
#include "core/record.hpp"
#include "core/recording.hpp"
#include "core/sweep.hpp"
#include "core/tape_impl.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/tape.hpp"

namespace tapegrad {

template <class T>
struct Compiled<T>::Plan {
  /// One op of the step. A flat step runs `kernel` on the data of its values' slots
  /// (`where[a]`, `where[b]` into `where[y]`): an elementwise op's kernel (OpEntry::elementwise,
  /// `attrs` its Attrs), or a raw kernel (OpEntry::raw: a product, a sum, a broadcast; `attrs`
  /// its extents, and `n` its index in raw_steps). Any other op (kernel null) runs its record,
  /// `records[a]`, through OpEntry::forward.
  struct Step {
    detail::ElementwiseKernel kernel;
    std::uint32_t a, b, y;
    detail::Spread spread_a, spread_b;
    bool raw;
    std::uint32_t n, row;  // y's elements, and its last extent for a Spread::kRow input
    alignas(8) unsigned char attrs[detail::AttrBox::kInlineBytes];
  };
  std::vector<Step> steps;
  std::vector<const char*> step_ops;  // each step's op name, for the errors
  /// What a raw step does not need to run: for the anomaly checks and compile_sgd_step.
  struct RawStep {
    const detail::OpEntry* entry;
    std::size_t made, read_a, read_b;  // its output's and inputs' elements
  };
  std::vector<RawStep> raw_steps;
  std::vector<detail::Record> records;  // the records of the steps that are not elementwise
  std::size_t recorded = 0;

  /// Every value a step reads or writes has a slot. The first `nodes.size()` slots are values
  /// that live in a node (leaves, the loss, the gradients, what records read or write, what
  /// the caller holds): `where` is read from the node at each run, since a leaf may be given
  /// new storage. The others live in `arena`, at fixed places.
  std::vector<std::shared_ptr<detail::NodeBase>> nodes;
  /// The values the steps compute that the caller held at compile time (a result f stored
  /// outside), with their shapes: resizing one would make its kernel write out of bounds,
  /// so run() checks them.
  struct Watched {
    std::uint32_t slot;
    Shape shape;
    const char* op;
  };
  std::vector<Watched> watched;
  std::vector<T*> where;
  std::vector<T> arena;
  std::shared_ptr<detail::NodeBase> loss;

  /// A tensor the steps read but none of them makes: a parameter, an input, a constant.
  struct Leaf {
    std::shared_ptr<detail::NodeBase> node;
    Shape shape;           // at compile time
    const char* read_by;   // the first op that reads it, for the errors (null: f returns it)
    std::size_t record;    // that op's position in the step
    long plan_references;  // how many references the plan itself holds
    bool outside;          // someone besides compiled steps held it at compile time
                           // (the plan's references are then in node->compiled_holds)
  };
  std::vector<Leaf> leaves;

  struct Parameter {
    std::shared_ptr<detail::NodeBase> node;
    std::shared_ptr<detail::NodeBase> gradient;  // the node the plan computes its gradient in
    /// Where the plan refers to `gradient` (Parameter::gradient included) when it is handed to
    /// the parameter as its grad without a copy; empty when it is copied into `own` instead.
    std::vector<std::shared_ptr<detail::NodeBase>*> handed;
    std::shared_ptr<detail::NodeBase> own;  // the buffer a copied gradient goes to
    Shape gradient_shape;                   // at compile time
  };
  std::vector<Parameter> parameters;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    for (const auto& leaf : leaves) {
      if (leaf.outside)
        leaf.node->compiled_holds -= static_cast<std::uint32_t>(leaf.plan_references);
    }
  }

  /// Lays the kept records out as steps, slots and the arena (compile's last stage).
  void lay_out(std::vector<detail::Record>&& kept);
  /// The steps, each checked as anomaly mode checks a recorded op.
  void run_checked();

  /// compile_sgd_step's part: after the steps, w -= lr * g for each parameter, folded into
  /// the product that makes g where it can be.
  struct Update {
    std::size_t parameter;
    std::uint32_t gradient_slot;
    /// The product that makes the gradient, when the update is folded into it (then
    /// `raw_add` is its OpEntry::raw_add and `product` its step, taken out of the steps).
    void (*raw_add)(const void*, const void*, void*, const unsigned char*, double) = nullptr;
    Step product{};
    const char* product_op = nullptr;
  };
  struct Sgd {
    double learning_rate;
    std::vector<Update> updates;
  };
  std::unique_ptr<Sgd> sgd;
  void make_sgd(double learning_rate);
  /// In anomaly mode, the products folded into updates (not among the steps), each run into
  /// its gradient's node and checked as run_checked() checks a step, before update() writes
  /// any parameter.
  void check_folded();
  void update();

  bool running = false;  // run() is under way (a custom op's forward must not run it again)
};

namespace {

template <class T>
const xt::xarray<T>& value_of(const std::shared_ptr<detail::NodeBase>& node) {
  return static_cast<const detail::Node<T>&>(*node).value;
}

template <class T>
xt::xarray<T>& value_of(detail::NodeBase& node) {
  return static_cast<detail::Node<T>&>(node).value;
}

// The plan of a step; a step moved from has none.
template <class P>
const std::shared_ptr<P>& plan_of(const std::shared_ptr<P>& plan, const char* what) {
  if (!plan) {
    throw TapeError(std::string("compiled step: ") + what +
                    "() on a step that was moved from (it has no plan)");
  }
  return plan;
}

}  // namespace

bool detail::compiling() { return detail::recording_everything; }

template <class T>
Compiled<T> compile(const std::vector<Tensor<T>>& parameters,
                    const typename detail::NonDeduced<std::function<Tensor<T>()>>::type& f) {
  using Plan = typename Compiled<T>::Plan;
  if (!f) throw ValueError("compile: the function is empty");
  if (parameters.empty()) throw ValueError("compile: no parameters to compute gradients for");
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    if (!parameters[i].is_leaf() || !parameters[i].requires_grad()) {
      throw ValueError("compile: parameter " + std::to_string(i) + " (shape " +
                       shape_to_string(parameters[i].shape()) +
                       ") is not a leaf that requires grad; a compiled step adds gradients "
                       "to leaves only");
    }
  }
  // Each parameter once (a tensor listed twice gets its gradient once, as from backward()).
  std::vector<Tensor<T>> unique;
  for (const auto& p : parameters) {
    const bool seen =
        std::any_of(unique.begin(), unique.end(), [&](const auto& q) { return q.same_node(p); });
    if (!seen) unique.push_back(p);
  }
  // The parameters' gradients are the caller's: set aside while the gradient is recorded
  // (an existing one would otherwise be recorded as a constant added at every run). Only
  // after f: what f itself adds to them (another step's run()) is the caller's too.
  std::vector<std::shared_ptr<detail::NodeBase>> kept_grads(unique.size());
  bool set_aside = false;
  const auto set_grads_aside = [&] {
    for (std::size_t i = 0; i < unique.size(); ++i)
      kept_grads[i] = std::move(unique[i].node()->grad);
    set_aside = true;
  };
  const auto restore_grads = [&] {
    if (!set_aside) return;
    for (std::size_t i = 0; i < unique.size(); ++i)
      unique[i].node()->grad = std::move(kept_grads[i]);
    set_aside = false;
  };

  auto plan = std::make_shared<Plan>();
  std::vector<detail::Record> kept;  // the records the plan needs, in recording order
  try {
    Tape tape;
    detail::TapeImpl& impl = *detail::active_tape();
    // Every op recorded, whatever the caller's grad mode (a NoGradGuard around compile() does
    // not change what f computes; one inside f is recorded too).
    detail::GradModeGuard grad_mode(true);
    struct RecordEverything {
      bool previous = detail::recording_everything;
      RecordEverything() { detail::recording_everything = true; }
      ~RecordEverything() { detail::recording_everything = previous; }
    } record_everything;
    const Tensor<T> loss = f();
    if (loss.size() != 1) {
      throw ValueError(
          "compile: the function must return one number (a loss), got a tensor of shape " +
          shape_to_string(loss.shape()));
    }
    if (!loss.requires_grad()) {
      throw TapeError(
          "compile: the function's result does not depend on any tensor that requires "
          "grad, so there is no gradient to compile");
    }
    // Hooks and kept gradients are run by backward()'s sweep, which a replay does not make.
    for (std::size_t i = 0; i < impl.records.size(); ++i) {
      const detail::Record& record = impl.records[i];
      bool hooked = detail::has_extras_in_use(*record.output);
      for (std::size_t k = 0; k < record.input_count; ++k)
        hooked = hooked || detail::has_extras_in_use(*record.input(k));
      if (hooked) {
        throw TapeError(
            "compile: op '" + std::string(record.op) +
            "' reads or makes a tensor with a gradient hook or retain_grad(), which a compiled "
            "step "
            "would not run; remove the hook (remove_hook) or use backward() for this function");
      }
    }
    set_grads_aside();
    detail::backward_into(loss, Tensor<T>(xt::xarray<T>(xt::ones<T>(loss.shape()))), create_graph,
                          unique);
    plan->loss = loss.node();
    bool any_gradient = false;
    for (const auto& p : unique) {
      any_gradient = any_gradient || p.node()->grad != nullptr;
      plan->parameters.push_back({p.node(),
                                  p.node()->grad,
                                  {},
                                  nullptr,
                                  p.node()->grad ? value_of<T>(p.node()->grad).shape() : Shape{}});
      p.node()->grad.reset();
    }
    if (!any_gradient) {
      throw TapeError("compile: the function's result does not depend on any of the " +
                      std::to_string(unique.size()) + " parameter(s) given");
    }

    // Keep the records the loss and the parameters' gradients need, walking back.
    std::unordered_set<const detail::NodeBase*> needed{plan->loss.get()};
    for (const auto& p : plan->parameters) {
      if (p.gradient) needed.insert(p.gradient.get());
    }
    const std::size_t n = impl.records.size();
    plan->recorded = n;
    std::vector<bool> keep(n, false);
    for (std::size_t i = n; i-- > 0;) {
      const detail::Record& record = impl.records[i];
      if (needed.count(record.output.get()) == 0) continue;
      keep[i] = true;
      for (std::size_t k = 0; k < record.input_count; ++k) needed.insert(record.input(k).get());
    }
    std::unordered_map<const detail::NodeBase*, std::size_t> leaf_index;
    std::unordered_set<const detail::NodeBase*> made;
    for (std::size_t i = 0; i < n; ++i) {
      if (!keep[i]) continue;
      const detail::Record& record = impl.records[i];
      if (!record.entry->replayable) {
        throw TapeError("compile: op '" + std::string(record.op) +
                        "' cannot be run again (a once_differentiable custom op's gradient); write "
                        "its backward with tensor ops to compile it");
      }
      for (std::size_t k = 0; k < record.input_count; ++k) {
        const auto& input = record.input(k);
        if (made.count(input.get()) != 0) continue;
        if (!input->is_leaf()) {
          // Its value and its path to the parameters lie outside f: neither could be replayed.
          throw TapeError(
              "compile: op '" + std::string(record.op) +
              "' reads a tensor computed outside the function (on another tape, or with "
              "no tape) from tensors that require grad; compute it inside the function");
        }
        if (leaf_index.emplace(input.get(), plan->leaves.size()).second) {
          plan->leaves.push_back(
              {input, value_of<T>(input).shape(), record.op, kept.size(), 0, false});
        }
      }
      made.insert(record.output.get());
      kept.push_back(record);
    }
    // f returned a parameter itself: no op reads it, and its shape must be checked all the same.
    if (plan->loss->is_leaf() && leaf_index.count(plan->loss.get()) == 0) {
      plan->leaves.push_back({plan->loss, value_of<T>(plan->loss).shape(), nullptr, 0, 0, false});
    }
    // A gradient that a record of the plan makes, for one parameter only, is handed to that
    // parameter as its grad without a copy (a copy is a pass over every weight, per step);
    // run() gives the plan a fresh node when someone else still holds it. It is a plain leaf
    // to the caller, as a gradient from backward() is (replay does not look at these fields).
    for (auto& p : plan->parameters) {
      if (!p.gradient || made.count(p.gradient.get()) == 0) continue;
      const auto shared = std::count_if(plan->parameters.begin(), plan->parameters.end(),
                                        [&](const auto& q) { return q.gradient == p.gradient; });
      if (shared > 1) continue;
      p.gradient->requires_grad = false;
      p.gradient->tape_serial = 0;
      p.gradient->record_index = 0;
      p.handed.push_back(&p.gradient);  // the rest once the plan is laid out
    }
  } catch (...) {
    restore_grads();
    throw;
  }
  restore_grads();
  plan->lay_out(std::move(kept));

  // Every reference the plan holds, so that run() can tell whether anyone else still does.
  std::unordered_map<const detail::NodeBase*, long> references;
  const auto count = [&](const std::shared_ptr<detail::NodeBase>& node) {
    if (node) ++references[node.get()];
  };
  count(plan->loss);
  for (const auto& node : plan->nodes) count(node);
  for (const auto& record : plan->records) {
    count(record.output);
    for (std::size_t k = 0; k < record.input_count; ++k) count(record.input(k));
  }
  for (const auto& leaf : plan->leaves) count(leaf.node);
  for (const auto& p : plan->parameters) {
    count(p.node);
    count(p.gradient);
  }
  for (auto& p : plan->parameters) {
    if (p.handed.empty()) continue;
    for (auto& node : plan->nodes) {
      if (node == p.gradient) p.handed.push_back(&node);
    }
    for (auto& record : plan->records) {
      if (record.output == p.gradient) p.handed.push_back(&record.output);
      for (std::size_t k = 0; k < record.input_count; ++k) {
        auto& input = k < 2 ? record.first_inputs[k] : record.more_inputs->nodes[k - 2];
        if (input == p.gradient) p.handed.push_back(&input);
      }
    }
  }
  // The values the steps compute that the caller holds too (not the gradients handed to the
  // parameters, which run() looks after itself).
  {
    std::unordered_set<const detail::NodeBase*> leaf_nodes, gradients;
    for (const auto& leaf : plan->leaves) leaf_nodes.insert(leaf.node.get());
    for (const auto& p : plan->parameters) gradients.insert(p.gradient.get());
    std::unordered_map<const detail::NodeBase*, const char*> made_by;
    for (std::size_t i = 0; i < plan->steps.size(); ++i) {
      const auto& step = plan->steps[i];
      if (step.kernel == nullptr) {
        made_by[plan->records[step.a].output.get()] = plan->step_ops[i];
      } else if (step.y < plan->nodes.size()) {
        made_by[plan->nodes[step.y].get()] = plan->step_ops[i];
      }
    }
    for (std::uint32_t s = 0; s < plan->nodes.size(); ++s) {
      const auto& node = plan->nodes[s];
      if (leaf_nodes.count(node.get()) != 0 || gradients.count(node.get()) != 0) continue;
      if (node.use_count() > references[node.get()]) {
        const auto at = made_by.find(node.get());
        plan->watched.push_back(
            {s, value_of<T>(node).shape(), at == made_by.end() ? "?" : at->second});
      }
    }
  }
  // Whoever else holds a leaf now (the caller's parameters and inputs) must go on holding it;
  // the leaves only the plan holds are the constants f made (a seed, a literal).
  for (auto& leaf : plan->leaves) {
    leaf.plan_references = references[leaf.node.get()];
    const long held_by_steps = leaf.plan_references + leaf.node->compiled_holds;
    leaf.outside = leaf.node.use_count() > held_by_steps;
    if (leaf.outside) leaf.node->compiled_holds += static_cast<std::uint32_t>(leaf.plan_references);
  }
  return Compiled<T>(std::move(plan));
}

template <class T>
void Compiled<T>::Plan::lay_out(std::vector<detail::Record>&& kept) {
  // The references each node has in the kept records: a node with more is held by someone
  // else too (the caller, or the plan's own fields), and its value must stay in it.
  std::unordered_map<const detail::NodeBase*, long> in_records;
  for (const auto& record : kept) {
    ++in_records[record.output.get()];
    for (std::size_t k = 0; k < record.input_count; ++k) ++in_records[record.input(k).get()];
  }
  // An op runs as an elementwise step when its kernel exists and its inputs line up with its
  // result in one of the ways the kernel knows (the same elements, one number, one row).
  // Another op runs as a raw step when its block has one for the record's shapes.
  const auto elements = [](const std::shared_ptr<detail::NodeBase>& node) {
    return value_of<T>(node).size();
  };
  std::vector<bool> flat(kept.size(), false);
  std::vector<std::array<detail::Spread, 2>> spreads(kept.size());
  struct RawKernel {
    detail::ElementwiseKernel kernel = nullptr;
    alignas(8) unsigned char params[detail::AttrBox::kInlineBytes] = {};
  };
  std::vector<RawKernel> raw(kept.size());
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const detail::Record& record = kept[i];
    if (record.entry->raw != nullptr && record.input_count <= 2) {
      raw[i].kernel = record.entry->raw(record, raw[i].params);
      flat[i] = raw[i].kernel != nullptr;
      continue;
    }
    if (record.entry->elementwise == nullptr || record.input_count > 2) continue;
    const xt::xarray<T>& out = value_of<T>(record.output);
    const std::size_t n = out.size();
    const std::size_t row = out.dimension() == 0 ? 1 : out.shape().back();
    if (n > UINT32_MAX) continue;
    bool lines_up = true;
    for (std::size_t k = 0; k < record.input_count; ++k) {
      const xt::xarray<T>& in = value_of<T>(record.input(k));
      if (in.size() == n) {
        spreads[i][k] = detail::Spread::kFull;
      } else if (in.size() == 1) {
        spreads[i][k] = detail::Spread::kNumber;
      } else if (in.dimension() > 0 && in.shape().back() == row && in.size() == row) {
        spreads[i][k] = detail::Spread::kRow;
      } else {
        lines_up = false;
      }
    }
    // The kernel reads the pairs (full, any) and (any, full) only.
    if (record.input_count == 2 && spreads[i][0] != detail::Spread::kFull &&
        spreads[i][1] != detail::Spread::kFull) {
      lines_up = false;
    }
    flat[i] = lines_up;
  }

  // Which values live in a node: the loss, the gradients, the leaves, what a record reads or
  // writes, and what someone besides the records holds.
  std::unordered_set<const detail::NodeBase*> in_node{loss.get()};
  for (const auto& p : parameters) {
    if (p.gradient) in_node.insert(p.gradient.get());
  }
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const detail::Record& record = kept[i];
    if (!flat[i]) in_node.insert(record.output.get());
    if (record.output.use_count() > in_records[record.output.get()])
      in_node.insert(record.output.get());
    for (std::size_t k = 0; k < record.input_count; ++k) {
      const auto& input = record.input(k);
      if (!flat[i] || input->is_leaf() || input.use_count() > in_records[input.get()]) {
        in_node.insert(input.get());
      }
    }
  }

  // Slots: the values in nodes first, then the values in the arena.
  std::unordered_map<const detail::NodeBase*, std::uint32_t> slot_of;
  const auto node_slot = [&](const std::shared_ptr<detail::NodeBase>& node) {
    const auto [at, fresh] = slot_of.emplace(node.get(), static_cast<std::uint32_t>(nodes.size()));
    if (fresh) nodes.push_back(node);
    return at->second;
  };
  for (const auto& record : kept) {
    for (std::size_t k = 0; k < record.input_count; ++k) {
      if (in_node.count(record.input(k).get()) != 0) node_slot(record.input(k));
    }
    if (in_node.count(record.output.get()) != 0) node_slot(record.output);
  }
  // A gradient no record makes or reads (the seed, when f returns a parameter or a sum of
  // parameters) still needs a slot: compile_sgd_step's update reads it.
  for (const auto& p : parameters) {
    if (p.gradient) node_slot(p.gradient);
  }
  // Arena values: a value's place is freed after the last step that reads it, and taken by
  // the next value of the same size (never by a value of the step that reads it last).
  struct ArenaValue {
    std::size_t size;
    std::size_t last_read = 0;
    std::size_t offset = 0;
  };
  // A product that makes a parameter's gradient may be run again after the steps, by
  // compile_sgd_step's folded update: its inputs stay in place to the end.
  std::unordered_set<const detail::NodeBase*> gradients;
  for (const auto& p : parameters) {
    if (p.gradient) gradients.insert(p.gradient.get());
  }
  std::vector<ArenaValue> arena_values;
  // A place of a line (64 bytes) or more starts on a line: BLAS and the vectorised loops
  // run slower on arrays that start inside one. Smaller values (a chain's numbers) are packed.
  constexpr std::size_t kLine = 64 / sizeof(T);
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const detail::Record& record = kept[i];
    if (in_node.count(record.output.get()) == 0) {
      slot_of.emplace(record.output.get(),
                      static_cast<std::uint32_t>(nodes.size() + arena_values.size()));
      arena_values.push_back({elements(record.output), i, 0});
    }
    const bool read_again =
        record.entry->raw_add != nullptr && gradients.count(record.output.get()) != 0;
    for (std::size_t k = 0; k < record.input_count; ++k) {
      const std::uint32_t slot = slot_of.at(record.input(k).get());
      if (slot < nodes.size()) continue;
      std::size_t& last_read = arena_values[slot - nodes.size()].last_read;
      last_read = std::max(last_read, read_again ? kept.size() - 1 : i);
    }
  }
  std::unordered_map<std::size_t, std::vector<std::size_t>> free_places;  // by size
  std::vector<std::vector<std::size_t>> freed_after(kept.size());
  std::size_t arena_size = 0;
  for (std::size_t i = 0, v = 0; i < kept.size(); ++i) {
    if (in_node.count(kept[i].output.get()) == 0) {
      ArenaValue& value = arena_values[v];
      auto& places = free_places[value.size];
      if (places.empty()) {
        if (value.size >= kLine) arena_size = (arena_size + kLine - 1) / kLine * kLine;
        value.offset = arena_size;
        arena_size += value.size;
      } else {
        value.offset = places.back();
        places.pop_back();
      }
      freed_after[std::max(value.last_read, i)].push_back(v);
      ++v;
    }
    for (const std::size_t done : freed_after[i]) {
      free_places[arena_values[done].size].push_back(arena_values[done].offset);
    }
  }
  arena.assign(arena_size + kLine, T(0));
  T* base = arena.data();
  while (reinterpret_cast<std::uintptr_t>(base) % 64 != 0) ++base;
  where.assign(nodes.size() + arena_values.size(), nullptr);
  for (std::size_t v = 0; v < arena_values.size(); ++v)
    where[nodes.size() + v] = base + arena_values[v].offset;

  // The steps; the records of elementwise ops are dropped here, and with them every node
  // that only they held.
  steps.reserve(kept.size());
  step_ops.reserve(kept.size());
  for (std::size_t i = 0; i < kept.size(); ++i) {
    detail::Record& record = kept[i];
    Step step{};
    step_ops.push_back(record.op);
    if (flat[i]) {
      const xt::xarray<T>& out = value_of<T>(record.output);
      step.a = slot_of.at(record.input(0).get());
      step.b = record.input_count == 2 ? slot_of.at(record.input(1).get()) : step.a;
      step.y = slot_of.at(record.output.get());
      if (raw[i].kernel != nullptr) {
        step.kernel = raw[i].kernel;
        step.raw = true;
        step.n = static_cast<std::uint32_t>(raw_steps.size());
        raw_steps.push_back({record.entry, out.size(), elements(record.input(0)),
                             elements(record.input(record.input_count == 2 ? 1 : 0))});
        std::memcpy(step.attrs, raw[i].params, sizeof(step.attrs));
      } else {
        step.kernel = record.entry->elementwise;
        step.spread_a = spreads[i][0];
        step.spread_b = record.input_count == 2 ? spreads[i][1] : detail::Spread::kFull;
        step.n = static_cast<std::uint32_t>(out.size());
        step.row = static_cast<std::uint32_t>(out.dimension() == 0 ? 1 : out.shape().back());
        std::memcpy(step.attrs, record.attrs.inline_bytes(), sizeof(step.attrs));
      }
    } else {
      step.kernel = nullptr;
      step.a = static_cast<std::uint32_t>(records.size());
      records.push_back(std::move(record));
    }
    steps.push_back(step);
  }
  kept.clear();
  kept.shrink_to_fit();
}

namespace {
template <class T>
bool finite(const T* data, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (!(data[i] - data[i] == T(0))) return false;  // NaN and Inf give NaN here
  }
  return true;
}
}  // namespace

template <class T>
void Compiled<T>::Plan::run_checked() {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    bool made_finite = true;
    bool read_finite = true;
    if (step.kernel != nullptr) {
      step.kernel(where[step.a], where[step.b], where[step.y], step.n, step.row, step.spread_a,
                  step.spread_b, step.attrs);
      const auto read = [&step](detail::Spread spread) -> std::size_t {
        return spread == detail::Spread::kFull     ? step.n
               : spread == detail::Spread::kNumber ? 1
                                                   : step.row;
      };
      const RawStep* raw = step.raw ? &raw_steps[step.n] : nullptr;
      made_finite = finite(where[step.y], raw ? raw->made : step.n);
      read_finite = finite(where[step.a], raw ? raw->read_a : read(step.spread_a)) &&
                    finite(where[step.b], raw ? raw->read_b : read(step.spread_b));
    } else {
      detail::Record& record = records[step.a];
      record.entry->forward(record);
      made_finite = detail::all_finite(value_of<T>(record.output));
      for (std::size_t k = 0; k < record.input_count; ++k) {
        read_finite = read_finite && detail::all_finite(value_of<T>(record.input(k)));
      }
    }
    if (!made_finite && read_finite) {
      throw TapeError("anomaly mode: compiled step: op '" + std::string(step_ops[i]) + "' (op " +
                      std::to_string(i) + " of the step) made NaN or Inf from finite inputs");
    }
  }
}

template <class T>
void Compiled<T>::Plan::make_sgd(double learning_rate) {
  sgd = std::make_unique<Sgd>();
  sgd->learning_rate = learning_rate;
  std::unordered_map<const detail::NodeBase*, std::uint32_t> slot_of;
  for (std::uint32_t s = 0; s < nodes.size(); ++s) slot_of.emplace(nodes[s].get(), s);
  // What the steps read: a gradient read by a step must be written.
  std::unordered_set<std::uint32_t> read;
  for (const auto& step : steps) {
    if (step.kernel != nullptr) {
      read.insert(step.a);
      read.insert(step.b);
      continue;
    }
    const detail::Record& record = records[step.a];
    for (std::size_t k = 0; k < record.input_count; ++k) {
      const auto at = slot_of.find(record.input(k).get());
      if (at != slot_of.end()) read.insert(at->second);
    }
  }
  std::unordered_set<std::uint32_t> parameter_slots;
  for (const auto& p : parameters) {
    const auto at = slot_of.find(p.node.get());
    if (at != slot_of.end()) parameter_slots.insert(at->second);
  }
  std::vector<bool> dropped(steps.size(), false);
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    Parameter& p = parameters[i];
    p.handed.clear();  // the gradient stays the plan's: nothing is handed to the parameter
    if (!p.gradient) continue;
    Update u{i, slot_of.at(p.gradient.get())};
    const bool shared = std::count_if(parameters.begin(), parameters.end(),
                                      [&](const auto& q) { return q.gradient == p.gradient; }) > 1;
    for (std::size_t k = 0; k < steps.size() && !shared && read.count(u.gradient_slot) == 0; ++k) {
      const Step& step = steps[k];
      if (!step.raw || step.y != u.gradient_slot || raw_steps[step.n].entry->raw_add == nullptr)
        continue;
      // The folded updates run after every step and write the parameters: a product that
      // reads a parameter would read an updated one. (Its other inputs stay in place to the
      // end: lay_out keeps them.)
      if (parameter_slots.count(step.a) != 0 || parameter_slots.count(step.b) != 0) break;
      u.raw_add = raw_steps[step.n].entry->raw_add;
      u.product = step;
      u.product_op = step_ops[k];
      dropped[k] = true;
      break;
    }
    sgd->updates.push_back(u);
  }
  std::size_t kept = 0;
  for (std::size_t k = 0; k < steps.size(); ++k) {
    if (dropped[k]) continue;
    steps[kept] = steps[k];
    step_ops[kept] = step_ops[k];
    ++kept;
  }
  steps.resize(kept);
  step_ops.resize(kept);
}

template <class T>
void Compiled<T>::Plan::check_folded() {
  // backward() would have thrown before the optimizer's step: no parameter is written here.
  for (const auto& u : sgd->updates) {
    if (u.raw_add == nullptr || !parameters[u.parameter].node->requires_grad) continue;
    const Step& step = u.product;
    const RawStep& raw = raw_steps[step.n];
    step.kernel(where[step.a], where[step.b], where[step.y], step.n, step.row, step.spread_a,
                step.spread_b, step.attrs);
    if (!finite(where[step.y], raw.made) && finite(where[step.a], raw.read_a) &&
        finite(where[step.b], raw.read_b)) {
      throw TapeError("anomaly mode: compiled step: op '" + std::string(u.product_op) +
                      "' (the product folded into parameter " + std::to_string(u.parameter) +
                      "'s update) made NaN or Inf from finite inputs");
    }
  }
}

template <class T>
void Compiled<T>::Plan::update() {
  // The separate update is optim::SGD's plain step, to the bit.
  const T lr = static_cast<T>(sgd->learning_rate);
  for (const auto& u : sgd->updates) {
    const Parameter& p = parameters[u.parameter];
    if (!p.node->requires_grad) continue;  // as backward() would give it no gradient
    T* w = value_of<T>(*p.node).data();
    if (u.raw_add != nullptr) {
      u.raw_add(where[u.product.a], where[u.product.b], w, u.product.attrs,
                -static_cast<double>(lr));
      continue;
    }
    const T* g = where[u.gradient_slot];
    for (std::size_t k = 0, n = value_of<T>(*p.node).size(); k < n; ++k) w[k] -= lr * g[k];
  }
}

template <class T>
T Compiled<T>::run() {
  // Held here too: a custom op's forward may destroy the last copy of the step while it runs.
  const std::shared_ptr<Plan> keep = plan_of(plan_, "run");
  Plan& plan = *keep;
  if (plan.running) {
    throw TapeError(
        "compiled step: run() was called while the same step runs (from a custom op's forward?); "
        "a step cannot run inside itself");
  }
  for (const auto& leaf : plan.leaves) {
    const auto what = [&] {
      return leaf.read_by == nullptr ? std::string("the tensor f returns (a parameter)")
                                     : "a tensor read by op '" + std::string(leaf.read_by) +
                                           "' (op " + std::to_string(leaf.record) + " of the step)";
    };
    const auto& shape = value_of<T>(leaf.node).shape();
    if (shape != leaf.shape) {
      throw ShapeError("compiled step: " + what() + " now has shape " + shape_to_string(shape) +
                       " but had shape " + shape_to_string(leaf.shape) +
                       " at compile time; compile the step again for the new shape");
    }
    if (leaf.outside && leaf.node.use_count() <= static_cast<long>(leaf.node->compiled_holds)) {
      throw TapeError("compiled step: " + what() +
                      " no longer exists outside the step, so its value can never "
                      "change again; keep it alive while the step is used, or compile anew");
    }
  }
  struct Running {
    bool& flag;
    explicit Running(bool& f) : flag(f) { flag = true; }
    ~Running() { flag = false; }
  } running(plan.running);
  // A gradient handed to its parameter last time and still held (by the parameter, which
  // accumulates into it, or by the caller): the plan writes this run's into a fresh node.
  for (auto& p : plan.parameters) {
    if (p.handed.empty()) continue;
    const bool held_by_parameter = p.node->grad == p.gradient;
    const long plan_references = static_cast<long>(p.handed.size());
    // (A gradient the caller resized, through mutable_grad(), is theirs too.)
    if (held_by_parameter || p.gradient.use_count() > plan_references ||
        value_of<T>(p.gradient).shape() != p.gradient_shape) {
      const std::shared_ptr<detail::NodeBase> fresh =
          detail::new_node_of_shape<T>(p.gradient_shape);
      for (auto* slot : p.handed) *slot = fresh;
    }
  }
  for (const auto& w : plan.watched) {
    const Shape& shape = value_of<T>(*plan.nodes[w.slot]).shape();
    if (shape != w.shape) {
      throw TapeError(
          "compiled step: the result of op '" + std::string(w.op) +
          "', which the step computes, now has shape " + shape_to_string(shape) +
          " but had shape " + shape_to_string(w.shape) +
          " at compile time; a tensor a step computes must keep its shape while the step is used");
    }
  }
  // The values in nodes may have new storage (a leaf given a new array, a fresh gradient).
  for (std::size_t s = 0; s < plan.nodes.size(); ++s)
    plan.where[s] = value_of<T>(*plan.nodes[s]).data();
  T* const* where = plan.where.data();
  if (detail::anomaly_checks) {
    plan.run_checked();
  } else {
    for (const auto& step : plan.steps) {
      if (step.kernel != nullptr) {
        step.kernel(where[step.a], where[step.b], where[step.y], step.n, step.row, step.spread_a,
                    step.spread_b, step.attrs);
      } else {
        detail::Record& record = plan.records[step.a];
        record.entry->forward(record);
      }
    }
  }
  if (plan.sgd) {
    const T value =
        value_of<T>(plan.loss).data()[0];  // before the update: f may return a parameter
    if (detail::anomaly_checks) plan.check_folded();
    plan.update();
    return value;
  }
  for (auto& p : plan.parameters) {
    // No gradient where the value does not depend on the parameter, or where the caller
    // has since set it to require none (as backward() would).
    if (!p.gradient || !p.node->requires_grad) continue;
    const xt::xarray<T>& gradient = value_of<T>(p.gradient);
    auto& slot = p.node->grad;
    if (!slot) {
      if (!p.handed.empty()) {
        slot = p.gradient;  // no copy
        continue;
      }
      // A buffer of the step's own, reused while nobody else keeps last step's gradient.
      if (!p.own || p.own.use_count() > 1 || value_of<T>(*p.own).shape() != gradient.shape()) {
        p.own = detail::new_node_of_shape<T>(gradient.shape());
      }
      std::copy(gradient.data(), gradient.data() + gradient.size(), value_of<T>(*p.own).data());
      slot = p.own;
      continue;
    }
    auto& existing = value_of<T>(*slot);
    if (existing.shape() != gradient.shape()) {
      throw ShapeError("compiled step: a parameter of shape " + shape_to_string(gradient.shape()) +
                       " holds a gradient of shape " + shape_to_string(existing.shape()) +
                       "; call zero_grad() first");
    }
    if (slot.use_count() > 1 + (slot == p.own ? 1 : 0)) {
      // Someone kept the gradient tensor: the sum goes to a new one, as backward() does.
      auto sum = detail::new_node_of_shape<T>(gradient.shape());
      for (std::size_t i = 0, m = existing.size(); i < m; ++i) {
        sum->value.data()[i] = existing.data()[i] + gradient.data()[i];
      }
      slot = std::move(sum);
      continue;
    }
    T* out = existing.data();
    const T* in = gradient.data();
    for (std::size_t i = 0, m = existing.size(); i < m; ++i) out[i] += in[i];
  }
  return value_of<T>(plan.loss).data()[0];
}

template <class T>
std::size_t Compiled<T>::size() const {
  const auto& plan = plan_of(plan_, "size");
  return plan->steps.size() + (plan->sgd ? plan->sgd->updates.size() : 0);
}

template <class T>
std::vector<std::string> Compiled<T>::ops() const {
  plan_of(plan_, "ops");
  std::vector<std::string> names;
  for (std::size_t i = 0; i < plan_->steps.size(); ++i) {
    names.push_back(std::string(plan_->step_ops[i]) +
                    (plan_->steps[i].kernel != nullptr ? "*" : ""));
  }
  if (plan_->sgd) {
    for (const auto& u : plan_->sgd->updates) {
      names.push_back(u.raw_add == nullptr
                          ? "sgd update"
                          : "sgd update (folded into " + std::string(u.product_op) + ")");
    }
  }
  return names;
}

template <class T>
std::size_t Compiled<T>::recorded_size() const {
  return plan_of(plan_, "recorded_size")->recorded;
}

template <class T>
const Shape& Compiled<T>::value_shape() const {
  return value_of<T>(plan_of(plan_, "value_shape")->loss).shape();
}

namespace {
void check_learning_rate(const char* where, double learning_rate) {
  if (!std::isfinite(learning_rate) || learning_rate < 0) {
    throw ValueError(std::string(where) + ": the learning rate must be finite and >= 0, got " +
                     std::to_string(learning_rate));
  }
}
}  // namespace

template <class T>
SgdStep<T> compile_sgd_step(
    const std::vector<Tensor<T>>& parameters, double learning_rate,
    const typename detail::NonDeduced<std::function<Tensor<T>()>>::type& f) {
  check_learning_rate("compile_sgd_step", learning_rate);
  return SgdStep<T>(compile(parameters, f), learning_rate);
}

template <class T>
SgdStep<T>::SgdStep(Compiled<T> step, double learning_rate) : step_(std::move(step)) {
  step_.plan_->make_sgd(learning_rate);
}

template <class T>
double SgdStep<T>::learning_rate() const {
  return plan_of(step_.plan_, "learning_rate")->sgd->learning_rate;
}

template <class T>
void SgdStep<T>::set_learning_rate(double learning_rate) {
  check_learning_rate("SgdStep::set_learning_rate", learning_rate);
  plan_of(step_.plan_, "set_learning_rate")->sgd->learning_rate = learning_rate;
}

namespace functional {

namespace detail {
template <class T>
CompiledValueAndGrad<T> compile_value_and_grad(
    const std::function<Tensor<T>(const std::vector<Tensor<T>>&)>& f,
    const std::vector<Tensor<T>>& xs) {
  std::vector<Tensor<T>> leaves;
  for (const auto& x : xs) leaves.emplace_back(typename Tensor<T>::Array(x.value()), requires_grad);
  auto step = compile(leaves, [&] { return f(leaves); });
  return CompiledValueAndGrad<T>(std::move(leaves), std::move(step));
}
}  // namespace detail

template <class T>
std::pair<Tensor<T>, std::vector<Tensor<T>>> CompiledValueAndGrad<T>::operator()(
    const std::vector<Tensor<T>>& xs) {
  if (xs.size() != leaves_.size()) {
    throw ShapeError("compiled value_and_grad: called with " + std::to_string(xs.size()) +
                     " argument(s), compiled for " + std::to_string(leaves_.size()));
  }
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (xs[i].shape() != leaves_[i].shape()) {
      throw ShapeError("compiled value_and_grad: argument " + std::to_string(i) + " has shape " +
                       shape_to_string(xs[i].shape()) + ", compiled for " +
                       shape_to_string(leaves_[i].shape()));
    }
  }
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const auto& from = xs[i].value();
    auto& to = leaves_[i].node()->grad;
    to.reset();
    T* data = static_cast<tapegrad::detail::Node<T>&>(*leaves_[i].node()).value.data();
    std::copy(from.data(), from.data() + from.size(), data);
  }
  const T value = step_.run();
  std::vector<Tensor<T>> grads;
  for (const auto& leaf : leaves_) {
    grads.emplace_back(leaf.has_grad() ? typename Tensor<T>::Array(leaf.grad())
                                       : typename Tensor<T>::Array(xt::zeros<T>(leaf.shape())));
  }
  typename Tensor<T>::Array result = xt::xarray<T>::from_shape(step_.value_shape());
  result.data()[0] = value;
  return {Tensor<T>(std::move(result)), std::move(grads)};
}

template <class T>
std::pair<Tensor<T>, Tensor<T>> CompiledValueAndGrad<T>::operator()(const Tensor<T>& x) {
  auto [value, grads] = (*this)(std::vector<Tensor<T>>{x});
  return {value, grads[0]};
}

template class CompiledValueAndGrad<float>;
template class CompiledValueAndGrad<double>;
template CompiledValueAndGrad<float> detail::compile_value_and_grad(
    const std::function<Tensor<float>(const std::vector<Tensor<float>>&)>&,
    const std::vector<Tensor<float>>&);
template CompiledValueAndGrad<double> detail::compile_value_and_grad(
    const std::function<Tensor<double>(const std::vector<Tensor<double>>&)>&,
    const std::vector<Tensor<double>>&);

}  // namespace functional

template class Compiled<float>;
template class Compiled<double>;
template Compiled<float> compile(const std::vector<Tensor<float>>&,
                                 const std::function<Tensor<float>()>&);
template Compiled<double> compile(const std::vector<Tensor<double>>&,
                                  const std::function<Tensor<double>()>&);
template class SgdStep<float>;
template class SgdStep<double>;
template SgdStep<float> compile_sgd_step(const std::vector<Tensor<float>>&, double,
                                         const std::function<Tensor<float>()>&);
template SgdStep<double> compile_sgd_step(const std::vector<Tensor<double>>&, double,
                                          const std::function<Tensor<double>()>&);

}  // namespace tapegrad
