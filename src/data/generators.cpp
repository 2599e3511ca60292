#include "tapegrad/data/generators.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "tapegrad/random.hpp"

namespace tapegrad::data {

namespace {

// K distinct corners of {-s, +s}^dims in random order, one row of `dims` coordinates each.
std::vector<std::vector<double>> hypercube_vertices(std::size_t count, std::size_t dims, double s,
                                                    Generator& random) {
  std::vector<std::vector<double>> vertices;
  vertices.reserve(count);
  if (dims < 64) {
    // A vertex is a dims-bit code (bit k set: coordinate k is +s). Floyd's algorithm draws
    // `count` distinct codes from [0, 2^dims) with exactly `count` draws, however full the
    // cube gets; its insertion order is not uniform, hence the shuffle after it.
    const std::uint64_t total = std::uint64_t{1} << dims;
    std::unordered_set<std::uint64_t> chosen;
    std::vector<std::uint64_t> codes;
    for (std::uint64_t j = total - count; j < total; ++j) {
      const std::uint64_t t = random.next_u64() % (j + 1);
      const std::uint64_t code = chosen.count(t) ? j : t;
      chosen.insert(code);
      codes.push_back(code);
    }
    for (std::size_t position : random_permutation(count, random)) {
      std::vector<double> vertex(dims);
      for (std::size_t k = 0; k < dims; ++k) vertex[k] = (codes[position] >> k) & 1u ? s : -s;
      vertices.push_back(std::move(vertex));
    }
  } else {
    // 2^64 or more corners: a repeat is all but impossible, so rejection costs nothing.
    std::set<std::vector<bool>> seen;
    while (vertices.size() < count) {
      std::vector<bool> bits(dims);
      for (std::size_t k = 0; k < dims; ++k) bits[k] = (random.next_u64() >> 63) != 0;
      if (!seen.insert(bits).second) continue;
      std::vector<double> vertex(dims);
      for (std::size_t k = 0; k < dims; ++k) vertex[k] = bits[k] ? s : -s;
      vertices.push_back(std::move(vertex));
    }
  }
  return vertices;
}

// A matrix of shape (rows, columns), row-major, entries uniform in [-1, 1).
std::vector<double> uniform_matrix(std::size_t rows, std::size_t columns, Generator& random) {
  std::vector<double> m(rows * columns);
  for (auto& v : m) v = random.uniform(-1.0, 1.0);
  return m;
}

void check_noise(double noise, const char* function) {
  if (!(noise >= 0) || !std::isfinite(noise)) {
    throw ValueError(std::string(function) + ": noise is " + number_to_string(noise) +
                     "; expected a finite standard deviation >= 0");
  }
}

}  // namespace

Dataset<double> make_classification(const ClassificationOptions& options) {
  const std::size_t n = options.samples(), features = options.features(),
                    informative = options.informative(), redundant = options.redundant(),
                    classes = options.classes(), per_class = options.clusters_per_class();
  const double separation = options.class_separation(), flip = options.flip_fraction();
  const auto fail = [](const std::string& what) {
    throw ValueError("make_classification: " + what);
  };
  if (n == 0) fail("samples is 0; expected at least 1");
  if (features == 0) fail("features is 0; expected at least 1");
  if (informative == 0) fail("informative is 0; expected at least 1 informative feature");
  if (informative > features || redundant > features - informative) {
    fail("informative (" + std::to_string(informative) + ") + redundant (" +
         std::to_string(redundant) + ") exceeds features (" + std::to_string(features) +
         "); expected at most that many");
  }
  if (classes < 2) fail("classes is " + std::to_string(classes) + "; expected at least 2");
  if (per_class == 0) fail("clusters_per_class is 0; expected at least 1");
  if (per_class > SIZE_MAX / classes) {
    fail("classes (" + std::to_string(classes) + ") * clusters_per_class (" +
         std::to_string(per_class) + ") overflows");
  }
  checked_size("make_classification", {n, features});
  const std::size_t clusters = classes * per_class;
  if (clusters > n) {
    fail("classes (" + std::to_string(classes) + ") * clusters_per_class (" +
         std::to_string(per_class) + ") = " + std::to_string(clusters) + " clusters for " +
         std::to_string(n) + " samples; expected at most one cluster per sample");
  }
  if (informative < 64 && (std::uint64_t{1} << informative) < clusters) {
    fail("classes (" + std::to_string(classes) + ") * clusters_per_class (" +
         std::to_string(per_class) + ") = " + std::to_string(clusters) +
         " clusters need as many distinct hypercube vertices, but 2^informative = " +
         std::to_string(std::uint64_t{1} << informative) + "; use more informative features");
  }
  if (!(separation >= 0) || !std::isfinite(separation)) {
    fail("class_separation is " + number_to_string(separation) + "; expected a finite value >= 0");
  }
  if (!(flip >= 0 && flip <= 1)) {
    fail("flip_fraction is " + number_to_string(flip) + "; expected a value in [0, 1]");
  }

  Generator random(options.seed());
  const auto centroids = hypercube_vertices(clusters, informative, separation, random);

  xt::xarray<double> x = xt::xarray<double>::from_shape({n, features});
  double* const data = x.data();
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < informative; ++k) data[i * features + k] = random.normal();

  std::vector<std::size_t> label(n);
  std::vector<double> z(informative);
  std::size_t start = 0;
  for (std::size_t c = 0; c < clusters; ++c) {
    const std::size_t stop = start + n / clusters + (c < n % clusters ? 1 : 0);
    const auto a = uniform_matrix(informative, informative, random);
    for (std::size_t i = start; i < stop; ++i) {
      label[i] = c % classes;
      double* row = data + i * features;
      std::copy_n(row, informative, z.begin());
      for (std::size_t j = 0; j < informative; ++j) {
        double v = centroids[c][j];
        for (std::size_t k = 0; k < informative; ++k) v += z[k] * a[k * informative + j];
        row[j] = v;
      }
    }
    start = stop;
  }

  if (redundant > 0) {
    const auto b = uniform_matrix(informative, redundant, random);
    for (std::size_t i = 0; i < n; ++i) {
      double* row = data + i * features;
      for (std::size_t j = 0; j < redundant; ++j) {
        double v = 0;
        for (std::size_t k = 0; k < informative; ++k) v += row[k] * b[k * redundant + j];
        row[informative + j] = v;
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = informative + redundant; j < features; ++j)
      data[i * features + j] = random.normal();

  if (flip > 0) {
    for (auto& l : label) {
      if (random.uniform() < flip) l = static_cast<std::size_t>(random.next_u64() % classes);
    }
  }

  xt::xarray<double> y = xt::xarray<double>::from_shape({n});
  if (!options.shuffle()) {
    for (std::size_t i = 0; i < n; ++i) y(i) = static_cast<double>(label[i]);
    return Dataset<double>(std::move(x), std::move(y));
  }
  const auto rows = random_permutation(n, random);
  const auto columns = random_permutation(features, random);
  xt::xarray<double> shuffled = xt::xarray<double>::from_shape({n, features});
  for (std::size_t i = 0; i < n; ++i) {
    y(i) = static_cast<double>(label[rows[i]]);
    for (std::size_t j = 0; j < features; ++j)
      shuffled.data()[i * features + j] = data[rows[i] * features + columns[j]];
  }
  return Dataset<double>(std::move(shuffled), std::move(y));
}

Dataset<double> make_regression(std::size_t samples, std::size_t features, double noise,
                                std::uint64_t seed, std::size_t informative) {
  if (samples == 0) throw ValueError("make_regression: samples is 0; expected at least 1");
  if (features == 0) throw ValueError("make_regression: features is 0; expected at least 1");
  if (informative > features) {
    throw ValueError("make_regression: informative (" + std::to_string(informative) +
                     ") exceeds features (" + std::to_string(features) +
                     "); expected at most that many (0 means all)");
  }
  check_noise(noise, "make_regression");
  checked_size("make_regression", {samples, features});
  const std::size_t useful = informative == 0 ? features : informative;

  Generator random(seed);
  xt::xarray<double> x = xt::xarray<double>::from_shape({samples, features});
  for (auto& v : x) v = random.normal();
  std::vector<double> w(features, 0.0);
  for (std::size_t j = 0; j < useful; ++j) w[j] = random.uniform(0.0, 100.0);

  xt::xarray<double> y = xt::xarray<double>::from_shape({samples});
  for (std::size_t i = 0; i < samples; ++i) {
    double v = 0;
    for (std::size_t j = 0; j < features; ++j) v += x(i, j) * w[j];
    y(i) = v;
  }
  // Drawn after y so that the noise-free problem is the same for every noise level.
  if (noise > 0) {
    for (auto& v : y) v += noise * random.normal();
  }
  return Dataset<double>(std::move(x), std::move(y));
}

Dataset<double> make_moons(std::size_t samples, double noise, std::uint64_t seed) {
  if (samples < 2) {
    throw ValueError("make_moons: " + std::to_string(samples) +
                     " samples; expected at least 2 (one per moon)");
  }
  check_noise(noise, "make_moons");
  checked_size("make_moons", {samples, 2});
  const double pi = 3.14159265358979323846;
  const std::size_t first = (samples + 1) / 2, second = samples / 2;
  const auto angle = [pi](std::size_t i, std::size_t count) {
    return count == 1 ? 0.0 : pi * static_cast<double>(i) / static_cast<double>(count - 1);
  };

  xt::xarray<double> points = xt::xarray<double>::from_shape({samples, 2});
  xt::xarray<double> labels = xt::xarray<double>::from_shape({samples});
  for (std::size_t i = 0; i < first; ++i) {
    const double t = angle(i, first);
    points(i, 0) = std::cos(t);
    points(i, 1) = std::sin(t);
    labels(i) = 0;
  }
  for (std::size_t i = 0; i < second; ++i) {
    const double t = angle(i, second);
    points(first + i, 0) = 1 - std::cos(t);
    points(first + i, 1) = 0.5 - std::sin(t);
    labels(first + i) = 1;
  }

  Generator random(seed);
  Dataset<double> moons(std::move(points), std::move(labels));
  moons = moons.subset(random_permutation(samples, random));
  if (noise > 0) {
    for (auto& v : moons.features) v += noise * random.normal();
  }
  return moons;
}

}  // namespace tapegrad::data
