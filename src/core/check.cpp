#include "tapegrad/check.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <tuple>

#include "core/sweep.hpp"
#include "tapegrad/functional.hpp"
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
  const Defaults d =
      std::is_same_v<T, double> ? Defaults{1e-6, 1e-7, 1e-6} : Defaults{1e-2, 1e-3, 1e-2};
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

// "[0, 1]", or "" for no indices.
std::string index_text(const std::vector<std::size_t>& position) {
  if (position.empty()) return "";
  std::string text = "[";
  for (std::size_t k = 0; k < position.size(); ++k)
    text += (k ? ", " : "") + std::to_string(position[k]);
  return text + "]";
}

// "x[0, 1]": an element of input i as a partial derivative's denominator names it.
std::string symbol(const GradcheckOptions& options, std::size_t i, std::size_t count,
                   const std::vector<std::size_t>& position) {
  const std::string name = i < options.names.size() ? options.names[i]
                           : count == 1             ? "x"
                                                    : "x" + std::to_string(i);
  return name + index_text(position);
}

constexpr std::size_t max_reported = 5;

// For each chosen input element (input, flat index), the output element where the tape's
// and the central difference's d f[out] / d x[element] disagree most. The tape's columns
// come from f recorded once more on fresh copies (the differences have since changed the
// leaves in place, which the version counters forbid backward to see) and one backward
// pass per output element; the numeric ones from two evaluations of f per chosen element.
template <class T, class Evaluate>
std::vector<GradcheckEntry> plain_partials(
    const TensorFunction<T>& f, const Tensor<T>& y, std::vector<Tensor<T>>& leaves,
    const std::vector<std::pair<std::size_t, std::size_t>>& chosen, double step, double atol,
    double rtol, const Evaluate& evaluate) {
  std::vector<xt::xarray<double>> tape(chosen.size(),
                                       xt::xarray<double>(xt::zeros<double>({y.size()})));
  {
    std::vector<Tensor<T>> copies;
    for (const auto& x : leaves) copies.emplace_back(xt::xarray<T>(x.value()), requires_grad);
    Tape recording;
    const Tensor<T> again = f(copies);
    if (again.shape() != y.shape()) {
      throw ShapeError("gradcheck: f returned shape " + shape_to_string(again.shape()) +
                       " after returning " + shape_to_string(y.shape()));
    }
    for (std::size_t out = 0; out < y.size() && again.requires_grad(); ++out) {
      for (auto& copy : copies) copy.zero_grad();
      xt::xarray<T> pick = xt::zeros<T>(y.shape());
      pick.data()[out] = T(1);
      detail::backward_into(again, Tensor<T>(std::move(pick)), retain_graph, copies);
      for (std::size_t c = 0; c < chosen.size(); ++c) {
        const auto& copy = copies[chosen[c].first];
        if (copy.has_grad())
          tape[c](out) = static_cast<double>(copy.grad().data()[chosen[c].second]);
      }
    }
  }
  NoGradGuard no_grad;
  std::vector<GradcheckEntry> entries;
  for (std::size_t c = 0; c < chosen.size(); ++c) {
    const auto [i, j] = chosen[c];
    auto& x = leaves[i];
    const T original = x.value().data()[j];
    const T plus = static_cast<T>(original + step), minus = static_cast<T>(original - step);
    x.mutable_value().data()[j] = plus;
    const xt::xarray<double> f_plus = evaluate();
    x.mutable_value().data()[j] = minus;
    const xt::xarray<double> f_minus = evaluate();
    x.mutable_value().data()[j] = original;
    const xt::xarray<double> numeric =
        (f_plus - f_minus) / (static_cast<double>(plus) - static_cast<double>(minus));
    GradcheckEntry entry;
    double worst_ratio = -1;
    for (std::size_t out = 0; out < y.size(); ++out) {
      const double error = std::abs(tape[c](out) - numeric.data()[out]);
      const double tolerance = atol + rtol * std::abs(numeric.data()[out]);
      const double ratio = std::isnan(error) ? INFINITY : error / tolerance;
      if (ratio <= worst_ratio) continue;
      worst_ratio = ratio;
      entry = {i,
               unravel_index(j, x.shape()),
               out,
               unravel_index(out, y.shape()),
               true,
               tape[c](out),
               numeric.data()[out],
               error,
               tolerance};
    }
    entries.push_back(entry);
  }
  return entries;
}

// Every value the hand gradient and the tape gave for one argument, over all points in turn.
struct ArgumentValues {
  Shape shape;
  std::vector<double> tape, hand;
  bool wrong = false;  // some element disagrees
};

// "a missing 1/24" when c is (nearly) a whole number n > 1, "an extra 1/n" when 1/c is.
std::string factor_hint(double c) {
  const double magnitude = std::abs(c);
  const auto whole = [](double v) { return v >= 1.5 && std::abs(v - std::round(v)) < 1e-3 * v; };
  std::ostringstream hint;
  if (whole(magnitude)) {
    hint << " (a missing 1/" << std::llround(magnitude) << ", such as a mean's 1/N?)";
  } else if (magnitude > 0 && whole(1 / magnitude)) {
    hint << " (an extra 1/" << std::llround(1 / magnitude) << "?)";
  }
  return hint.str();
}

// What the disagreement in one argument looks like, or "": the hand gradient is c times the
// tape's (least squares c, then every element within tolerance of c * tape), or for a square
// matrix the tape's transposed.
std::string diagnose(const ArgumentValues& v, double atol, double rtol) {
  double tape_tape = 0, hand_tape = 0, largest = 0;
  for (std::size_t k = 0; k < v.tape.size(); ++k) {
    tape_tape += v.tape[k] * v.tape[k];
    hand_tape += v.hand[k] * v.tape[k];
    largest = std::max(largest, std::abs(v.tape[k]));
  }
  if (largest > atol) {
    const double c = hand_tape / tape_tape;
    bool fits = true;
    for (std::size_t k = 0; k < v.tape.size() && fits; ++k) {
      fits = std::abs(v.hand[k] - c * v.tape[k]) <= atol + rtol * std::abs(c * v.tape[k]);
    }
    std::ostringstream text;
    if (fits && std::abs(c) <= rtol) {
      text << "your gradient is zero at every element, the tape's is not";
    } else if (fits && std::abs(c + 1) <= rtol) {
      text << "your gradient is sign-flipped: -1x the tape's at every element";
    } else if (fits) {
      text << std::fixed << std::setprecision(3) << "your gradient is " << c
           << "x the tape's at every element: a missing or extra factor?" << factor_hint(c);
    }
    if (fits) return text.str();
  }
  if (v.shape.size() == 2 && v.shape[0] == v.shape[1] && v.shape[0] > 1) {
    const std::size_t n = v.shape[0];
    bool fits = true;
    for (std::size_t k = 0; k < v.tape.size() && fits; ++k) {
      const std::size_t base = k - k % (n * n), r = (k % (n * n)) / n, col = k % n;
      const double transposed = v.tape[base + col * n + r];
      fits = std::abs(v.hand[k] - transposed) <= atol + rtol * std::abs(transposed);
    }
    if (fits) return "the hand gradient equals the tape's transposed";
  }
  return "";
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

  auto evaluate = [&]() {
    const Tensor<T> out = f(leaves);
    if (out.shape() != y.shape()) {
      throw ShapeError("gradcheck: f returned shape " + shape_to_string(out.shape()) +
                       " after returning " + shape_to_string(y.shape()));
    }
    return out;
  };
  auto weighted_sum = [&]() {
    const Tensor<T> out = evaluate();
    double total = 0;
    for (std::size_t k = 0; k < out.size(); ++k) {
      total += static_cast<double>(out.value().data()[k]) *
               static_cast<double>(weights.value().data()[k]);
    }
    return total;
  };

  std::vector<xt::xarray<double>> numeric_all;
  {
    NoGradGuard no_grad;
    numeric_all = numeric_gradient(leaves, step, weighted_sum);
  }
  double worst_ratio = -1;
  double largest_gradient = 0;
  std::vector<std::tuple<double, std::size_t, std::size_t>> failing;  // ratio, input, element
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
      if (ratio > 1) failing.emplace_back(ratio, i, j);
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
  const std::string where =
      input_name(options, report.worst_input) + " element " + position_text(report.worst_position);
  if (largest_gradient <= atol && !options.allow_zero_gradient) {
    text << "gradcheck failed: every gradient element is zero on both sides, which proves "
            "nothing; choose inputs where f varies (or set allow_zero_gradient)";
  } else if (worst_ratio > 1) {
    std::stable_sort(failing.begin(), failing.end(),
                     [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
    std::vector<std::pair<std::size_t, std::size_t>> chosen;
    for (std::size_t k = 0; k < std::min(failing.size(), max_reported); ++k) {
      chosen.emplace_back(std::get<1>(failing[k]), std::get<2>(failing[k]));
    }
    std::size_t elements = 0;
    for (const auto& x : leaves) elements += x.size();
    text << "gradcheck failed at " << where << ": " << failing.size() << " of " << elements
         << " input elements wrong; worst: ";
    if (y.size() <= options.max_report_outputs) {
      report.worst = plain_partials(f, y, leaves, chosen, step, atol, rtol, [&] {
        return xt::xarray<double>(xt::cast<double>(evaluate().value()));
      });
    } else {
      for (const auto& [i, j] : chosen) {
        const double tape_value =
            leaves[i].has_grad() ? static_cast<double>(leaves[i].grad().data()[j]) : 0.0;
        const double numeric = numeric_all[i].data()[j];
        report.worst.push_back({i,
                                unravel_index(j, leaves[i].shape()),
                                0,
                                {},
                                false,
                                tape_value,
                                numeric,
                                std::abs(tape_value - numeric),
                                atol + rtol * std::abs(numeric)});
      }
    }
    std::ostringstream partials;  // 6 digits: what a reader compares at a glance
    for (std::size_t k = 0; k < report.worst.size(); ++k) {
      const auto& e = report.worst[k];
      const std::string numerator = !e.per_output   ? "sum(w * f)"
                                    : y.size() == 1 ? "f"
                                                    : "f" + index_text(e.output_position);
      partials << (k ? "; " : "") << "d " << numerator << "/d "
               << symbol(options, e.input, leaves.size(), e.position) << ": tape " << e.tape
               << ", finite differences " << e.numeric;
    }
    text << partials.str() << " (found with the weighted sum sum(w * f), random w: tape "
         << report.tape_value << ", finite difference " << report.numeric_value << ", error "
         << report.error << " > tolerance " << report.tolerance << ")";
  } else {
    report.passed = true;
    text << "gradcheck passed: worst error " << report.error << " (tolerance " << report.tolerance
         << ") at " << where;
  }
  report.message = text.str();
  return report;
}

template <class T>
GradcheckReport gradgradcheck(const TensorFunction<T>& f, const std::vector<Tensor<T>>& inputs,
                              const GradcheckOptions& options) {
  const std::size_t n = inputs.size();
  std::vector<Tensor<T>> all;
  for (const auto& x : inputs) all.emplace_back(xt::xarray<T>(x.value()));
  Shape result_shape;
  {
    NoGradGuard no_grad;
    result_shape = f(all).shape();
  }
  // Another draw than gradcheck's own weights on G's result.
  all.emplace_back(upstream_weights<T>(result_shape, options.seed + 1));
  GradcheckOptions named = options;
  named.names.resize(n + 1);
  for (std::size_t i = 0; i <= n; ++i) {
    if (i < options.names.size()) continue;
    named.names[i] = i == n ? "v" : n == 1 ? "x" : "x" + std::to_string(i);
  }
  const TensorFunction<T> vjp_of_f = [&](const std::vector<Tensor<T>>& xv) {
    const std::vector<Tensor<T>> xs(xv.begin(), xv.begin() + static_cast<std::ptrdiff_t>(n));
    std::vector<Tensor<T>> flat;
    for (const auto& product : functional::vjp(f, xs, xv[n]).second)
      flat.push_back(reshape(product, Shape{product.size()}));
    return flat.empty() ? Tensor<T>(xt::xarray<T>(xt::zeros<T>({0}))) : concat(flat, 0);
  };
  GradcheckReport report = gradcheck(vjp_of_f, all, named);
  report.message = "gradgradcheck" + report.message.substr(std::string("gradcheck").size());
  return report;
}

template <class T>
HandGradientReport check_hand_gradient(const TensorFunction<T>& f, const HandGradient<T>& hand,
                                       const std::vector<std::vector<xt::xarray<T>>>& points,
                                       const GradcheckOptions& options) {
  const auto [step, atol, rtol] = resolved<T>(options);
  HandGradientReport report;
  double worst = 0;
  std::vector<ArgumentValues> arguments;
  for (std::size_t point = 0; point < points.size(); ++point) {
    std::vector<Tensor<T>> leaves;
    for (const auto& value : points[point])
      leaves.emplace_back(xt::xarray<T>(value), requires_grad);
    {
      Tape tape;
      const Tensor<T> y = f(leaves);
      if (y.size() != 1) {
        throw ShapeError("check_hand_gradient: f must return a single element, got shape " +
                         shape_to_string(y.shape()));
      }
      if (y.requires_grad()) {
        detail::backward_into(y, Tensor<T>(xt::xarray<T>(xt::ones<T>(y.shape()))), BackwardMode{},
                              leaves);
      }
    }
    const auto hand_grads = hand(points[point]);
    if (hand_grads.size() != leaves.size()) {
      throw ShapeError("check_hand_gradient: the hand gradient returned " +
                       std::to_string(hand_grads.size()) + " arrays for " +
                       std::to_string(leaves.size()) + " arguments");
    }
    NoGradGuard no_grad;
    const auto numeric =
        numeric_gradient(leaves, step, [&] { return static_cast<double>(f(leaves).item()); });
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      if (hand_grads[i].shape() != leaves[i].shape()) {
        const Shape reversed(leaves[i].shape().rbegin(), leaves[i].shape().rend());
        const bool transposed =
            leaves[i].shape().size() == 2 && Shape(hand_grads[i].shape()) == reversed;
        throw ShapeError(
            "check_hand_gradient: the hand gradient of " + input_name(options, i) + " has shape " +
            shape_to_string(hand_grads[i].shape()) + " but the argument has shape " +
            shape_to_string(leaves[i].shape()) +
            (transposed ? " (the argument's shape transposed: is it the transpose?)" : ""));
      }
      if (arguments.size() <= i) arguments.resize(i + 1);
      arguments[i].shape = leaves[i].shape();
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
        arguments[i].tape.push_back(tape_value);
        arguments[i].hand.push_back(hand_value);
        if (!(error <= atol + rtol * std::abs(tape_value))) {
          arguments[i].wrong = true;
          report.disagreements.push_back({point, i, unravel_index(j, leaves[i].shape()), tape_value,
                                          hand_value, numeric_value});
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
    for (std::size_t i = 0; i < arguments.size(); ++i) {
      if (!arguments[i].wrong) continue;
      const std::string found = diagnose(arguments[i], atol, rtol);
      if (found.empty()) continue;
      report.diagnosis +=
          (report.diagnosis.empty() ? "" : "; ") + input_name(options, i) + ": " + found;
    }
    std::vector<const GradientDisagreement*> order;
    for (const auto& d : report.disagreements) order.push_back(&d);
    const auto size = [](const GradientDisagreement* d) {
      const double e = std::abs(d->hand - d->tape);
      return std::isnan(e) ? INFINITY : e;
    };
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return size(a) > size(b); });
    text << "the hand gradient is WRONG at " << report.disagreements.size() << " of "
         << report.elements_checked << " elements";
    if (!report.diagnosis.empty()) text << ": " << report.diagnosis;
    text << "; worst at";
    for (std::size_t k = 0; k < std::min(order.size(), max_reported); ++k) {
      const auto& d = *order[k];
      text << (k ? ";" : "") << " point " << d.point << ", " << input_name(options, d.input)
           << " element " << position_text(d.position) << ": tape " << d.tape << ", hand " << d.hand
           << ", finite difference " << d.numeric;
    }
    if (order.size() > max_reported) text << "; ... (" << order.size() - max_reported << " more)";
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
template GradcheckReport gradgradcheck<float>(const TensorFunction<float>&,
                                              const std::vector<Tensor<float>>&,
                                              const GradcheckOptions&);
template GradcheckReport gradgradcheck<double>(const TensorFunction<double>&,
                                               const std::vector<Tensor<double>>&,
                                               const GradcheckOptions&);

}  // namespace tapegrad
