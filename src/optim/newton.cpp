#include "tapegrad/optim/newton.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "flat.hpp"
#include "settings.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad::optim {

using detail::Vector;

namespace {

// Solves (H + lambda I) x = b by Cholesky; false when a pivot is not above `floor`, the
// rounding noise of the factorization (so the matrix is not clearly positive definite).
bool cholesky_solve(const std::vector<Vector>& h, double lambda, double floor, const Vector& b,
                    Vector& x) {
  const std::size_t n = b.size();
  std::vector<Vector> l(n, Vector(n, 0.0));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j <= i; ++j) {
      double s = h[i][j] + (i == j ? lambda : 0.0);
      for (std::size_t k = 0; k < j; ++k) s -= l[i][k] * l[j][k];
      if (i == j) {
        if (!(s > floor)) return false;
        l[i][i] = std::sqrt(s);
      } else {
        l[i][j] = s / l[j][j];
      }
    }
  }
  Vector z(n);
  for (std::size_t i = 0; i < n; ++i) {
    double s = b[i];
    for (std::size_t k = 0; k < i; ++k) s -= l[i][k] * z[k];
    z[i] = s / l[i][i];
  }
  x.assign(n, 0.0);
  for (std::size_t i = n; i-- > 0;) {
    double s = z[i];
    for (std::size_t k = i + 1; k < n; ++k) s -= l[k][i] * x[k];
    x[i] = s / l[i][i];
  }
  return true;
}

}  // namespace

namespace {

// The parameters' element count; ValueError above max_parameters.
template <class T>
std::size_t checked_count(const std::vector<Tensor<T>>& parameters, std::size_t max_parameters) {
  std::size_t count = 0;
  for (const auto& p : parameters) count += p.size();
  if (count > max_parameters) {
    throw ValueError(
        "Newton: " + std::to_string(count) + " parameter elements exceed max_parameters (" +
        std::to_string(max_parameters) + "); the dense Hessian would be too large, use LBFGS");
  }
  return count;
}

}  // namespace

template <class T>
Newton<T>::Newton(std::vector<Tensor<T>> parameters, const NewtonOptions& options)
    : Optimizer<T>(std::move(parameters), options.lr(), "Newton"), options_(options) {
  detail::check_setting("Newton", "damping", options.damping(), detail::Domain::non_negative);
  detail::check_positive_count("Newton", "max_parameters", options.max_parameters());
  checked_count(this->parameters_, options.max_parameters());
}

template <class T>
void Newton<T>::step() {
  throw TapeError("Newton: the method needs the loss to build the Hessian; call step(loss)");
}

template <class T>
double Newton<T>::step(const LossFunction& loss_function) {
  const typename Optimizer<T>::InUse in_use(*this, "step(loss)");
  auto& params = this->parameters_;
  // Again at each step: set_value() may have resized a parameter since construction.
  const std::size_t n = checked_count(params, options_.max_parameters());
  // Nothing moves on a refusal, and the gradients are cleared as after a step.
  const auto refuse = [&](const std::string& what) {
    for (auto& p : params) p.zero_grad();
    throw ValueError("Newton: " + what + "; no step taken");
  };

  for (auto& p : params) p.zero_grad();
  Tape tape;
  const Tensor<T> loss = loss_function();
  const double value = detail::loss_value("Newton", loss);
  if (!std::isfinite(value)) {
    refuse("the loss is " + detail::non_finite_name(value) + " at the current parameters");
  }
  if (!loss.requires_grad()) return value;
  loss.backward(create_graph);
  std::vector<Tensor<T>> gradients;
  for (auto& p : params) {
    gradients.push_back(p.has_grad() ? p.grad_tensor()
                                     : Tensor<T>(xt::xarray<T>(xt::zeros<T>(p.shape()))));
  }
  const Vector g = detail::flat_gradients(params);
  for (std::size_t k = 0; k < n; ++k) {
    if (!std::isfinite(g[k])) {
      refuse("the gradient is " + detail::non_finite_name(g[k]) + " at element " +
             std::to_string(k) + " of the parameters");
    }
  }

  // Row r of H: the gradient of gradient element r.
  std::vector<Vector> h(n, Vector(n, 0.0));
  std::size_t row = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    for (std::size_t j = 0; j < params[i].size(); ++j, ++row) {
      if (!gradients[i].requires_grad()) continue;  // constant gradient: zero row
      for (auto& p : params) p.zero_grad();
      xt::xarray<T> pick = xt::zeros<T>(params[i].shape());
      pick.data()[j] = T(1);
      gradients[i].backward(Tensor<T>(std::move(pick)), retain_graph);
      h[row] = detail::flat_gradients(params);
    }
  }
  double scale = 0;  // the largest |H_rc|
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t c = 0; c < n; ++c) {
      if (!std::isfinite(h[r][c])) {
        refuse("the Hessian is " + detail::non_finite_name(h[r][c]) + " at row " +
               std::to_string(r) + ", column " + std::to_string(c));
      }
      scale = std::max(scale, std::abs(h[r][c]));
    }
  }
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t c = 0; c < r; ++c) h[r][c] = h[c][r] = 0.5 * (h[r][c] + h[c][r]);
  }

  // A pivot within the factorization's rounding error (about n eps |H|, eps of T: the
  // Hessian was computed in T) may be a zero eigenvalue; accepting it would divide by noise.
  const double floor =
      16 * static_cast<double>(n) * static_cast<double>(std::numeric_limits<T>::epsilon()) * scale;
  double lambda = options_.damping();
  Vector direction;
  for (int attempt = 0; !cholesky_solve(h, lambda, floor, g, direction); ++attempt) {
    if (attempt == 60)
      refuse("no damping up to " + detail::number_to_string(lambda) +
             " made the Hessian positive definite");
    lambda = std::max(10 * lambda, 1e-8 * (1 + scale));
  }
  last_damping_ = lambda;

  for (auto& p : params) p.zero_grad();
  Vector x = detail::flat_values(params);
  for (std::size_t k = 0; k < n; ++k) x[k] -= this->learning_rate() * direction[k];
  detail::set_flat_values(params, x);
  return value;
}

template <class T>
typename Optimizer<T>::StateSlots Newton<T>::state_slots() {
  typename Optimizer<T>::StateSlots slots;
  slots.settings = {{"damping", options_.damping()},
                    {"max_parameters", static_cast<double>(options_.max_parameters())}};
  return slots;
}

template class Newton<float>;
template class Newton<double>;

}  // namespace tapegrad::optim
