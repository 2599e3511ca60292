// The claims a sweep takes on the leaves it adds gradients to (claim_gradient in
// tapegrad/tensor.hpp, for the calling thread), so that another thread's backward(),
// optimizer step() or zero_grad() on the same leaf at the same time (two threads sharing a
// model, which docs/threads.md rules out) is refused with a TapeError instead of racing on
// the gradient's pointer.
#pragma once

#include <xtensor/xstorage.hpp>

#include "tapegrad/tensor.hpp"

namespace tapegrad::detail {

/// The leaves a piece of work (a sweep) has claimed, released when it ends. Claims are the
/// calling thread's: a nested sweep on the same thread finds the leaf its own.
class GradientClaims {
 public:
  GradientClaims() = default;
  ~GradientClaims() { release(); }
  GradientClaims(const GradientClaims&) = delete;
  GradientClaims& operator=(const GradientClaims&) = delete;

  /// Claims `leaf` for the calling thread; false, claiming nothing, if another thread holds
  /// it. An atomic load per call, and one compare-and-swap per leaf and sweep.
  bool take(NodeBase& leaf) {
    const GradientClaim claim = claim_gradient(leaf, GradientUse::backward);
    if (claim != GradientClaim::taken) return claim == GradientClaim::already_mine;
    try {
      taken_.push_back(&leaf);
    } catch (...) {
      release_gradient(leaf);
      throw;
    }
    return true;
  }

  /// Gives back every claim taken (each leaf must still be alive).
  void release() noexcept {
    for (NodeBase* leaf : taken_) release_gradient(*leaf);
    taken_.clear();
  }

 private:
  xt::svector<NodeBase*, 16> taken_;
};

}  // namespace tapegrad::detail
