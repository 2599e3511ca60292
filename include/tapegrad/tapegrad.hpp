// tapegrad: reverse-mode automatic differentiation on xtensor. One include for all of it.
#pragma once

#include "tapegrad/blas.hpp"
#include "tapegrad/check.hpp"
#include "tapegrad/compile.hpp"
#include "tapegrad/custom_op.hpp"
#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/distributed_sampler.hpp"
#include "tapegrad/data/fashion_mnist.hpp"
#include "tapegrad/data/generators.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/factories.hpp"
#include "tapegrad/functional.hpp"
#include "tapegrad/io/atomic_file.hpp"
#include "tapegrad/io/checkpoint.hpp"
#include "tapegrad/io/csv.hpp"
#include "tapegrad/io/idx.hpp"
#include "tapegrad/io/npy.hpp"
#include "tapegrad/io/npz.hpp"
#include "tapegrad/io/state.hpp"
#include "tapegrad/io/torch_state.hpp"
#include "tapegrad/memory.hpp"
#include "tapegrad/nn/bp_check.hpp"
#include "tapegrad/nn/conv.hpp"
#include "tapegrad/nn/dropout.hpp"
#include "tapegrad/nn/embedding.hpp"
#include "tapegrad/nn/init.hpp"
#include "tapegrad/nn/layers.hpp"
#include "tapegrad/nn/loss.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/norm.hpp"
#include "tapegrad/nn/recurrent.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/optim/adaptive.hpp"
#include "tapegrad/optim/clip.hpp"
#include "tapegrad/optim/lbfgs.hpp"
#include "tapegrad/optim/newton.hpp"
#include "tapegrad/optim/optimizer.hpp"
#include "tapegrad/optim/schedule.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/tensor.hpp"
#include "tapegrad/trace.hpp"

/// @namespace tapegrad
/// Reverse-mode automatic differentiation on xtensor.
///
/// A Tensor holds a value and, if it requires grad, a gradient. While a Tape is alive, the
/// ops (ops.hpp) on tensors that require grad are recorded; `y.backward()` then sweeps the
/// records in reverse and adds dy/dx to the gradient of every leaf x that requires grad.
/// gradcheck and check_hand_gradient (check.hpp) test gradients against finite differences,
/// CustomOp (custom_op.hpp) adds ops with a backward of one's own, and graph_dot (trace.hpp)
/// draws the recorded graph, and set_blas_threads (blas.hpp) sizes OpenBLAS's thread pool.
/// Factories (factories.hpp) make tensors of zeros, ones, ranges and random draws.
/// Element types are float and double.
///
/// Errors are exceptions derived from Error: ShapeError, TapeError and ValueError (error.hpp),
/// and io::IoError for files. Each function's documentation says which it throws and when.
