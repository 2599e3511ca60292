// A reference fixture made by PyTorch: tests/fixtures/<file>.npz, written by the script
// beside it (run by hand), read once by the test file that compares against it.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <xtensor/xarray.hpp>

#include "tapegrad/io/npz.hpp"

namespace test {

/// The arrays of one fixture file, as float64, by name ("conv2d.stride2.x").
class NpzFixture {
 public:
  /// Reads TAPEGRAD_FIXTURE_DIR/file.
  explicit NpzFixture(std::string file) : file_(std::move(file)) {
    for (const auto& [name, array] :
         tapegrad::io::read_npz(std::string(TAPEGRAD_FIXTURE_DIR) + "/" + file_)) {
      arrays_.emplace(name, array.to<double>());
    }
  }
  /// The array `name`; the test fails, naming the file and the array, if there is none.
  const xt::xarray<double>& get(const std::string& name) const {
    const auto found = arrays_.find(name);
    INFO(file_ << " has no array " << name);
    REQUIRE(found != arrays_.end());
    return found->second;
  }
  /// Whether the file has an array `name`.
  bool has(const std::string& name) const { return arrays_.count(name) != 0; }
  /// The number of arrays (a test checks it, so that a regenerated file is noticed).
  std::size_t size() const { return arrays_.size(); }
  /// The (name, array) pairs in name order.
  auto begin() const { return arrays_.begin(); }
  auto end() const { return arrays_.end(); }

 private:
  std::string file_;
  std::map<std::string, xt::xarray<double>> arrays_;
};

}  // namespace test
