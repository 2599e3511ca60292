// A module's parameters as a PyTorch state_dict in a .npz file: PyTorch's names and layout.
#pragma once

#include <string>

#include "tapegrad/nn/module.hpp"

namespace tapegrad::io {

/// @addtogroup io
/// @{

// Two functions of their own rather than a layout flag on save_state/load_state: the call
// names the other side (`save_torch_state(model, "m.npz")`), a forgotten argument cannot
// silently write the wrong layout, and the loading rules differ (PyTorch saves float32 by
// default, which a double model accepts here but not in load_state).

/// What load_torch_state does with float64 values for a float32 model.
enum class Narrowing {
  refuse,  ///< Refuse them (the default): rounding to float32 loses digits.
  allow    ///< Round each value to the nearest float32.
};

/// Saves `module`'s parameters and buffers as PyTorch's state_dict holds them, in a
/// compressed .npz file, atomically. The names are named_parameters()' then
/// named_buffers()' names, which are already PyTorch's keys ("0.weight", "0.bias",
/// "1.running_mean", "1.running_var", "1.num_batches_tracked", ...). A BufferKind::count
/// buffer (num_batches_tracked) is written as a 0-d int64, as PyTorch keeps it. Every nn::Linear
/// weight (found with named_modules() and dynamic_cast, subclasses included) is written transposed,
/// as torch.nn.Linear's weight of shape (out, in); tapegrad stores it as (in, out) for y = x W + b.
/// Every other parameter is written as stored: a user module's parameters as the user laid them
/// out, and recurrent cells, which keep PyTorch's layout natively. Elements are float32 for a float
/// model and float64 for a double one. Throws IoError if the file cannot be written (see
/// write_npz()).
///
/// In Python, for a torch model of the same architecture (`.double()` for a double model):
///
///     import numpy, torch
///     model.load_state_dict({k: torch.from_numpy(v) for k, v in numpy.load(p).items()})
template <class T>
void save_torch_state(const nn::Module<T>& module, const std::string& path);

/// Loads a PyTorch state_dict saved as .npz, as save_torch_state() writes it or as
///
///     numpy.savez_compressed(p, **{k: v.numpy() for k, v in model.state_dict().items()})
///
/// does, replacing each parameter's and buffer's value (as Tensor::set_value() does). Every
/// nn::Linear weight is expected as (out, in) and transposed to (in, out); other parameters are
/// read as stored. (Shapes cannot tell the layouts apart for a square weight: a file from
/// save_state() would load such a weight transposed.) Element types: the model's own; float32 into
/// a double model (exact, so always accepted: PyTorch's default dtype); float64 into a float model
/// only with Narrowing::allow, which rounds to the nearest float32; a count buffer
/// (num_batches_tracked) must be int64, as PyTorch saves it. The file must hold exactly the
/// module's parameter and buffer names (a state_dict with BatchNorm's running statistics
/// does not fit a model without them, nor the reverse). Otherwise IoError lists every difference
/// and nothing is changed, for example
///
///     m.npz does not match the model as a PyTorch state_dict (nothing was loaded):
///     0.weight: file has (3, 2), expected (10, 2) = (out, in); missing 4.bias;
///     unexpected 6.weight; 2.weight is float64 in the file but float32 in the model ...
///
/// where a dtype difference says how to convert (`model.double()` or `model.float()` in
/// PyTorch before saving, or Narrowing::allow). Also throws IoError if the file cannot be read
/// or parsed (see read_npz()).
template <class T>
void load_torch_state(nn::Module<T>& module, const std::string& path,
                      Narrowing narrowing = Narrowing::refuse);

/// @}

}  // namespace tapegrad::io
