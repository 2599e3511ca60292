// --distributed for the Fashion-MNIST demos: data-parallel training over MPI when the build
// has tapegrad::dist (CMake defines TAPEGRAD_HAVE_MPI for these demos), a plain refusal when
// it has not. Header-only, so that the demos' common library needs no MPI.
#pragma once

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/distributed_sampler.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/io/checkpoint.hpp"
#include "tapegrad/nn/module.hpp"
#ifdef TAPEGRAD_HAVE_MPI
#include "tapegrad/dist/dist.hpp"
#endif

namespace examples {

/// Whether the command line holds --distributed. Looked at before CLI11 parses it: MPI must
/// start first, and MPI_Init may remove mpirun's own arguments.
inline bool wants_distributed(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--distributed") == 0) return true;
  }
  return false;
}

/// A demo's main(): with --distributed (and MPI in the build), MPI for the run and a failure
/// on any rank printed as "<program>: rank R of N: <message>" and ending the whole job
/// (dist::run_or_abort); otherwise run_main().
inline int run_main_distributed(int argc, char** argv, int (*body)(int, char**)) {
#ifdef TAPEGRAD_HAVE_MPI
  if (wants_distributed(argc, argv)) {
    tapegrad::dist::Environment environment(argc, argv);
    std::string program = argc > 0 && argv[0] ? argv[0] : "demo";
    program = program.substr(program.find_last_of('/') + 1);
    return tapegrad::dist::run_or_abort([&] { return body(argc, argv); }, program);
  }
#endif
  return run_main(argc, argv, body);
}

/// The demos' data-parallel side. Off: one process, every call does nothing. On: this
/// process is one rank of `mpirun -np N`; the global batch (--batch-size) is split into N
/// local batches of batch_size / N (which must divide), every rank's model is made equal to
/// rank 0's, and average_gradients() averages them after each backward(), so that the run
/// takes the same steps (up to rounding) as one process with the same --batch-size and seed.
template <class T>
class DataParallelRun {
 public:
  /// Throws std::invalid_argument for `on` in a build without MPI, or a batch size that the
  /// number of ranks does not divide.
  DataParallelRun(bool on, tapegrad::nn::Module<T>& model, std::size_t global_batch) : on_(on) {
    if (!on_) return;
#ifdef TAPEGRAD_HAVE_MPI
    rank_ = static_cast<std::size_t>(tapegrad::dist::rank());
    world_ = static_cast<std::size_t>(tapegrad::dist::world_size());
    if (global_batch % world_ != 0) {
      throw std::invalid_argument("--distributed: --batch-size " + std::to_string(global_batch) +
                                  " is the global batch and must be a multiple of the " +
                                  std::to_string(world_) + " ranks");
    }
    tapegrad::dist::broadcast_parameters(model);
    parallel_ = std::make_unique<tapegrad::dist::DataParallel<T>>(model);
#else
    (void)model;
    (void)global_batch;
    throw std::invalid_argument(
        "--distributed: this build has no MPI (apt-get install libopenmpi-dev openmpi-bin, then "
        "configure again)");
#endif
  }

  /// Whether --distributed is on.
  bool on() const { return on_; }
  /// This process's rank (0 without --distributed).
  std::size_t rank() const { return rank_; }
  /// The number of ranks (1 without --distributed).
  std::size_t world() const { return world_; }
  /// Rank 0: the one that prints progress and writes files.
  bool leader() const { return rank_ == 0; }

  /// This rank's batches of the next epoch: the DataLoader's own without --distributed,
  /// this rank's share of each global batch (data::DistributedSampler, the loader's seed and
  /// order) with it. A rank's last batch may be empty.
  std::vector<typename tapegrad::data::DataLoader<T>::Batch> epoch(
      tapegrad::data::DataLoader<T>& loader) {
    if (!on_) return loader.epoch();
    std::vector<typename tapegrad::data::DataLoader<T>::Batch> batches;
    for (auto& indices : sampler(loader).epoch()) {
      auto part = loader.dataset().subset(indices);
      batches.push_back({std::move(part.features), std::move(part.targets), std::move(indices)});
    }
    return batches;
  }

  /// Adds the run's place in the data order to `checkpoint`: the loader without
  /// --distributed; with it, the world size, this rank and the sampler that epoch() draws
  /// from (made now if need be). Call it before loading the checkpoint.
  void add_data_order(tapegrad::io::Checkpoint<T>& checkpoint,
                      tapegrad::data::DataLoader<T>& loader) {
    if (!on_) {
      checkpoint.add_loader(loader);
      return;
    }
    checkpoint.set_world_size(world_, rank_).add_sampler(sampler(loader));
  }

  /// Adds a generator whose stream differs from rank to rank (fashion_cnn's dropout) to
  /// `checkpoint`: a per-rank generator with --distributed, a plain one without (so that a
  /// one-process run's file is as before).
  void add_rank_generator(tapegrad::io::Checkpoint<T>& checkpoint, const std::string& name,
                          tapegrad::Generator& generator) const {
    if (on_) {
      checkpoint.add_rank_generator(name, generator);
    } else {
      checkpoint.add_generator(name, generator);
    }
  }

  /// After backward(): every gradient becomes the average over the ranks, weighted by their
  /// batch sizes (`local_samples`, this rank's). Nothing without --distributed.
  void average_gradients(std::size_t local_samples) {
#ifdef TAPEGRAD_HAVE_MPI
    if (parallel_) parallel_->average_gradients(local_samples);
#else
    (void)local_samples;
#endif
  }

  /// Seconds this rank spent in MPI_Allreduce so far (0 without --distributed).
  double communication_seconds() const {
#ifdef TAPEGRAD_HAVE_MPI
    if (parallel_) return parallel_->communication_seconds();
#endif
    return 0;
  }

 private:
  // This rank's sampler over `loader`'s dataset, with its options and the local batch.
  tapegrad::data::DistributedSampler& sampler(const tapegrad::data::DataLoader<T>& loader) {
    if (!sampler_) {
      sampler_ = std::make_unique<tapegrad::data::DistributedSampler>(
          loader.dataset().size(), loader.batch_size() / world_, rank_, world_, loader.options());
    }
    return *sampler_;
  }

  bool on_;
  std::size_t rank_ = 0, world_ = 1;
  std::unique_ptr<tapegrad::data::DistributedSampler> sampler_;
#ifdef TAPEGRAD_HAVE_MPI
  std::unique_ptr<tapegrad::dist::DataParallel<T>> parallel_;
#endif
};

}  // namespace examples
