#include "tapegrad/dist/environment.hpp"

#include <mpi.h>

#include <cstdio>
#include <exception>

namespace tapegrad::dist {

namespace {

// MPI allows one MPI_Init per process; remembered so a second Environment after the first
// one finalized gets our message rather than MPI's.
bool environment_made = false;

void require_running(const char* function) {
  if (!running()) {
    throw DistError(std::string("dist::") + function +
                    ": MPI is not running; make a dist::Environment at the top of main() first");
  }
}

}  // namespace

bool running() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

Environment::Environment(int& argc, char**& argv) : uncaught_at_start_(std::uncaught_exceptions()) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (environment_made || initialized || finalized) {
    throw DistError(std::string("dist::Environment: MPI was ") +
                    (finalized ? "started and finalized" : "started") +
                    " before in this process; MPI can be started only once: make one "
                    "dist::Environment, at the top of main()");
  }
  if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
    throw DistError("dist::Environment: MPI_Init failed (is the program started by mpirun?)");
  }
  environment_made = true;
}

Environment::~Environment() {
  if (!running()) return;
  if (std::uncaught_exceptions() > uncaught_at_start_) {
    // The other ranks may be waiting for this one in a collective call; MPI_Finalize would
    // wait for them in turn.
    int r = 0, n = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    std::fprintf(stderr,
                 "rank %d of %d: an exception left dist::Environment's scope; aborting the job\n",
                 r, n);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
}

int rank() {
  require_running("rank");
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  require_running("world_size");
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

int run_or_abort(const std::function<int()>& body, const std::string& program) {
  std::string message;
  try {
    return body();
  } catch (const std::exception& error) {
    message = error.what();
  } catch (...) {
    message = "stopped by an exception that is not a std::exception";
  }
  const std::string prefix = program.empty() ? "" : program + ": ";
  if (!running()) {
    std::fprintf(stderr, "%s%s\n", prefix.c_str(), message.c_str());
    return 1;
  }
  std::fprintf(stderr, "%srank %d of %d: %s\n", prefix.c_str(), rank(), world_size(),
               message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;  // not reached: MPI_Abort ends the process
}

}  // namespace tapegrad::dist
