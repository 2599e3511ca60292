#include "tapegrad/functional.hpp"

#include <optional>
#include <string>

#include "core/node_pool.hpp"
#include "core/recording.hpp"
#include "core/shape.hpp"
#include "core/sweep.hpp"
#include "core/tape_impl.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/tape.hpp"

namespace tapegrad::functional::detail {

namespace {

using tapegrad::detail::NodeBase;

// An argument's record on the caller's tape (the op "argument", an identity): while the
// transform that made it sweeps, the gradient reaching it is kept here instead of flowing on
// to the argument, so that the sweep differentiates with respect to f's arguments only; any
// other sweep (an outer transform's, the caller's backward) passes it through.
struct Capture {
  mutable bool on = false;
  mutable std::shared_ptr<NodeBase> gradient;
};

template <class T>
void argument_backward(tapegrad::detail::Record& record, tapegrad::detail::Sweep& sweep) {
  tapegrad::detail::BackwardContext<T> c(record, sweep);
  const auto& capture = *static_cast<const Capture*>(c.attrs().shared().get());
  if (capture.on) {
    capture.gradient = c.grad().node();
  } else {
    c.add(0, c.grad());
  }
}

template <class T>
void argument_forward(tapegrad::detail::Record& record) {
  const auto& from = static_cast<const tapegrad::detail::Node<T>&>(*record.input(0)).value;
  auto& to = static_cast<tapegrad::detail::Node<T>&>(*record.output).value;
  std::copy(from.data(), from.data() + from.size(), to.data());
}

template <class T>
const tapegrad::detail::OpEntry argument_entry{"argument", &argument_backward<T>,
                                               &argument_forward<T>};

template <class T>
Tensor<T> constant_copy(const Tensor<T>& x) {
  return Tensor<T>(xt::xarray<T>(x.value()));
}

template <class T>
Tensor<T> filled(const Shape& shape, T value) {
  auto a = xt::xarray<T>::from_shape(shape);
  a.fill(value);
  return Tensor<T>(std::move(a));
}

template <class T>
Tensor<T> one_hot(const Shape& shape, std::size_t k) {
  xt::xarray<T> pick = xt::zeros<T>(shape);
  pick.data()[k] = T(1);
  return Tensor<T>(std::move(pick));
}

template <class T>
void require_single(const char* who, const Tensor<T>& y) {
  if (y.size() != 1) {
    throw ShapeError(std::string(who) + ": f must return a single element, got shape " +
                     shape_to_string(y.shape()));
  }
}

// One call of a transform: where it records f and its sweeps, f's arguments as the
// transform differentiates them, and whether its results are connected (see functional.hpp).
// - Recording on (grad_enabled) with a Tape active: everything is recorded on the caller's
//   tape, from record `floor_` on. An argument that requires grad reaches f through an
//   argument record; one that does not is a leaf copy. The results are connected when an
//   argument or a seed requires grad, f read a tensor requiring grad from outside, or
//   compile() is recording: then every sweep runs with create_graph.
// - Otherwise: a Tape of its own with recording forced on, leaf copies, constant results.
template <class T>
class Session {
 public:
  explicit Session(const std::vector<Tensor<T>>& xs)
      : on_callers_tape_(grad_enabled() && tapegrad::detail::active_tape() != nullptr) {
    if (!on_callers_tape_) {
      recording_.emplace(true);
      own_.emplace();
    }
    tape_ = tapegrad::detail::active_tape();
    floor_ = tape_->records.size();
    for (const auto& x : xs) {
      if (on_callers_tape_ && (x.requires_grad() || tapegrad::detail::recording_everything)) {
        arguments_.push_back(argument(x));
      } else {
        arguments_.emplace_back(xt::xarray<T>(x.value()), requires_grad);
        captures_.emplace_back();
        leaves_.push_back(arguments_.back());
      }
      any_requires_grad_ = any_requires_grad_ || x.requires_grad();
    }
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// What f gets.
  const std::vector<Tensor<T>>& arguments() const { return arguments_; }
  /// Decides, after f ran, whether the results are connected; `seeds` are the transform's
  /// other tensor inputs (v of vjp, hvp, jvp).
  void decide(const std::vector<const Tensor<T>*>& seeds = {}) {
    if (!on_callers_tape_) return;
    connected_ = any_requires_grad_ || tapegrad::detail::recording_everything;
    for (const auto* seed : seeds) connected_ = connected_ || seed->requires_grad();
    connected_ = connected_ || reads_from_outside();
  }
  bool connected() const { return connected_; }
  /// A result as the transform returns it: itself when connected, else a constant copy.
  Tensor<T> out(const Tensor<T>& t) const { return connected_ ? t : constant_copy(t); }
  /// A constant, or the tensor itself when connected (a seed or tangent).
  Tensor<T> operand(const Tensor<T>& t) const { return connected_ ? t : constant_copy(t); }
  /// A leaf of the transform's own that receives gradients from every sweep (jvp's u).
  Tensor<T> new_leaf(const Shape& shape) {
    leaves_.emplace_back(filled<T>(shape, T(1)).value(), requires_grad);
    return leaves_.back();
  }
  /// The gradient of `root` seeded with `seed` with respect to each argument (none where
  /// nothing reached it), and into the transform's own leaves (read from them). With
  /// create_graph when connected.
  std::vector<std::optional<Tensor<T>>> gradients(const Tensor<T>& root, const Tensor<T>& seed,
                                                  BackwardMode mode);

 private:
  Tensor<T> argument(const Tensor<T>& x);
  bool ours(const NodeBase& node) const;
  bool reads_from_outside() const;
  bool depends_on_variables(const Tensor<T>& y) const;

  bool on_callers_tape_;
  std::optional<tapegrad::detail::GradModeGuard> recording_;
  std::optional<Tape> own_;
  const tapegrad::detail::TapeImpl* tape_ = nullptr;
  std::size_t floor_ = 0;
  std::vector<Tensor<T>> arguments_;
  std::vector<std::shared_ptr<const Capture>> captures_;  // null for a leaf copy
  std::vector<Tensor<T>> leaves_;
  bool any_requires_grad_ = false;
  bool connected_ = false;
};

template <class T>
Tensor<T> Session<T>::argument(const Tensor<T>& x) {
  auto capture = std::make_shared<const Capture>();
  captures_.push_back(capture);
  tapegrad::detail::AttrBox attrs;
  attrs.share(capture);
  const std::shared_ptr<NodeBase>* inputs[] = {&x.node()};
  auto value = tapegrad::detail::new_node<T>(xt::xarray<T>(x.value()));
  // x requires grad, or compile() records every op: recorded either way.
  Tensor<T> result = tapegrad::detail::make_result_from<T>(
      argument_entry<T>, "argument", std::move(value), inputs, 1, std::move(attrs));
  result.node()->requires_grad = true;  // differentiated by this transform in any case
  return result;
}

template <class T>
bool Session<T>::ours(const NodeBase& node) const {
  if (node.is_leaf()) {
    for (const auto& leaf : leaves_) {
      if (leaf.node().get() == &node) return true;
    }
    return false;
  }
  return node.tape_serial == tape_->serial && node.record_index >= floor_;
}

// Whether a record f made reads a tensor that requires grad and is not the transform's: a
// parameter or result of the caller's that f reads as a closure.
template <class T>
bool Session<T>::reads_from_outside() const {
  for (std::size_t i = floor_; i < tape_->records.size(); ++i) {
    const auto& record = tape_->records[i];
    for (std::size_t k = 0; k < record.input_count; ++k) {
      const NodeBase& input = *record.input(k);
      if (input.requires_grad && !ours(input)) return true;
    }
  }
  return false;
}

// Whether y may depend on the arguments: a result the transform recorded, or one of its
// leaves. A tensor of the caller's (recorded before, or on an enclosing tape) does not; one
// on a tape that is gone goes to backward_into, which says so.
template <class T>
bool Session<T>::depends_on_variables(const Tensor<T>& y) const {
  if (!y.requires_grad()) return false;
  const NodeBase& node = *y.node();
  if (node.is_leaf()) return ours(node);
  if (node.untracked) return true;
  if (node.tape_serial == tape_->serial) return node.record_index >= floor_;
  for (const auto* tape : tapegrad::detail::tape_stack()) {
    if (tape->serial == node.tape_serial) return false;
  }
  return true;
}

template <class T>
std::vector<std::optional<Tensor<T>>> Session<T>::gradients(const Tensor<T>& root,
                                                            const Tensor<T>& seed,
                                                            BackwardMode mode) {
  std::vector<std::optional<Tensor<T>>> result(arguments_.size());
  for (auto& leaf : leaves_) leaf.zero_grad();
  for (const auto& capture : captures_) {
    if (capture) capture->gradient.reset();
  }
  if (!depends_on_variables(root)) return result;
  struct On {  // the captures, on for this sweep only (also when it throws)
    const std::vector<std::shared_ptr<const Capture>>& captures;
    explicit On(const std::vector<std::shared_ptr<const Capture>>& c) : captures(c) {
      for (const auto& capture : captures)
        if (capture) capture->on = true;
    }
    ~On() {
      for (const auto& capture : captures)
        if (capture) capture->on = false;
    }
  } on(captures_);
  tapegrad::detail::backward_into(root, seed, connected_ ? BackwardMode(create_graph) : mode,
                                  leaves_, floor_);
  for (std::size_t i = 0; i < arguments_.size(); ++i) {
    if (captures_[i]) {
      if (captures_[i]->gradient)
        result[i] = tapegrad::detail::TensorAccess::wrap<T>(captures_[i]->gradient);
    } else if (arguments_[i].has_grad()) {
      result[i] = arguments_[i].grad_tensor();
    }
  }
  return result;
}

template <class T>
Tensor<T> or_zeros(const std::optional<Tensor<T>>& t, const Shape& shape) {
  return t ? *t : filled<T>(shape, T(0));
}

// rows[k] (each of the same shape) as the rows of a matrix, reshaped to `shape`.
template <class T>
Tensor<T> assemble(const std::vector<Tensor<T>>& rows, const Shape& shape) {
  if (rows.empty() || rows[0].size() == 0) return filled<T>(shape, T(0));
  std::vector<Tensor<T>> flat;
  for (const auto& row : rows) flat.push_back(reshape(row, Shape{1, row.size()}));
  return reshape(concat(flat, 0), shape);
}

}  // namespace

template <class T>
std::pair<Tensor<T>, std::vector<Tensor<T>>> value_and_grad(const Function<T>& f,
                                                            const std::vector<Tensor<T>>& xs) {
  Session<T> s(xs);
  const Tensor<T> y = f(s.arguments());
  require_single("value_and_grad", y);
  s.decide();
  const auto gs = s.gradients(y, filled<T>(y.shape(), T(1)), BackwardMode{});
  std::vector<Tensor<T>> grads;
  for (std::size_t i = 0; i < xs.size(); ++i)
    grads.push_back(s.out(or_zeros(gs[i], xs[i].shape())));
  return {s.out(y), grads};
}

template <class T>
std::pair<Tensor<T>, std::vector<Tensor<T>>> vjp(const Function<T>& f,
                                                 const std::vector<Tensor<T>>& xs,
                                                 const Tensor<T>& v) {
  Session<T> s(xs);
  const Tensor<T> y = f(s.arguments());
  if (v.shape() != y.shape()) {
    throw ShapeError("vjp: v has shape " + shape_to_string(v.shape()) + " but f(x) has shape " +
                     shape_to_string(y.shape()));
  }
  s.decide({&v});
  const auto gs = s.gradients(y, s.operand(v), BackwardMode{});
  std::vector<Tensor<T>> products;
  for (std::size_t i = 0; i < xs.size(); ++i)
    products.push_back(s.out(or_zeros(gs[i], xs[i].shape())));
  return {s.out(y), products};
}

template <class T>
std::pair<Tensor<T>, Tensor<T>> jvp(const Function<T>& f, const std::vector<Tensor<T>>& xs,
                                    const std::vector<Tensor<T>>& vs, bool one_argument) {
  if (vs.size() != xs.size()) {
    throw ShapeError("jvp: " + std::to_string(vs.size()) + " tangents v for " +
                     std::to_string(xs.size()) + " arguments");
  }
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (vs[i].shape() == xs[i].shape()) continue;
    const std::string which = one_argument ? "v" : "v[" + std::to_string(i) + "]";
    const std::string argument = one_argument ? "x" : "argument " + std::to_string(i);
    throw ShapeError("jvp: " + which + " has shape " + shape_to_string(vs[i].shape()) + " but " +
                     argument + " has shape " + shape_to_string(xs[i].shape()));
  }
  Session<T> s(xs);
  const Tensor<T> y = f(s.arguments());
  std::vector<const Tensor<T>*> tangents;
  for (const auto& v : vs) tangents.push_back(&v);
  s.decide(tangents);
  // The double-vjp trick: g_i(u) = u^T J_i is linear in u, so d/du <g(u), v> = J v.
  const Tensor<T> u = s.new_leaf(y.shape());
  const auto gs = s.gradients(y, u, create_graph);
  std::optional<Tensor<T>> dot;  // <g(u), v>, summed over the arguments
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!gs[i] || !gs[i]->requires_grad()) continue;
    const Tensor<T> term = sum(*gs[i] * s.operand(vs[i]));
    dot = dot ? *dot + term : term;
  }
  if (!dot) return {s.out(y), s.out(filled<T>(y.shape(), T(0)))};
  s.gradients(*dot, filled<T>(dot->shape(), T(1)), BackwardMode{});
  return {s.out(y), s.out(u.has_grad() ? u.grad_tensor() : filled<T>(y.shape(), T(0)))};
}

namespace {

// J_i with one sweep per output element (a row of every J_i each).
template <class T>
std::vector<Tensor<T>> jacobian_reverse(Session<T>& s, const Tensor<T>& y,
                                        const std::vector<Tensor<T>>& xs) {
  std::vector<std::vector<Tensor<T>>> rows(xs.size());
  for (std::size_t out = 0; out < y.size(); ++out) {
    const auto gs = s.gradients(y, one_hot<T>(y.shape(), out), retain_graph);
    for (std::size_t i = 0; i < xs.size(); ++i) rows[i].push_back(or_zeros(gs[i], xs[i].shape()));
  }
  std::vector<Tensor<T>> jacobians;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    jacobians.push_back(
        assemble(rows[i], tapegrad::detail::concat_shapes("jacobian", y.shape(), xs[i].shape())));
  }
  return jacobians;
}

// Column k of J_i as d g_i(u) / du[k]: one sweep over the create_graph records per input
// element.
template <class T>
std::vector<Tensor<T>> jacobian_forward(Session<T>& s, const Tensor<T>& y,
                                        const std::vector<Tensor<T>>& xs) {
  const Tensor<T> u = s.new_leaf(y.shape());
  const auto gs = s.gradients(y, u, create_graph);
  std::vector<Tensor<T>> jacobians;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape shape = tapegrad::detail::concat_shapes("jacobian", y.shape(), xs[i].shape());
    if (!gs[i] || !gs[i]->requires_grad() || y.size() == 0) {
      jacobians.push_back(filled<T>(shape, T(0)));
      continue;
    }
    std::vector<Tensor<T>> columns;
    for (std::size_t k = 0; k < xs[i].size(); ++k) {
      s.gradients(*gs[i], one_hot<T>(xs[i].shape(), k), retain_graph);
      columns.push_back(u.has_grad() ? u.grad_tensor() : filled<T>(y.shape(), T(0)));
    }
    const Tensor<T> by_column = assemble(columns, Shape{xs[i].size(), y.size()});
    jacobians.push_back(xs[i].size() == 0 ? filled<T>(shape, T(0))
                                          : reshape(transpose(by_column), shape));
  }
  return jacobians;
}

// The Jacobians in `mode`, or nothing when Auto's forward attempt met an op whose backward
// cannot be differentiated (the caller then runs f afresh in reverse mode, after this
// session's tape and guards are gone).
template <class T>
std::optional<std::vector<Tensor<T>>> jacobian_once(const Function<T>& f,
                                                    const std::vector<Tensor<T>>& xs,
                                                    JacobianMode mode) {
  Session<T> s(xs);
  const Tensor<T> y = f(s.arguments());
  s.decide();
  std::size_t inputs = 0;
  for (const auto& x : xs) inputs += x.size();
  const bool automatic = mode == JacobianMode::Auto;
  if (automatic) mode = inputs < y.size() ? JacobianMode::Forward : JacobianMode::Reverse;
  std::vector<Tensor<T>> jacobians;
  if (mode == JacobianMode::Forward) {
    try {
      jacobians = jacobian_forward(s, y, xs);
    } catch (const TapeError&) {
      if (!automatic) throw;
      return std::nullopt;
    }
  } else {
    jacobians = jacobian_reverse(s, y, xs);
  }
  for (auto& j : jacobians) j = s.out(j);
  return jacobians;
}

}  // namespace

template <class T>
std::vector<Tensor<T>> jacobian(const Function<T>& f, const std::vector<Tensor<T>>& xs,
                                JacobianMode mode) {
  auto jacobians = jacobian_once(f, xs, mode);
  // An op whose backward cannot be differentiated (a custom op not declared
  // differentiable_backward): reverse mode needs first derivatives only.
  if (!jacobians) jacobians = jacobian_once(f, xs, JacobianMode::Reverse);
  return std::move(*jacobians);
}

template <class T>
Tensor<T> hessian(const Function<T>& f, const Tensor<T>& x) {
  Session<T> s({x});
  const Tensor<T> y = f(s.arguments());
  require_single("hessian", y);
  s.decide();
  const Shape shape = tapegrad::detail::concat_shapes("hessian", x.shape(), x.shape());
  const auto gradient = s.gradients(y, filled<T>(y.shape(), T(1)), create_graph)[0];
  // No gradient that depends on x: f is linear in x or does not depend on it.
  if (!gradient || !gradient->requires_grad()) return filled<T>(shape, T(0));
  std::vector<Tensor<T>> rows;
  for (std::size_t row = 0; row < x.size(); ++row) {
    rows.push_back(
        or_zeros(s.gradients(*gradient, one_hot<T>(x.shape(), row), retain_graph)[0], x.shape()));
  }
  return s.out(assemble(rows, shape));
}

template <class T>
Tensor<T> hvp(const Function<T>& f, const Tensor<T>& x, const Tensor<T>& v) {
  if (v.shape() != x.shape()) {
    throw ShapeError("hvp: v has shape " + shape_to_string(v.shape()) + " but x has shape " +
                     shape_to_string(x.shape()));
  }
  Session<T> s({x});
  const Tensor<T> y = f(s.arguments());
  require_single("hvp", y);
  s.decide({&v});
  const auto gradient = s.gradients(y, filled<T>(y.shape(), T(1)), create_graph)[0];
  if (!gradient || !gradient->requires_grad()) return filled<T>(x.shape(), T(0));
  const Tensor<T> dot = sum(*gradient * s.operand(v));  // d(g . v)/dx = H v
  return s.out(
      or_zeros(s.gradients(dot, filled<T>(dot.shape(), T(1)), BackwardMode{})[0], x.shape()));
}

#define TAPEGRAD_INSTANTIATE(T)                                                                   \
  template std::pair<Tensor<T>, std::vector<Tensor<T>>> value_and_grad(                           \
      const Function<T>&, const std::vector<Tensor<T>>&);                                         \
  template std::pair<Tensor<T>, std::vector<Tensor<T>>> vjp(                                      \
      const Function<T>&, const std::vector<Tensor<T>>&, const Tensor<T>&);                       \
  template std::pair<Tensor<T>, Tensor<T>> jvp(const Function<T>&, const std::vector<Tensor<T>>&, \
                                               const std::vector<Tensor<T>>&, bool);              \
  template std::vector<Tensor<T>> jacobian(const Function<T>&, const std::vector<Tensor<T>>&,     \
                                           JacobianMode);                                         \
  template Tensor<T> hessian(const Function<T>&, const Tensor<T>&);                               \
  template Tensor<T> hvp(const Function<T>&, const Tensor<T>&, const Tensor<T>&);

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::functional::detail
