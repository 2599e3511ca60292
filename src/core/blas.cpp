#include "tapegrad/blas.hpp"

#include <string>

#include "tapegrad/error.hpp"

// OpenBLAS's own controls, declared here: the cblas.h first on the include path need not be
// OpenBLAS's. CMake checks that the BLAS linked provides them.
extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}

namespace tapegrad {

void set_blas_threads(int n) {
  if (n < 1)
    throw ValueError("set_blas_threads: expected at least 1 thread, got " + std::to_string(n));
  openblas_set_num_threads(n);
}

int blas_threads() { return openblas_get_num_threads(); }

}  // namespace tapegrad
