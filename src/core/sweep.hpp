// The state of one reverse sweep, and backward() into chosen leaves only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include <xtensor/xstorage.hpp>

#include "core/gradient_claim.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/tensor.hpp"

namespace tapegrad::detail {

/// A tape a sweep goes through, as it was when the sweep began.
struct SweptTape {
  TapeImpl* tape = nullptr;
  std::uint64_t serial = 0;
  /// The index of its first record in the sweep: a node of an earlier record is refused
  /// (released), or with Sweep::only_into dropped (below backward_into's first_record).
  std::size_t first = 0;
  /// The sweep went through one of its records (then it may find them spent at its end).
  bool swept = false;
  /// Its Tape was destroyed during the sweep, and the sweep frees it at its end.
  bool to_free = false;
};

/// State of one reverse sweep.
struct Sweep {
  bool create_graph = false;
  /// Set by backward_into: the only leaves that receive gradients; the sweep then stays on
  /// the root's tape and drops what would flow anywhere else.
  const std::vector<const NodeBase*>* only_into = nullptr;
  /// The tapes being swept, outermost first. The sweep walks this list, not the thread's
  /// stack of tapes, which a hook may change (destroying a Tape, or making one).
  xt::svector<SweptTape, 4> tapes;
  std::size_t pending = 0;  // recorded nodes holding a gradient not yet propagated
  const char* current_op = "";
  std::string current_shapes;  // the current record's input shapes, kept in anomaly mode
  std::size_t current_index = 0;
  /// Leaves with hooks that this sweep has sent a gradient (held in their extras' `pending`
  /// until the end of the sweep).
  std::vector<NodeBase*> hooked_leaves;
  /// The leaves this sweep adds gradients to, claimed for the calling thread.
  GradientClaims claims;
  /// Set when the current rule sent a gradient to a node whose record was released: its
  /// input position and record index, reported once the rule has returned.
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t released_input = kNone;
  std::size_t released_record = 0;
};

/// backward() from `root` with `seed`, adding gradients only to `leaves` and sweeping only
/// the records of root's own tape: for the helpers that differentiate a function of leaf
/// copies of their own (functional::grad and its kin, gradcheck). A function that reads the
/// caller's parameters or results of the caller's tape would otherwise add to those
/// parameters' gradients and use up the caller's records, where PyTorch's autograd.grad
/// touches neither. With `first_record`, only the records of root's tape from that index on
/// are swept (a helper that records on the caller's tape, see functional.cpp); what would
/// flow below it is dropped.
template <class T>
void backward_into(const Tensor<T>& root, const Tensor<T>& seed, BackwardMode mode,
                   const std::vector<Tensor<T>>& leaves, std::size_t first_record = 0);

}  // namespace tapegrad::detail
