#include "tapegrad/dist/checkpoint.hpp"

#include <mpi.h>

#include <cstdint>
#include <exception>
#include <tuple>
#include <utility>
#include <vector>

#include "tapegrad/io/npy.hpp"

namespace tapegrad::dist {

namespace {

// Every rank's record of `fields` 64-bit numbers, rank by rank (one MPI_Allgather): every rank
// sees the same table, so every rank throws or none does.
std::vector<std::vector<std::uint64_t>> gather_records(const std::vector<std::uint64_t>& mine) {
  const std::size_t fields = mine.size(), ranks = static_cast<std::size_t>(world_size());
  std::vector<std::uint64_t> flat(fields * ranks);
  MPI_Allgather(mine.data(), static_cast<int>(fields), MPI_UINT64_T, flat.data(),
                static_cast<int>(fields), MPI_UINT64_T, MPI_COMM_WORLD);
  std::vector<std::vector<std::uint64_t>> records;
  for (std::size_t r = 0; r < ranks; ++r) {
    records.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(r * fields),
                         flat.begin() + static_cast<std::ptrdiff_t>((r + 1) * fields));
  }
  return records;
}

// Refuses, on every rank, checkpoints whose world size or rank are not MPI's, and different
// numbers of per-rank generators (a collective call over them would mismatch).
template <class T>
void check_ranks_agree(const io::Checkpoint<T>& checkpoint, const char* function) {
  const auto records = gather_records(
      {checkpoint.world_size(), checkpoint.rank(), checkpoint.rank_generator_states().size()});
  const std::string where = std::string("dist::") + function + ": ";
  for (std::size_t r = 0; r < records.size(); ++r) {
    if (records[r][0] != records.size() || records[r][1] != r) {
      throw DistError(where + "rank " + std::to_string(r) + "'s checkpoint has world size " +
                      std::to_string(records[r][0]) + " and rank " + std::to_string(records[r][1]) +
                      ", MPI " + std::to_string(records.size()) + " and " + std::to_string(r) +
                      "; call set_world_size(dist::world_size(), dist::rank()) on it");
    }
    if (records[r][2] != records[0][2]) {
      throw DistError(where + "rank 0's checkpoint has " + std::to_string(records[0][2]) +
                      " per-rank generators, rank " + std::to_string(r) + "'s " +
                      std::to_string(records[r][2]) +
                      "; every rank must build the same checkpoint");
    }
  }
}

enum class Outcome : int { saved = 0, value_error = 1, io_error = 2, other_error = 3 };

// What rank 0's failed save was, to be thrown again by the other ranks, and its message.
std::pair<Outcome, std::string> classify(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const ValueError& error) {
    return {Outcome::value_error, error.what()};
  } catch (const io::IoError& error) {
    return {Outcome::io_error, error.what()};
  } catch (const std::exception& error) {
    return {Outcome::other_error, error.what()};
  } catch (...) {
    return {Outcome::other_error, "an exception that is not a std::exception"};
  }
}

}  // namespace

template <class T>
void save_checkpoint(const io::Checkpoint<T>& checkpoint, const std::string& path,
                     const io::TrainingPosition& position) {
  check_ranks_agree(checkpoint, "save_checkpoint");
  const auto mine = checkpoint.rank_generator_states();
  const std::size_t count = mine.size(), ranks = static_cast<std::size_t>(world_size());
  const bool root = rank() == 0;
  std::vector<std::uint64_t> all(root ? count * ranks : 0);
  MPI_Gather(mine.data(), static_cast<int>(count), MPI_UINT64_T, all.data(),
             static_cast<int>(count), MPI_UINT64_T, 0, MPI_COMM_WORLD);

  // Rank 0 writes; its outcome and message travel to every rank (two broadcasts).
  Outcome outcome = Outcome::saved;
  std::string message;
  std::exception_ptr failure;
  if (root) {
    std::vector<std::vector<std::uint64_t>> rank_states;
    for (std::size_t r = 0; r < ranks; ++r) {
      rank_states.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(r * count),
                               all.begin() + static_cast<std::ptrdiff_t>((r + 1) * count));
    }
    try {
      checkpoint.save(path, position, rank_states);
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) std::tie(outcome, message) = classify(failure);
  }
  int header[2] = {static_cast<int>(outcome), static_cast<int>(message.size())};
  MPI_Bcast(header, 2, MPI_INT, 0, MPI_COMM_WORLD);
  if (header[0] == static_cast<int>(Outcome::saved)) return;
  message.resize(static_cast<std::size_t>(header[1]));
  MPI_Bcast(message.data(), header[1], MPI_CHAR, 0, MPI_COMM_WORLD);
  if (failure) std::rethrow_exception(failure);
  message = "dist::save_checkpoint: rank 0 could not write " + path + ": " + message;
  switch (static_cast<Outcome>(header[0])) {
    case Outcome::value_error:
      throw ValueError(message);
    case Outcome::io_error:
      throw io::IoError(message);
    default:
      throw DistError(message);
  }
}

template <class T>
io::TrainingPosition load_checkpoint(io::Checkpoint<T>& checkpoint, const std::string& path) {
  check_ranks_agree(checkpoint, "load_checkpoint");
  io::TrainingPosition position;
  std::exception_ptr failure;
  try {
    position = checkpoint.load(path);
  } catch (...) {
    failure = std::current_exception();
  }
  const auto records = gather_records({failure ? 1u : 0u, position.epoch, position.step});
  if (failure) std::rethrow_exception(failure);
  for (std::size_t r = 0; r < records.size(); ++r) {
    if (records[r][0] != 0) {
      throw io::IoError("dist::load_checkpoint: rank " + std::to_string(r) + " could not load " +
                        path +
                        " (its own error says why); this rank did, but the ranks must "
                        "resume together");
    }
  }
  for (std::size_t r = 1; r < records.size(); ++r) {
    if (records[r][1] != records[0][1] || records[r][2] != records[0][2]) {
      throw DistError("dist::load_checkpoint: rank 0 resumes at epoch " +
                      std::to_string(records[0][1]) + ", step " + std::to_string(records[0][2]) +
                      ", rank " + std::to_string(r) + " at epoch " + std::to_string(records[r][1]) +
                      ", step " + std::to_string(records[r][2]) + ": the ranks read different " +
                      "files named " + path);
    }
  }
  return position;
}

template void save_checkpoint<float>(const io::Checkpoint<float>&, const std::string&,
                                     const io::TrainingPosition&);
template void save_checkpoint<double>(const io::Checkpoint<double>&, const std::string&,
                                      const io::TrainingPosition&);
template io::TrainingPosition load_checkpoint<float>(io::Checkpoint<float>&, const std::string&);
template io::TrainingPosition load_checkpoint<double>(io::Checkpoint<double>&, const std::string&);

}  // namespace tapegrad::dist
