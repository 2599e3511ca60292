// The state of one reverse sweep, and backward() into chosen leaves only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include <xtensor/xstorage.hpp>

#include "tapegrad/tape.hpp"
#include "tapegrad/tensor.hpp"

namespace tapegrad::detail {

/// State of one reverse sweep.
struct Sweep {
  bool create_graph = false;
  /// Set by backward_into: the only leaves that receive gradients; the sweep then stays on
  /// the root's tape and drops what would flow anywhere else.
  const std::vector<const NodeBase*>* only_into = nullptr;
  /// With only_into: the records of the root's tape below this index lie outside the sweep
  /// (the caller's, when a helper records on the caller's tape); what would flow there is
  /// dropped.
  std::size_t first_record = 0;
  xt::svector<std::uint64_t, 8> reachable_tapes;  // serials of the tapes being swept
  std::size_t pending = 0;  // recorded nodes holding a gradient not yet propagated
  const char* current_op = "";
  std::string current_shapes;  // the current record's input shapes, kept in anomaly mode
  std::size_t current_index = 0;
  /// Leaves with hooks that this sweep has sent a gradient (held in their extras' `pending`
  /// until the end of the sweep).
  std::vector<NodeBase*> hooked_leaves;
};

/// backward() from `root` with `seed`, adding gradients only to `leaves` and sweeping only
/// the records of root's own tape: for the helpers that differentiate a function of leaf
/// copies of their own (functional::grad and its kin, gradcheck). A function that reads the
/// caller's parameters or results of the caller's tape would otherwise add to those
/// parameters' gradients and use up the caller's records, where PyTorch's autograd.grad
/// touches neither. With `first_record`, only the records of root's tape from that index on
/// are swept (a helper that records on the caller's tape, see functional.cpp).
template <class T>
void backward_into(const Tensor<T>& root, const Tensor<T>& seed, BackwardMode mode,
                   const std::vector<Tensor<T>>& leaves, std::size_t first_record = 0);

}  // namespace tapegrad::detail
