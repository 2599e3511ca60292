// The BLAS behind matmul: OpenBLAS, and the size of its thread pool.
#pragma once

namespace tapegrad {

/// @addtogroup linalg
/// @{

/// Sets how many threads OpenBLAS, the BLAS behind matmul and xt::linalg, uses for one call
/// (`openblas_set_num_threads(n)`). The setting is process-wide, not per thread.
///
/// When several threads train at once (each with its own Tape), call `set_blas_threads(1)`
/// first, or start the program with `OPENBLAS_NUM_THREADS=1`: otherwise the threads' BLAS
/// calls compete for OpenBLAS's one thread pool and for the cores, which can be several
/// times slower than training one after the other. One thread training alone is best served
/// by the default.
///
/// Call it before the threads start, not while another thread is inside a BLAS call.
/// OpenBLAS caps `n` at the most threads it was built for (64 in Debian's build);
/// blas_threads() tells the number in use.
///
/// @throws ValueError if `n` is below 1: `set_blas_threads: expected at least 1 thread, got 0`.
void set_blas_threads(int n);

/// The number of threads OpenBLAS uses for one call (`openblas_get_num_threads()`): the last
/// set_blas_threads(), else `OPENBLAS_NUM_THREADS` if set, else the number of cores.
int blas_threads();

/// @}

}  // namespace tapegrad
