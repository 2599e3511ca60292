// What a node carries only when the user asked for it: a kept gradient (retain_grad) and
// gradient hooks (register_hook). Nodes hold it behind one pointer, null for almost all.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad::detail {

struct NodeExtras {
  virtual ~NodeExtras() = default;
  virtual bool has_hooks() const = 0;
  /// retain_grad() was called on a recorded result: the sweep keeps its gradient here.
  bool retain = false;
  std::shared_ptr<NodeBase> retained;
  /// A leaf with hooks: the gradient the current sweep has sent it so far, hooked and added
  /// to the leaf's own at the end of the sweep; `in_sweep` while it is on the sweep's list.
  std::shared_ptr<NodeBase> pending;
  bool in_sweep = false;
  std::size_t next_id = 0;
};

template <class T>
struct TypedExtras final : NodeExtras {
  std::vector<std::pair<std::size_t, std::function<Tensor<T>(const Tensor<T>&)>>> hooks;
  bool has_hooks() const override { return !hooks.empty(); }
};

/// The node's extras, made on first use.
template <class T>
TypedExtras<T>& extras_of(NodeBase& node) {
  if (!node.extras) node.extras = std::make_unique<TypedExtras<T>>();
  return static_cast<TypedExtras<T>&>(*node.extras);
}

/// Whether the node has hooks or keeps its gradient (compile() refuses both: a replay would
/// not run them).
inline bool has_extras_in_use(const NodeBase& node) {
  return node.extras && (node.extras->has_hooks() || node.extras->retain);
}

}  // namespace tapegrad::detail
