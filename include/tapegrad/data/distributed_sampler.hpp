// DistributedSampler: each process's share of every epoch, for data-parallel training.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tapegrad/data/dataset.hpp"
#include "tapegrad/random.hpp"

namespace tapegrad::data {

/// @addtogroup data
/// @{

/// Cuts every epoch of a dataset of `dataset_size` samples into one shard per process, for
/// data-parallel training with `world_size` processes (ranks 0 ... world_size-1). Pure
/// arithmetic: it takes the rank and the world size as numbers and needs no MPI.
///
/// Every rank builds its sampler with the same dataset size, batch size and options. Each
/// epoch's order is the one a DataLoader with the same options draws (0, 1, ..., N-1,
/// shuffled by shuffle_indices() with a Generator seeded once with options.seed()), so all
/// ranks agree on it without talking. The order is cut into global batches of
///   G = world_size * local_batch_size
/// consecutive samples, exactly the batches of `DataLoader(dataset, G, options)` in one
/// process. Rank r's part of a global batch is every world_size-th sample of it, starting at
/// its r-th (PyTorch's DistributedSampler deals samples out the same way). So:
/// - the shards are disjoint, and together they are exactly one epoch;
/// - the union of the ranks' batches number s is the single-process global batch s, so
///   averaging the ranks' gradients weighted by their batch sizes
///   (dist::DataParallel::average_gradients(local_samples)) gives the single-process step.
///
/// A dataset size N that G does not divide: the last global batch holds the N % G samples
/// left over, dealt out as above, so the ranks' last batches differ by at most one sample and
/// some may be empty (N % G < world_size). Every rank has the same number of batches per
/// epoch, so all take part in every step's all-reduce. Unlike PyTorch's sampler nothing is
/// padded (no sample is seen twice in an epoch); with options.drop_last(true) the short last
/// global batch is left out on every rank, as DataLoader's drop_last does.
///
///     data::DistributedSampler sampler(train.size(), 32, dist::rank(), dist::world_size(),
///                                      data::LoaderOptions().seed(1));
///     for (const auto& indices : sampler.epoch()) {
///       const auto batch = train.subset(indices);   // may be empty on the last step
///       ...
///     }
class DistributedSampler {
 public:
  /// A sampler for `rank` of `world_size` processes, each taking at most `local_batch_size`
  /// samples per step. Throws ValueError for world_size 0, a rank >= world_size, a batch size
  /// of 0, a dataset of no samples, a global batch size world_size * local_batch_size that
  /// overflows, and drop_last with a global batch larger than the dataset (every epoch would
  /// be empty); each message names the values.
  DistributedSampler(std::size_t dataset_size, std::size_t local_batch_size, std::size_t rank,
                     std::size_t world_size, const LoaderOptions& options = LoaderOptions());

  /// This rank's batches of the next epoch: batches_per_epoch() lists of dataset indices, in
  /// order, each of local_batch_size() indices except possibly the last (shorter, or empty).
  /// Advances the sampler's generator when it shuffles, as DataLoader::epoch() does.
  std::vector<std::vector<std::size_t>> epoch();

  /// The number of steps of an epoch, the same on every rank: N / G rounded up, or down with
  /// drop_last.
  std::size_t batches_per_epoch() const;
  /// The samples this rank sees per epoch (the sum of its batch sizes).
  std::size_t shard_size() const;
  /// The dataset size N given at construction.
  std::size_t dataset_size() const { return dataset_size_; }
  /// The most samples a rank takes per step.
  std::size_t local_batch_size() const { return local_batch_size_; }
  /// world_size() * local_batch_size(): the samples of one step over all ranks.
  std::size_t global_batch_size() const { return local_batch_size_ * world_size_; }
  /// This process's rank, as given.
  std::size_t rank() const { return rank_; }
  /// The number of processes, as given.
  std::size_t world_size() const { return world_size_; }
  /// The options given at construction.
  const LoaderOptions& options() const { return options_; }
  /// How many times epoch() has been called.
  std::size_t epochs_drawn() const { return epochs_drawn_; }

  /// Where a sampler stands in its sequence of epochs, as DataLoader::Position: enough to
  /// draw the same epochs again (checkpoints save it, see io::Checkpoint::add_sampler()). The
  /// same on every rank: the ranks share the generator's seed and draws.
  struct Position {
    std::size_t epochs_drawn = 0;    ///< epoch() calls made before this point
    std::uint64_t random_state = 0;  ///< the sampler's Generator::state() at this point
  };
  /// The current position: the next epoch() continues from it.
  Position position() const { return {epochs_drawn_, random_.state()}; }
  /// The position just before the latest epoch() call (before any call: the current one).
  /// A checkpoint taken in the middle of an epoch saves it, so that after set_position()
  /// the next epoch() returns the interrupted epoch's batches again, in the same order.
  Position latest_epoch_start() const { return latest_epoch_start_; }
  /// Moves the sampler to `position`, taken from a sampler with the same dataset size,
  /// local batch size, world size and options, of any rank (the position does not record
  /// them): the next epoch() draws this rank's share of what that sampler's epoch was.
  /// latest_epoch_start() becomes `position` too.
  void set_position(const Position& position);

 private:
  // The samples of global batch `batch` that fall to this rank.
  std::size_t samples_in_batch(std::size_t batch) const;

  std::size_t dataset_size_, local_batch_size_, rank_, world_size_;
  LoaderOptions options_;
  Generator random_;
  std::size_t epochs_drawn_ = 0;
  Position latest_epoch_start_;
};

/// @}

}  // namespace tapegrad::data
