// Gradient checking: the tape's gradients (and second derivatives) against central finite
// differences.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tapegrad {

/// @addtogroup autograd
/// @{

/// Settings of gradcheck and check_hand_gradient. A step or tolerance that is not positive
/// (the default 0) means "the default for the element type":
/// float64: step 1e-6, atol 1e-7, rtol 1e-6;  float32: step 1e-2, atol 1e-3, rtol 1e-2.
struct GradcheckOptions {
  double step = 0;  ///< h of the central difference (f(x + h) - f(x - h)) / 2h.
  double atol = 0;  ///< Absolute tolerance.
  double rtol = 0;  ///< Relative tolerance.
  /// Seed of the upstream gradient: gradcheck differentiates sum(w * f(x)) with each weight
  /// drawn from +-[0.5, 1.5), so that no structure of f can make a wrong gradient look right.
  std::uint64_t seed = 20240601;
  /// gradcheck: a check where every gradient element, tape and numeric, is at most atol in
  /// magnitude proves nothing and fails, unless this is set.
  bool allow_zero_gradient = false;
  /// Names of the inputs for the report; "input 0", "input 1", ... when absent (and x, or
  /// x0, x1, ... in the partial derivatives of a failed gradcheck's message).
  std::vector<std::string> names;
  /// gradcheck, on failure: the largest f result (in elements) for which the report finds the
  /// output element of each worst partial derivative, with one backward pass per output
  /// element. Beyond it GradcheckEntry::per_output is false.
  std::size_t max_report_outputs = 4096;
};

/// One partial derivative of f in a failed gradcheck: d f[output] / d x_input[position], as
/// the tape and as central differences give it (not weighted by the check's random weights).
struct GradcheckEntry {
  std::size_t input = 0;                     ///< Which input.
  std::vector<std::size_t> position;         ///< The input element's indices.
  std::size_t output = 0;                    ///< Row-major index of the element of f's result.
  std::vector<std::size_t> output_position;  ///< The same as indices into f's result.
  /// False when f's result had more than GradcheckOptions::max_report_outputs elements: then
  /// output is 0 and the values are of the weighted sum sum(w * f) the check compared.
  bool per_output = true;
  double tape = 0;       ///< The tape's d f[output] / d x[position].
  double numeric = 0;    ///< The central difference of f[output] for x[position].
  double error = 0;      ///< |tape - numeric|.
  double tolerance = 0;  ///< atol + rtol * |numeric|.
};

/// The outcome of gradcheck, with the worst element found: the one with the largest ratio
/// error / tolerance in the weighted sum sum(w * f) the check compares (see gradcheck). The
/// numeric fields stay 0 when nothing was compared. On failure, `worst` and the message give
/// plain partial derivatives of f instead, which are what a wrong backward gets wrong.
struct GradcheckReport {
  bool passed = false;  ///< True if every element passed.
  /// One line saying what passed or what failed, with the numbers.
  std::string message;
  std::size_t worst_input = 0;  ///< Index of the input holding the worst element.
  /// Row-major position of the worst element within its input, and the same as indices.
  std::size_t worst_flat_index = 0;
  std::vector<std::size_t> worst_position;  ///< The worst element's indices, one per axis.
  double tape_value = 0;                    ///< The tape's gradient at the worst element.
  double numeric_value = 0;                 ///< The central difference at the worst element.
  double error = 0;                         ///< |tape - numeric| at the worst element.
  double tolerance = 0;                     ///< atol + rtol * |numeric| at the worst element.
  /// When the check failed: for each of the (at most 5) worst failing input elements, worst
  /// first, the partial derivative d f[out] / d x[element] of the output element `out` where
  /// tape and finite differences disagree most. Empty when the check passed.
  std::vector<GradcheckEntry> worst;
  /// Same as `passed`.
  explicit operator bool() const { return passed; }
};

/// A function of tensors, as gradcheck and check_hand_gradient take it: the arguments in
/// order, one tensor each; the result may have any shape unless the caller says otherwise.
template <class T>
using TensorFunction = std::function<Tensor<T>(const std::vector<Tensor<T>>&)>;

/// Compares the tape's gradient of sum(w * f(inputs)) with respect to every input with
/// central differences (f(x + h) - f(x - h)) / 2h, element by element. The differences use
/// the step actually taken after rounding x + h and x - h to T, and the weighted sum is
/// accumulated in double. `f` may return any shape, the same at every call. The inputs are
/// copied into leaves that require grad: the caller's tensors are not touched, and neither
/// are parameters or records of the caller's tape that f reads (only the copies get
/// gradients). f runs once on a Tape of its own, then twice per input element under a
/// NoGradGuard.
///
/// An element passes when |tape - numeric| <= atol + rtol * |numeric| (a NaN fails); the
/// check passes when every element does. It also fails, without comparing, when f's result
/// does not depend on any input through tapegrad ops or when the inputs have no elements,
/// and when all gradients are zero (see GradcheckOptions::allow_zero_gradient).
///
/// A failure's message names the worst input elements (at most 5) with plain partial
/// derivatives of f, the output element where tape and differences disagree most, e.g.
///
///     gradcheck failed at input 0 element (0): 1 of 2 input elements wrong; worst:
///     d f[1]/d x[0]: tape 1.5, finite differences 3 (found with the weighted sum
///     sum(w * f), random w: tape 0.4997094579, finite difference 1.262170658, error
///     0.7624611999 > tolerance 1.362170658e-06)
///
/// (one line in fact). Finding them costs, only on failure, one more recorded evaluation of
/// f and one backward pass per element of f's result (up to
/// GradcheckOptions::max_report_outputs), and two evaluations of f per reported element.
/// Throws ShapeError if f returns a different shape on a later call; exceptions from f
/// itself, or from backward(), pass through.
template <class T>
GradcheckReport gradcheck(const TensorFunction<T>& f, const std::vector<Tensor<T>>& inputs,
                          const GradcheckOptions& options = {});

/// Checks second derivatives of f (PyTorch's gradgradcheck): the gradient of the
/// vector-Jacobian product against finite differences of the first-order gradient. With v a
/// fixed tensor of f's result's shape (each element +-[0.5, 1.5), drawn from options.seed),
/// G(inputs, v) = v^T J_f(inputs) (functional::vjp, one product per input, flattened and
/// concatenated in input order) is itself checked by gradcheck with respect to every input
/// and to v: the tape's derivative of G goes through the backward of every op f uses (second
/// derivatives), and the finite differences are those of G, a first-order gradient. Use it to
/// check a CustomOp declared differentiable_backward.
///
/// The report is gradcheck's on G, its message starting "gradgradcheck": inputs 0 to n - 1
/// are f's inputs and input n is v; they are named by options.names, else x (x0, x1, ...) and
/// v; a partial derivative's "f" is G. Costs what gradcheck costs on G, with one forward and
/// one backward pass of f per evaluation of G. Throws what gradcheck throws; an op in f whose
/// backward cannot be differentiated (a CustomOp not declared differentiable_backward) throws
/// TapeError naming it.
template <class T>
GradcheckReport gradgradcheck(const TensorFunction<T>& f, const std::vector<Tensor<T>>& inputs,
                              const GradcheckOptions& options = {});

/// A gradient derived by hand: given the arguments' values, one array per argument, each of
/// that argument's shape.
template <class T>
using HandGradient = std::function<std::vector<xt::xarray<T>>(const std::vector<xt::xarray<T>>&)>;

/// One element where a hand-derived gradient and the tape's disagree.
struct GradientDisagreement {
  std::size_t point = 0;              ///< Index into the points checked.
  std::size_t input = 0;              ///< Which argument.
  std::vector<std::size_t> position;  ///< The element's indices within that argument.
  /// The tape's value of that partial derivative.
  double tape = 0, hand = 0, numeric = 0;
  /// @var hand
  /// The hand-derived value of that partial derivative.

  /// @var numeric
  /// The central difference for that partial derivative.
};

/// The outcome of check_hand_gradient.
struct HandGradientReport {
  /// True if the hand gradient agreed with the tape at every element; false when there was
  /// no element to check (no points, or arguments without elements).
  bool passed = false;
  /// A verdict with numbers: the diagnosis if any, then the worst (at most 5) elements where
  /// they disagree, or the largest difference seen.
  std::string message;
  /// What the disagreement looks like, when it has a recognisable form, for each argument it
  /// holds for (over all points): the hand gradient is a constant multiple c of the tape's
  /// ("input 0: your gradient is 24.000x the tape's at every element: a missing or extra
  /// factor? (a missing 1/24, such as a mean's 1/N?)"; c = -1 says "sign-flipped", c = 0
  /// "your gradient is zero at every element"), or, for a square 2-d argument, the tape's
  /// transposed ("'W': the hand gradient equals the tape's transposed"). Empty when it
  /// passed or no such form fits.
  std::string diagnosis;
  /// Every element where |hand - tape| > atol + rtol |tape| (or either is NaN), in order.
  std::vector<GradientDisagreement> disagreements;
  std::size_t elements_checked = 0;  ///< Elements compared, over all points and arguments.
  /// True if the tape itself disagreed with finite differences somewhere, by
  /// |tape - numeric| > atol + rtol |numeric| (f not smooth at a point, or a bad step size):
  /// then the tape is not a trustworthy referee there. It does not make the check fail.
  bool tape_disagrees_with_numeric = false;
  /// Same as `passed`.
  explicit operator bool() const { return passed; }
};

/// Checks a hand-derived gradient of a single-element f against the tape (and reports the
/// finite-difference value beside both) at each of the given points. Each point is one
/// value per argument; the tape differentiates f at leaf copies of them, and `hand` gets
/// the point's values. Step, tolerances and names come from `options` (as for gradcheck;
/// `seed` and `allow_zero_gradient` are not used). An argument f does not depend on has a
/// tape gradient of 0.
/// Throws ShapeError if f does not return a single element, or `hand` returns the wrong
/// number of arrays or an array of the wrong shape (the message says so when it is the
/// argument's shape transposed); exceptions from f and hand pass through.
template <class T>
HandGradientReport check_hand_gradient(const TensorFunction<T>& f, const HandGradient<T>& hand,
                                       const std::vector<std::vector<xt::xarray<T>>>& points,
                                       const GradcheckOptions& options = {});

/// @}

}  // namespace tapegrad
