#include "tapegrad/data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>

#include "core/shape.hpp"

namespace tapegrad::data {

namespace {

// Elements per sample: the product of the extents after the first. Computed from the shape
// rather than size() / N so that it is right for N = 0 too.
std::size_t row_length(const Shape& shape) {
  return tapegrad::detail::extent_product(shape, 1, shape.size());
}

// xt::xarray<T> is row-major, so a sample is a contiguous block and a gather is a loop of
// block copies, whatever the number of axes.
template <class T>
xt::xarray<T> gather_rows(const xt::xarray<T>& source, const std::vector<std::size_t>& rows) {
  Shape shape = source.shape();
  shape[0] = rows.size();
  xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
  const std::size_t length = row_length(shape);
  const T* from = source.data();
  T* to = out.data();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::copy_n(from + rows[i] * length, length, to + i * length);
  }
  return out;
}

// The members are public, so they can be reassigned out of step after construction; every
// function that reads rows checks again rather than trusting the constructor's check.
template <class T>
void check_rows(const Dataset<T>& data, const char* function) {
  const auto& features = data.features;
  const auto& targets = data.targets;
  const std::string shapes = std::string(function) + ": features of shape " +
                             shape_to_string(features.shape()) + " and targets of shape " +
                             shape_to_string(targets.shape());
  checked_size(function, features.shape());  // an array's own size() wraps around
  checked_size(function, targets.shape());
  if (features.dimension() == 0 || targets.dimension() == 0) {
    throw ShapeError(
        shapes + "; both need a first (sample) axis: features (N, ...), targets (N,) or (N, k)");
  }
  if (features.shape()[0] != targets.shape()[0]) {
    throw ShapeError(shapes + " have different numbers of samples (" +
                     std::to_string(features.shape()[0]) + " and " +
                     std::to_string(targets.shape()[0]) + "); expected equal first extents");
  }
}

}  // namespace

template <class T>
std::size_t Dataset<T>::size() const {
  check_rows(*this, "Dataset::size");
  return features.shape()[0];
}

void shuffle_indices(std::vector<std::size_t>& values, Generator& random) {
  for (std::size_t i = values.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(random.next_u64() % i);
    std::swap(values[i - 1], values[j]);
  }
}

std::vector<std::size_t> random_permutation(std::size_t n, Generator& random) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  shuffle_indices(order, random);
  return order;
}

// ---- Dataset ----

template <class T>
Dataset<T>::Dataset(xt::xarray<T> features_in, xt::xarray<T> targets_in)
    : features(std::move(features_in)), targets(std::move(targets_in)) {
  check_rows(*this, "Dataset");
}

template <class T>
Dataset<T> Dataset<T>::subset(const std::vector<std::size_t>& indices) const {
  check_rows(*this, "Dataset::subset");
  const std::size_t n = size();
  for (std::size_t position = 0; position < indices.size(); ++position) {
    if (indices[position] >= n) {
      throw ValueError("Dataset::subset: index " + std::to_string(indices[position]) +
                       " (at position " + std::to_string(position) +
                       ") is out of range; expected an index below the dataset's size " +
                       std::to_string(n));
    }
  }
  return Dataset(gather_rows(features, indices), gather_rows(targets, indices));
}

template <class T>
std::vector<std::size_t> Dataset<T>::labels() const {
  check_rows(*this, "Dataset::labels");
  if (targets.dimension() != 1) {
    throw ValueError("Dataset::labels: expected targets of shape (N,) holding class labels, got " +
                     shape_to_string(targets.shape()));
  }
  std::vector<std::size_t> out(targets.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const T v = targets(i);
    // The upper bound keeps the conversion to size_t defined.
    if (!(v >= 0) || std::floor(v) != v || !(v < static_cast<T>(9.0e15))) {
      throw ValueError("Dataset::labels: the target of row " + std::to_string(i) + " is " +
                       number_to_string(v) + "; expected a non-negative integer class label");
    }
    out[i] = static_cast<std::size_t>(v);
  }
  return out;
}

// ---- DataLoader ----

template <class T>
DataLoader<T>::DataLoader(const Dataset<T>& dataset, std::size_t batch_size,
                          const LoaderOptions& options)
    : DataLoader(std::make_shared<const Dataset<T>>(dataset), batch_size, options) {}

template <class T>
DataLoader<T>::DataLoader(std::shared_ptr<const Dataset<T>> dataset, std::size_t batch_size,
                          const LoaderOptions& options)
    : dataset_(std::move(dataset)),
      batch_size_(batch_size),
      options_(options),
      random_(options.seed()),
      latest_epoch_start_{0, random_.state()} {
  if (!dataset_) throw ValueError("DataLoader: the dataset pointer is null; pass a dataset");
  check_rows(*dataset_, "DataLoader");
  const std::size_t n = dataset_->size();
  if (batch_size_ == 0) {
    throw ValueError(
        "DataLoader: batch size 0; expected at least 1 (1: stochastic gradient descent, " +
        std::to_string(n) +
        " = the dataset's size: batch gradient descent, in between: "
        "mini-batches)");
  }
  if (n == 0) {
    throw ValueError("DataLoader: the dataset has no samples; give the loader at least one");
  }
  if (options_.drop_last() && batch_size_ > n) {
    throw ValueError("DataLoader: batch size " + std::to_string(batch_size_) +
                     " with drop_last exceeds the dataset's " + std::to_string(n) +
                     " samples, so every epoch would be empty; use a batch size of at most " +
                     std::to_string(n) + " or drop_last(false)");
  }
}

template <class T>
std::size_t DataLoader<T>::batches_per_epoch() const {
  const std::size_t n = dataset_->size();
  // n / b rounded up without forming n + b - 1, which overflows for b near SIZE_MAX.
  return n / batch_size_ + (!options_.drop_last() && n % batch_size_ != 0 ? 1 : 0);
}

template <class T>
std::vector<typename DataLoader<T>::Batch> DataLoader<T>::epoch() {
  // A shared dataset can be changed by its owner after the loader was made.
  check_rows(*dataset_, "DataLoader::epoch");
  latest_epoch_start_ = position();
  const std::size_t n = dataset_->size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (options_.shuffle()) shuffle_indices(order, random_);
  ++epochs_drawn_;

  const std::size_t count = batches_per_epoch();
  std::vector<Batch> batches;
  batches.reserve(count);
  for (std::size_t b = 0; b < count; ++b) {
    const std::size_t start = b * batch_size_;
    const std::size_t stop = start + std::min(batch_size_, n - start);
    Batch batch;
    batch.indices.assign(order.begin() + static_cast<std::ptrdiff_t>(start),
                         order.begin() + static_cast<std::ptrdiff_t>(stop));
    batch.features = gather_rows(dataset_->features, batch.indices);
    batch.targets = gather_rows(dataset_->targets, batch.indices);
    batches.push_back(std::move(batch));
  }
  return batches;
}

template <class T>
void DataLoader<T>::set_position(const Position& position) {
  epochs_drawn_ = position.epochs_drawn;
  random_.set_state(position.random_state);
  latest_epoch_start_ = position;
}

// ---- train_test_split ----

template <class T>
std::pair<Dataset<T>, Dataset<T>> train_test_split(const Dataset<T>& data, double test_fraction,
                                                   std::uint64_t seed, bool stratify) {
  check_rows(data, "train_test_split");
  const std::size_t n = data.size();
  if (!(test_fraction > 0 && test_fraction < 1)) {
    throw ValueError("train_test_split: test_fraction is " + number_to_string(test_fraction) +
                     "; expected a value strictly between 0 and 1");
  }
  const auto test_size =
      static_cast<std::size_t>(std::llround(test_fraction * static_cast<double>(n)));
  if (test_size == 0 || test_size >= n) {
    throw ValueError("train_test_split: " + std::to_string(n) + " samples with test_fraction " +
                     number_to_string(test_fraction) + " give " + std::to_string(test_size) +
                     " test and " + std::to_string(n - std::min(test_size, n)) +
                     " training samples; expected both parts non-empty (more samples or "
                     "another fraction)");
  }

  Generator random(seed);
  std::vector<std::size_t> train, test;
  if (!stratify) {
    const auto order = random_permutation(n, random);
    test.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(test_size));
    train.assign(order.begin() + static_cast<std::ptrdiff_t>(test_size), order.end());
  } else {
    const auto labels = data.labels();
    // One bucket per distinct label, in label order (labels may be sparse and large).
    std::vector<std::size_t> distinct(labels.begin(), labels.end());
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    const std::size_t classes = distinct.size();
    std::vector<std::vector<std::size_t>> members(classes);
    for (std::size_t i = 0; i < n; ++i) {
      const auto bucket = std::lower_bound(distinct.begin(), distinct.end(), labels[i]);
      members[static_cast<std::size_t>(bucket - distinct.begin())].push_back(i);
    }

    // Largest-remainder rounding: every class gets the floor of its exact share, and the
    // rows still missing from round(f N) go one each to the classes closest to rounding up.
    std::vector<std::size_t> quota(classes);
    std::vector<double> remainder(classes);
    std::size_t assigned = 0;
    for (std::size_t c = 0; c < classes; ++c) {
      const double exact = test_fraction * static_cast<double>(members[c].size());
      quota[c] = static_cast<std::size_t>(std::floor(exact));
      remainder[c] = exact - std::floor(exact);
      assigned += quota[c];
    }
    std::vector<std::size_t> by_remainder(classes);
    std::iota(by_remainder.begin(), by_remainder.end(), std::size_t{0});
    std::stable_sort(by_remainder.begin(), by_remainder.end(),
                     [&](std::size_t a, std::size_t b) { return remainder[a] > remainder[b]; });
    for (std::size_t k = 0; assigned < test_size && k < classes; ++k) {
      const std::size_t c = by_remainder[k];
      if (quota[c] < members[c].size()) {
        ++quota[c];
        ++assigned;
      }
    }

    for (std::size_t c = 0; c < classes; ++c) {
      shuffle_indices(members[c], random);
      const auto cut = members[c].begin() + static_cast<std::ptrdiff_t>(quota[c]);
      test.insert(test.end(), members[c].begin(), cut);
      train.insert(train.end(), cut, members[c].end());
    }
    // Without this the parts would be sorted by class, which a loader without shuffle would
    // then feed class by class.
    shuffle_indices(test, random);
    shuffle_indices(train, random);
  }
  return {data.subset(train), data.subset(test)};
}

// ---- Standardizer ----

template <class T>
void Standardizer<T>::fit(const xt::xarray<T>& features) {
  if (features.dimension() != 2) {
    throw ShapeError("Standardizer::fit: expected features of shape (N, F), got " +
                     shape_to_string(features.shape()));
  }
  const std::size_t rows = features.shape()[0], columns = features.shape()[1];
  if (rows == 0) {
    throw ValueError("Standardizer::fit: the features " + shape_to_string(features.shape()) +
                     " have no rows; expected at least one sample to fit on");
  }
  // Two passes, accumulated in double: float data keep full precision, and the deviations
  // from the mean do not cancel catastrophically as sum(x^2) - N mean^2 would.
  std::vector<double> mean(columns, 0.0), squares(columns, 0.0);
  const T* x = features.data();
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < columns; ++j) mean[j] += static_cast<double>(x[i * columns + j]);
  for (auto& m : mean) m /= static_cast<double>(rows);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < columns; ++j) {
      const double d = static_cast<double>(x[i * columns + j]) - mean[j];
      squares[j] += d * d;
    }

  xt::xarray<T> mean_out = xt::xarray<T>::from_shape({columns});
  xt::xarray<T> scale_out = xt::xarray<T>::from_shape({columns});
  // A constant column's computed mean can be off by an ulp, leaving a std of rounding noise
  // rather than 0; dividing by that would blow the column up instead of centring it.
  const double noise = 10.0 * static_cast<double>(std::numeric_limits<T>::epsilon());
  for (std::size_t j = 0; j < columns; ++j) {
    const double sd = std::sqrt(squares[j] / static_cast<double>(rows));
    mean_out(j) = static_cast<T>(mean[j]);
    scale_out(j) = static_cast<T>(sd <= noise * std::abs(mean[j]) || sd == 0 ? 1.0 : sd);
  }
  mean_ = std::move(mean_out);
  scale_ = std::move(scale_out);
  fitted_ = true;
}

template <class T>
void Standardizer<T>::check_input(const xt::xarray<T>& features, const char* function) const {
  if (!fitted_) {
    throw ValueError(std::string("Standardizer::") + function +
                     ": not fitted; call fit() on the training features first");
  }
  const std::size_t columns = mean_.size();
  const auto& shape = features.shape();
  if (shape.empty() || shape.size() > 2 || shape.back() != columns) {
    throw ShapeError(std::string("Standardizer::") + function + ": expected (N, " +
                     std::to_string(columns) + ") or (" + std::to_string(columns) +
                     ",) (the fitted column count), got " + shape_to_string(shape));
  }
}

template <class T>
xt::xarray<T> Standardizer<T>::transform(const xt::xarray<T>& features) const {
  check_input(features, "transform");
  return (features - mean_) / scale_;
}

template <class T>
xt::xarray<T> Standardizer<T>::fit_transform(const xt::xarray<T>& features) {
  fit(features);
  return transform(features);
}

template <class T>
xt::xarray<T> Standardizer<T>::inverse_transform(const xt::xarray<T>& standardized) const {
  check_input(standardized, "inverse_transform");
  return standardized * scale_ + mean_;
}

template <class T>
const xt::xarray<T>& Standardizer<T>::mean() const {
  if (!fitted_) throw ValueError("Standardizer::mean: not fitted; call fit() first");
  return mean_;
}

template <class T>
const xt::xarray<T>& Standardizer<T>::scale() const {
  if (!fitted_) throw ValueError("Standardizer::scale: not fitted; call fit() first");
  return scale_;
}

template struct Dataset<float>;
template struct Dataset<double>;
template class DataLoader<float>;
template class DataLoader<double>;
template class Standardizer<float>;
template class Standardizer<double>;
template std::pair<Dataset<float>, Dataset<float>> train_test_split(const Dataset<float>&, double,
                                                                    std::uint64_t, bool);
template std::pair<Dataset<double>, Dataset<double>> train_test_split(const Dataset<double>&,
                                                                      double, std::uint64_t, bool);

}  // namespace tapegrad::data
