#include "tapegrad/optim/lbfgs.hpp"

#include <algorithm>
#include <cmath>

#include "flat.hpp"
#include "settings.hpp"

namespace tapegrad::optim {

using detail::dot;
using detail::max_abs;
using detail::Vector;

namespace {

// A point on the line x + t d with its loss, gradient and directional derivative.
struct LinePoint {
  double t = 0, f = 0, slope = 0;
  Vector g;
};

// Minimizer of the cubic through (t1, f1, slope1) and (t2, f2, slope2), kept inside the
// interval with a margin; bisection when the cubic has no minimum there.
double cubic_minimum(const LinePoint& a, const LinePoint& b) {
  const double lo = std::min(a.t, b.t), hi = std::max(a.t, b.t);
  const double d1 = a.slope + b.slope - 3 * (a.f - b.f) / (a.t - b.t);
  const double square = d1 * d1 - a.slope * b.slope;
  double t = 0.5 * (lo + hi);
  if (square >= 0) {
    const double d2 = std::copysign(std::sqrt(square), b.t - a.t);
    const double candidate = b.t - (b.t - a.t) * (b.slope + d2 - d1) / (b.slope - a.slope + 2 * d2);
    if (std::isfinite(candidate)) t = candidate;
  }
  const double margin = 0.1 * (hi - lo);
  return std::clamp(t, lo + margin, hi - margin);
}

}  // namespace

template <class T>
LBFGS<T>::LBFGS(std::vector<Tensor<T>> parameters, const LBFGSOptions& options)
    : Optimizer<T>(std::move(parameters), options.lr(), "LBFGS"), options_(options) {
  detail::check_positive_count("LBFGS", "max_iterations", options.max_iterations());
  detail::check_positive_count("LBFGS", "history_size", options.history_size());
  detail::check_setting("LBFGS", "tolerance_grad", options.tolerance_grad(),
                        detail::Domain::non_negative);
  detail::check_setting("LBFGS", "tolerance_change", options.tolerance_change(),
                        detail::Domain::non_negative);
  switch (options.line_search()) {
    case LineSearch::none:
    case LineSearch::backtracking:
    case LineSearch::strong_wolfe:
      break;
    default:
      throw ValueError("LBFGS: line_search must be none, backtracking or strong_wolfe, got " +
                       std::to_string(static_cast<int>(options.line_search())));
  }
  for (const auto& p : this->parameters_) shapes_.push_back(p.shape());
}

template <class T>
void LBFGS<T>::step() {
  throw TapeError("LBFGS: the method evaluates the loss several times per step; call step(loss)");
}

template <class T>
double LBFGS<T>::step(const LossFunction& loss) {
  const typename Optimizer<T>::InUse in_use(*this, "step(loss)");
  auto& params = this->parameters_;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (params[i].shape() != shapes_[i])
      this->refuse_state_shape(i, "the curvature history", shapes_[i], false);
  }
  const double c1 = 1e-4, c2 = 0.9;
  std::size_t budget = options_.max_evaluations();
  Vector x = detail::flat_values(params);  // the last accepted point
  auto evaluate_at = [&](const Vector& point, Vector& gradient) {
    detail::set_flat_values(params, point);
    ++evaluations_;
    if (budget > 0) --budget;
    try {
      return detail::evaluate("LBFGS", params, loss, gradient);
    } catch (...) {
      detail::set_flat_values(params, x);  // never leave the caller at an untested trial point
      throw;
    }
  };

  Vector g;
  double f = evaluate_at(x, g);
  const double initial_loss = f;
  if (!std::isfinite(f) || !std::isfinite(max_abs(g))) {
    throw ValueError("LBFGS: the loss or its gradient is not finite at the starting point");
  }
  if (max_abs(g) <= options_.tolerance_grad()) return initial_loss;

  for (std::size_t iteration = 0; iteration < options_.max_iterations(); ++iteration) {
    // Two-loop recursion: d = -H g.
    Vector d(g.size());
    for (std::size_t i = 0; i < g.size(); ++i) d[i] = -g[i];
    const std::size_t k = s_history_.size();
    std::vector<double> alpha(k), rho(k);
    for (std::size_t i = k; i-- > 0;) {
      rho[i] = 1.0 / dot(y_history_[i], s_history_[i]);
      alpha[i] = rho[i] * dot(s_history_[i], d);
      for (std::size_t j = 0; j < d.size(); ++j) d[j] -= alpha[i] * y_history_[i][j];
    }
    if (k > 0) {
      const double scale =
          dot(s_history_[k - 1], y_history_[k - 1]) / dot(y_history_[k - 1], y_history_[k - 1]);
      for (double& v : d) v *= scale;
    }
    for (std::size_t i = 0; i < k; ++i) {
      const double beta = rho[i] * dot(y_history_[i], d);
      for (std::size_t j = 0; j < d.size(); ++j) d[j] += s_history_[i][j] * (alpha[i] - beta);
    }

    const double slope0 = dot(g, d);
    if (slope0 > -options_.tolerance_change()) break;  // no descent left
    double t = this->learning_rate();
    if (k == 0) {
      double l1 = 0;
      for (double v : g) l1 += std::abs(v);
      t = std::min(1.0, 1.0 / l1) * this->learning_rate();
    }

    auto probe = [&](double step) {
      LinePoint p;
      p.t = step;
      Vector point(x.size());
      for (std::size_t j = 0; j < x.size(); ++j) point[j] = x[j] + step * d[j];
      p.f = evaluate_at(point, p.g);
      p.slope = dot(p.g, d);
      return p;
    };
    const LinePoint start{0, f, slope0, g};
    // Sufficient decrease (Armijo); false for a NaN loss, which thus counts as too far.
    auto decreases = [&](const LinePoint& p) { return p.f <= f + c1 * p.t * slope0; };
    LinePoint accepted;
    switch (options_.line_search()) {
      case LineSearch::none:
        accepted = probe(t);
        if (!std::isfinite(accepted.f)) accepted = start;  // never step into NaN or inf
        break;
      case LineSearch::backtracking: {
        accepted = probe(t);
        while (!decreases(accepted) && budget > 0) accepted = probe(accepted.t * 0.5);
        if (!decreases(accepted)) accepted = start;  // out of budget: no uphill step
        break;
      }
      case LineSearch::strong_wolfe: {
        LinePoint previous = start;
        LinePoint current = probe(t);
        LinePoint lo, hi;
        bool bracketed = false, done = false;
        for (int trial = 0; trial < 25 && !done; ++trial) {
          if (!decreases(current) || (trial > 0 && !(current.f < previous.f))) {
            lo = previous, hi = current, bracketed = true;
            break;
          }
          if (std::abs(current.slope) <= -c2 * slope0) {
            accepted = current, done = true;
            break;
          }
          if (current.slope >= 0) {
            lo = current, hi = previous, bracketed = true;
            break;
          }
          if (budget == 0) {
            accepted = current, done = true;  // decreases, checked above
            break;
          }
          previous = current;
          current = probe(current.t * 2);
        }
        if (!done && !bracketed) {
          // Out of doublings: the last point checked above, or the newest if it is better.
          accepted = decreases(current) && current.f < previous.f ? current : previous;
        }
        if (bracketed) {
          // Zoom (Nocedal & Wright, algorithm 3.6): lo always satisfies sufficient decrease.
          accepted = lo;
          for (int trial = 0; trial < 25 && budget > 0; ++trial) {
            if (std::abs(hi.t - lo.t) * max_abs(d) < options_.tolerance_change()) break;
            const LinePoint mid = probe(cubic_minimum(lo, hi));
            if (!decreases(mid) || !(mid.f < lo.f)) {
              hi = mid;
            } else {
              if (std::abs(mid.slope) <= -c2 * slope0) {
                lo = mid;
                break;
              }
              if (mid.slope * (hi.t - lo.t) >= 0) hi = lo;
              lo = mid;
            }
          }
          accepted = lo;
          if (accepted.t == 0) break;  // no step decreased the loss
        }
        break;
      }
    }

    if (accepted.t == 0) break;  // no acceptable step along this direction
    // Move to the accepted point and learn from the step.
    Vector s(x.size()), y(x.size());
    for (std::size_t j = 0; j < x.size(); ++j) {
      s[j] = accepted.t * d[j];
      y[j] = accepted.g[j] - g[j];
      x[j] += s[j];
    }
    const double loss_change = std::abs(accepted.f - f);
    f = accepted.f;
    g = accepted.g;
    if (dot(y, s) > 1e-10) {
      if (s_history_.size() == options_.history_size()) {
        s_history_.erase(s_history_.begin());
        y_history_.erase(y_history_.begin());
      }
      s_history_.push_back(std::move(s));
      y_history_.push_back(std::move(y));
    }
    if (max_abs(g) <= options_.tolerance_grad()) break;
    if (std::abs(accepted.t) * max_abs(d) <= options_.tolerance_change()) break;
    if (loss_change < options_.tolerance_change()) break;
    if (budget == 0) break;
  }
  detail::set_flat_values(params, x);
  return initial_loss;
}

template class LBFGS<float>;
template class LBFGS<double>;

}  // namespace tapegrad::optim
