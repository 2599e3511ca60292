#include "tapegrad/data/distributed_sampler.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <string>

#include "tapegrad/error.hpp"

namespace tapegrad::data {

DistributedSampler::DistributedSampler(std::size_t dataset_size, std::size_t local_batch_size,
                                       std::size_t rank, std::size_t world_size,
                                       const LoaderOptions& options)
    : dataset_size_(dataset_size),
      local_batch_size_(local_batch_size),
      rank_(rank),
      world_size_(world_size),
      options_(options),
      random_(options.seed()),
      latest_epoch_start_{0, random_.state()} {
  const std::string where = "DistributedSampler: ";
  if (world_size_ == 0) throw ValueError(where + "world size 0; expected at least 1 process");
  if (rank_ >= world_size_) {
    throw ValueError(where + "rank " + std::to_string(rank_) + " with world size " +
                     std::to_string(world_size_) + "; expected a rank from 0 to " +
                     std::to_string(world_size_ - 1));
  }
  if (local_batch_size_ == 0) {
    throw ValueError(where + "local batch size 0; expected at least 1 sample per rank and step");
  }
  if (dataset_size_ == 0) {
    throw ValueError(where + "the dataset has no samples; give the sampler at least one");
  }
  if (local_batch_size_ > std::numeric_limits<std::size_t>::max() / world_size_) {
    throw ValueError(where + "local batch size " + std::to_string(local_batch_size_) + " times " +
                     std::to_string(world_size_) + " ranks overflows the global batch size");
  }
  if (options_.drop_last() && global_batch_size() > dataset_size_) {
    throw ValueError(
        where + "global batch size " + std::to_string(global_batch_size()) + " (" +
        std::to_string(world_size_) + " ranks x " + std::to_string(local_batch_size_) +
        ") with drop_last exceeds the dataset's " + std::to_string(dataset_size_) +
        " samples, so every epoch would be empty; use a smaller batch or drop_last(false)");
  }
}

std::size_t DistributedSampler::batches_per_epoch() const {
  const std::size_t g = global_batch_size();
  return dataset_size_ / g + (!options_.drop_last() && dataset_size_ % g != 0 ? 1 : 0);
}

std::size_t DistributedSampler::samples_in_batch(std::size_t batch) const {
  const std::size_t g = global_batch_size();
  const std::size_t start = batch * g;
  const std::size_t in_batch = std::min(g, dataset_size_ - start);
  // Positions rank_, rank_ + W, rank_ + 2W, ... below in_batch.
  return in_batch > rank_ ? (in_batch - rank_ + world_size_ - 1) / world_size_ : 0;
}

std::size_t DistributedSampler::shard_size() const {
  std::size_t total = 0;
  for (std::size_t b = 0; b < batches_per_epoch(); ++b) total += samples_in_batch(b);
  return total;
}

std::vector<std::vector<std::size_t>> DistributedSampler::epoch() {
  // The same draw as DataLoader::epoch(), so that one process with DataLoader(data, G) and W
  // processes with this sampler walk the same order.
  latest_epoch_start_ = position();
  std::vector<std::size_t> order(dataset_size_);
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (options_.shuffle()) shuffle_indices(order, random_);
  ++epochs_drawn_;

  const std::size_t count = batches_per_epoch(), g = global_batch_size();
  std::vector<std::vector<std::size_t>> batches(count);
  for (std::size_t b = 0; b < count; ++b) {
    const std::size_t n = samples_in_batch(b);
    batches[b].reserve(n);
    for (std::size_t k = 0; k < n; ++k)
      batches[b].push_back(order[b * g + rank_ + k * world_size_]);
  }
  return batches;
}

void DistributedSampler::set_position(const Position& position) {
  epochs_drawn_ = position.epochs_drawn;
  random_.set_state(position.random_state);
  latest_epoch_start_ = position;
}

}  // namespace tapegrad::data
