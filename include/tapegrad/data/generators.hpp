// Synthetic datasets for experiments and tests, after scikit-learn's make_classification,
// make_regression and make_moons. Every draw comes from a tapegrad::Generator, so a seed
// gives the same data on every platform (not the same numbers as scikit-learn, whose
// generator differs).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tapegrad/data/dataset.hpp"

namespace tapegrad::data {

/// @addtogroup data
/// @{

/// Settings of make_classification, builder style:
/// `ClassificationOptions().samples(500).features(5).seed(3)`.
class ClassificationOptions {
 public:
  /// Number of samples N (default 1000).
  ClassificationOptions& samples(std::size_t n) {
    samples_ = n;
    return *this;
  }
  /// Total number of features: informative + redundant + noise (default 20).
  ClassificationOptions& features(std::size_t n) {
    features_ = n;
    return *this;
  }
  /// Features that carry the class structure (default 2).
  ClassificationOptions& informative(std::size_t n) {
    informative_ = n;
    return *this;
  }
  /// Random linear combinations of the informative features (default 2).
  ClassificationOptions& redundant(std::size_t n) {
    redundant_ = n;
    return *this;
  }
  /// Number of classes (default 2).
  ClassificationOptions& classes(std::size_t n) {
    classes_ = n;
    return *this;
  }
  /// Gaussian clusters per class (default 2).
  ClassificationOptions& clusters_per_class(std::size_t n) {
    clusters_per_class_ = n;
    return *this;
  }
  /// Half the side of the hypercube the clusters sit on (default 1); larger is easier.
  ClassificationOptions& class_separation(double v) {
    class_separation_ = v;
    return *this;
  }
  /// Probability that a label is replaced by a uniformly random class (default 0.01).
  ClassificationOptions& flip_fraction(double v) {
    flip_fraction_ = v;
    return *this;
  }
  /// Seed of the generator (default 0).
  ClassificationOptions& seed(std::uint64_t v) {
    seed_ = v;
    return *this;
  }
  /// Shuffle the rows and permute the columns (default true).
  ClassificationOptions& shuffle(bool on) {
    shuffle_ = on;
    return *this;
  }

  /// Number of samples N.
  std::size_t samples() const { return samples_; }
  /// Total number of features.
  std::size_t features() const { return features_; }
  /// Number of informative features.
  std::size_t informative() const { return informative_; }
  /// Number of redundant features.
  std::size_t redundant() const { return redundant_; }
  /// Number of classes.
  std::size_t classes() const { return classes_; }
  /// Gaussian clusters per class.
  std::size_t clusters_per_class() const { return clusters_per_class_; }
  /// Half the side of the hypercube.
  double class_separation() const { return class_separation_; }
  /// Probability that a label is replaced.
  double flip_fraction() const { return flip_fraction_; }
  /// Seed of the generator.
  std::uint64_t seed() const { return seed_; }
  /// Whether rows and columns are shuffled.
  bool shuffle() const { return shuffle_; }

 private:
  std::size_t samples_ = 1000, features_ = 20, informative_ = 2, redundant_ = 2, classes_ = 2,
              clusters_per_class_ = 2;
  double class_separation_ = 1.0, flip_fraction_ = 0.01;
  std::uint64_t seed_ = 0;
  bool shuffle_ = true;
};

/// A random classification problem of Gaussian clusters (scikit-learn's recipe). With
/// I = informative, R = redundant, K = classes * clusters_per_class clusters, s =
/// class_separation:
/// 1. The K cluster centroids are K distinct vertices of the hypercube {-s, +s}^I, chosen at
///    random without repetition.
/// 2. The N samples are split among the clusters as evenly as possible (the first N % K
///    clusters get one more); cluster c belongs to class c % classes.
/// 3. A sample of cluster c: z A_c + centroid_c in the informative features, z ~ N(0, I_I),
///    A_c an I x I matrix with entries uniform in [-1, 1) (one per cluster), so clusters
///    have random covariances.
/// 4. Redundant features: X_informative B, B of shape (I, R) uniform in [-1, 1).
/// 5. The remaining features - I - R columns are N(0, 1) noise.
/// 6. Each label is, with probability flip_fraction, replaced by a uniformly random class
///    (which may be its own).
/// 7. With shuffle, the rows are shuffled and the columns permuted; without, the columns
///    are informative, then redundant, then noise, and the rows come cluster by cluster.
///
/// features: shape (N, features); targets: shape (N,), the class 0 .. classes-1 as a double.
/// Throws ValueError for samples, features or informative of 0, informative + redundant >
/// features, classes < 2, clusters_per_class 0, 2^informative < classes *
/// clusters_per_class (not enough vertices), a negative or non-finite class_separation, or
/// flip_fraction outside [0, 1].
Dataset<double> make_classification(const ClassificationOptions& options = ClassificationOptions());

/// A random linear regression problem: X ~ N(0, 1) of shape (samples, features); a
/// coefficient vector w with w_j uniform in [0, 100) for the first `informative` features
/// and 0 for the others (informative = 0 means all features); y = X w + noise * e,
/// e ~ N(0, 1). features: (samples, features); targets: (samples,).
/// Throws ValueError for samples or features of 0, informative > features, or a negative or
/// non-finite noise.
Dataset<double> make_regression(std::size_t samples, std::size_t features, double noise,
                                std::uint64_t seed, std::size_t informative = 0);

/// Two interleaving half circles (scikit-learn's layout). Class 0, ceil(samples / 2)
/// points: (cos t, sin t); class 1, floor(samples / 2) points: (1 - cos t, 0.5 - sin t);
/// t evenly spaced over [0, pi] (both ends included) within each class (t = 0 for a class of
/// one point). The rows are then shuffled and each coordinate gets N(0, noise^2) noise.
/// features: (samples, 2); targets: (samples,) holding 0 or 1.
/// Throws ValueError for fewer than 2 samples or a negative or non-finite noise.
Dataset<double> make_moons(std::size_t samples, double noise, std::uint64_t seed);

/// @}

}  // namespace tapegrad::data
