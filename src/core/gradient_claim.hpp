// Claims on leaves' gradients: a backward() claims each leaf it adds a gradient to for the
// calling thread, so that another thread's backward() into the same leaf at the same time (two
// threads sharing a model, which docs/threads.md rules out) is refused with a TapeError
// instead of racing on the gradient's pointer. Code outside the sweep that replaces or reads
// a leaf's gradient while other threads may run backward() (an optimizer's step) can take
// the same claims.
#pragma once

#include <atomic>
#include <cstdint>
#include <xtensor/xstorage.hpp>

#include "tapegrad/tensor.hpp"

namespace tapegrad::detail {

/// A number for the calling thread, never 0 and different for every thread alive (it is
/// taken from a process-wide counter when the thread first asks).
inline std::uint32_t thread_token() {
  static std::atomic<std::uint32_t> next{1};
  thread_local std::uint32_t token = 0;  // constant-initialized: no guard on each call
  while (token == 0) token = next.fetch_add(1, std::memory_order_relaxed);
  return token;
}

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
    const std::uint32_t me = thread_token();
    std::uint32_t holder = leaf.gradient_writer.load(std::memory_order_acquire);
    if (holder == me) return true;
    if (holder != 0 ||
        !leaf.gradient_writer.compare_exchange_strong(holder, me, std::memory_order_acq_rel)) {
      return false;
    }
    try {
      taken_.push_back(&leaf);
    } catch (...) {
      leaf.gradient_writer.store(0, std::memory_order_release);
      throw;
    }
    return true;
  }

  /// Gives back every claim taken (each leaf must still be alive).
  void release() noexcept {
    for (NodeBase* leaf : taken_) leaf->gradient_writer.store(0, std::memory_order_release);
    taken_.clear();
  }

 private:
  xt::svector<NodeBase*, 16> taken_;
};

}  // namespace tapegrad::detail
