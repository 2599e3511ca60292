// L-BFGS: a quasi-Newton method driven by a loss function it may evaluate several times.
#pragma once

#include <functional>

#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad::optim {

/// @addtogroup optim
/// @{

/// How L-BFGS chooses the step length along its direction d, from the initial length t.
/// The sufficient-decrease (Armijo) condition is `f(x + t d) <= f(x) + 1e-4 t g'd`.
enum class LineSearch {
  none,          ///< one trial at t, kept unless its loss is not finite (PyTorch's default)
  backtracking,  ///< halve t until the Armijo condition holds; no step if the budget runs out
  strong_wolfe,  ///< the strong Wolfe conditions (c1 1e-4, c2 0.9): double t until the
                 ///< minimum is bracketed, then zoom by cubic interpolation (Nocedal &
                 ///< Wright, algorithms 3.5 and 3.6); at most 25 doublings, 26 trials
                 ///< (unbracketed after them: the last trial if it decreases the loss
                 ///< below the one before, else that one), then at most 25 zoom trials
};

/// Settings of LBFGS, builder style: `LBFGSOptions().history_size(10)`.
class LBFGSOptions {
 public:
  /// The initial step length t of each iteration (default 1). It becomes the optimizer's
  /// learning_rate(), so it must be finite and not negative.
  LBFGSOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  /// The most iterations one step() runs (default 20); must be positive.
  LBFGSOptions& max_iterations(std::size_t v) {
    max_iterations_ = v;
    return *this;
  }
  /// Loss evaluations allowed per step(), the first one included (default 0, which means
  /// max_iterations * 5 / 4, rounded down). The first evaluation and the first line-search
  /// trial are made even when the budget is used up, so 1 acts as 2.
  LBFGSOptions& max_evaluations(std::size_t v) {
    max_evaluations_ = v;
    return *this;
  }
  /// Stop when the largest |gradient element| is at most this (default 1e-7); must be
  /// finite and >= 0.
  LBFGSOptions& tolerance_grad(double v) {
    tolerance_grad_ = v;
    return *this;
  }
  /// Stop when a step moves no parameter by more than this, when the loss changes by less,
  /// or when the directional derivative g'd is above -tolerance_change (default 1e-9); must
  /// be finite and >= 0.
  LBFGSOptions& tolerance_change(double v) {
    tolerance_change_ = v;
    return *this;
  }
  /// The number of (s, y) pairs kept (default 100); must be positive.
  LBFGSOptions& history_size(std::size_t v) {
    history_size_ = v;
    return *this;
  }
  /// How the step length is chosen (default strong_wolfe).
  LBFGSOptions& line_search(LineSearch v) {
    line_search_ = v;
    return *this;
  }
  /// The lr setting.
  double lr() const { return lr_; }
  /// The max_iterations setting.
  std::size_t max_iterations() const { return max_iterations_; }
  /// The evaluation budget per step(): the setting, or max_iterations * 5 / 4 when it is 0.
  std::size_t max_evaluations() const {
    return max_evaluations_ ? max_evaluations_ : max_iterations_ * 5 / 4;
  }
  /// The tolerance_grad setting.
  double tolerance_grad() const { return tolerance_grad_; }
  /// The tolerance_change setting.
  double tolerance_change() const { return tolerance_change_; }
  /// The history_size setting.
  std::size_t history_size() const { return history_size_; }
  /// The line_search setting.
  LineSearch line_search() const { return line_search_; }

 private:
  double lr_ = 1;
  std::size_t max_iterations_ = 20, max_evaluations_ = 0, history_size_ = 100;
  double tolerance_grad_ = 1e-7, tolerance_change_ = 1e-9;
  LineSearch line_search_ = LineSearch::strong_wolfe;
};

/// Limited-memory BFGS over all parameters as one vector x, computed in double, after
/// PyTorch's LBFGS. step(loss) evaluates the loss f and its gradient g at x, returns at once
/// if max |g_i| <= tolerance_grad, and otherwise runs up to max_iterations iterations of:
///
///     d = -H g         two-loop recursion over the stored (s, y) pairs, with the initial
///                      H = (s'y / y'y) I of the newest pair (H = I when none is stored)
///     stop if g'd > -tolerance_change                      (no descent direction)
///     t = lr, or min(1, 1 / sum |g_i|) lr when no pair is stored
///     t = the line search's step length along d            (stop if it finds none)
///     s = t d;  y = g(x + s) - g(x);  x = x + s
///     store (s, y) if y's > 1e-10, dropping the oldest pair beyond history_size
///     stop if max |g_i| <= tolerance_grad, t max |d_i| <= tolerance_change,
///       |change of f| < tolerance_change, or the evaluation budget is used up
///
/// lr is learning_rate() (set from the options' lr), so set_learning_rate() and the
/// schedules change it. The pairs carry over between step() calls.
template <class T = double>
class LBFGS : public Optimizer<T> {
 public:
  /// Computes the loss (a single element) from the parameters' current values; the
  /// optimizer makes the tape and runs backward() itself.
  using LossFunction = std::function<Tensor<T>()>;

  /// Throws ValueError `LBFGS: <setting> must be <range>, got <value>` if max_iterations or
  /// history_size is 0, a tolerance is negative or not finite, or line_search is not one of
  /// the LineSearch values, and as Optimizer's constructor does (parameters, lr).
  LBFGS(std::vector<Tensor<T>> parameters, const LBFGSOptions& options = LBFGSOptions());
  /// Throws TapeError: L-BFGS needs to evaluate the loss, use step(loss).
  void step() override;
  /// Runs the iterations above and leaves the parameters at the final x. Returns the loss
  /// at the parameters' values before the step. The loss function is called with the
  /// parameters set to each trial point; afterwards the parameters' gradients are those of
  /// the last evaluation, which may be a rejected trial point. Throws ShapeError if the loss
  /// does not have a single element, and ValueError if the loss or its gradient is not
  /// finite at the starting point. When the loss function throws (or an evaluation does),
  /// the parameters are set back to the last accepted point, the start or the end of the
  /// last completed iteration, and the exception passes through unchanged; the pairs learned
  /// so far are kept. Throws ShapeError, before any evaluation, if a parameter's shape
  /// differs from the one it had at construction (see Optimizer: the pairs are laid out in
  /// those shapes), and TapeError while another thread is in this optimizer.
  double step(const LossFunction& loss);
  /// Loss evaluations since construction.
  std::size_t evaluations() const { return evaluations_; }

 private:
  LBFGSOptions options_;
  std::vector<Shape> shapes_;  // the parameters' shapes, which the pairs are laid out in
  std::vector<std::vector<double>> s_history_, y_history_;
  std::size_t evaluations_ = 0;
};

extern template class LBFGS<float>;
extern template class LBFGS<double>;

/// @}

}  // namespace tapegrad::optim
