// A module's parameters saved to and loaded from a .npz file.
#pragma once

#include <string>

#include "tapegrad/nn/module.hpp"

namespace tapegrad::io {

/// @addtogroup io
/// @{

/// Saves every named parameter of `module` ("0.weight", ...), then every named buffer
/// ("1.running_mean", ...), as a member of a compressed .npz file, atomically, with its shape
/// and element type (float32 for float, float64 for double; int64 for a BufferKind::count
/// buffer such as num_batches_tracked). NumPy reads it: `numpy.load(path)["0.weight"]`. The layout
/// is tapegrad's (an nn::Linear weight is (in, out)); save_torch_state() writes PyTorch's. Throws
/// IoError if the file cannot be written (see write_npz()).
template <class T>
void save_state(const nn::Module<T>& module, const std::string& path);

/// Loads parameters and buffers saved by save_state, replacing each one's value (as
/// Tensor::set_value() does). The file must hold exactly the module's parameter and buffer
/// names, each with its shape and element type (int64 for a count buffer); otherwise IoError lists
/// every difference (missing, unexpected, other shape, other dtype) and nothing is changed. Also
/// throws IoError if the file cannot be read or parsed (see read_npz()).
template <class T>
void load_state(nn::Module<T>& module, const std::string& path);

/// @}

}  // namespace tapegrad::io
