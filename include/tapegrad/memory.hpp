// The array cache: where the values and gradients of freed tensors wait to be reused.
#pragma once

#include <cstddef>

namespace tapegrad {

/// @addtogroup tensors
/// @{

/// Bytes of array storage that the calling thread's cache holds now, waiting for reuse.
///
/// Every thread keeps the storage of the arrays its tensors free (values of recorded
/// results, gradients) in a cache of exact sizes, and the next tensor of the same number of
/// elements takes it from there. A training loop makes the same arrays step after step, so
/// in its steady state it neither calls malloc for them nor makes the kernel map and unmap
/// pages (glibc hands large freed blocks back to the kernel, and each page then faults in
/// again: at mid sizes this cost more than the arithmetic). Arrays under 1 KiB are left to
/// malloc, which keeps small blocks itself. The cache keeps no more blocks of a size than
/// the thread's ops have needed at once, so arrays that only a user makes (a copy of each
/// input batch) go back to malloc.
///
/// The count includes the thread's scratch memory for convolutions (one image's unfolded
/// columns, at most 16 MiB per element type), which is not an array and is not subject to
/// the limit below.
std::size_t cached_array_bytes();

/// The most bytes the calling thread's cache holds (64 MiB unless changed); an array freed
/// when the cache is full, or larger than the limit, goes back to malloc.
std::size_t array_cache_limit();

/// Sets the calling thread's cache limit in bytes; 0 turns the cache off. If the cache holds
/// more than the new limit, it is emptied.
void set_array_cache_limit(std::size_t bytes);

/// Gives every array the calling thread's cache holds, and its convolution scratch, back to
/// malloc (as `torch.cuda.empty_cache()` does for PyTorch's GPU cache). The limit stays.
void release_cached_arrays();

/// @}

}  // namespace tapegrad
