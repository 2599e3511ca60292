// Factories: tensors of a shape filled with constants, ranges, identities or random draws.
#pragma once

/// @file
/// Factories, as PyTorch's of the same names: zeros, ones, full, zeros_like, ones_like,
/// full_like, arange, linspace, eye, rand, randn, uniform (and Tensor::from, tensor.hpp).
///
/// Every factory returns a new leaf that is never recorded on a tape, whatever tape is
/// active; it requires grad when `rg` says so, as the constructors do. T is float or double,
/// double when not given: `zeros({2, 3})` and `full({2}, 3)` are Tensor<double>. Every shape
/// may have extents of 0 (`zeros<float>({0, 3})` has no elements). Every factory checks the
/// shape it makes with checked_size and throws ShapeError, naming the factory and the shape,
/// when it has more elements than fit in memory (arange, whose count comes from its values,
/// throws ValueError instead).
///
/// The random factories (rand, randn, uniform) draw each element from `gen` in row-major
/// order, one element after the other, so a seed fixes the tensor, and the generator moves on
/// by exactly the draws made (see each function). The stream is tapegrad's own (splitmix64,
/// random.hpp): the same seed gives the same numbers on every platform, but not those of
/// torch.manual_seed. Without a generator they draw from the calling thread's
/// default_generator() (reset with manual_seed()). Inside a function given to compile(), the
/// draw happens once, at compile time: every run() of the step sees those same values.

#include <cstddef>

#include "tapegrad/error.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tensor.hpp"

namespace tapegrad {

/// @addtogroup tensors
/// @{

namespace detail {
/// `T` in a parameter that must not take part in deducing T (C++20's std::type_identity_t):
/// `full({2}, 3)` is then a double tensor filled with 3, not an attempt at Tensor<int>.
template <class T>
struct TypeIdentity {
  using type = T;
};
template <class T>
using NoDeduce = typename TypeIdentity<T>::type;
}  // namespace detail

/// A tensor of `shape` filled with 0 (torch.zeros).
template <class T = double>
Tensor<T> zeros(const Shape& shape, RequiresGrad rg = RequiresGrad{false});

/// A tensor of `shape` filled with 1 (torch.ones).
template <class T = double>
Tensor<T> ones(const Shape& shape, RequiresGrad rg = RequiresGrad{false});

/// A tensor of `shape` filled with `value`, which may be any number, NaN and infinities
/// included (torch.full).
template <class T = double>
Tensor<T> full(const Shape& shape, detail::NoDeduce<T> value,
               RequiresGrad rg = RequiresGrad{false});

/// zeros() of x's shape and element type. The result is a new leaf that shares nothing with
/// x and has no link to x's graph, whether x requires grad or not (torch.zeros_like).
template <class T>
Tensor<T> zeros_like(const Tensor<T>& x, RequiresGrad rg = RequiresGrad{false});

/// ones() of x's shape and element type; a new leaf, as zeros_like() (torch.ones_like).
template <class T>
Tensor<T> ones_like(const Tensor<T>& x, RequiresGrad rg = RequiresGrad{false});

/// full() of x's shape and element type; a new leaf, as zeros_like() (torch.full_like).
template <class T>
Tensor<T> full_like(const Tensor<T>& x, detail::NoDeduce<T> value,
                    RequiresGrad rg = RequiresGrad{false});

/// The 1-d range [start, stop) by `step`, as torch.arange: n = ceil((stop - start) / step)
/// elements, element k = start + k step, both computed in double (for float, each element
/// is then rounded once to float). n is 0 when start == stop.
///
/// As in PyTorch, a step that is not a whole number is subject to rounding: arange(1, 1.3,
/// 0.1) has 4 elements, the last 1.3, because (1.3 - 1) / 0.1 is 3.0000000000000004 in
/// double. Use linspace() when both ends matter.
///
/// Throws ValueError, naming `arange` and the three values, if start, stop or step is not
/// finite, step is 0, step points away from stop (stop < start with step > 0, or
/// stop > start with step < 0), or n is more elements than fit in memory.
template <class T = double>
Tensor<T> arange(detail::NoDeduce<T> start, detail::NoDeduce<T> stop, detail::NoDeduce<T> step,
                 RequiresGrad rg = RequiresGrad{false});

/// arange(start, stop, 1): `arange(2, 5)` is {2, 3, 4}.
template <class T = double>
Tensor<T> arange(detail::NoDeduce<T> start, detail::NoDeduce<T> stop,
                 RequiresGrad rg = RequiresGrad{false});

/// arange(0, stop, 1): `arange(4)` is {0, 1, 2, 3}, `arange(0)` has shape (0,).
template <class T = double>
Tensor<T> arange(detail::NoDeduce<T> stop, RequiresGrad rg = RequiresGrad{false});

/// `steps` evenly spaced values from start to stop, both included (torch.linspace): shape
/// (steps,). With d = (stop - start) / (steps - 1), element k is start + k d for
/// k < steps / 2 and stop - (steps - 1 - k) d for the rest, as PyTorch computes it, so the
/// first element is start and the last is stop exactly. steps = 1 gives {start}, steps = 0
/// an empty tensor. stop may be below start (a decreasing range).
///
/// The arithmetic is in double; for float each element is rounded once to float, so a float
/// result may differ in its last bit from torch.linspace's float32 one, which PyTorch computes
/// in float.
///
/// Throws ValueError, naming `linspace` and the values, if start or stop is not finite or
/// stop - start overflows double.
template <class T = double>
Tensor<T> linspace(detail::NoDeduce<T> start, detail::NoDeduce<T> stop, std::size_t steps,
                   RequiresGrad rg = RequiresGrad{false});

/// The (n, n) identity matrix: 1 on the diagonal, 0 elsewhere (torch.eye).
template <class T = double>
Tensor<T> eye(std::size_t n, RequiresGrad rg = RequiresGrad{false});

/// The (n, m) matrix with 1 at (i, i) for i < min(n, m) and 0 elsewhere (torch.eye(n, m)).
template <class T = double>
Tensor<T> eye(std::size_t n, std::size_t m, RequiresGrad rg = RequiresGrad{false});

/// Uniform in [0, 1) (torch.rand). One Generator::next_u64() per element: its top 53 bits
/// make a double (Generator::uniform()), its top 24 bits a float, so that a float is never
/// rounded up to 1. For the same seed, rand<float> is rand<double> truncated to a multiple
/// of 2^-24.
template <class T = double>
Tensor<T> rand(const Shape& shape, Generator& gen = default_generator(),
               RequiresGrad rg = RequiresGrad{false});
/// rand() from the default generator, requiring grad as `rg` says.
template <class T = double>
Tensor<T> rand(const Shape& shape, RequiresGrad rg);

/// Standard normal: mean 0, standard deviation 1 (torch.randn). Each element is one
/// Generator::normal() (Box-Muller, two uniform draws), computed in double and rounded to T.
template <class T = double>
Tensor<T> randn(const Shape& shape, Generator& gen = default_generator(),
                RequiresGrad rg = RequiresGrad{false});
/// randn() from the default generator, requiring grad as `rg` says.
template <class T = double>
Tensor<T> randn(const Shape& shape, RequiresGrad rg);

/// Uniform in [lo, hi) (torch.empty(shape).uniform_(lo, hi)): element lo + (hi - lo) u,
/// computed in double from the draw u that rand() makes (so uniform(shape, 0, 1) is rand(shape)
/// draw for draw) and rounded to T; a value that rounding takes to hi becomes the largest T
/// below hi. lo == hi gives lo everywhere.
///
/// Throws ValueError, naming `uniform` and the bounds, if lo or hi is not finite, lo > hi,
/// or hi - lo overflows double.
template <class T = double>
Tensor<T> uniform(const Shape& shape, detail::NoDeduce<T> lo, detail::NoDeduce<T> hi,
                  Generator& gen = default_generator(), RequiresGrad rg = RequiresGrad{false});
/// uniform() from the default generator, requiring grad as `rg` says.
template <class T = double>
Tensor<T> uniform(const Shape& shape, detail::NoDeduce<T> lo, detail::NoDeduce<T> hi,
                  RequiresGrad rg);

/// @}

}  // namespace tapegrad
