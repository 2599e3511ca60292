// Fits y = 3x - 1 with an installed tapegrad (no file I/O). Built as C++17 and as C++20 (the
// data then travels through std::span); it prints the standard it was compiled as, so that a
// -std forced by the build flags shows.
#include <algorithm>
#include <cstdio>
#include <vector>
#if __cplusplus >= 202002L
#include <span>
#endif

#include <tapegrad/tapegrad.hpp>

#if __cplusplus >= 202002L
using Values = std::span<const double>;
static const char* const kStandard = "C++20";
#else
using Values = const std::vector<double>&;
static const char* const kStandard = "C++17";
#endif

static tapegrad::Tensor<double> column(Values values) {
  xt::xarray<double> a = xt::xarray<double>::from_shape({values.size(), std::size_t{1}});
  std::copy(values.begin(), values.end(), a.begin());
  return tapegrad::Tensor<double>(a);
}

int main() {
  using namespace tapegrad;
  nn::Linear<double> line(1, 1);
  optim::SGD<double> sgd(line.parameters(), 0.1);
  const std::vector<double> xs{-1.0, 0.0, 1.0, 2.0}, ys{-4.0, -1.0, 2.0, 5.0};
  const auto x = column(xs), y = column(ys);
  for (int step = 0; step < 500; ++step) {
    {
      Tape tape;
      nn::mse(line(x), y).backward();
    }
    sgd.step();
    sgd.zero_grad();
  }
  std::printf("consumer (%s): weight %.6f bias %.6f\n", kStandard, line.weight().value()(0, 0),
              line.bias().value()(0));
  return 0;
}
