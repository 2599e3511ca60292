// Checkpoints: everything a training run needs to continue after a crash, in one .npz file.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/data/dataset.hpp"
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
/// random generator's state and every data loader's place in its sequence of epochs, with
/// the run's TrainingPosition and world size, in one .npz file written atomically (a crash
/// during save() leaves the previous file whole; see io::write_file_atomically()).
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
/// - `loaderI/epochs_drawn` and `loaderI/random_state` (int64; the loader's position at
///   the start of the epoch in progress, see data::DataLoader::latest_epoch_start()).
///
/// Float models store float32 arrays, double models float64; a file is loaded only into a
/// model of the same element type. T is float or double.
template <class T = double>
class Checkpoint {
 public:
  /// A checkpoint of `model` (not owned) with no optimizer, schedule, generator or loader
  /// yet, and world size 1.
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
  /// Adds a data loader (not owned), saved as loaderI in the order of the calls. Throws
  /// ValueError for a loader added twice.
  Checkpoint& add_loader(data::DataLoader<T>& loader);
  /// The number of processes of the run (1 by default; a data-parallel run sets its
  /// world size). Saved in the file; load() refuses a file of another world size, whose
  /// data order and batches would differ. Throws ValueError for 0.
  Checkpoint& set_world_size(std::size_t world_size);
  /// The world size set (1 by default).
  std::size_t world_size() const { return world_size_; }

  /// Writes the checkpoint to `path` atomically, with the run's `position`. Each loader must
  /// be in the epoch `position.epoch`: it has drawn position.epoch + 1 epochs (mid-epoch; its
  /// latest_epoch_start() is saved), or position.epoch epochs with position.step 0 (before
  /// the epoch is drawn; its position() is saved). Throws ValueError for a loader in
  /// another epoch (nothing is written then), and IoError if the file cannot be written (see
  /// io::write_npz()): the previous file stays as it was.
  void save(const std::string& path, const TrainingPosition& position) const;

  /// Restores everything added from the file at `path` and returns its TrainingPosition.
  /// Changes nothing and throws IoError `<path>: cannot resume from this checkpoint
  /// (nothing was loaded): <differences>` listing every difference when the file does not
  /// match the run: another world size; a parameter or buffer missing, unexpected, or of another
  /// shape or element type (another architecture); another number of optimizers,
  /// schedules or loaders, another optimizer or schedule type, another setting
  /// (momentum, betas, ...) or number of parameters; a generator missing or unexpected.
  /// Also throws IoError when the file is not a tapegrad checkpoint (no checkpoint/format),
  /// of another format version, or malformed: a member of the wrong element type or shape,
  /// or unreadable (see io::read_npz()).
  TrainingPosition load(const std::string& path);

 private:
  nn::Module<T>* model_;
  std::vector<optim::Optimizer<T>*> optimizers_;
  std::vector<optim::LRScheduler*> schedulers_;
  std::vector<std::pair<std::string, Generator*>> generators_;
  std::vector<data::DataLoader<T>*> loaders_;
  std::size_t world_size_ = 1;
};

extern template class Checkpoint<float>;
extern template class Checkpoint<double>;

/// @}

}  // namespace tapegrad::io
