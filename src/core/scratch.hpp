// Scratch memory an op keeps from call to call on its thread, held by the thread's array
// cache (array_cache.cpp) so that release_cached_arrays() gives it back too.
#pragma once

#include <cstddef>

namespace tapegrad::detail {

/// At least `size` elements of the calling thread's scratch memory of type T, grown when
/// needed and kept until release_cached_arrays() or the thread's end; its contents are
/// whatever the previous user left. One user at a time: the pointer is valid until the next
/// call on this thread. nullptr while the thread is exiting (its cache is gone) or when the
/// memory cannot be had: the caller then allocates its own.
template <class T>
T* thread_scratch(std::size_t size) noexcept;

}  // namespace tapegrad::detail
