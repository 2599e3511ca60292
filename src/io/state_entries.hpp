// What a saved state holds: a module's parameters, then its buffers, each with how it is
// stored in the file (shared by state.cpp and torch_state.cpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/io/npy.hpp"
#include "tapegrad/nn/module.hpp"

namespace tapegrad::io::detail {

template <class T>
struct StateEntry {
  std::string name;
  Tensor<T> tensor;  // the module's handle: loading sets its value
  bool is_count;     // a BufferKind::count buffer: an int64 in the file
};

// named_parameters(), then named_buffers(): the order the file's members are written in.
template <class T>
std::vector<StateEntry<T>> state_entries(const nn::Module<T>& module) {
  std::vector<StateEntry<T>> entries;
  for (auto& [name, tensor] : module.named_parameters()) entries.push_back({name, tensor, false});
  for (auto& [name, tensor] : module.named_buffers()) {
    entries.push_back({name, tensor, module.buffer_kind(name) == nn::BufferKind::count});
  }
  return entries;
}

// A count kept in T, as the int64 array PyTorch stores (rounded: it holds a whole number).
template <class T>
NpyArray count_array(const xt::xarray<T>& value) {
  xt::xarray<std::int64_t> counts = xt::xarray<std::int64_t>::from_shape(value.shape());
  for (std::size_t i = 0; i < value.size(); ++i) {
    counts.data()[i] = static_cast<std::int64_t>(std::llround(value.data()[i]));
  }
  return NpyArray::from(counts);
}

}  // namespace tapegrad::io::detail
