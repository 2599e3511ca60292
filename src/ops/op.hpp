// The shape of an op: every built-in op is one struct, its block, in src/ops/:
//
//     // y = e^x.  dx = g y.
//     struct Exp : Unary<Exp> {
//       static constexpr const char* name = "exp";
//       template <class T> static T f(T x) { return std::exp(x); }
//       template <class T> static Gradients<T> backward(const BackwardContext<T>& c) {
//         return mul(c.grad(), c.output());
//       }
//     };
//     TAPEGRAD_UNARY_OP(exp, Exp)   // defines tapegrad::exp for float and double
//
// A block holds, in this order:
// - `name`: the op's name in errors, graph pictures and the list of ops the tests check;
// - `Attrs` (optional): the plain values the kernel and the rule need, a struct of its own
//   (kept inline in the record when small and trivially copyable);
// - the forward kernel. An elementwise op gives `f`, the function of one element (or of two,
//   for Binary), with `const Attrs&` last if it has Attrs; Unary/Binary supply the loops. Any
//   other op gives `forward(in, attrs, out)`, which writes the result into `out`, an array of
//   the result's shape it is given (so a recorded op can be run again on its inputs' current
//   values: OpEntry::forward), and either `shape(in, attrs, scratch)`, the result's shape
//   (an input's, or one it writes into scratch: no copy on the hot path), or its public
//   function passes that shape to apply_shaped;
// - `backward(c)` (or `backward(c, attrs)`): the inputs' gradients, written with tensor ops
//   so that backward(create_graph) records them and second derivatives work. It returns one
//   entry per input, left empty where c.needs(i) is false (or where the op is flat: a mask).
//   A rule never computes on raw values, not even a mask: a mask is an op of its own (sign,
//   max_share, max_mask...), so that a compiled step recomputes it when the inputs change.
// The public function checks its arguments (the errors name the op and the values), makes
// the Attrs and calls apply<Op> (or apply_shaped<Op>); TAPEGRAD_UNARY_OP / TAPEGRAD_BINARY_OP write
// it for the plain elementwise signatures. TAPEGRAD_REGISTER_OP adds the op to op_names(), the list
// the per-op test tables are checked against.
#pragma once

#include <array>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xstorage.hpp>

#include "core/backward_context.hpp"
#include "core/node_pool.hpp"
#include "core/recording.hpp"
#include "core/shape.hpp"
#include "ops/kernels.hpp"
#include "ops/op_names.hpp"

namespace tapegrad::detail {

/// What an op without attributes has as Attrs.
struct NoAttrs {};

/// The input values a forward kernel reads: in[i] is input i's array.
template <class T>
class Inputs {
 public:
  Inputs(const xt::xarray<T>* const* values, std::size_t count) : values_(values), count_(count) {}
  const xt::xarray<T>& operator[](std::size_t i) const { return *values_[i]; }
  std::size_t size() const { return count_; }

 private:
  const xt::xarray<T>* const* values_;
  std::size_t count_;
};

/// What a backward rule returns: one gradient per input, in input order. A one-input op
/// returns its tensor; others set d[i], and leave empty an input that needs no gradient.
template <class T>
class Gradients {
 public:
  Gradients() = default;
  Gradients(Tensor<T> only) {
    first_[0] = std::move(only);
  }  // NOLINT: one input's rule returns a tensor
  std::optional<Tensor<T>>& operator[](std::size_t i) {
    if (i < 2) return first_[i];
    if (!more_) more_ = std::make_unique<std::vector<std::optional<Tensor<T>>>>();
    if (more_->size() <= i - 2) more_->resize(i - 1);
    return (*more_)[i - 2];
  }
  std::size_t size() const { return 2 + (more_ ? more_->size() : 0); }

 private:
  std::array<std::optional<Tensor<T>>, 2> first_;
  std::unique_ptr<std::vector<std::optional<Tensor<T>>>>
      more_;  // only for ops of 3+ inputs (concat)
};

template <class Op>
using AttrsOf = typename Op::Attrs;

/// Whether Op works out its result's shape itself (Op::shape).
template <class Op, class T, class = void>
constexpr bool has_shape = false;
template <class Op, class T>
constexpr bool has_shape<
    Op, T,
    std::void_t<decltype(Op::shape(std::declval<const Inputs<T>&>(),
                                   std::declval<const AttrsOf<Op>&>(), std::declval<Shape&>()))>> =
    true;

/// Elementwise op of one input: y has x's shape, y[i] = Op::f(x[i]).
template <class Op>
struct Unary {
  using Attrs = NoAttrs;
  template <class T, class A>
  static const Shape& shape(const Inputs<T>& in, const A&, Shape&) {
    return in[0].shape();
  }
  template <class T, class A>
  static void forward(const Inputs<T>& in, const A& attrs, xt::xarray<T>& out) {
    const T* x = in[0].data();
    T* y = out.data();
    const std::size_t n = out.size();
    if constexpr (std::is_same_v<A, NoAttrs>) {
      for (std::size_t i = 0; i < n; ++i) y[i] = Op::f(x[i]);
    } else {
      for (std::size_t i = 0; i < n; ++i) y[i] = Op::f(x[i], attrs);
    }
  }
};

/// Elementwise op of two inputs, broadcast as NumPy does: y[k] = Op::f(a[k], b[k]).
template <class Op>
struct Binary {
  using Attrs = NoAttrs;
  template <class T, class A>
  static const Shape& shape(const Inputs<T>& in, const A&, Shape& scratch) {
    if (in[0].shape() == in[1].shape()) return in[0].shape();
    return scratch = broadcast_shapes(Op::name, in[0].shape(), in[1].shape());
  }
  template <class T, class A>
  static void forward(const Inputs<T>& in, const A& attrs, xt::xarray<T>& out) {
    const auto f = [&attrs](T a, T b) {
      if constexpr (std::is_same_v<A, NoAttrs>) {
        return Op::f(a, b);
      } else {
        return Op::f(a, b, attrs);
      }
    };
    const T* a = in[0].data();
    const T* b = in[1].data();
    T* y = out.data();
    const std::size_t n = out.size();
    if (in[0].size() == n && in[1].size() == n) {
      // Shapes that broadcast to y's with as many elements differ at most by extents of 1,
      // which leave the row-major order alone: one flat loop.
      for (std::size_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
      return;
    }
    const Shape& shape = out.shape();
    // A row added to every row of a matrix (a bias): two plain loops.
    const std::size_t row = shape.empty() ? 0 : shape.back();
    if (row > 0 && in[0].size() == n && in[1].dimension() > 0 && in[1].shape().back() == row &&
        in[1].size() == row) {
      for (std::size_t i = 0; i < n; i += row) {
        for (std::size_t j = 0; j < row; ++j) y[i + j] = f(a[i + j], b[j]);
      }
      return;
    }
    if (row > 0 && in[1].size() == n && in[0].dimension() > 0 && in[0].shape().back() == row &&
        in[0].size() == row) {
      for (std::size_t i = 0; i < n; i += row) {
        for (std::size_t j = 0; j < row; ++j) y[i + j] = f(a[j], b[i + j]);
      }
      return;
    }
    walk(shape, broadcast_strides(in[0].shape(), shape), broadcast_strides(in[1].shape(), shape),
         [&](std::size_t k, std::size_t ia, std::size_t ib) { y[k] = f(a[ia], b[ib]); });
  }
};

template <class Op, class T>
Gradients<T> call_backward(const BackwardContext<T>& c, const AttrBox& box) {
  if constexpr (std::is_same_v<AttrsOf<Op>, NoAttrs>) {
    return Op::backward(c);
  } else {
    return Op::backward(c, box.get<AttrsOf<Op>>());
  }
}

/// OpEntry::backward for Op: runs its rule and sends each gradient to its input.
template <class Op, class T>
void backward_of(Record& record, Sweep& sweep) {
  BackwardContext<T> context(record, sweep);
  Gradients<T> gradients = call_backward<Op, T>(context, record.attrs);
  for (std::size_t i = 0; i < record.input_count && i < gradients.size(); ++i) {
    auto& gradient = gradients[i];
    if (gradient) context.add(i, std::move(*gradient));
  }
}

/// OpEntry::forward for Op: the kernel again, on the record's inputs, into its output.
template <class Op, class T>
void forward_of(Record& record) {
  xt::svector<const xt::xarray<T>*, 4> values(record.input_count);
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = &static_cast<const Node<T>&>(*record.input(i)).value;
  }
  auto& out = static_cast<Node<T>&>(*record.output).value;
  if (out.size() == 0) return;  // as apply_to
  const Inputs<T> in(values.data(), values.size());
  if constexpr (std::is_same_v<AttrsOf<Op>, NoAttrs>) {
    Op::forward(in, NoAttrs{}, out);  // nothing was put in the record's AttrBox
  } else {
    Op::forward(in, record.attrs.get<AttrsOf<Op>>(), out);
  }
}

template <class Op>
constexpr bool is_elementwise =
    std::is_base_of_v<Unary<Op>, Op> || std::is_base_of_v<Binary<Op>, Op>;

/// OpEntry::elementwise for Op (a Unary or Binary op whose Attrs are inline or absent): what
/// its forward computes, element for element, so a compiled step gives the eager numbers bit
/// for bit.
template <class Op, class T>
void elementwise_of(const void* a_bytes, const void* b_bytes, void* y_bytes, std::size_t n,
                    std::size_t row, Spread spread_a, Spread spread_b,
                    const unsigned char* attr_bytes) {
  const T* a = static_cast<const T*>(a_bytes);
  const T* b = static_cast<const T*>(b_bytes);
  T* y = static_cast<T*>(y_bytes);
  using A = AttrsOf<Op>;
  A attrs{};
  if constexpr (!std::is_same_v<A, NoAttrs>) std::memcpy(&attrs, attr_bytes, sizeof(A));
  const auto f = [&attrs](auto... x) {
    if constexpr (std::is_same_v<A, NoAttrs>) {
      return Op::f(x...);
    } else {
      return Op::f(x..., attrs);
    }
  };
  if constexpr (std::is_base_of_v<Unary<Op>, Op>) {
    for (std::size_t i = 0; i < n; ++i) y[i] = f(a[i]);
  } else if (spread_a == Spread::kFull && spread_b == Spread::kFull) {
    for (std::size_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  } else if (spread_a == Spread::kFull && spread_b == Spread::kNumber) {
    for (std::size_t i = 0; i < n; ++i) y[i] = f(a[i], b[0]);
  } else if (spread_a == Spread::kNumber && spread_b == Spread::kFull) {
    for (std::size_t i = 0; i < n; ++i) y[i] = f(a[0], b[i]);
  } else if (spread_a == Spread::kFull && spread_b == Spread::kRow) {
    for (std::size_t i = 0; i < n; i += row) {
      for (std::size_t j = 0; j < row; ++j) y[i + j] = f(a[i + j], b[j]);
    }
  } else {  // kRow, kFull: compile() makes no other pair
    for (std::size_t i = 0; i < n; i += row) {
      for (std::size_t j = 0; j < row; ++j) y[i + j] = f(a[j], b[i + j]);
    }
  }
}

template <class Op, class T>
constexpr ElementwiseKernel elementwise_entry() {
  if constexpr (is_elementwise<Op> &&
                (std::is_same_v<AttrsOf<Op>, NoAttrs> || AttrBox::kInline<AttrsOf<Op>>)) {
    return &elementwise_of<Op, T>;
  } else {
    return nullptr;
  }
}

/// Whether Op's block has `raw`: a kernel on raw buffers with extents fixed at compile time,
/// for an op that is not elementwise (see OpEntry::raw). The block gives
///   using Raw = ...;  // the extents, trivially copyable, at most AttrBox::kInlineBytes
///   static std::optional<Raw> raw(const Inputs<T>&, const Attrs&, const Shape& out);
///   static void raw_forward(const T* a, const T* b, T* y, const Raw&);  // b == a for one input
/// and optionally raw_add(a, b, into, raw, alpha): into += alpha * y.
template <class Op, class = void>
constexpr bool has_raw = false;
template <class Op>
constexpr bool has_raw<Op, std::void_t<typename Op::Raw>> = true;
template <class Op, class T, class = void>
constexpr bool has_raw_add = false;
template <class Op, class T>
constexpr bool
    has_raw_add<Op, T,
                std::void_t<decltype(Op::raw_add(
                    std::declval<const T*>(), std::declval<const T*>(), std::declval<T*>(),
                    std::declval<const typename Op::Raw&>(), T()))>> = true;

template <class Op>
typename Op::Raw raw_from(const unsigned char* params) {
  typename Op::Raw raw;
  std::memcpy(&raw, params, sizeof(raw));
  return raw;
}

template <class Op, class T>
void raw_kernel_of(const void* a, const void* b, void* y, std::size_t, std::size_t, Spread, Spread,
                   const unsigned char* params) {
  Op::raw_forward(static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(y),
                  raw_from<Op>(params));
}

template <class Op, class T>
void raw_add_of(const void* a, const void* b, void* into, const unsigned char* params,
                double alpha) {
  Op::raw_add(static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(into),
              raw_from<Op>(params), static_cast<T>(alpha));
}

/// OpEntry::raw for Op.
template <class Op, class T>
ElementwiseKernel raw_of(const Record& record, unsigned char* params) {
  using Raw = typename Op::Raw;
  static_assert(std::is_trivially_copyable_v<Raw> && sizeof(Raw) <= AttrBox::kInlineBytes,
                "an op's Raw extents must fit a compiled step's inline bytes");
  xt::svector<const xt::xarray<T>*, 4> values(record.input_count);
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = &static_cast<const Node<T>&>(*record.input(i)).value;
  }
  const Inputs<T> in(values.data(), values.size());
  const Shape& out = static_cast<const Node<T>&>(*record.output).value.shape();
  std::optional<Raw> raw;
  if constexpr (std::is_same_v<AttrsOf<Op>, NoAttrs>) {
    raw = Op::raw(in, NoAttrs{}, out);
  } else {
    raw = Op::raw(in, record.attrs.get<AttrsOf<Op>>(), out);
  }
  if (!raw) return nullptr;
  std::memcpy(params, &*raw, sizeof(Raw));
  return &raw_kernel_of<Op, T>;
}

template <class Op, class T>
constexpr ElementwiseKernel (*raw_entry())(const Record&, unsigned char*) {
  if constexpr (has_raw<Op>) {
    return &raw_of<Op, T>;
  } else {
    return nullptr;
  }
}

template <class Op, class T>
constexpr void (*raw_add_entry())(const void*, const void*, void*, const unsigned char*, double) {
  if constexpr (has_raw_add<Op, T>) {
    return &raw_add_of<Op, T>;
  } else {
    return nullptr;
  }
}

template <class Op, class T>
inline const OpEntry op_entry{
    Op::name,           &backward_of<Op, T>,   &forward_of<Op, T>, true, elementwise_entry<Op, T>(),
    raw_entry<Op, T>(), raw_add_entry<Op, T>()};

/// Runs Op's kernel on the inputs' values into a new array (from the array cache) of the
/// result's shape (`shape`, or Op::shape's when it is null) and records it.
template <class Op, class T>
Tensor<T> apply_to(const std::shared_ptr<NodeBase>* const* nodes,
                   const xt::xarray<T>* const* values, std::size_t count, AttrsOf<Op> attrs,
                   const Shape* shape) {
  const Inputs<T> in(values, count);
  std::shared_ptr<Node<T>> node;
  if constexpr (has_shape<Op, T>) {
    Shape scratch;
    node = new_node_of_shape<T>(shape != nullptr ? *shape : Op::shape(in, attrs, scratch));
  } else {
    node = new_node_of_shape<T>(*shape);
  }
  // An empty result needs no kernel, and the extents of an empty array can multiply to more
  // than fit (only the extents after its last 0 are checked): a kernel's loops over them could
  // run for ever.
  if (node->value.size() != 0) Op::forward(in, attrs, node->value);
  AttrBox box;
  if constexpr (!std::is_same_v<AttrsOf<Op>, NoAttrs>) box.put(std::move(attrs));
  return make_result_from<T>(op_entry<Op, T>, Op::name, std::move(node), nodes, count,
                             std::move(box));
}

/// Op applied to its inputs (tensors of one element type), with its Attrs if it has any.
template <class Op, class T, class... More>
Tensor<T> apply(const Tensor<T>& first, const More&... more) {
  const std::shared_ptr<NodeBase>* nodes[] = {&first.node(), &more.node()...};
  const xt::xarray<T>* values[] = {&first.value(), &more.value()...};
  return apply_to<Op, T>(nodes, values, 1 + sizeof...(More), AttrsOf<Op>{}, nullptr);
}
template <class Op, class T, class... More>
Tensor<T> apply(AttrsOf<Op> attrs, const Tensor<T>& first, const More&... more) {
  const std::shared_ptr<NodeBase>* nodes[] = {&first.node(), &more.node()...};
  const xt::xarray<T>* values[] = {&first.value(), &more.value()...};
  return apply_to<Op, T>(nodes, values, 1 + sizeof...(More), std::move(attrs), nullptr);
}
/// apply for an op whose public function worked out the result's shape while it checked
/// the arguments (the shape ops and reductions): Op needs no shape() of its own.
template <class Op, class T, class... More>
Tensor<T> apply_shaped(const Shape& shape, AttrsOf<Op> attrs, const Tensor<T>& first,
                       const More&... more) {
  const std::shared_ptr<NodeBase>* nodes[] = {&first.node(), &more.node()...};
  const xt::xarray<T>* values[] = {&first.value(), &more.value()...};
  return apply_to<Op, T>(nodes, values, 1 + sizeof...(More), std::move(attrs), &shape);
}
template <class Op, class T>
Tensor<T> apply_shaped(const Shape& shape, AttrsOf<Op> attrs,
                       const std::vector<Tensor<T>>& inputs) {
  std::vector<const std::shared_ptr<NodeBase>*> nodes;
  std::vector<const xt::xarray<T>*> values;
  nodes.reserve(inputs.size());
  values.reserve(inputs.size());
  for (const auto& x : inputs) {
    nodes.push_back(&x.node());
    values.push_back(&x.value());
  }
  return apply_to<Op, T>(nodes.data(), values.data(), nodes.size(), std::move(attrs), &shape);
}

}  // namespace tapegrad::detail

#define TAPEGRAD_CONCAT_INNER(a, b) a##b
#define TAPEGRAD_CONCAT(a, b) TAPEGRAD_CONCAT_INNER(a, b)

/// Puts Op's name in detail::op_names().
#define TAPEGRAD_REGISTER_OP(Op)                                                               \
  namespace {                                                                                  \
  [[maybe_unused]] const bool TAPEGRAD_CONCAT(registered_,                                     \
                                              Op) = ::tapegrad::detail::register_op(Op::name); \
  }

/// Defines tapegrad::function(x) as Op, for float and double, and registers Op.
#define TAPEGRAD_UNARY_OP(function, Op)                  \
  TAPEGRAD_REGISTER_OP(Op)                               \
  template <class T>                                     \
  Tensor<T> function(const Tensor<T>& x) {               \
    return detail::apply<Op>(x);                         \
  }                                                      \
  template Tensor<float> function(const Tensor<float>&); \
  template Tensor<double> function(const Tensor<double>&);

/// Defines tapegrad::function(a, b) as Op, for float and double, and registers Op.
#define TAPEGRAD_BINARY_OP(function, Op)                                       \
  TAPEGRAD_REGISTER_OP(Op)                                                     \
  template <class T>                                                           \
  Tensor<T> function(const Tensor<T>& a, const Tensor<T>& b) {                 \
    return detail::apply<Op>(a, b);                                            \
  }                                                                            \
  template Tensor<float> function(const Tensor<float>&, const Tensor<float>&); \
  template Tensor<double> function(const Tensor<double>&, const Tensor<double>&);
