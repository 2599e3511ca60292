// dist::DataParallel: gradients averaged over all ranks after backward(), in flat buckets;
// dist::broadcast_parameters: every rank starts from the root's weights.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
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
/// First the ranks compare their lists (one MPI_Allgather and one MPI_Allgatherv): throws
/// DistError on every rank, copying nothing, if the root is not a rank or the lists differ
/// in their number of tensors, a tensor's shape or the element type, naming the first
/// difference: `dist::broadcast_parameters: tensor 0 (weight) has shape (2, 3) on rank 0 but
/// (3, 2) on rank 1; every rank must build the same model`.
template <class T>
void broadcast_parameters(const nn::Module<T>& module, int root = 0);
/// The same for a list of tensors (parameters, buffers, or any tensors of equal shapes on
/// all ranks); the messages name them by index only.
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
  /// How long average_gradients() (and the destructor) wait for every rank to reach the
  /// same exchange before ending the job with a message (default 1800 s, PyTorch's default
  /// for its process groups; inf: wait for ever). Waiting is normal while another rank is
  /// still computing, so it must exceed the longest time one rank works alone between two
  /// exchanges (an evaluation or a checkpoint on rank 0 only). Throws ValueError for a
  /// value that is not positive, or NaN.
  DataParallelOptions& timeout(double seconds);
  /// The timeout in seconds.
  double timeout() const { return timeout_; }

 private:
  std::size_t bucket_bytes_ = std::size_t{4} << 20;
  double timeout_ = 1800;
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
///
/// Ranks that disagree are stopped with a message, never a hang or mixed numbers:
/// - At construction the ranks compare their parameter lists (count, each shape, element
///   type) and bucket sizes; any difference throws DistError on every rank.
/// - Each average_gradients() first checks this rank's parameters against the shapes at
///   construction (the buckets are cut for them) and each gradient against its parameter;
///   then the ranks exchange a small header (one MPI_Allreduce of 6 integers on a
///   communicator of their own) before the gradients: a rank that refused its parameters
///   throws its ShapeError and every other rank a DistError naming it; ranks that mix
///   average_gradients() and average_gradients(n) all throw DistError.
/// - A rank whose DataParallel is destroyed (normally: not while an exception unwinds) takes
///   part in one last header exchange saying so. A rank still calling average_gradients()
///   then throws DistError `... rank 1 stopped calling average_gradients (its DataParallel
///   was destroyed) while this rank is in exchange 4 ...`, and the leaving rank prints the
///   same and ends the job (MPI_Abort). When all ranks leave together nothing happens.
/// - A rank that waits for the header longer than DataParallelOptions::timeout() (another
///   rank stopped calling average_gradients() and waits elsewhere, or died without MPI
///   noticing) prints `rank R of N: dist::DataParallel::average_gradients: no answer from
///   every rank within S s in exchange K ...` and ends the job with MPI_Abort: a pending
///   MPI exchange cannot be cancelled, so the job could not go on anyway.
template <class T>
class DataParallel {
 public:
  /// Averages the gradients of `module.parameters()` (named as named_parameters() names
  /// them in messages). Collective: compares every rank's parameter list and bucket size
  /// (one MPI_Allgather and one MPI_Allgatherv) and throws DistError on every rank naming
  /// the first difference: `dist::DataParallel: parameter 0 (0.weight) has shape (8, 5) on
  /// rank 0 but (9, 5) on rank 1; every rank must build the same model` (or the number of
  /// parameters, the element type, bucket_bytes). Also throws DistError for a tensor of
  /// 2^31 values or more (MPI's int count).
  explicit DataParallel(const nn::Module<T>& module,
                        const DataParallelOptions& options = DataParallelOptions());
  /// The same for a list of parameters (named by index only).
  explicit DataParallel(std::vector<Tensor<T>> parameters,
                        const DataParallelOptions& options = DataParallelOptions());
  /// Takes part in the last header exchange (see above), unless an exception is unwinding
  /// or MPI is no longer running; frees the communicator.
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;             ///< Not copyable: collective.
  DataParallel& operator=(const DataParallel&) = delete;  ///< Not copyable: collective.

  /// Replaces every gradient g_r (rank r's) with (1/N) sum_r g_r, N = world_size(). Throws
  /// ShapeError if a parameter's shape differs from its shape at construction, or its
  /// gradient's from the parameter's (`dist::DataParallel::average_gradients: parameter 1
  /// (0.weight) has shape (3, 3) but DataParallel was made for (2, 3); ...`), and DistError
  /// on the other ranks then; DistError when ranks disagree (see above).
  void average_gradients();
  /// Replaces every gradient with sum_r n_r g_r / sum_r n_r, n_r = rank r's
  /// `local_samples`: the gradient of the mean loss over all ranks' samples, when each g_r is
  /// that of the mean over rank r's n_r samples. A rank with n_r = 0 contributes nothing.
  /// Throws DistError (on every rank) if the sum over ranks is 0; otherwise as
  /// average_gradients().
  void average_gradients(std::size_t local_samples);

  /// The parameters whose gradients are averaged.
  const std::vector<Tensor<T>>& parameters() const { return parameters_; }
  /// The number of MPI_Allreduce calls one average_gradients() makes.
  std::size_t buckets() const { return bucket_starts_.size(); }
  /// Seconds spent in MPI_Allreduce by this rank since construction (waiting for slower
  /// ranks included): the communication share of a training loop.
  double communication_seconds() const { return communication_seconds_; }

 private:
  struct Exchange;  // the MPI side: this object's communicator and header exchanges

  DataParallel(std::vector<Tensor<T>> parameters, std::vector<std::string> names,
               const DataParallelOptions& options);

  void reduce(std::size_t samples, bool weighted);
  // The first parameter whose shape or gradient's shape is not as at construction, as a
  // ShapeError's message; empty when all fit.
  std::string shape_problem() const;

  std::vector<Tensor<T>> parameters_;
  std::vector<std::string> names_;  // dotted names from a module, else empty
  std::vector<Shape> shapes_;       // at construction: the buckets are cut for them
  DataParallelOptions options_;
  // Parameter index where each bucket starts (one more entry: the end).
  std::vector<std::size_t> bucket_starts_;
  std::vector<T> buffer_;
  double communication_seconds_ = 0;
  std::unique_ptr<Exchange> exchange_;
};

extern template class DataParallel<float>;
extern template class DataParallel<double>;

/// @}

}  // namespace tapegrad::dist
