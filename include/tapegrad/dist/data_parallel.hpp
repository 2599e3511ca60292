// dist::DataParallel: gradients averaged over all ranks after backward(), in flat buckets;
// dist::broadcast_parameters: every rank starts from the root's weights.
#pragma once

#include <cstddef>
#include <vector>

#include "tapegrad/dist/environment.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/tensor.hpp"

namespace tapegrad::dist {

/// @addtogroup dist
/// @{

/// Copies the values of `root`'s parameters and buffers into every other rank's (MPI_Bcast of
/// flat buckets, in the order of parameters() then buffers()), so that all ranks start from
/// the same model whatever their seeds. Collective: every rank calls it with the same root.
/// Throws DistError (on every rank) if the ranks' models differ in their number of values,
/// or the root is not a rank.
template <class T>
void broadcast_parameters(const nn::Module<T>& module, int root = 0);
/// The same for a list of tensors (parameters, buffers, or any tensors of equal shapes on
/// all ranks).
template <class T>
void broadcast_parameters(const std::vector<Tensor<T>>& tensors, int root = 0);

/// Settings of DataParallel, builder style: `DataParallelOptions().bucket_bytes(1 << 20)`.
class DataParallelOptions {
 public:
  /// The size of one MPI_Allreduce call: gradients are copied into flat buffers of about this
  /// many bytes (default 4 MiB; a tensor larger than that goes alone in one bucket).
  /// Throws ValueError for 0.
  DataParallelOptions& bucket_bytes(std::size_t bytes);
  /// The bucket size in bytes.
  std::size_t bucket_bytes() const { return bucket_bytes_; }

 private:
  std::size_t bucket_bytes_ = std::size_t{4} << 20;
};

/// Synchronous data-parallel training: every rank holds the whole model, computes the
/// gradient of its own part of the global batch, and after backward() calls
/// average_gradients(), which replaces each parameter's gradient with the average over all
/// ranks (MPI_Allreduce with MPI_SUM on flat buckets of a few MiB, then a division), so that
/// the optimizers of all ranks take the same step and the models stay equal.
///
///     dist::broadcast_parameters(model);            // the same start on every rank
///     dist::DataParallel<float> parallel(model);
///     for (const auto& indices : sampler.epoch()) {  // data::DistributedSampler
///       const auto batch = train.subset(indices);
///       { Tape tape; loss(model, batch).backward(); }
///       parallel.average_gradients(indices.size());
///       optimizer.step();
///       optimizer.zero_grad();
///     }
///
/// Averaging when: after each backward(), before the optimizer's step (and before gradient
/// clipping, so that all ranks clip the same gradient). What: the gradients of the
/// parameters given at construction, nothing else; buffers (BatchNorm's running statistics)
/// stay each rank's own. The all-reduce starts after the whole backward pass: overlapping it
/// with the backward pass was not built: with one rank per core, as on one machine, no core
/// is idle to carry it (docs/distributed.md has the measured shares, 6-27 % of a step).
///
/// With a mean loss over each rank's batch, average_gradients(local_samples) weights each
/// rank's gradient by its batch size: the result is the gradient of the mean loss over the
/// global batch, exactly the single-process step, also when the last batches of an epoch
/// differ in size. average_gradients() (no count) is the plain mean over ranks, right when
/// every rank's batch has the same size.
///
/// Every call is collective: all ranks call it the same number of times, with models of
/// the same parameter shapes. A parameter without a gradient (not used, or a rank with an
/// empty batch that skipped backward()) contributes zeros and receives the average.
/// T = float or double.
template <class T>
class DataParallel {
 public:
  /// Averages the gradients of `module.parameters()`. Checks that every rank has the same
  /// number of parameter values (one MPI_Allgather); throws DistError naming both counts
  /// otherwise.
  explicit DataParallel(const nn::Module<T>& module,
                        const DataParallelOptions& options = DataParallelOptions());
  /// The same for a list of parameters.
  explicit DataParallel(std::vector<Tensor<T>> parameters,
                        const DataParallelOptions& options = DataParallelOptions());

  /// Replaces every gradient g_r (rank r's) with (1/N) sum_r g_r, N = world_size().
  void average_gradients();
  /// Replaces every gradient with sum_r n_r g_r / sum_r n_r, n_r = rank r's
  /// `local_samples`: the gradient of the mean loss over all ranks' samples, when each g_r is
  /// that of the mean over rank r's n_r samples. A rank with n_r = 0 contributes nothing.
  /// Throws DistError (on every rank) if the sum over ranks is 0.
  void average_gradients(std::size_t local_samples);

  /// The parameters whose gradients are averaged.
  const std::vector<Tensor<T>>& parameters() const { return parameters_; }
  /// The number of MPI_Allreduce calls one average_gradients() makes.
  std::size_t buckets() const { return bucket_starts_.size(); }
  /// Seconds spent in MPI_Allreduce by this rank since construction (waiting for slower
  /// ranks included): the communication share of a training loop.
  double communication_seconds() const { return communication_seconds_; }

 private:
  void reduce(double weight, bool weighted);

  std::vector<Tensor<T>> parameters_;
  DataParallelOptions options_;
  // Parameter index where each bucket starts (one more entry: the end).
  std::vector<std::size_t> bucket_starts_;
  std::vector<T> buffer_;
  double communication_seconds_ = 0;
};

extern template class DataParallel<float>;
extern template class DataParallel<double>;

/// @}

}  // namespace tapegrad::dist
