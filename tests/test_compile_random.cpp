// compile() on random graphs: a seeded generator builds graphs of ops drawn from every family
// (elementwise with broadcasting, piecewise, reductions along axes, matmul, softmax, shape
// ops, custom ops, losses, ops under a NoGradGuard), each is compiled once and replayed on new
// values of its leaves, and the value and every parameter's gradient must equal what eager
// backward() gives on those values. A failure prints the seed and the graph, op by op.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "tapegrad/compile.hpp"

using namespace tapegrad;

namespace {

// ---- the graph: a list of steps, each an op on earlier steps ----

// clang-format off
#define RANDOM_GRAPH_KINDS(X)                                                                 \
  X(Leaf)                                                                                     \
  X(Add) X(Sub) X(Mul) X(Div) X(DivByNumber) X(NumberByDiv) X(Maximum) X(Minimum)             \
  X(Neg) X(Affine) X(Pow) X(Exp) X(Log) X(Sqrt) X(Abs) X(Square) X(Sin) X(Cos) X(Tanh)        \
  X(Sigmoid) X(Relu) X(LeakyRelu) X(Softplus) X(Clamp)                                        \
  X(SumAll) X(MeanAll) X(Sum) X(Mean) X(Max) X(Logsumexp) X(Softmax) X(LogSoftmax)            \
  X(Matmul) X(Transpose) X(Permute) X(Reshape) X(BroadcastTo) X(SumTo) X(Concat) X(Narrow)    \
  X(IndexSelect) X(IndexAdd)                                                                  \
  X(CustomCube) X(CustomMulSin) X(CustomRowSum)                                               \
  X(Mse) X(HalfSse) X(CrossEntropy) X(CrossEntropyProbs) X(NllLoss) X(Bce) X(BceWithLogits)
// clang-format on

#define RANDOM_GRAPH_ENUM(name) name,
enum class Kind { RANDOM_GRAPH_KINDS(RANDOM_GRAPH_ENUM) Count };
#undef RANDOM_GRAPH_ENUM
#define RANDOM_GRAPH_NAME(name) #name,
const char* const kind_names[] = {RANDOM_GRAPH_KINDS(RANDOM_GRAPH_NAME)};
#undef RANDOM_GRAPH_NAME
constexpr std::size_t kind_count = static_cast<std::size_t>(Kind::Count);

struct Step {
  Kind kind = Kind::Leaf;
  std::vector<std::size_t> in;  // earlier steps
  double a = 0, b = 0;          // scale and shift, exponent, number, slope, clamp bounds
  std::ptrdiff_t axis = 0;
  Axes axes;
  bool keepdims = false;
  Shape shape;                    // reshape, broadcast_to and sum_to targets
  std::vector<std::size_t> list;  // a permutation, indices, labels
  std::size_t start = 0, length = 0, rows = 0;
  std::size_t leaf = 0;  // a Leaf's position among the leaves
  bool no_grad = false;  // computed under a NoGradGuard
  Shape out;
};

struct Graph {
  std::uint64_t seed = 0;
  std::vector<Step> steps;
  std::vector<Shape> leaf_shapes;
  std::vector<bool> leaf_is_parameter;
  std::vector<std::pair<std::size_t, bool>> loss_terms;  // a step, and mean (else sum) of it
};

std::string shape_text(const Shape& s) { return shape_to_string(s); }

std::string list_text(const std::vector<std::size_t>& v) {
  std::string out = "{";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "}";
}

std::string axes_text(const Axes& v) {
  std::string out = "{";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "}";
}

std::string describe(const Graph& g) {
  std::ostringstream out;
  out.precision(17);
  out << "random graph, seed " << g.seed << ":\n";
  for (std::size_t i = 0; i < g.steps.size(); ++i) {
    const Step& s = g.steps[i];
    out << "  v" << i << " = ";
    if (s.kind == Kind::Leaf) {
      out << (g.leaf_is_parameter[s.leaf] ? "parameter " : "input ") << s.leaf << " "
          << shape_text(s.out) << "\n";
      continue;
    }
    out << kind_names[static_cast<std::size_t>(s.kind)] << "(";
    for (std::size_t k = 0; k < s.in.size(); ++k) {
      out << (k ? ", " : "") << "v" << s.in[k] << " " << shape_text(g.steps[s.in[k]].out);
    }
    switch (s.kind) {  // the constants each kind uses
      case Kind::DivByNumber:
      case Kind::NumberByDiv:
      case Kind::Pow:
      case Kind::LeakyRelu:
        out << "; " << s.a;
        break;
      case Kind::Affine:
      case Kind::Clamp:
        out << "; " << s.a << ", " << s.b;
        break;
      case Kind::Sum:
      case Kind::Mean:
        out << "; axes " << axes_text(s.axes) << ", keepdims " << s.keepdims;
        break;
      case Kind::Max:
      case Kind::Logsumexp:
        out << "; axis " << s.axis << ", keepdims " << s.keepdims;
        break;
      case Kind::Softmax:
      case Kind::LogSoftmax:
      case Kind::Concat:
        out << "; axis " << s.axis;
        break;
      case Kind::Narrow:
        out << "; axis " << s.axis << ", start " << s.start << ", length " << s.length;
        break;
      case Kind::Reshape:
      case Kind::BroadcastTo:
      case Kind::SumTo:
        out << "; " << shape_text(s.shape);
        break;
      case Kind::Permute:
      case Kind::IndexSelect:
      case Kind::CrossEntropy:
      case Kind::NllLoss:
        out << "; " << list_text(s.list);
        break;
      case Kind::IndexAdd:
        out << "; " << list_text(s.list) << ", rows " << s.rows;
        break;
      default:
        break;
    }
    out << ") -> " << shape_text(s.out) << (s.no_grad ? "  [under NoGradGuard]" : "") << "\n";
  }
  out << "  loss =";
  for (const auto& [step, mean] : g.loss_terms)
    out << " + " << (mean ? "mean(v" : "sum(v") << step << ")";
  out << "\n";
  return out.str();
}

// ---- evaluating a graph with tensor ops (the same function for compile() and for eager) ----

// Custom ops whose backward is written with tensor ops: an elementwise one, one of two
// inputs and one that changes the shape.
template <class T>
struct CustomOps {
  using In = std::vector<Tensor<T>>;
  using Context = CustomBackwardContext<T>;
  CustomOp<T> cube{
      "cube",
      [](const In& in) { return xt::xarray<T>(in[0].value() * in[0].value() * in[0].value()); },
      [](const Context& c) { return std::vector{c.grad_output() * 3.0 * square(c.input(0))}; },
      differentiable_backward};
  // y = a b + sin(a): da = g (b + cos(a)), db = g a.
  CustomOp<T> mul_sin{
      "mul_sin",
      [](const In& in) {
        return xt::xarray<T>(in[0].value() * in[1].value() + xt::sin(in[0].value()));
      },
      [](const Context& c) {
        return std::vector{c.grad_output() * (c.input(1) + cos(c.input(0))),
                           c.grad_output() * c.input(0)};
      },
      differentiable_backward};
  // (n, m) -> (n,), the sum of each row: dx = g broadcast along the rows.
  CustomOp<T> row_sum{
      "row_sum", [](const In& in) { return xt::xarray<T>(xt::sum(in[0].value(), {1})); },
      [](const Context& c) {
        const Shape& shape = c.input(0).shape();
        return std::vector{broadcast_to(reshape(c.grad_output(), Shape{shape[0], 1}), shape)};
      },
      differentiable_backward};
};

template <class T>
const CustomOps<T>& custom_ops() {
  static const CustomOps<T> ops;
  return ops;
}

template <class T>
Tensor<T> apply(const Step& s, const std::vector<Tensor<T>>& v,
                const std::vector<Tensor<T>>& leaves) {
  const auto x = [&](std::size_t k) -> const Tensor<T>& { return v[s.in[k]]; };
  switch (s.kind) {
    case Kind::Leaf:
      return leaves[s.leaf];
    case Kind::Add:
      return x(0) + x(1);
    case Kind::Sub:
      return x(0) - x(1);
    case Kind::Mul:
      return x(0) * x(1);
    case Kind::Div:
      return x(0) / x(1);
    case Kind::DivByNumber:
      return x(0) / s.a;
    case Kind::NumberByDiv:
      return s.a / x(0);
    case Kind::Maximum:
      return maximum(x(0), x(1));
    case Kind::Minimum:
      return minimum(x(0), x(1));
    case Kind::Neg:
      return -x(0);
    case Kind::Affine:
      return affine(x(0), s.a, s.b);
    case Kind::Pow:
      return pow(x(0), s.a);
    case Kind::Exp:
      return exp(x(0));
    case Kind::Log:
      return log(x(0));
    case Kind::Sqrt:
      return sqrt(x(0));
    case Kind::Abs:
      return abs(x(0));
    case Kind::Square:
      return square(x(0));
    case Kind::Sin:
      return sin(x(0));
    case Kind::Cos:
      return cos(x(0));
    case Kind::Tanh:
      return tanh(x(0));
    case Kind::Sigmoid:
      return sigmoid(x(0));
    case Kind::Relu:
      return relu(x(0));
    case Kind::LeakyRelu:
      return leaky_relu(x(0), s.a);
    case Kind::Softplus:
      return softplus(x(0));
    case Kind::Clamp:
      return clamp(x(0), s.a, s.b);
    case Kind::SumAll:
      return sum(x(0));
    case Kind::MeanAll:
      return mean(x(0));
    case Kind::Sum:
      return sum(x(0), s.axes, s.keepdims);
    case Kind::Mean:
      return mean(x(0), s.axes, s.keepdims);
    case Kind::Max:
      return max(x(0), s.axis, s.keepdims);
    case Kind::Logsumexp:
      return logsumexp(x(0), s.axis, s.keepdims);
    case Kind::Softmax:
      return softmax(x(0), s.axis);
    case Kind::LogSoftmax:
      return log_softmax(x(0), s.axis);
    case Kind::Matmul:
      return matmul(x(0), x(1));
    case Kind::Transpose:
      return transpose(x(0));
    case Kind::Permute:
      return transpose(x(0), s.list);
    case Kind::Reshape:
      return reshape(x(0), s.shape);
    case Kind::BroadcastTo:
      return broadcast_to(x(0), s.shape);
    case Kind::SumTo:
      return sum_to(x(0), s.shape);
    case Kind::Concat: {
      std::vector<Tensor<T>> parts;
      for (std::size_t k = 0; k < s.in.size(); ++k) parts.push_back(x(k));
      return concat(parts, s.axis);
    }
    case Kind::Narrow:
      return narrow(x(0), s.axis, s.start, s.length);
    case Kind::IndexSelect:
      return index_select(x(0), s.list);
    case Kind::IndexAdd:
      return index_add(x(0), s.list, s.rows);
    case Kind::CustomCube:
      return custom_ops<T>().cube({x(0)});
    case Kind::CustomMulSin:
      return custom_ops<T>().mul_sin({x(0), x(1)});
    case Kind::CustomRowSum:
      return custom_ops<T>().row_sum({x(0)});
    case Kind::Mse:
      return nn::mse(x(0), x(1));
    case Kind::HalfSse:
      return nn::half_sse(x(0), x(1));
    case Kind::CrossEntropy:
      return nn::cross_entropy(x(0), s.list);
    case Kind::CrossEntropyProbs:
      return nn::cross_entropy_with_probabilities(x(0), x(1));
    case Kind::NllLoss:
      return nn::nll_loss(x(0), s.list);
    case Kind::Bce:
      return nn::binary_cross_entropy(x(0), x(1));
    case Kind::BceWithLogits:
      return nn::binary_cross_entropy_with_logits(x(0), x(1));
    case Kind::Count:
      break;
  }
  throw std::logic_error("random graph: unknown step kind");
}

template <class T>
Tensor<T> evaluate(const Graph& g, const std::vector<Tensor<T>>& leaves) {
  std::vector<Tensor<T>> v;
  v.reserve(g.steps.size());
  for (const Step& s : g.steps) {
    if (s.no_grad) {
      NoGradGuard no_grad;
      v.push_back(apply(s, v, leaves));
    } else {
      v.push_back(apply(s, v, leaves));
    }
  }
  std::optional<Tensor<T>> loss;
  for (const auto& [step, use_mean] : g.loss_terms) {
    const Tensor<T> term = use_mean ? mean(v[step]) : sum(v[step]);
    loss = loss ? *loss + term : term;
  }
  return *loss;
}

// ---- the generator ----

std::size_t size_of(const Shape& s) {
  return std::accumulate(s.begin(), s.end(), std::size_t{1}, std::multiplies<>());
}

std::optional<Shape> broadcast_shapes(const Shape& a, const Shape& b) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out;
  out.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t da = i + a.size() < n ? 1 : a[i + a.size() - n];
    const std::size_t db = i + b.size() < n ? 1 : b[i + b.size() - n];
    if (da != db && da != 1 && db != 1) return std::nullopt;
    out[i] = std::max(da, db);
  }
  return out;
}

constexpr std::size_t max_elements = 48;

// Builds one graph. Each pool entry (a step's result) carries a bound on its magnitude and a
// lower bound when it is positive, worked out from the ops, not from values: the generator
// squashes an operand (tanh, or a scale) before an op that could overflow, and makes it
// positive (square + 0.5, softplus + 0.1, exp of tanh) before log, sqrt, a fractional power or
// a division, so every value set drawn later stays in the smooth, finite domain.
class GraphMaker {
 public:
  explicit GraphMaker(std::uint64_t seed) : random_(seed) { graph_.seed = seed; }

  Graph make() {
    leaf(random_shape(), true);  // at least one parameter
    const std::size_t ops = 5 + uniform(21);
    for (std::size_t done = 0; done < ops;) {
      if (add_op(static_cast<Kind>(1 + uniform(kind_count - 1)))) ++done;
    }
    choose_loss();
    return std::move(graph_);
  }

 private:
  struct Entry {
    Shape shape;
    double bound;  // |x| <= bound
    double lower;  // x >= lower > 0, or -1: not known to be positive
    bool grad;     // depends on a parameter through ops recorded for the gradient
  };

  std::size_t uniform(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random_);
  }
  double real(double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(random_);
  }
  bool chance(double p) { return real(0, 1) < p; }

  Shape random_shape() {
    const std::size_t dims[] = {0, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3};
    const std::size_t n = dims[uniform(std::size(dims))];
    Shape s;
    for (std::size_t i = 0; i < n; ++i) s.push_back(1 + uniform(n == 3 ? 3 : 5));
    return s;
  }

  std::size_t push(Step step, Entry entry) {
    step.out = entry.shape;
    graph_.steps.push_back(std::move(step));
    pool_.push_back(std::move(entry));
    return pool_.size() - 1;
  }

  std::size_t leaf(const Shape& shape, bool parameter) {
    Step s;
    s.leaf = graph_.leaf_shapes.size();
    graph_.leaf_shapes.push_back(shape);
    graph_.leaf_is_parameter.push_back(parameter);
    return push(s, {shape, 2.0, -1.0, parameter});
  }

  std::size_t new_leaf(const Shape& shape) { return leaf(shape, chance(0.6)); }

  // An operand meeting `fits`, from the pool (recent results preferred) or a new leaf of
  // `shape()`.
  template <class Fits, class MakeShape>
  std::size_t operand(Fits fits, MakeShape shape, double reuse = 0.8) {
    std::vector<std::size_t> recent, any;
    for (std::size_t i = 0; i < pool_.size(); ++i) {
      if (!fits(pool_[i].shape)) continue;
      any.push_back(i);
      if (i + 6 >= pool_.size()) recent.push_back(i);
    }
    if (!any.empty() && chance(reuse)) {
      const auto& from = !recent.empty() && chance(0.6) ? recent : any;
      return from[uniform(from.size())];
    }
    return new_leaf(shape());
  }

  std::size_t any_operand() {
    return operand([](const Shape&) { return true; }, [&] { return random_shape(); }, 0.9);
  }

  // A one-input step on `x` whose result has x's shape.
  std::size_t unary(Kind kind, std::size_t x, double bound, double lower, double a = 0,
                    double b = 0) {
    Step s;
    s.kind = kind;
    s.in = {x};
    s.a = a;
    s.b = b;
    return push(s, {pool_[x].shape, bound, lower, pool_[x].grad});
  }

  // x itself if |x| <= limit, else tanh(x) or x scaled down to that bound.
  std::size_t tame(std::size_t x, double limit) {
    const double bound = pool_[x].bound;
    if (bound <= limit) return x;
    if (chance(0.5)) return unary(Kind::Tanh, x, 1.0, -1.0);
    return unary(Kind::Affine, x, limit, -1.0, limit / bound, 0.0);
  }

  // x itself if x >= 0.1 everywhere, else a positive function of it.
  std::size_t positive(std::size_t x) {
    if (pool_[x].lower >= 0.1) return x;
    x = tame(x, 30);
    const double bound = pool_[x].bound;
    switch (uniform(3)) {
      case 0: {
        const std::size_t sq = unary(Kind::Square, x, bound * bound, -1.0);
        return unary(Kind::Affine, sq, bound * bound + 0.5, 0.5, 1.0, 0.5);
      }
      case 1: {
        const std::size_t sp = unary(Kind::Softplus, x, bound + 1, -1.0);
        return unary(Kind::Affine, sp, bound + 1.1, 0.1, 1.0, 0.1);
      }
      default: {
        const std::size_t t = unary(Kind::Tanh, x, 1.0, -1.0);
        return unary(Kind::Exp, t, std::exp(1.0), std::exp(-1.0));
      }
    }
  }

  // A partner for a binary elementwise op on shape `s`: any pool entry that broadcasts with
  // it to at most max_elements, or a new leaf of a shape that broadcasts to s.
  std::size_t broadcast_partner(const Shape& s) {
    return operand(
        [&](const Shape& t) {
          const auto r = broadcast_shapes(s, t);
          return r && size_of(*r) <= max_elements;
        },
        [&] {
          if (chance(0.15)) return Shape{};
          Shape t(s.begin() + static_cast<std::ptrdiff_t>(uniform(s.size() + 1)), s.end());
          for (auto& d : t) {
            if (chance(0.35)) d = 1;
          }
          return t;
        });
  }

  std::size_t same_shape_partner(const Shape& s) {
    return operand([&](const Shape& t) { return t == s; }, [&] { return s; }, 0.5);
  }

  bool add_op(Kind kind) {
    Step s;
    s.kind = kind;
    s.no_grad = chance(0.08);
    const auto finish = [&](Shape out, double bound, double lower = -1.0) {
      bool grad = false;
      for (const auto i : s.in) grad = grad || pool_[i].grad;
      push(s, {std::move(out), bound, lower, grad && !s.no_grad});
      return true;
    };
    const auto at_least_1d = [](const Shape& t) { return !t.empty(); };
    const auto a_1d_shape = [&] {
      Shape t = random_shape();
      if (t.empty()) t.push_back(1 + uniform(4));
      return t;
    };
    switch (kind) {
      case Kind::Leaf:
      case Kind::Count:
        return false;
      case Kind::Add:
      case Kind::Sub:
      case Kind::Mul:
      case Kind::Maximum:
      case Kind::Minimum:
      case Kind::Div: {
        std::size_t a = tame(any_operand(), kind == Kind::Mul ? 30 : 100);
        std::size_t b = broadcast_partner(pool_[a].shape);
        b = kind == Kind::Div ? positive(b) : tame(b, kind == Kind::Mul ? 30 : 100);
        if (kind != Kind::Div && chance(0.4)) std::swap(a, b);
        s.in = {a, b};
        const Entry &ea = pool_[a], &eb = pool_[b];
        const Shape out = *broadcast_shapes(ea.shape, eb.shape);
        switch (kind) {
          case Kind::Add:
            return finish(out, ea.bound + eb.bound,
                          ea.lower > 0 && eb.lower > 0 ? ea.lower + eb.lower : -1.0);
          case Kind::Sub:
            return finish(out, ea.bound + eb.bound);
          case Kind::Mul:
            return finish(out, ea.bound * eb.bound,
                          ea.lower > 0 && eb.lower > 0 ? ea.lower * eb.lower : -1.0);
          case Kind::Div:
            return finish(out, ea.bound / eb.lower);
          case Kind::Maximum:
            return finish(out, std::max(ea.bound, eb.bound), std::max(ea.lower, eb.lower));
          default:
            return finish(out, std::max(ea.bound, eb.bound),
                          ea.lower > 0 && eb.lower > 0 ? std::min(ea.lower, eb.lower) : -1.0);
        }
      }
      case Kind::DivByNumber: {
        const std::size_t x = tame(any_operand(), 100);
        s.in = {x};
        s.a = (chance(0.5) ? 1 : -1) * real(0.5, 3);
        return finish(pool_[x].shape, pool_[x].bound / std::abs(s.a));
      }
      case Kind::NumberByDiv: {
        const std::size_t x = positive(any_operand());
        s.in = {x};
        s.a = real(-3, 3);
        return finish(pool_[x].shape, std::abs(s.a) / pool_[x].lower);
      }
      case Kind::Neg:
      case Kind::Abs:
      case Kind::Relu:
      case Kind::Sin:
      case Kind::Cos:
      case Kind::Tanh:
      case Kind::Sigmoid:
      case Kind::Softplus:
      case Kind::Square:
      case Kind::Exp:
      case Kind::Log:
      case Kind::Sqrt: {
        std::size_t x = any_operand();
        x = kind == Kind::Exp ? tame(x, 5) : kind == Kind::Square ? tame(x, 30) : tame(x, 100);
        if (kind == Kind::Log || kind == Kind::Sqrt) x = positive(x);
        s.in = {x};
        const Entry& e = pool_[x];
        switch (kind) {
          case Kind::Neg:
          case Kind::Abs:
          case Kind::Relu:
            return finish(e.shape, e.bound);
          case Kind::Sin:
          case Kind::Cos:
          case Kind::Tanh:
            return finish(e.shape, 1.0);
          case Kind::Sigmoid:
            return finish(e.shape, 1.0);
          case Kind::Softplus:
            return finish(e.shape, e.bound + 1.0);
          case Kind::Square:
            return finish(e.shape, e.bound * e.bound);
          case Kind::Exp:
            return finish(e.shape, std::exp(e.bound), std::exp(-e.bound));
          case Kind::Log:
            return finish(e.shape,
                          std::max(std::abs(std::log(e.lower)), std::abs(std::log(e.bound))));
          default:
            return finish(e.shape, std::sqrt(e.bound), std::sqrt(e.lower));
        }
      }
      case Kind::Affine: {
        const std::size_t x = tame(any_operand(), 100);
        s.in = {x};
        s.a = real(-2, 2);
        s.b = real(-1, 1);
        return finish(pool_[x].shape, std::abs(s.a) * pool_[x].bound + std::abs(s.b));
      }
      case Kind::Pow: {
        const double exponents[] = {2.0, 3.0, -1.5, 0.5, 1.7, -1.0};
        s.a = exponents[uniform(std::size(exponents))];
        std::size_t x = tame(any_operand(), 20);
        if (s.a != 2.0 && s.a != 3.0) x = positive(x);
        s.in = {x};
        const Entry& e = pool_[x];
        if (e.lower > 0) {
          const double lo = std::pow(e.lower, s.a), hi = std::pow(e.bound, s.a);
          return finish(e.shape, std::max(lo, hi), std::min(lo, hi));
        }
        return finish(e.shape, std::pow(e.bound, s.a));
      }
      case Kind::LeakyRelu: {
        const std::size_t x = tame(any_operand(), 100);
        s.in = {x};
        s.a = chance(0.3) ? 0.01 : real(0.05, 0.5);
        return finish(pool_[x].shape, pool_[x].bound);
      }
      case Kind::Clamp: {
        const std::size_t x = tame(any_operand(), 100);
        s.in = {x};
        s.a = real(-1.5, 0.5);
        s.b = s.a + real(0.1, 2.0);
        return finish(pool_[x].shape, std::max(std::abs(s.a), std::abs(s.b)),
                      s.a >= 0.1 ? s.a : -1.0);
      }
      case Kind::SumAll:
      case Kind::MeanAll: {
        const std::size_t x = tame(any_operand(), 100);
        s.in = {x};
        const Entry& e = pool_[x];
        return finish(Shape{}, kind == Kind::SumAll ? e.bound * size_of(e.shape) : e.bound,
                      kind == Kind::MeanAll ? e.lower : -1.0);
      }
      case Kind::Sum:
      case Kind::Mean: {
        const std::size_t x = tame(operand(at_least_1d, a_1d_shape), 100);
        s.in = {x};
        const Shape& shape = pool_[x].shape;
        const std::size_t n = shape.size();
        std::vector<std::size_t> chosen;
        for (std::size_t d = 0; d < n; ++d) {
          if (chance(0.5)) chosen.push_back(d);
        }
        if (chosen.empty()) chosen.push_back(uniform(n));
        std::shuffle(chosen.begin(), chosen.end(), random_);
        std::size_t reduced = 1;
        for (const auto d : chosen) {
          reduced *= shape[d];
          s.axes.push_back(chance(0.3)
                               ? static_cast<std::ptrdiff_t>(d) - static_cast<std::ptrdiff_t>(n)
                               : static_cast<std::ptrdiff_t>(d));
        }
        s.keepdims = chance(0.5);
        Shape out;
        for (std::size_t d = 0; d < n; ++d) {
          const bool gone = std::find(chosen.begin(), chosen.end(), d) != chosen.end();
          if (!gone)
            out.push_back(shape[d]);
          else if (s.keepdims)
            out.push_back(1);
        }
        const Entry& e = pool_[x];
        return finish(out, kind == Kind::Sum ? e.bound * reduced : e.bound,
                      kind == Kind::Mean ? e.lower : -1.0);
      }
      case Kind::Max:
      case Kind::Logsumexp:
      case Kind::Softmax:
      case Kind::LogSoftmax: {
        const std::size_t x = tame(operand(at_least_1d, a_1d_shape), 100);
        s.in = {x};
        const Shape& shape = pool_[x].shape;
        const std::size_t n = shape.size();
        const std::size_t d = uniform(n);
        s.axis = chance(0.4) ? static_cast<std::ptrdiff_t>(d) - static_cast<std::ptrdiff_t>(n)
                             : static_cast<std::ptrdiff_t>(d);
        s.keepdims = (kind == Kind::Max || kind == Kind::Logsumexp) && chance(0.5);
        Shape out;
        for (std::size_t k = 0; k < n; ++k) {
          if (k != d)
            out.push_back(shape[k]);
          else if (s.keepdims)
            out.push_back(1);
        }
        const Entry& e = pool_[x];
        const double log_n = std::log(static_cast<double>(shape[d]));
        switch (kind) {
          case Kind::Max:
            return finish(out, e.bound, e.lower);
          case Kind::Logsumexp:
            return finish(out, e.bound + log_n);
          case Kind::Softmax:
            return finish(shape, 1.0);
          default:
            return finish(shape, 2 * e.bound + log_n);
        }
      }
      case Kind::Matmul: {
        const auto is_matrix_or_vector = [](const Shape& t) {
          return t.size() == 1 || t.size() == 2;
        };
        const std::size_t a = tame(operand(is_matrix_or_vector,
                                           [&] {
                                             return chance(0.7)
                                                        ? Shape{1 + uniform(5), 1 + uniform(5)}
                                                        : Shape{1 + uniform(5)};
                                           }),
                                   30);
        const std::size_t k = pool_[a].shape.back();
        const std::size_t b =
            tame(operand([&](const Shape& t) { return is_matrix_or_vector(t) && t[0] == k; },
                         [&] {
                           return chance(0.7) ? Shape{k, 1 + uniform(5)} : Shape{k};
                         }),
                 30);
        s.in = {a, b};
        Shape out;
        if (pool_[a].shape.size() == 2) out.push_back(pool_[a].shape[0]);
        if (pool_[b].shape.size() == 2) out.push_back(pool_[b].shape[1]);
        return finish(out, pool_[a].bound * pool_[b].bound * static_cast<double>(k));
      }
      case Kind::Transpose: {
        const std::size_t x = tame(any_operand(), 100);
        s.in = {x};
        Shape out(pool_[x].shape.rbegin(), pool_[x].shape.rend());
        return finish(out, pool_[x].bound, pool_[x].lower);
      }
      case Kind::Permute: {
        const std::size_t x =
            tame(operand([](const Shape& t) { return t.size() >= 2; },
                         [&] {
                           return Shape{1 + uniform(3), 1 + uniform(3), 1 + uniform(3)};
                         }),
                 100);
        s.in = {x};
        const Shape& shape = pool_[x].shape;
        s.list.resize(shape.size());
        std::iota(s.list.begin(), s.list.end(), std::size_t{0});
        std::shuffle(s.list.begin(), s.list.end(), random_);
        Shape out;
        for (const auto p : s.list) out.push_back(shape[p]);
        return finish(out, pool_[x].bound, pool_[x].lower);
      }
      case Kind::Reshape: {
        const std::size_t x = tame(any_operand(), 100);
        s.in = {x};
        const std::size_t n = size_of(pool_[x].shape);
        std::vector<Shape> targets;
        if (n == 1) targets.push_back(Shape{});
        targets.push_back(Shape{n});
        for (std::size_t p = 1; p <= n; ++p) {
          if (n % p != 0) continue;
          targets.push_back(Shape{p, n / p});
          for (std::size_t q = 1; q <= n / p; ++q) {
            if ((n / p) % q == 0) targets.push_back(Shape{p, q, n / p / q});
          }
        }
        s.shape = targets[uniform(targets.size())];
        return finish(s.shape, pool_[x].bound, pool_[x].lower);
      }
      case Kind::BroadcastTo: {
        const std::size_t x = tame(any_operand(), 100);
        s.in = {x};
        Shape target = pool_[x].shape;
        for (auto& d : target) {
          if (d == 1 && chance(0.6)) d = 1 + uniform(4);
        }
        if (target.size() < 3 && chance(0.5)) {
          Shape longer{1 + uniform(3)};
          for (const auto d : target) longer.push_back(d);
          target = longer;
        }
        if (size_of(target) > max_elements) return false;
        s.shape = target;
        return finish(target, pool_[x].bound, pool_[x].lower);
      }
      case Kind::SumTo: {
        const std::size_t x = tame(any_operand(), 100);
        s.in = {x};
        const Shape& shape = pool_[x].shape;
        Shape target(shape.begin() + static_cast<std::ptrdiff_t>(uniform(shape.size() + 1)),
                     shape.end());
        for (auto& d : target) {
          if (chance(0.4)) d = 1;
        }
        s.shape = target;
        const double factor =
            static_cast<double>(size_of(shape)) / static_cast<double>(size_of(target));
        return finish(target, pool_[x].bound * factor,
                      pool_[x].lower > 0 ? pool_[x].lower * factor : -1.0);
      }
      case Kind::Concat: {
        const std::size_t a = tame(operand(at_least_1d, a_1d_shape), 100);
        const Shape shape = pool_[a].shape;
        const std::size_t n = shape.size(), d = uniform(n);
        s.axis = chance(0.4) ? static_cast<std::ptrdiff_t>(d) - static_cast<std::ptrdiff_t>(n)
                             : static_cast<std::ptrdiff_t>(d);
        s.in = {a};
        Shape out = shape;
        double bound = pool_[a].bound;
        const std::size_t parts = chance(0.1) ? 1 : chance(0.3) ? 3 : 2;
        for (std::size_t p = 1; p < parts; ++p) {
          const auto fits = [&](const Shape& t) {
            if (t.size() != n) return false;
            for (std::size_t k = 0; k < n; ++k) {
              if (k != d && t[k] != shape[k]) return false;
            }
            return true;
          };
          const std::size_t b = tame(operand(fits,
                                             [&] {
                                               Shape t = shape;
                                               t[d] = 1 + uniform(3);
                                               return t;
                                             }),
                                     100);
          s.in.push_back(b);
          out[d] += pool_[b].shape[d];
          bound = std::max(bound, pool_[b].bound);
        }
        if (chance(0.3)) std::reverse(s.in.begin(), s.in.end());
        if (size_of(out) > max_elements) return false;
        return finish(out, bound);
      }
      case Kind::Narrow: {
        const std::size_t x = tame(operand(at_least_1d, a_1d_shape), 100);
        s.in = {x};
        const Shape& shape = pool_[x].shape;
        const std::size_t n = shape.size(), d = uniform(n);
        s.axis = chance(0.3) ? static_cast<std::ptrdiff_t>(d) - static_cast<std::ptrdiff_t>(n)
                             : static_cast<std::ptrdiff_t>(d);
        s.start = uniform(shape[d]);
        s.length = 1 + uniform(shape[d] - s.start);
        Shape out = shape;
        out[d] = s.length;
        return finish(out, pool_[x].bound, pool_[x].lower);
      }
      case Kind::IndexSelect: {
        const std::size_t x = tame(operand(at_least_1d, a_1d_shape), 100);
        s.in = {x};
        Shape out = pool_[x].shape;
        const std::size_t rows = out[0];
        s.list.resize(1 + uniform(5));
        for (auto& i : s.list) i = uniform(rows);
        out[0] = s.list.size();
        if (size_of(out) > max_elements) return false;
        return finish(out, pool_[x].bound, pool_[x].lower);
      }
      case Kind::IndexAdd: {
        const std::size_t x = tame(operand(at_least_1d, a_1d_shape), 100);
        s.in = {x};
        Shape out = pool_[x].shape;
        s.rows = 1 + uniform(5);
        s.list.resize(out[0]);
        std::vector<std::size_t> count(s.rows, 0);
        for (auto& i : s.list) ++count[i = uniform(s.rows)];
        out[0] = s.rows;
        if (size_of(out) > max_elements) return false;
        return finish(out, pool_[x].bound *
                               static_cast<double>(*std::max_element(count.begin(), count.end())));
      }
      case Kind::CustomCube: {
        const std::size_t x = tame(any_operand(), 20);
        s.in = {x};
        return finish(pool_[x].shape, std::pow(pool_[x].bound, 3));
      }
      case Kind::CustomMulSin: {
        const std::size_t a = tame(any_operand(), 30);
        const std::size_t b = tame(same_shape_partner(pool_[a].shape), 30);
        s.in = {a, b};
        return finish(pool_[a].shape, pool_[a].bound * pool_[b].bound + 1.0);
      }
      case Kind::CustomRowSum: {
        const std::size_t x = tame(operand([](const Shape& t) { return t.size() == 2; },
                                           [&] {
                                             return Shape{1 + uniform(5), 1 + uniform(5)};
                                           }),
                                   100);
        s.in = {x};
        const Shape& shape = pool_[x].shape;
        return finish(Shape{shape[0]}, pool_[x].bound * static_cast<double>(shape[1]));
      }
      case Kind::Mse:
      case Kind::HalfSse:
      case Kind::BceWithLogits: {
        const std::size_t a = tame(any_operand(), 30);
        const std::size_t b = tame(same_shape_partner(pool_[a].shape), 30);
        s.in = {a, b};
        const double ba = pool_[a].bound, bb = pool_[b].bound;
        const double n = static_cast<double>(size_of(pool_[a].shape));
        if (kind == Kind::BceWithLogits) return finish(Shape{}, ba + 1 + ba * bb);
        return finish(Shape{}, (ba + bb) * (ba + bb) * (kind == Kind::HalfSse ? n : 1.0));
      }
      case Kind::Bce: {
        // Probabilities from a sigmoid (its clamped logs may be reached in float).
        const std::size_t z = tame(any_operand(), 30);
        const std::size_t p = unary(Kind::Sigmoid, z, 1.0, -1.0);
        const std::size_t t = tame(same_shape_partner(pool_[p].shape), 30);
        s.in = {p, t};
        return finish(Shape{}, (1 + pool_[t].bound) * 100 * 2);
      }
      case Kind::CrossEntropy:
      case Kind::NllLoss:
      case Kind::CrossEntropyProbs: {
        const std::size_t z = tame(operand([](const Shape& t) { return t.size() == 2; },
                                           [&] {
                                             return Shape{1 + uniform(5), 1 + uniform(5)};
                                           }),
                                   100);
        s.in = {z};
        const Shape shape = pool_[z].shape;  // a copy: the partner may grow the pool
        const double bound = pool_[z].bound, log_c = std::log(static_cast<double>(shape[1]));
        if (kind == Kind::CrossEntropyProbs) {
          const std::size_t t = tame(same_shape_partner(shape), 30);
          s.in.push_back(t);
          return finish(Shape{},
                        pool_[t].bound * (2 * bound + log_c) * static_cast<double>(shape[1]));
        }
        s.list.resize(shape[0]);
        for (auto& label : s.list) label = uniform(shape[1]);
        return finish(Shape{}, kind == Kind::NllLoss ? bound : 2 * bound + log_c);
      }
    }
    return false;
  }

  // The loss: the results nothing else reads, some others, and at least one that depends
  // on a parameter.
  void choose_loss() {
    std::vector<bool> read(pool_.size(), false);
    for (const Step& s : graph_.steps) {
      for (const auto i : s.in) read[i] = true;
    }
    bool any_grad = false;
    for (std::size_t i = 0; i < pool_.size(); ++i) {
      if (chance(read[i] ? 0.1 : 0.8)) {
        graph_.loss_terms.emplace_back(i, chance(0.3));
        any_grad = any_grad || pool_[i].grad;
      }
    }
    if (!any_grad) {
      std::vector<std::size_t> grad;
      for (std::size_t i = 0; i < pool_.size(); ++i) {
        if (pool_[i].grad) grad.push_back(i);
      }
      graph_.loss_terms.emplace_back(grad[uniform(grad.size())], false);
    }
  }

  std::mt19937_64 random_;
  Graph graph_;
  std::vector<Entry> pool_;
};

// ---- compiling, replaying and comparing ----

xt::xarray<double> leaf_values(const Graph& g, std::size_t value_set, std::size_t leaf) {
  return test::random_array(g.leaf_shapes[leaf], g.seed * 1000003 + value_set * 1009 + leaf);
}

bool close(double a, double b, double tolerance) {
  return std::abs(a - b) <= tolerance * std::max({1.0, std::abs(a), std::abs(b)});
}

struct Gradients {
  std::vector<bool> present;
  std::vector<xt::xarray<double>> values;
};

template <class T>
Gradients gradients_of(const std::vector<Tensor<T>>& parameters) {
  Gradients out;
  for (const auto& p : parameters) {
    out.present.push_back(p.has_grad());
    out.values.push_back(p.has_grad() ? xt::xarray<double>(xt::cast<double>(p.grad()))
                                      : xt::xarray<double>());
  }
  return out;
}

// Compiles g at value set 0 and replays it at value sets 1..value_sets; returns "" or what
// differed from eager backward() at the same values.
template <class T>
std::string check_graph(const Graph& g, std::size_t value_sets, double tolerance) {
  std::vector<Tensor<T>> leaves, parameters;
  for (std::size_t i = 0; i < g.leaf_shapes.size(); ++i) {
    leaves.emplace_back(xt::xarray<T>(xt::cast<T>(leaf_values(g, 0, i))),
                        RequiresGrad{g.leaf_is_parameter[i]});
    if (g.leaf_is_parameter[i]) parameters.push_back(leaves.back());
  }
  const std::function<Tensor<T>()> f = [&] { return evaluate(g, leaves); };
  std::optional<Compiled<T>> step;
  try {
    step.emplace(compile(parameters, f));
  } catch (const std::exception& e) {
    return std::string("compile() threw: ") + e.what();
  }
  for (std::size_t k = 1; k <= value_sets; ++k) {
    // New values in place (mutable_value(), as an optimizer does) or replaced (set_value(),
    // as a new batch), parameters and inputs both.
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      xt::xarray<T> values = xt::cast<T>(leaf_values(g, k, i));
      if ((i + k) % 3 != 0) {
        leaves[i].mutable_value() = values;
      } else {
        leaves[i].set_value(std::move(values));
      }
    }
    const std::string where = "at value set " + std::to_string(k) + ": ";
    for (auto& p : parameters) p.zero_grad();
    T replayed_value;
    try {
      replayed_value = step->run();
    } catch (const std::exception& e) {
      return where + "run() threw: " + e.what();
    }
    const Gradients replayed = gradients_of(parameters);
    for (auto& p : parameters) p.zero_grad();
    T eager_value;
    try {
      Tape tape;
      const Tensor<T> loss = f();
      eager_value = loss.value()();
      loss.backward();
    } catch (const std::exception& e) {
      return where + "eager evaluation threw: " + e.what();
    }
    const Gradients eager = gradients_of(parameters);
    std::ostringstream out;
    out.precision(17);
    if (!std::isfinite(eager_value))
      out << where << "the eager value is not finite (a generator bug)\n";
    if (!close(replayed_value, eager_value, tolerance)) {
      out << where << "value " << replayed_value << " replayed, " << eager_value << " eager\n";
    }
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      if (replayed.present[i] != eager.present[i]) {
        out << where << "parameter " << i << (replayed.present[i] ? " has" : " has no")
            << " gradient replayed but" << (eager.present[i] ? " has" : " has none") << " eager\n";
        continue;
      }
      if (!eager.present[i]) continue;
      const auto& r = replayed.values[i];
      const auto& e = eager.values[i];
      for (std::size_t j = 0; j < e.size(); ++j) {
        if (!close(r.data()[j], e.data()[j], tolerance)) {
          out << where << "parameter " << i << " " << shape_text(e.shape()) << ", gradient element "
              << j << ": " << r.data()[j] << " replayed, " << e.data()[j] << " eager\n";
          break;
        }
      }
    }
    if (!out.str().empty()) return out.str();
  }
  // Without zero_grad a second run adds its gradients to the first's, as backward() does.
  for (auto& p : parameters) p.zero_grad();
  step->run();
  const Gradients once = gradients_of(parameters);
  step->run();
  const Gradients twice = gradients_of(parameters);
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    if (!once.present[i]) continue;
    for (std::size_t j = 0; j < once.values[i].size(); ++j) {
      if (!close(twice.values[i].data()[j], 2 * once.values[i].data()[j], tolerance)) {
        std::ostringstream out;
        out.precision(17);
        out << "two runs without zero_grad: parameter " << i << ", gradient element " << j << ": "
            << twice.values[i].data()[j] << ", not twice " << once.values[i].data()[j] << "\n";
        return out.str();
      }
    }
  }
  return "";
}

template <class T>
void check_random_graphs(std::uint64_t first_seed, std::size_t graphs, std::size_t value_sets,
                         double tolerance) {
  std::array<std::size_t, kind_count> used{};
  std::size_t failures = 0, steps = 0;
  for (std::uint64_t seed = first_seed; seed < first_seed + graphs; ++seed) {
    const Graph g = GraphMaker(seed).make();
    for (const Step& s : g.steps) ++used[static_cast<std::size_t>(s.kind)];
    steps += g.steps.size();
    const std::string problem = check_graph<T>(g, value_sets, tolerance);
    if (problem.empty()) continue;
    if (++failures <= 3) FAIL_CHECK(describe(g) << problem);
  }
  INFO(failures, " of ", graphs, " graphs differ");
  CHECK(failures == 0);
  MESSAGE(graphs << " graphs, " << steps << " steps, " << failures << " differ");
  // Every op family drawn, several times: a generator that stopped making one is a failure.
  for (std::size_t k = 0; k < kind_count; ++k) {
    INFO("op kind ", kind_names[k], " drawn ", used[k], " times");
    CHECK(used[k] >= 3);
  }
}

}  // namespace

TEST_CASE(
    "random graphs over every op, compiled and replayed at new values, give eager backward's value "
    "and gradients (f64)") {
  check_random_graphs<double>(1, 1000, 3, 1e-12);
}

TEST_CASE(
    "random graphs over every op, compiled and replayed at new values, give eager backward's value "
    "and gradients (f32)") {
  check_random_graphs<float>(100001, 300, 2, 1e-5);
}

namespace {

// compile_sgd_step against compile() and optim::SGD on the same graph: the same losses and
// parameters, run after run (folded updates agree to rounding).
template <class T>
std::string check_graph_sgd(const Graph& g, double tolerance, std::size_t& folds) {
  std::vector<Tensor<T>> leaves[2], parameters[2];
  for (int side = 0; side < 2; ++side) {
    for (std::size_t i = 0; i < g.leaf_shapes.size(); ++i) {
      leaves[side].emplace_back(
          xt::xarray<T>(xt::cast<T>(test::random_array(g.leaf_shapes[i], g.seed * 7 + i, -1, 1))),
          RequiresGrad{g.leaf_is_parameter[i]});
      if (g.leaf_is_parameter[i]) parameters[side].push_back(leaves[side].back());
    }
  }
  std::optional<Compiled<T>> step;
  std::optional<SgdStep<T>> sgd_step;
  try {
    step.emplace(compile(parameters[0], [&] { return evaluate(g, leaves[0]); }));
    sgd_step.emplace(compile_sgd_step(parameters[1], 0.01, [&] { return evaluate(g, leaves[1]); }));
  } catch (const std::exception& e) {
    return std::string("compile threw: ") + e.what();
  }
  for (const auto& op : sgd_step->ops()) folds += op == "sgd update (folded into matmul)" ? 1 : 0;
  optim::SGD<T> sgd(parameters[0], 0.01);
  std::ostringstream out;
  out.precision(17);
  for (int run = 0; run < 3; ++run) {
    T a, b;
    try {
      a = step->run();
      sgd.step();
      sgd.zero_grad();
      b = sgd_step->run();
    } catch (const std::exception& e) {
      return std::string("run threw: ") + e.what();
    }
    if (!std::isfinite(a)) return "";
    if (!close(a, b, tolerance)) {
      out << "run " << run << ": loss " << b << " with compile_sgd_step, " << a
          << " with compile() + SGD\n";
      return out.str();
    }
    for (std::size_t i = 0; i < parameters[0].size(); ++i) {
      for (std::size_t j = 0; j < parameters[0][i].size(); ++j) {
        const double x = parameters[0][i].value().data()[j], y = parameters[1][i].value().data()[j];
        if (!close(x, y, tolerance)) {
          out << "run " << run << ": parameter " << i << " element " << j << ": " << y
              << " with compile_sgd_step, " << x << " with compile() + SGD\n";
          return out.str();
        }
      }
    }
  }
  return "";
}

}  // namespace

TEST_CASE("random graphs: compile_sgd_step gives what compile() and optim::SGD give (f64)") {
  std::size_t failures = 0, folds = 0;
  for (std::uint64_t seed = 1; seed <= 600; ++seed) {
    const Graph g = GraphMaker(seed).make();
    const std::string problem = check_graph_sgd<double>(g, 1e-10, folds);
    if (problem.empty()) continue;
    if (++failures <= 3) FAIL_CHECK(describe(g) << problem);
  }
  CHECK(failures == 0);
  MESSAGE(folds << " updates folded into products");
  CHECK(folds >= 10);  // the fold is exercised
}
