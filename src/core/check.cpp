#include "tapegrad/check.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "core/sweep.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"

namespace tapegrad {

namespace {

struct Defaults {
  double step, atol, rtol;
};

// The options' step and tolerances, each zero replaced by the default of T.
template <class T>
Defaults resolved(const GradcheckOptions& options) {
  const Defaults d = std::is_same_v<T, double> ? Defaults{1e-6, 1e-7, 1e-6} : Defaults{1e-2, 1e-3, 1e-2};
  return {options.step > 0 ? options.step : d.step, options.atol > 0 ? options.atol : d.atol,
          options.rtol > 0 ? options.rtol : d.rtol};
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


// Central differences of `evaluate` (which reads the leaves' current values) with respect
// to every element of every leaf; the difference uses the step actually taken after
// rounding to T.
template <class T, class Evaluate>
std::vector<xt::xarray<double>> numeric_gradient(std::vector<Tensor<T>>& leaves, double step,
                                                 const Evaluate& evaluate) {
  std::vector<xt::xarray<double>> result;
  for (auto& x : leaves) {
    xt::xarray<double> g = xt::zeros<double>(x.shape());
    for (std::size_t j = 0; j < x.size(); ++j) {
      const T original = x.value().data()[j];
      const T plus = static_cast<T>(original + step);
      const T minus = static_cast<T>(original - step);
      x.mutable_value().data()[j] = plus;
      const double f_plus = evaluate();
      x.mutable_value().data()[j] = minus;
      const double f_minus = evaluate();
      x.mutable_value().data()[j] = original;
      g.data()[j] = (f_plus - f_minus) / (static_cast<double>(plus) - static_cast<double>(minus));
    }
    result.push_back(std::move(g));
  }
  return result;
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
  const auto [step, atol, rtol] = resolved<T>(options);
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
  // Only into the leaf copies: f may read the caller's parameters or tape.
  detail::backward_into(loss, Tensor<T>(T(1)), BackwardMode{}, leaves);

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

  const auto numeric_all = numeric_gradient(leaves, step, weighted_sum);
  double worst_ratio = -1;
  double largest_gradient = 0;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    auto& x = leaves[i];
    const xt::xarray<T> tape_grad =
        x.has_grad() ? xt::xarray<T>(x.grad()) : xt::xarray<T>(xt::zeros<T>(x.shape()));
    for (std::size_t j = 0; j < x.size(); ++j) {
      const double numeric = numeric_all[i].data()[j];
      const double analytic = static_cast<double>(tape_grad.data()[j]);
      const double error = std::abs(analytic - numeric);
      const double tolerance = atol + rtol * std::abs(numeric);
      largest_gradient = std::max({largest_gradient, std::abs(analytic), std::abs(numeric)});
      const double ratio = std::isnan(error) ? INFINITY : error / tolerance;
      if (ratio > worst_ratio) {
        worst_ratio = ratio;
        report.worst_input = i;
        report.worst_flat_index = j;
        report.worst_position = unravel_index(j, x.shape());
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

template <class T>
HandGradientReport check_hand_gradient(const TensorFunction<T>& f, const HandGradient<T>& hand,
                                       const std::vector<std::vector<xt::xarray<T>>>& points,
                                       const GradcheckOptions& options) {
  const auto [step, atol, rtol] = resolved<T>(options);
  HandGradientReport report;
  double worst = 0;
  for (std::size_t point = 0; point < points.size(); ++point) {
    std::vector<Tensor<T>> leaves;
    for (const auto& value : points[point]) leaves.emplace_back(xt::xarray<T>(value), requires_grad);
    {
      Tape tape;
      const Tensor<T> y = f(leaves);
      if (y.size() != 1) {
        throw ShapeError("check_hand_gradient: f must return a single element, got shape " +
                         shape_to_string(y.shape()));
      }
      if (y.requires_grad()) {
        detail::backward_into(y, Tensor<T>(xt::xarray<T>(xt::ones<T>(y.shape()))), BackwardMode{}, leaves);
      }
    }
    const auto hand_grads = hand(points[point]);
    if (hand_grads.size() != leaves.size()) {
      throw ShapeError("check_hand_gradient: the hand gradient returned " +
                       std::to_string(hand_grads.size()) + " arrays for " +
                       std::to_string(leaves.size()) + " arguments");
    }
    NoGradGuard no_grad;
    const auto numeric = numeric_gradient(leaves, step, [&] {
      return static_cast<double>(f(leaves).item());
    });
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      if (hand_grads[i].shape() != leaves[i].shape()) {
        throw ShapeError("check_hand_gradient: the hand gradient of " + input_name(options, i) +
                         " has shape " + shape_to_string(hand_grads[i].shape()) +
                         " but the argument has shape " + shape_to_string(leaves[i].shape()));
      }
      for (std::size_t j = 0; j < leaves[i].size(); ++j) {
        ++report.elements_checked;
        const double tape_value =
            leaves[i].has_grad() ? static_cast<double>(leaves[i].grad().data()[j]) : 0.0;
        const double hand_value = static_cast<double>(hand_grads[i].data()[j]);
        const double numeric_value = numeric[i].data()[j];
        if (std::abs(tape_value - numeric_value) > atol + rtol * std::abs(numeric_value)) {
          report.tape_disagrees_with_numeric = true;
        }
        const double error = std::abs(hand_value - tape_value);
        worst = std::max(worst, error);
        if (!(error <= atol + rtol * std::abs(tape_value))) {
          report.disagreements.push_back(
              {point, i, unravel_index(j, leaves[i].shape()), tape_value, hand_value, numeric_value});
        }
      }
    }
  }
  std::ostringstream text;
  text << std::setprecision(10);
  if (report.elements_checked == 0) {
    text << "check_hand_gradient: nothing to check (no points, or arguments without elements)";
  } else if (report.disagreements.empty()) {
    report.passed = true;
    text << "the hand gradient agrees with the tape at all " << report.elements_checked
         << " elements of " << points.size() << " point(s); largest difference " << worst;
  } else {
    const auto& first = report.disagreements.front();
    text << "the hand gradient is WRONG at " << report.disagreements.size() << " of "
         << report.elements_checked << " elements; first at point " << first.point << ", "
         << input_name(options, first.input) << " element " << position_text(first.position)
         << ": tape " << first.tape << ", hand " << first.hand << ", finite difference "
         << first.numeric;
  }
  if (report.tape_disagrees_with_numeric) {
    text << " (note: the tape and finite differences disagree somewhere: f may not be smooth "
            "at a point checked)";
  }
  report.message = text.str();
  return report;
}

template HandGradientReport check_hand_gradient<float>(
    const TensorFunction<float>&, const HandGradient<float>&,
    const std::vector<std::vector<xt::xarray<float>>>&, const GradcheckOptions&);
template HandGradientReport check_hand_gradient<double>(
    const TensorFunction<double>&, const HandGradient<double>&,
    const std::vector<std::vector<xt::xarray<double>>>&, const GradcheckOptions&);

template GradcheckReport gradcheck<float>(const TensorFunction<float>&,
                                          const std::vector<Tensor<float>>&,
                                          const GradcheckOptions&);
template GradcheckReport gradcheck<double>(const TensorFunction<double>&,
                                           const std::vector<Tensor<double>>&,
                                           const GradcheckOptions&);

}  // namespace tapegrad
