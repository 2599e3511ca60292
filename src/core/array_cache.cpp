// The per-thread cache of array storage behind tensor values and gradients (memory.hpp).
//
// Buckets hold storage of one exact element count: xtensor's storage keeps its allocation
// when resized to the same size, so a cached block becomes a new array of any shape with
// that many elements without touching malloc. A training step makes the same few sizes
// over and over, so a handful of buckets cover it.
#include <unordered_map>
#include <utility>
#include <vector>
#include <xtensor/xstrides.hpp>

#include "core/scratch.hpp"
#include "core/shape.hpp"
#include "tapegrad/memory.hpp"
#include "tapegrad/tensor.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define TAPEGRAD_CACHE_ARRAYS 0  // let AddressSanitizer see every free
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPEGRAD_CACHE_ARRAYS 0
#endif
#endif
#ifndef TAPEGRAD_CACHE_ARRAYS
#define TAPEGRAD_CACHE_ARRAYS 1
#endif

namespace tapegrad {

namespace {

constexpr std::size_t kDefaultLimit = std::size_t{64} << 20;

template <class T>
using Storage = typename xt::xarray<T>::storage_type;

// The blocks of one element count, and how many of them the thread has needed at once:
// every request that found the bucket empty went to malloc and raised `demand`. A bucket
// keeps at most `demand` blocks, so arrays that no op asks for again (a copy of each input
// batch, say) go back to malloc instead of filling the cache to its limit.
template <class T>
struct Bucket {
  std::vector<Storage<T>> blocks;
  std::size_t demand = 0;
};

template <class T>
struct Buckets {
  std::unordered_map<std::size_t, Bucket<T>> by_size;
};

struct ThreadCache {
  Buckets<float> floats;
  Buckets<double> doubles;
  std::size_t bytes = 0;
  std::size_t limit = kDefaultLimit;
  // detail::thread_scratch(): outside `bytes` and the limit (its users cap it themselves).
  std::vector<float> float_scratch;
  std::vector<double> double_scratch;

  template <class T>
  Buckets<T>& of() {
    if constexpr (std::is_same_v<T, float>) {
      return floats;
    } else {
      return doubles;
    }
  }
  template <class T>
  std::vector<T>& scratch() {
    if constexpr (std::is_same_v<T, float>) {
      return float_scratch;
    } else {
      return double_scratch;
    }
  }
  std::size_t scratch_bytes() const {
    return float_scratch.capacity() * sizeof(float) + double_scratch.capacity() * sizeof(double);
  }
  void release() {
    floats.by_size.clear();
    doubles.by_size.clear();
    bytes = 0;
    std::vector<float>().swap(float_scratch);
    std::vector<double>().swap(double_scratch);
  }
};

// A plain thread_local pointer, still readable while the thread's other thread_locals are
// torn down: an array freed after the cache is gone goes straight back to malloc.
thread_local ThreadCache* cache_ = nullptr;
thread_local bool finished_ = false;

struct Owner {
  ~Owner() {
    delete cache_;
    cache_ = nullptr;
    finished_ = true;
  }
};

ThreadCache* cache() {
  if (cache_ == nullptr && !finished_) {
    static thread_local Owner owner;
    (void)&owner;  // constructs it, so that it frees the cache at thread exit
    cache_ = new ThreadCache();
  }
  return cache_;
}

}  // namespace

namespace detail {

template <class T>
xt::xarray<T> array_of_shape(const Shape& shape) {
  const std::size_t size = element_count(shape);
  if (!TAPEGRAD_CACHE_ARRAYS || size < Node<T>::kCachedElements) {
    return xt::xarray<T>::from_shape(shape);
  }
  ThreadCache* c = cache();
  Bucket<T>* bucket = nullptr;
  if (c != nullptr) {
    try {
      bucket = &c->of<T>().by_size[size];
    } catch (...) {
      // No memory for the bookkeeping: this array simply comes from malloc.
    }
  }
  if (bucket == nullptr || bucket->blocks.empty()) {
    if (bucket != nullptr) ++bucket->demand;
    return xt::xarray<T>::from_shape(shape);
  }
  Storage<T> storage = std::move(bucket->blocks.back());
  bucket->blocks.pop_back();
  c->bytes -= size * sizeof(T);
  typename xt::xarray<T>::inner_shape_type inner_shape(shape.begin(), shape.end());
  typename xt::xarray<T>::inner_strides_type strides(shape.size());
  xt::compute_strides(inner_shape, xt::layout_type::row_major, strides);
  return xt::xarray<T>(std::move(storage), std::move(inner_shape), std::move(strides));
}

template <class T>
void recycle_array(xt::xarray<T>& array) noexcept {
  const std::size_t size = array.storage().size();  // not array.size(): it may be moved from
  const std::size_t bytes = size * sizeof(T);
  if (!TAPEGRAD_CACHE_ARRAYS || size < Node<T>::kCachedElements || cache_ == nullptr) return;
  ThreadCache* c = cache_;
  if (bytes > c->limit - std::min(c->limit, c->bytes)) return;
  auto& buckets = c->of<T>().by_size;
  const auto found = buckets.find(size);
  if (found == buckets.end() || found->second.blocks.size() >= found->second.demand) return;
  try {
    found->second.blocks.push_back(std::move(array.storage()));
    c->bytes += bytes;
  } catch (...) {
    // No memory for the bucket's bookkeeping: the array is simply freed.
  }
}

template <class T>
T* thread_scratch(std::size_t size) noexcept {
  ThreadCache* c = cache();
  if (c == nullptr) return nullptr;
  auto& scratch = c->scratch<T>();
  if (scratch.size() < size) {
    try {
      std::vector<T>().swap(scratch);  // the old block first, so that both are never held
      scratch.resize(size);
    } catch (...) {
      return nullptr;
    }
  }
  return scratch.data();
}

template xt::xarray<float> array_of_shape<float>(const Shape&);
template xt::xarray<double> array_of_shape<double>(const Shape&);
template void recycle_array<float>(xt::xarray<float>&) noexcept;
template void recycle_array<double>(xt::xarray<double>&) noexcept;
template float* thread_scratch<float>(std::size_t) noexcept;
template double* thread_scratch<double>(std::size_t) noexcept;

}  // namespace detail

std::size_t cached_array_bytes() {
  return cache_ != nullptr ? cache_->bytes + cache_->scratch_bytes() : 0;
}

std::size_t array_cache_limit() { return cache_ != nullptr ? cache_->limit : kDefaultLimit; }

void set_array_cache_limit(std::size_t bytes) {
  ThreadCache* c = cache();
  if (c == nullptr) return;
  c->limit = bytes;
  if (c->bytes > bytes) c->release();
}

void release_cached_arrays() {
  if (cache_ != nullptr) cache_->release();
}

}  // namespace tapegrad
