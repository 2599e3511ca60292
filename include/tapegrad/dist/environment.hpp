// dist::Environment: MPI started and stopped around a program; the process's rank; a top-level
// handler that stops the whole job when one rank fails.
#pragma once

#include <functional>
#include <string>

#include "tapegrad/error.hpp"

/// Data-parallel training over MPI: the optional component tapegrad::dist (CMake target
/// tapegrad_dist, built when MPI is found). The core library never depends on it, and no
/// header of the core includes MPI's. Everything here works on MPI_COMM_WORLD.
namespace tapegrad::dist {

/// @addtogroup dist
/// @{

/// A failure of the MPI layer: MPI started twice or not at all, a call that returned an
/// error, ranks that disagree (different models). The message names the function and values.
class DistError : public Error {
 public:
  using Error::Error;
};

/// MPI for the lifetime of this object: the constructor calls MPI_Init, the destructor
/// MPI_Finalize. Make one at the top of main(), before any other dist call:
///
///     int main(int argc, char** argv) {
///       tapegrad::dist::Environment env(argc, argv);
///       return tapegrad::dist::run_or_abort([&] { return train(argc, argv); });
///     }
///
/// MPI can be started only once per process: a second Environment (while the first lives,
/// or after it is gone), or one made when someone else already called MPI_Init, throws
/// DistError saying so. If an exception leaves the Environment's scope, the destructor calls
/// MPI_Abort instead of MPI_Finalize (MPI_Finalize would wait for the other ranks, which may
/// be waiting in an all-reduce for this one: a hang); run_or_abort() reports the error first.
class Environment {
 public:
  /// Starts MPI (MPI_Init with the program's arguments; mpirun's own are removed from them).
  /// Throws DistError if MPI was started before in this process or MPI_Init fails.
  Environment(int& argc, char**& argv);
  /// Stops MPI: MPI_Finalize, or MPI_Abort(MPI_COMM_WORLD, 1) while an exception unwinds.
  ~Environment();
  /// Not copyable: MPI is started once.
  Environment(const Environment&) = delete;
  /// Not copyable: MPI is started once.
  Environment& operator=(const Environment&) = delete;

 private:
  int uncaught_at_start_;
};

/// This process's rank in MPI_COMM_WORLD, 0 ... world_size()-1. Throws DistError if MPI is
/// not running (no Environment).
int rank();
/// The number of processes in MPI_COMM_WORLD (mpirun's -np). Throws DistError if MPI is not
/// running.
int world_size();
/// True while an Environment (or anyone) has started MPI and not yet finalized it.
bool running();

/// Runs body() and returns its result. If it throws, prints "rank R of N: WHAT" (R this
/// rank, N the world size, WHAT the exception's what()) to stderr and ends the whole job with
/// MPI_Abort(MPI_COMM_WORLD, 1): every rank stops within seconds and mpirun exits with a
/// non-zero status, instead of the others waiting forever in their next collective call.
/// `program` (e.g. the executable's name), when given, starts the message.
int run_or_abort(const std::function<int()>& body, const std::string& program = "");

/// @}

}  // namespace tapegrad::dist
