// Node memory: a per-thread free list of node blocks. A training loop frees every node of
// a step when its tape dies and makes the same number in the next step; recycling the
// blocks keeps that churn out of malloc.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad::detail {

#if defined(__SANITIZE_ADDRESS__)
#define TAPEGRAD_RECYCLE_NODES 0  // let AddressSanitizer see every free
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPEGRAD_RECYCLE_NODES 0
#endif
#endif
#ifndef TAPEGRAD_RECYCLE_NODES
#define TAPEGRAD_RECYCLE_NODES 1
#endif

/// A per-thread free list of blocks of BlockSize bytes, keeping at most Capacity of them:
/// node blocks (PoolAllocator) and a tape's record chunks (RecordArena).
template <std::size_t BlockSize, std::size_t Capacity = 4096>
class BlockCache {
 public:
  static void* take() {
    if (!TAPEGRAD_RECYCLE_NODES) return ::operator new(BlockSize);
    auto* list = blocks();
    if (list == nullptr || list->empty()) return ::operator new(BlockSize);
    void* block = list->back();
    list->pop_back();
    return block;
  }
  static void give(void* block) {
    if (!TAPEGRAD_RECYCLE_NODES) {
      ::operator delete(block);
      return;
    }
    auto* list = blocks();
    if (list == nullptr || list->size() >= kCapacity) {
      ::operator delete(block);
      return;
    }
    list->push_back(block);
  }

 private:
  static constexpr std::size_t kCapacity = Capacity;
  // Plain thread_local pointers: still readable while other thread_locals are being torn
  // down, so a node freed late in a thread's exit falls back to operator delete.
  static inline thread_local std::vector<void*>* list_ = nullptr;
  static inline thread_local bool finished_ = false;
  struct Owner {
    ~Owner() {
      if (list_ != nullptr) {
        for (void* block : *list_) ::operator delete(block);
        delete list_;
      }
      list_ = nullptr;
      finished_ = true;
    }
  };
  static std::vector<void*>* blocks() {
    if (list_ == nullptr && !finished_) {
      static thread_local Owner owner;
      (void)&owner;  // constructs it, so it frees the list at thread exit
      list_ = new std::vector<void*>();
      list_->reserve(kCapacity);
    }
    return list_;
  }
};

/// Allocator for std::allocate_shared that recycles single blocks through BlockCache.
template <class U>
struct PoolAllocator {
  using value_type = U;
  PoolAllocator() = default;
  template <class V>
  PoolAllocator(const PoolAllocator<V>&) noexcept {}

  U* allocate(std::size_t n) {
    static_assert(alignof(U) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
    if (n != 1) return static_cast<U*>(::operator new(n * sizeof(U)));
    return static_cast<U*>(BlockCache<sizeof(U)>::take());
  }
  void deallocate(U* p, std::size_t n) noexcept {
    if (n != 1) {
      ::operator delete(p);
      return;
    }
    BlockCache<sizeof(U)>::give(p);
  }
  template <class V>
  bool operator==(const PoolAllocator<V>&) const noexcept {
    return true;
  }
  template <class V>
  bool operator!=(const PoolAllocator<V>&) const noexcept {
    return false;
  }
};

/// A new node holding `value`.
template <class T>
std::shared_ptr<NodeBase> new_node(xt::xarray<T>&& value) {
  return std::allocate_shared<Node<T>>(PoolAllocator<Node<T>>(), std::move(value));
}

/// A new node whose value has `shape` and uninitialized elements, to be filled in place
/// (no move of the array afterwards).
template <class T>
std::shared_ptr<Node<T>> new_node_of_shape(const Shape& shape) {
  return std::allocate_shared<Node<T>>(PoolAllocator<Node<T>>(), shape);
}

}  // namespace tapegrad::detail
