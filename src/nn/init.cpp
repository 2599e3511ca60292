#include "tapegrad/nn/init.hpp"

#include <cmath>
#include <string>

#include "tapegrad/error.hpp"

namespace tapegrad::nn {

Init Init::uniform(double lo, double hi) {
  if (!(lo <= hi))
    throw ValueError("Init::uniform: lo " + std::to_string(lo) + " > hi " + std::to_string(hi));
  return Init(Kind::uniform, lo, hi);
}
Init Init::normal(double mean, double stddev) {
  if (!(stddev >= 0)) throw ValueError("Init::normal: negative standard deviation");
  return Init(Kind::normal, mean, stddev);
}
Init Init::xavier_uniform(double gain) { return Init(Kind::xavier_uniform, gain, 0); }
Init Init::xavier_normal(double gain) { return Init(Kind::xavier_normal, gain, 0); }
Init Init::he_uniform() { return Init(Kind::he_uniform, 0, 0); }
Init Init::he_normal() { return Init(Kind::he_normal, 0, 0); }
Init Init::constant(double value) { return Init(Kind::constant, value, 0); }

template <class T>
void Init::fill(xt::xarray<T>& values, Generator& random) const {
  const auto& shape = values.shape();
  const bool needs_fans =
      kind_ != Kind::uniform && kind_ != Kind::normal && kind_ != Kind::constant;
  if (needs_fans && (shape.empty() || values.size() == 0)) {
    throw ValueError(
        "Init: Xavier and He read fans from the shape and need one with axes and "
        "elements, got " +
        shape_to_string(shape));
  }
  const double fan_in = shape.empty() ? 1.0 : static_cast<double>(shape[0]);
  const double fan_out = shape.size() < 2 ? fan_in : static_cast<double>(shape[1]);
  for (auto& v : values) {
    double x = 0;
    switch (kind_) {
      case Kind::uniform:
        x = random.uniform(a_, b_);
        break;
      case Kind::normal:
        x = random.normal(a_, b_);
        break;
      case Kind::xavier_uniform: {
        const double bound = a_ * std::sqrt(6.0 / (fan_in + fan_out));
        x = random.uniform(-bound, bound);
        break;
      }
      case Kind::xavier_normal:
        x = random.normal(0, a_ * std::sqrt(2.0 / (fan_in + fan_out)));
        break;
      case Kind::he_uniform: {
        const double bound = std::sqrt(6.0 / fan_in);
        x = random.uniform(-bound, bound);
        break;
      }
      case Kind::he_normal:
        x = random.normal(0, std::sqrt(2.0 / fan_in));
        break;
      case Kind::constant:
        x = a_;
        break;
    }
    v = static_cast<T>(x);
  }
}

template void Init::fill<float>(xt::xarray<float>&, Generator&) const;
template void Init::fill<double>(xt::xarray<double>&, Generator&) const;

}  // namespace tapegrad::nn
