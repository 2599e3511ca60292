// The four BP equations beside the tape and finite differences, layer by layer, for an MLP.
#pragma once

#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/nn/layers.hpp"

namespace tapegrad {

/// The costs the BP check knows: nn::mse and the seeds' nn::half_sse.
enum class BPLoss { mse, half_sse };

/// One quantity of one layer, computed three ways.
struct BPQuantity {
  std::string name;  // "delta", "dC/db" or "dC/dW"
  xt::xarray<double> tape, equations, numeric;
  double tape_vs_equations = 0;  // largest |tape - equations|
  double tape_vs_numeric = 0;    // largest |tape - numeric|
  std::vector<std::size_t> worst_position;  // where |tape - equations| is largest
};

struct BPLayer {
  std::size_t layer = 0;  // 1 = the first Linear layer
  BPQuantity delta, bias, weight;
};

struct BPCheckReport {
  bool passed = false;
  std::string message;
  double loss = 0;
  std::vector<BPLayer> layers;
  explicit operator bool() const { return passed; }
};

/// Computes, for every Linear layer l of `mlp` (z_l = a_{l-1} W_l + b_l, a_l = f_l(z_l), in
/// the row-major batch form of seed 000), the error delta_l = dC/dz_l, dC/db_l and dC/dW_l:
///   - from the tape (delta through a zero probe added to z_l);
///   - from the four BP equations (Nielsen's BP1-BP4, written for rows):
///       BP1  delta_L = dC/da_L * f_L'(z_L)
///       BP2  delta_l = (delta_{l+1} W_{l+1}^T) * f_l'(z_l)
///       BP3  dC/db_l = the column sums of delta_l
///       BP4  dC/dW_l = a_{l-1}^T delta_l
///   - by central differences of the loss.
/// Passes when tape and equations agree within `equations_tolerance` and tape and
/// differences within `numeric_tolerance` (each absolute plus the same relative).
/// inputs: (N, in), targets: (N, out). The model's parameters and gradients are not touched.
/// Throws ShapeError for other shapes and ValueError for a layer without a bias.
BPCheckReport check_mlp_bp(const nn::MLP<double>& mlp, const xt::xarray<double>& inputs,
                           const xt::xarray<double>& targets, BPLoss loss = BPLoss::half_sse,
                           double equations_tolerance = 1e-10, double numeric_tolerance = 1e-6);

}  // namespace tapegrad
