// L-BFGS: a quasi-Newton method driven by a loss function it may evaluate several times.
#pragma once

#include <functional>

#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad::optim {

/// How L-BFGS chooses the step length along its direction.
enum class LineSearch {
  none,          ///< a fixed step of lr (as PyTorch's default)
  backtracking,  ///< halve the step until the Armijo condition holds
  strong_wolfe,  ///< Nocedal & Wright's algorithm 3.5/3.6 (bracketing + cubic zoom)
};

class LBFGSOptions {
 public:
  LBFGSOptions& lr(double v) { lr_ = v; return *this; }
  LBFGSOptions& max_iterations(std::size_t v) { max_iterations_ = v; return *this; }
  /// Function evaluations allowed per step(); 0 means 1.25 x max_iterations.
  LBFGSOptions& max_evaluations(std::size_t v) { max_evaluations_ = v; return *this; }
  LBFGSOptions& tolerance_grad(double v) { tolerance_grad_ = v; return *this; }
  LBFGSOptions& tolerance_change(double v) { tolerance_change_ = v; return *this; }
  LBFGSOptions& history_size(std::size_t v) { history_size_ = v; return *this; }
  LBFGSOptions& line_search(LineSearch v) { line_search_ = v; return *this; }
  double lr() const { return lr_; }
  std::size_t max_iterations() const { return max_iterations_; }
  std::size_t max_evaluations() const {
    return max_evaluations_ ? max_evaluations_ : max_iterations_ * 5 / 4;
  }
  double tolerance_grad() const { return tolerance_grad_; }
  double tolerance_change() const { return tolerance_change_; }
  std::size_t history_size() const { return history_size_; }
  LineSearch line_search() const { return line_search_; }

 private:
  double lr_ = 1;
  std::size_t max_iterations_ = 20, max_evaluations_ = 0, history_size_ = 100;
  double tolerance_grad_ = 1e-7, tolerance_change_ = 1e-9;
  LineSearch line_search_ = LineSearch::strong_wolfe;
};

/// Limited-memory BFGS over all parameters as one vector (computed in double). Each
/// step(loss) runs up to max_iterations iterations: direction from the two-loop recursion
/// over the last history_size (s, y) pairs, then the line search. It stops early when the
/// largest gradient element is below tolerance_grad, or the step or the loss change is
/// below tolerance_change. The history carries over between step() calls.
template <class T = double>
class LBFGS : public Optimizer<T> {
 public:
  /// Computes the loss (a single element) from the parameters' current values; the
  /// optimizer makes the tape and runs backward() itself.
  using LossFunction = std::function<Tensor<T>()>;

  LBFGS(std::vector<Tensor<T>> parameters, const LBFGSOptions& options = LBFGSOptions());
  /// Throws TapeError: L-BFGS needs to evaluate the loss, use step(loss).
  void step() override;
  /// Returns the loss at the parameters' values before the step.
  double step(const LossFunction& loss);
  /// Loss evaluations since construction.
  std::size_t evaluations() const { return evaluations_; }

 private:
  LBFGSOptions options_;
  std::vector<std::vector<double>> s_history_, y_history_;
  std::size_t evaluations_ = 0;
};

extern template class LBFGS<float>;
extern template class LBFGS<double>;

}  // namespace tapegrad::optim
