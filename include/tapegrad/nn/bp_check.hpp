// The four BP equations beside the tape and finite differences, layer by layer, for an MLP.
#pragma once

#include <string>
#include <vector>
#include <xtensor/xarray.hpp>

#include "tapegrad/nn/layers.hpp"

namespace tapegrad::nn {

/// @addtogroup nn
/// @{

/// The costs the BP check knows: `mse` is nn::mse, the mean of (a_L - t)^2 over all
/// elements; `half_sse` is nn::half_sse, the sum of (t - a_L)^2 over 2N.
enum class BPLoss { mse, half_sse };

/// One quantity of one layer, computed three ways; the three arrays have the quantity's
/// shape: (N, out) for delta, (out,) for dC/db, (in, out) for dC/dW, with in and out the
/// layer's sizes.
struct BPQuantity {
  std::string name;  ///< "delta", "dC/db" or "dC/dW".
  /// The quantity from the tape (delta through a zero probe added to z_l).
  xt::xarray<double> tape, equations, numeric;
  /// @var equations
  /// The quantity from the four BP equations.

  /// @var numeric
  /// The quantity from central differences of the loss.

  double tape_vs_equations = 0;             ///< Largest |tape - equations| (Inf if one is NaN).
  double tape_vs_numeric = 0;               ///< Largest |tape - numeric| (Inf if one is NaN).
  std::vector<std::size_t> worst_position;  ///< Where |tape - equations| is largest.
};

/// The three quantities of one Linear layer.
struct BPLayer {
  std::size_t layer = 0;  ///< 1 = the first Linear layer.
  /// The error delta_l = dC/dz_l, shape (N, out).
  BPQuantity delta, bias, weight;
  /// @var bias
  /// dC/db_l, shape (out,).

  /// @var weight
  /// dC/dW_l, shape (in, out).
};

/// The outcome of check_mlp_bp.
struct BPCheckReport {
  bool passed = false;  ///< True if every quantity of every layer agreed within tolerance.
  /// The first disagreement (layer, quantity, worst element and its three values), or the
  /// largest differences seen when all agree.
  std::string message;
  double loss = 0;              ///< The cost C at the given inputs and targets.
  std::vector<BPLayer> layers;  ///< One entry per Linear layer, first layer first.
  /// Same as `passed`.
  explicit operator bool() const { return passed; }
};

/// Computes, for every Linear layer l of `mlp` (z_l = a_{l-1} W_l + b_l, a_l = f_l(z_l), in
/// the row-major batch form of the BP-network article), the error delta_l = dC/dz_l, dC/db_l and
/// dC/dW_l:
///   - from the tape (delta through a zero probe added to z_l);
///   - from the four BP equations (Nielsen's BP1-BP4, written for rows):
///       BP1  delta_L = dC/da_L * f_L'(z_L)
///       BP2  delta_l = (delta_{l+1} W_{l+1}^T) * f_l'(z_l)
///       BP3  dC/db_l = the column sums of delta_l
///       BP4  dC/dW_l = a_{l-1}^T delta_l
///   - by central differences of the loss (step 1e-6).
/// The cost C is nn::mse(a_L, targets) (dC/da_L = 2 (a_L - t) / (N out)) or nn::half_sse
/// (dC/da_L = (a_L - t) / N).
/// Passes when, for every quantity, max |tape - equations| <= equations_tolerance * s and
/// max |tape - numeric| <= numeric_tolerance * s, where s = 1 + max |tape| over that
/// quantity (each tolerance is absolute plus the same relative).
/// inputs: (N, in), targets: (N, out), with in and out the network's first and last sizes.
/// The model's parameters and gradients are not touched: the check works on copies.
/// Throws ShapeError for other shapes and ValueError for a Linear layer without a bias.
BPCheckReport check_mlp_bp(const MLP<double>& mlp, const xt::xarray<double>& inputs,
                           const xt::xarray<double>& targets, BPLoss loss = BPLoss::half_sse,
                           double equations_tolerance = 1e-10, double numeric_tolerance = 1e-6);

/// @}

}  // namespace tapegrad::nn
