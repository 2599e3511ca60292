#include "tapegrad/check.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "tapegrad/ops.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"

namespace tapegrad {

namespace {

struct Defaults {
  double step, atol, rtol;
};

template <class T>
Defaults defaults_for() {
  if constexpr (std::is_same_v<T, double>) {
    return {1e-6, 1e-7, 1e-6};
  } else {
    return {1e-2, 1e-3, 1e-2};
  }
}

template <class T>
xt::xarray<T> upstream_weights(const Shape& shape, std::uint64_t seed) {
  xt::xarray<T> w = xt::empty<T>(shape);
  Generator random(seed);
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double magnitude = random.uniform(0.5, 1.5);
    w.data()[i] = static_cast<T>(random.uniform() < 0.5 ? -magnitude : magnitude);
  }
  return w;
}

std::vector<std::size_t> unravel(std::size_t flat, const Shape& shape) {
  std::vector<std::size_t> position(shape.size());
  for (std::size_t i = shape.size(); i-- > 0;) {
    position[i] = flat % shape[i];
    flat /= shape[i];
  }
  return position;
}

std::string input_name(const GradcheckOptions& options, std::size_t i) {
  return i < options.names.size() ? "'" + options.names[i] + "'" : "input " + std::to_string(i);
}

std::string position_text(const std::vector<std::size_t>& position) {
  std::string text = "(";
  for (std::size_t i = 0; i < position.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(position[i]);
  }
  return text + ")";
}

}  // namespace

template <class T>
GradcheckReport gradcheck(const TensorFunction<T>& f, const std::vector<Tensor<T>>& inputs,
                          const GradcheckOptions& options) {
  const Defaults d = defaults_for<T>();
  const double step = options.step > 0 ? options.step : d.step;
  const double atol = options.atol > 0 ? options.atol : d.atol;
  const double rtol = options.rtol > 0 ? options.rtol : d.rtol;
  GradcheckReport report;

  std::vector<Tensor<T>> leaves;
  for (const auto& x : inputs) leaves.emplace_back(xt::xarray<T>(x.value()), requires_grad);

  Tape tape;
  const Tensor<T> y = f(leaves);
  const Tensor<T> weights(upstream_weights<T>(y.shape(), options.seed));
  const Tensor<T> loss = sum(mul(y, weights));
  if (!loss.requires_grad()) {
    report.message = "gradcheck: f's result does not depend on any input through tapegrad ops";
    return report;
  }
  loss.backward();

  NoGradGuard no_grad;
  auto weighted_sum = [&]() {
    const Tensor<T> out = f(leaves);
    if (out.shape() != y.shape()) {
      throw ShapeError("gradcheck: f returned shape " + shape_to_string(out.shape()) +
                       " after returning " + shape_to_string(y.shape()));
    }
    double total = 0;
    for (std::size_t k = 0; k < out.size(); ++k) {
      total += static_cast<double>(out.value().data()[k]) *
               static_cast<double>(weights.value().data()[k]);
    }
    return total;
  };

  double worst_ratio = -1;
  double largest_gradient = 0;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    auto& x = leaves[i];
    const xt::xarray<T> tape_grad =
        x.has_grad() ? xt::xarray<T>(x.grad()) : xt::xarray<T>(xt::zeros<T>(x.shape()));
    for (std::size_t j = 0; j < x.size(); ++j) {
      const T original = x.value().data()[j];
      const T plus = static_cast<T>(original + step);
      const T minus = static_cast<T>(original - step);
      x.mutable_value().data()[j] = plus;
      const double f_plus = weighted_sum();
      x.mutable_value().data()[j] = minus;
      const double f_minus = weighted_sum();
      x.mutable_value().data()[j] = original;
      // The step actually taken, after rounding to T.
      const double numeric =
          (f_plus - f_minus) / (static_cast<double>(plus) - static_cast<double>(minus));
      const double analytic = static_cast<double>(tape_grad.data()[j]);
      const double error = std::abs(analytic - numeric);
      const double tolerance = atol + rtol * std::abs(numeric);
      largest_gradient = std::max({largest_gradient, std::abs(analytic), std::abs(numeric)});
      const double ratio = std::isnan(error) ? INFINITY : error / tolerance;
      if (ratio > worst_ratio) {
        worst_ratio = ratio;
        report.worst_input = i;
        report.worst_flat_index = j;
        report.worst_position = unravel(j, x.shape());
        report.tape_value = analytic;
        report.numeric_value = numeric;
        report.error = error;
        report.tolerance = tolerance;
      }
    }
  }

  std::ostringstream text;
  text << std::setprecision(10);
  if (worst_ratio < 0) {
    report.message = "gradcheck: the inputs have no elements to check";
    return report;
  }
  const std::string where = input_name(options, report.worst_input) + " element " +
                            position_text(report.worst_position);
  if (largest_gradient <= atol && !options.allow_zero_gradient) {
    text << "gradcheck failed: every gradient element is zero on both sides, which proves "
            "nothing; choose inputs where f varies (or set allow_zero_gradient)";
  } else if (worst_ratio > 1) {
    text << "gradcheck failed at " << where << ": tape " << report.tape_value
         << ", finite difference " << report.numeric_value << ", error " << report.error
         << " > tolerance " << report.tolerance;
  } else {
    report.passed = true;
    text << "gradcheck passed: worst error " << report.error << " (tolerance "
         << report.tolerance << ") at " << where;
  }
  report.message = text.str();
  return report;
}

template GradcheckReport gradcheck<float>(const TensorFunction<float>&,
                                          const std::vector<Tensor<float>>&,
                                          const GradcheckOptions&);
template GradcheckReport gradcheck<double>(const TensorFunction<double>&,
                                           const std::vector<Tensor<double>>&,
                                           const GradcheckOptions&);

}  // namespace tapegrad
