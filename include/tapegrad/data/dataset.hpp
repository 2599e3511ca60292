// Datasets in memory, the loader that cuts them into (mini-)batches, train/test splits and
// feature standardization.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>
#include <xtensor/xarray.hpp>

#include "tapegrad/error.hpp"
#include "tapegrad/random.hpp"

/// Data for training: Dataset, DataLoader, splitting, standardizing, synthetic data sets
/// and the Fashion-MNIST loader.
namespace tapegrad::data {

/// @addtogroup data
/// @{

/// Fisher-Yates shuffle of `values` in place: for i = n-1 down to 1, swap values[i] with
/// values[j], j = random.next_u64() % (i + 1). The same generator state gives the same order
/// on every platform.
void shuffle_indices(std::vector<std::size_t>& values, Generator& random);

/// 0, 1, ..., n-1 shuffled by shuffle_indices() with `random`.
std::vector<std::size_t> random_permutation(std::size_t n, Generator& random);

/// Samples in memory: row i of `features` goes with row i of `targets`.
///
/// - features: shape (N, ...), one sample per row (N = 0 is allowed).
/// - targets: shape (N,) (a class label or a scalar per sample) or (N, k).
///
/// The constructor checks the shapes. The members are public, so code may assign them
/// afterwards: subset(), labels(), DataLoader (at construction and at every epoch()) and
/// train_test_split() check again before reading rows, and throw the constructor's
/// ShapeError (naming the function and both shapes) for arrays out of step.
template <class T = double>
struct Dataset {
  xt::xarray<T> features;  ///< shape (N, ...): one sample per row
  xt::xarray<T> targets;   ///< shape (N,) or (N, k): one target per row

  /// Takes both arrays. Throws ShapeError naming both shapes if either array is 0-d (has no
  /// sample axis) or their first extents differ.
  Dataset(xt::xarray<T> features, xt::xarray<T> targets);

  /// The number of samples N (the first extent). Throws ShapeError naming both shapes if the
  /// (public) arrays were reassigned out of step: a 0-d array, or different first extents.
  std::size_t size() const;

  /// A new dataset with the rows `indices[0], indices[1], ...`, in that order (repeats
  /// allowed). Throws ValueError naming the index and its position if one is >= size(), and
  /// ShapeError if features and targets were reassigned out of step.
  Dataset subset(const std::vector<std::size_t>& indices) const;

  /// The targets as class labels, N of them. Requires targets of shape (N,) whose values
  /// are non-negative integers below 9e15 (0, 1, 2, ... stored as T); throws ValueError
  /// naming the first bad row otherwise (or, for targets that are not 1-d, their shape), and
  /// ShapeError if features and targets were reassigned out of step.
  std::vector<std::size_t> labels() const;
};

/// Settings of a DataLoader, builder style: `LoaderOptions().seed(7).drop_last(true)`.
class LoaderOptions {
 public:
  /// Draw a new random order every epoch (default) or keep the dataset's order.
  LoaderOptions& shuffle(bool on) {
    shuffle_ = on;
    return *this;
  }
  /// Seed of the loader's own Generator (default 0); fixes the whole sequence of epochs.
  LoaderOptions& seed(std::uint64_t value) {
    seed_ = value;
    return *this;
  }
  /// Leave out the last batch of an epoch when it is smaller than the batch size
  /// (default false: keep it).
  LoaderOptions& drop_last(bool on) {
    drop_last_ = on;
    return *this;
  }

  /// Whether each epoch is shuffled.
  bool shuffle() const { return shuffle_; }
  /// The seed of the loader's generator.
  std::uint64_t seed() const { return seed_; }
  /// Whether a short last batch is left out.
  bool drop_last() const { return drop_last_; }

 private:
  bool shuffle_ = true;
  std::uint64_t seed_ = 0;
  bool drop_last_ = false;
};

/// Cuts a dataset into batches, one epoch at a time.
///
/// The batch size chooses the flavour of gradient descent:
/// - batch_size = N (dataset.size()): one batch per epoch, batch (full) gradient descent;
/// - batch_size = 1: one sample per step, stochastic gradient descent;
/// - 1 < batch_size < N: mini-batch gradient descent.
///
/// Each epoch visits every sample exactly once: in a fresh random order with shuffle (the
/// default), in the dataset's order without. The last batch holds the N % batch_size left
/// over samples, unless drop_last leaves it (and them) out for that epoch.
///
/// The shuffled orders come from a Generator seeded once, at construction, with
/// options.seed(): consecutive epochs differ, and two loaders with the same seed give the
/// same sequence of epochs.
///
///     data::DataLoader<double> loader(train, 32, data::LoaderOptions().seed(1));
///     for (int e = 0; e < epochs; ++e)
///       for (const auto& batch : loader.epoch()) { ... batch.features, batch.targets ... }
template <class T = double>
class DataLoader {
 public:
  /// One batch: rows of the dataset's features and targets, and which rows they are.
  struct Batch {
    xt::xarray<T> features;  ///< shape (B, ...): the features' rows indices[0], indices[1], ...
    xt::xarray<T> targets;   ///< shape (B,) or (B, k): the matching targets
    std::vector<std::size_t> indices;  ///< the rows' positions in the dataset
  };

  /// Copies the dataset, so the loader never refers to an object that is gone.
  /// Throws ValueError for batch_size 0, an empty dataset, or drop_last with a batch size
  /// larger than the dataset (every epoch would be empty); ShapeError for a dataset whose
  /// features and targets have different numbers of rows. Any batch size >= N (up to
  /// SIZE_MAX) makes one batch of all N samples without drop_last.
  DataLoader(const Dataset<T>& dataset, std::size_t batch_size,
             const LoaderOptions& options = LoaderOptions());
  /// Shares a dataset instead of copying it. Throws ValueError if `dataset` is null, and
  /// the errors of the other constructor.
  DataLoader(std::shared_ptr<const Dataset<T>> dataset, std::size_t batch_size,
             const LoaderOptions& options = LoaderOptions());

  /// N / batch_size rounded up, or down with drop_last (computed without overflow: a batch
  /// size of SIZE_MAX gives 1). Throws ShapeError as epoch() does for a changed dataset.
  std::size_t batches_per_epoch() const;
  /// The batches_per_epoch() batches of the next epoch, in order, each of batch_size() rows
  /// except a short last one; advances the loader's generator when it shuffles. Throws
  /// ShapeError if a shared dataset was changed so that its features and targets have
  /// different numbers of rows.
  std::vector<Batch> epoch();

  /// The batch size given at construction.
  std::size_t batch_size() const { return batch_size_; }
  /// The options given at construction.
  const LoaderOptions& options() const { return options_; }
  /// The dataset the loader reads (its copy, or the shared one).
  const Dataset<T>& dataset() const { return *dataset_; }
  /// How many times epoch() has been called.
  std::size_t epochs_drawn() const { return epochs_drawn_; }

  /// Where a loader stands in its sequence of epochs: enough to draw the same epochs again
  /// (checkpoints save it, see io::Checkpoint).
  struct Position {
    std::size_t epochs_drawn = 0;    ///< epoch() calls made before this point
    std::uint64_t random_state = 0;  ///< the loader's Generator::state() at this point
  };
  /// The current position: the next epoch() continues from it.
  Position position() const { return {epochs_drawn_, random_.state()}; }
  /// The position just before the latest epoch() call (before any call: the current one).
  /// A checkpoint taken in the middle of an epoch saves it, so that after set_position()
  /// the next epoch() returns the interrupted epoch's batches again, in the same order.
  Position latest_epoch_start() const { return latest_epoch_start_; }
  /// Moves the loader to `position`, taken from a loader over the same dataset with the same
  /// options (the position does not record them): the next epoch() draws what that loader
  /// drew from there. latest_epoch_start() becomes `position` too.
  void set_position(const Position& position);

 private:
  std::shared_ptr<const Dataset<T>> dataset_;
  std::size_t batch_size_;
  LoaderOptions options_;
  Generator random_;
  std::size_t epochs_drawn_ = 0;
  Position latest_epoch_start_;
};

/// Splits a dataset into (train, test), two new datasets.
///
/// The test part has n_test = round(test_fraction * N) samples (halves rounded up), the
/// train part N - n_test; both keep the dataset's other extents. Both parts come out in a
/// random order drawn from Generator(seed), so a seed gives the same split every time.
///
/// With stratify, each class (data.labels(), so targets must be 1-d class labels) is split
/// on its own with the same fraction: class c of n_c samples puts floor(f n_c) or that plus
/// one sample into the test part (the extra ones go to the classes with the largest
/// remainders f n_c - floor(f n_c), ties to the smaller class label), so that the total is
/// still round(f N) and every class is within one sample of its exact share.
///
/// Throws ValueError unless 0 < test_fraction < 1 and both parts get at least one sample;
/// with stratify, also if data.labels() does. Throws ShapeError if data's features and
/// targets have different numbers of rows.
template <class T>
std::pair<Dataset<T>, Dataset<T>> train_test_split(const Dataset<T>& data, double test_fraction,
                                                   std::uint64_t seed, bool stratify = false);

/// Rescales each feature (column) to mean 0 and standard deviation 1:
///   mean_j = (1/N) sum_i x_ij,  std_j = sqrt((1/N) sum_i (x_ij - mean_j)^2)  (population),
///   transform(x)_ij = (x_ij - mean_j) / scale_j,  scale_j = std_j, or 1 for a constant
///   column (std_j = 0, or below rounding noise: std_j <= 10 eps |mean_j|, eps the machine
///   epsilon of T), so transform never divides by zero.
/// Fit it on the training features only and transform the test features with the same
/// statistics, so no information from the test part leaks into training.
template <class T = double>
class Standardizer {
 public:
  /// Learns mean and scale from features of shape (N, F), N >= 1. Throws ShapeError for an
  /// array that is not 2-d and ValueError for N = 0.
  void fit(const xt::xarray<T>& features);
  /// (x - mean) / scale for x of shape (M, F) or (F,); the result has x's shape. Throws
  /// ValueError if not fitted and ShapeError if x is not 1-d or 2-d or its last extent is
  /// not F.
  xt::xarray<T> transform(const xt::xarray<T>& features) const;
  /// fit(features), then transform(features): shape (N, F). Errors as fit().
  xt::xarray<T> fit_transform(const xt::xarray<T>& features);
  /// x * scale + mean: undoes transform(). Same shapes and errors as transform().
  xt::xarray<T> inverse_transform(const xt::xarray<T>& standardized) const;

  /// Whether fit() has succeeded at least once.
  bool fitted() const { return fitted_; }
  /// Per-column means, shape (F,). Throws ValueError if not fitted.
  const xt::xarray<T>& mean() const;
  /// Per-column scales (standard deviations, 1 for constant columns), shape (F,). Throws
  /// ValueError if not fitted.
  const xt::xarray<T>& scale() const;

 private:
  void check_input(const xt::xarray<T>& features, const char* function) const;

  bool fitted_ = false;
  xt::xarray<T> mean_, scale_;
};

extern template struct Dataset<float>;
extern template struct Dataset<double>;
extern template class DataLoader<float>;
extern template class DataLoader<double>;
extern template class Standardizer<float>;
extern template class Standardizer<double>;

/// @}

}  // namespace tapegrad::data
