// Checkpoints: everything a training run needs to continue after a crash, in one .npz file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/distributed_sampler.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/optim/optimizer.hpp"
#include "tapegrad/optim/schedule.hpp"
#include "tapegrad/random.hpp"

namespace tapegrad::io {

/// @addtogroup io
/// @{

/// Where a run stands in its data order: the epoch in progress and how many of its batches
/// have been trained on. A checkpoint saved after batch s (0-based) of epoch e holds
/// {e, s + 1}; the resumed run draws epoch e again and starts at batch s + 1.
struct TrainingPosition {
  std::size_t epoch = 0;  ///< the epoch in progress, from 0
  std::size_t step = 0;   ///< batches of that epoch already trained on
};

/// Saves and restores a training run: the model's parameters and buffers, every optimizer's
/// state (learning rate, moments, step counts), every learning-rate schedule's state, every
/// random generator's state and every data loader's (or distributed sampler's) place in its
/// sequence of epochs, with the run's TrainingPosition and world size, in one .npz file
/// written atomically (a crash during save() leaves the previous file whole; see
/// io::write_file_atomically()).
///
/// The checkpoint refers to the objects it was given (it owns none: they must outlive it).
/// Make the same objects in the resumed run, in the same order, and call load() before
/// training:
///
///     io::Checkpoint<double> checkpoint(model);
///     checkpoint.add_optimizer(optimizer).add_scheduler(schedule)
///               .add_generator("dropout", dropout_random).add_loader(loader);
///     io::TrainingPosition start;
///     if (resuming) start = checkpoint.load("run.ckpt.npz");
///     for (std::size_t epoch = start.epoch; epoch < epochs; ++epoch) {
///       const auto batches = loader.epoch();
///       for (std::size_t s = epoch == start.epoch ? start.step : 0; s < batches.size(); ++s) {
///         ... forward, backward, optimizer.step(), zero_grad() ...
///         if (every_k_steps) checkpoint.save("run.ckpt.npz", {epoch, s + 1});
///       }
///       schedule.step();
///     }
///
/// A data-parallel run (world size W > 1, one process per rank) keeps one file for all its
/// ranks. Everything that is the same on every rank (the model after broadcast_parameters,
/// the optimizers after averaged gradients, the schedules, the shared generators, the
/// data::DistributedSampler's shuffle generator) is stored once; a generator that differs
/// per rank (each rank's dropout stream) is added with add_rank_generator() and stored once
/// per rank. Set the world size and this process's rank with set_world_size(W, rank); then
/// every rank calls dist::save_checkpoint() (tapegrad/dist/checkpoint.hpp: it gathers the
/// ranks' generator states to rank 0, which writes the file) and dist::load_checkpoint()
/// (every rank reads the file and takes its own rank's generators). This class itself calls
/// no MPI.
///
/// The file's members (numpy.load reads them):
/// - `checkpoint/format` (1), `checkpoint/world_size`, `checkpoint/epoch`,
///   `checkpoint/step`: int64 scalars;
/// - `model/NAME`: each parameter and buffer under io::save_state()'s name ("0.weight");
/// - `optimizerI/type` (the name as uint8 bytes), `optimizerI/learning_rate`,
///   `optimizerI/setting/NAME`: float64; `optimizerI/count/NAME`: int64, one per parameter;
///   `optimizerI/array/NAME/P`: the array of parameter P (see optim::OptimizerState);
/// - `schedulerI/type`, `schedulerI/setting/NAME`, `schedulerI/value/NAME` (float64; see
///   optim::SchedulerState);
/// - `generator/NAME`: the Generator::state(), its 64 bits stored as an int64;
/// - `rankR/generator/NAME` for R = 0 ... W-1: rank R's state of a generator added with
///   add_rank_generator() (int64 as above);
/// - `loaderI/epochs_drawn` and `loaderI/random_state` (int64; the loader's position at
///   the start of the epoch in progress, see data::DataLoader::latest_epoch_start());
/// - `samplerI/epochs_drawn` and `samplerI/random_state` (int64; the same for a
///   data::DistributedSampler), and `samplerI/dataset_size`, `samplerI/local_batch_size`,
///   `samplerI/world_size` (int64; compared at load).
///
/// Float models store float32 arrays, double models float64; a file is loaded only into a
/// model of the same element type. T is float or double.
template <class T = double>
class Checkpoint {
 public:
  /// A checkpoint of `model` (not owned) with no optimizer, schedule, generator, loader or
  /// sampler yet, world size 1 and rank 0.
  explicit Checkpoint(nn::Module<T>& model);

  /// Adds an optimizer (not owned), saved as optimizerI in the order of the calls. Throws
  /// ValueError, as Optimizer::state() does, for one whose state cannot be saved (L-BFGS),
  /// and for an optimizer added twice.
  Checkpoint& add_optimizer(optim::Optimizer<T>& optimizer);
  /// Adds a learning-rate schedule (not owned), saved as schedulerI in the order of the
  /// calls. Throws ValueError for a schedule added twice.
  Checkpoint& add_scheduler(optim::LRScheduler& scheduler);
  /// Adds a random generator (not owned) under `name`: the model's initialization or
  /// dropout generator, default_generator(), ... Throws ValueError for an empty name, one
  /// holding '/' or a NUL byte, or a name or generator added before.
  Checkpoint& add_generator(const std::string& name, Generator& generator);
  /// Adds a random generator (not owned) whose state differs from rank to rank in a
  /// data-parallel run, such as a dropout generator each rank seeds with a seed of its own.
  /// The file holds every rank's state (`rankR/generator/NAME`); load() gives each rank its
  /// own. With world size 1 it is rank 0's. Throws ValueError as add_generator() does; the
  /// two kinds share one set of names and generators.
  Checkpoint& add_rank_generator(const std::string& name, Generator& generator);
  /// Adds a data loader (not owned), saved as loaderI in the order of the calls. Throws
  /// ValueError for a loader added twice.
  Checkpoint& add_loader(data::DataLoader<T>& loader);
  /// Adds a data-parallel run's sampler (not owned), saved as samplerI in the order of the
  /// calls: its place in the sequence of epochs (the same on every rank) and its dataset
  /// size, local batch size and world size, which load() compares (its rank is not saved:
  /// every rank loads the same file). Throws ValueError for a sampler added twice.
  Checkpoint& add_sampler(data::DistributedSampler& sampler);
  /// The number of processes of the run and this process's rank (1 and 0 by default; a
  /// data-parallel run sets dist::world_size() and dist::rank()). The world size is saved
  /// in the file, and load() refuses a file of another world size, whose data order and
  /// batches would differ; the rank chooses which rank's generators (add_rank_generator())
  /// load() restores. Throws ValueError for world size 0 or a rank >= world_size.
  Checkpoint& set_world_size(std::size_t world_size, std::size_t rank = 0);
  /// The world size set (1 by default).
  std::size_t world_size() const { return world_size_; }
  /// This process's rank, as set (0 by default).
  std::size_t rank() const { return rank_; }
  /// The states of the generators added with add_rank_generator(), in the order added: what
  /// dist::save_checkpoint() gathers from each rank.
  std::vector<std::uint64_t> rank_generator_states() const;

  /// Writes the checkpoint to `path` atomically, with the run's `position`. Each loader and
  /// sampler must be in the epoch `position.epoch`: it has drawn position.epoch + 1 epochs
  /// (mid-epoch; its latest_epoch_start() is saved), or position.epoch epochs with
  /// position.step 0 (before the epoch is drawn; its position() is saved). Throws ValueError
  /// for a loader or sampler in another epoch, a sampler of another world size than
  /// world_size(), and generators added with add_rank_generator() when the world size is
  /// above 1 (this process knows only its own states: every rank calls
  /// dist::save_checkpoint() instead); nothing is written then. Throws ShapeError, writing
  /// nothing, for an optimizer whose state no longer fits a parameter (resized after the
  /// optimizer was made), naming the optimizer, the parameter (index, and the model's name
  /// for it) and both shapes. Throws IoError if the file
  /// cannot be written (see io::write_npz()): the previous file stays as it was.
  void save(const std::string& path, const TrainingPosition& position) const;
  /// save() with every rank's generator states: `rank_states[R]` is rank R's
  /// rank_generator_states(), for R = 0 ... world_size() - 1 (dist::save_checkpoint() calls
  /// this on rank 0 with the states it gathered). Throws ValueError, writing nothing, when
  /// rank_states does not hold world_size() lists of one state per rank generator, or its
  /// entry for this process's rank() is not this process's own states; otherwise as save().
  void save(const std::string& path, const TrainingPosition& position,
            const std::vector<std::vector<std::uint64_t>>& rank_states) const;

  /// Restores everything added from the file at `path` and returns its TrainingPosition.
  /// Changes nothing and throws IoError `<path>: cannot resume from this checkpoint
  /// (nothing was loaded): <differences>` listing every difference when the file does not
  /// match the run: another world size; a parameter or buffer missing, unexpected, or of another
  /// shape or element type (another architecture); another number of optimizers,
  /// schedules, loaders or samplers, another optimizer or schedule type, another setting
  /// (momentum, betas, ...) or number of parameters; a generator (or a rank's generator)
  /// missing or unexpected; a sampler of another dataset size, local batch size or world
  /// size; optimizer values no step could continue from (see
  /// optim::Optimizer::state_differences(): a NaN or infinite moment, a negative second
  /// moment, a count of 2^53 or more). This process's rank() takes its own rank's generators
  /// from the file. Names from the file are shown escaped (a NUL byte as \\0).
  /// Also throws IoError when the file is not a tapegrad checkpoint (no checkpoint/format),
  /// of another format version, or malformed: a member of the wrong element type or shape,
  /// or unreadable (see io::read_npz()).
  TrainingPosition load(const std::string& path);

 private:
  nn::Module<T>* model_;
  std::vector<optim::Optimizer<T>*> optimizers_;
  std::vector<optim::LRScheduler*> schedulers_;
  std::vector<std::pair<std::string, Generator*>> generators_;
  std::vector<std::pair<std::string, Generator*>> rank_generators_;
  std::vector<data::DataLoader<T>*> loaders_;
  std::vector<data::DistributedSampler*> samplers_;
  std::size_t world_size_ = 1, rank_ = 0;
};

extern template class Checkpoint<float>;
extern template class Checkpoint<double>;

/// @}

}  // namespace tapegrad::io
