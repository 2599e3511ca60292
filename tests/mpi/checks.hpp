// The checks of the mpi test programs: every rank counts its failed checks and prints each;
// at the end the ranks add their counts up and rank 0 prints the verdict ctest looks for.
#pragma once

#include <mpi.h>

#include <cstdio>
#include <string>

#include "tapegrad/dist/dist.hpp"

namespace mpi_checks {

inline int failures = 0;

/// Counts a failure (and prints what failed, with the rank) unless `ok`.
inline void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "rank %d: CHECK FAILED: %s\n", tapegrad::dist::rank(), what.c_str());
  }
}

/// Collective: the failures of all ranks, summed; rank 0 prints "<program>: all checks
/// passed on N ranks" or "<program>: K checks failed". Returns the exit status (0: none).
inline int verdict(const char* program) {
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (tapegrad::dist::rank() == 0) {
    if (total == 0) {
      std::printf("%s: all checks passed on %d ranks\n", program, tapegrad::dist::world_size());
    } else {
      std::printf("%s: %d checks failed\n", program, total);
    }
  }
  return total == 0 ? 0 : 1;
}

}  // namespace mpi_checks
