// dist::save_checkpoint, dist::load_checkpoint: one io::Checkpoint file for all the ranks of a
// data-parallel run.
#pragma once

#include <string>

#include "tapegrad/dist/environment.hpp"
#include "tapegrad/io/checkpoint.hpp"

namespace tapegrad::dist {

/// @addtogroup dist
/// @{

/// Writes the checkpoint of a data-parallel run to `path` atomically, with `position`.
/// Collective: every rank calls it at the same step, with a checkpoint built the same way
/// (the same parts added in the same order) and set_world_size(dist::world_size(),
/// dist::rank()).
///
/// Everything but the per-rank generators (io::Checkpoint::add_rank_generator) is the same
/// on every rank, so rank 0 alone writes the file: the ranks' generator states are gathered
/// to it (MPI_Gather of 64-bit states) and it calls io::Checkpoint::save() with all of them.
/// Rank 0 then broadcasts whether the write succeeded, and every rank waits for that before
/// returning: when save_checkpoint() returns on any rank, the new file is complete (and when
/// it throws, every rank throws). Without that wait a rank could, say, read the file or
/// report it saved while rank 0 is still writing it; a crash in between is harmless either
/// way (the previous file stays whole, and all ranks resume from the same file).
///
///     io::Checkpoint<float> checkpoint(model);
///     checkpoint.set_world_size(dist::world_size(), dist::rank())
///               .add_optimizer(adam).add_sampler(sampler).add_rank_generator("dropout", dropout);
///     ...
///     if (step % 100 == 0) dist::save_checkpoint(checkpoint, "run.ckpt", {epoch, s + 1});
///
/// Throws DistError on every rank when a rank's checkpoint has another world size or rank
/// than MPI's, or the ranks have different numbers of per-rank generators (nothing is
/// written). When rank 0's save() throws (ValueError: a sampler or loader in another epoch;
/// IoError: the file cannot be written, the previous one stays whole), rank 0 rethrows that
/// exception and every other rank throws one of the same type, "dist::save_checkpoint: rank
/// 0 could not write PATH: MESSAGE".
template <class T>
void save_checkpoint(const io::Checkpoint<T>& checkpoint, const std::string& path,
                     const io::TrainingPosition& position);

/// Restores a data-parallel run from the file save_checkpoint() wrote, on every rank, and
/// returns its TrainingPosition. Collective: every rank calls it, with a checkpoint built as
/// for save_checkpoint(). Every rank reads the same file `path` (so it must be visible to
/// all ranks: one machine, or a shared file system) with io::Checkpoint::load(), which takes
/// this rank's own per-rank generators and refuses a file of another world size, model,
/// optimizer, sampler, ... (see there). Then the ranks compare their outcomes (one
/// MPI_Allgather), so that either every rank has loaded the file or every rank throws:
/// - a rank whose load() threw rethrows its exception (IoError naming every difference);
/// - the others throw IoError "dist::load_checkpoint: rank R could not load PATH; ...";
/// - ranks that loaded different positions (different files behind one path) throw
///   DistError naming them.
/// Throws DistError on every rank, before reading, for a checkpoint whose world size or
/// rank is not MPI's (as save_checkpoint()).
template <class T>
io::TrainingPosition load_checkpoint(io::Checkpoint<T>& checkpoint, const std::string& path);
// (Both are defined in src/dist/checkpoint.cpp for T = float and double.)

/// @}

}  // namespace tapegrad::dist
