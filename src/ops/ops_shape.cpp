// Shape ops, one block each (see ops/op.hpp): transpose, reshape, broadcast_to / sum_to,
// concat / narrow, index_select / index_add. Each pair is the other's backward.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <xtensor/xmanipulation.hpp>

#include "ops/op.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::BackwardContext;
using detail::broadcastable;
using detail::constant;
using detail::extent_product;
using detail::Gradients;
using detail::Inputs;
using detail::NoAttrs;

template <class T>
Tensor<T> transpose(const Tensor<T>& x) {
  std::vector<std::size_t> perm(x.dim());
  std::iota(perm.rbegin(), perm.rend(), std::size_t{0});
  return transpose(x, perm);
}

namespace {
// y = x with its axes permuted: y's axis i is x's axis perm[i].  dx = g permuted back.
struct Transpose {
  static constexpr const char* name = "transpose";
  struct Attrs {
    std::vector<std::size_t> perm;
  };
  template <class T>
  static const Shape& shape(const Inputs<T>& in, const Attrs& a, Shape& out) {
    out.resize(a.perm.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = in[0].shape()[a.perm[i]];
    return out;
  }
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& a, xt::xarray<T>& out) {
    const std::size_t d = a.perm.size();
    if (d >= 2 && a.perm[d - 1] == d - 1 && out.size() != 0) {
      copy_blocks(in[0], a.perm, out);
      return;
    }
    // Otherwise y's elements in order, each read from x through x's strides permuted (a
    // plain walk: xtensor's strided assignment took several times as long).
    const Shape x_strides = detail::broadcast_strides(in[0].shape(), in[0].shape());
    Shape read(d);
    for (std::size_t i = 0; i < d; ++i) read[i] = x_strides[a.perm[i]];
    const T* x = in[0].data();
    T* y = out.data();
    detail::walk(out.shape(), read, Shape(d, 0),
                 [x, y](std::size_t k, std::size_t i, std::size_t) { y[k] = x[i]; });
  }
  // The last axes stay in place (conv2d's (O, N, Ho, Wo) -> (N, O, Ho, Wo)): y is contiguous
  // blocks of x, copied whole, x's offset walked with a counter over y's leading axes.
  template <class T>
  static void copy_blocks(const xt::xarray<T>& x, const std::vector<std::size_t>& perm,
                          xt::xarray<T>& out) {
    const Shape& xs = x.shape();
    const Shape& ys = out.shape();
    std::size_t kept = perm.size();  // axes [kept, d) stay in place
    while (kept > 0 && perm[kept - 1] == kept - 1) --kept;
    const std::size_t block = extent_product(xs, kept, xs.size());
    std::vector<std::size_t> step(kept), index(kept, 0);  // x's stride along y's axis i
    for (std::size_t i = 0; i < kept; ++i) step[i] = extent_product(xs, perm[i] + 1, xs.size());
    std::size_t from = 0;
    for (std::size_t at = 0; at < out.size(); at += block) {
      std::copy_n(x.data() + from, block, out.data() + at);
      for (std::size_t i = kept; i-- > 0;) {
        from += step[i];
        if (++index[i] < ys[i]) break;
        from -= step[i] * ys[i];
        index[i] = 0;
      }
    }
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    std::vector<std::size_t> inverse(a.perm.size());
    for (std::size_t i = 0; i < inverse.size(); ++i) inverse[a.perm[i]] = i;
    return transpose(c.grad(), inverse);
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(Transpose)

template <class T>
Tensor<T> transpose(const Tensor<T>& x, const std::vector<std::size_t>& perm) {
  std::vector<std::size_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  bool is_permutation = sorted.size() == x.dim();
  for (std::size_t i = 0; is_permutation && i < sorted.size(); ++i) is_permutation = sorted[i] == i;
  if (!is_permutation) {
    throw ValueError("transpose: the permutation does not list each axis of the " +
                     std::to_string(x.dim()) + "-d tensor " + shape_to_string(x.shape()) +
                     " exactly once");
  }
  return detail::apply<Transpose>({perm}, x);
}

namespace {
// y = x's elements in row-major order, in a new shape.  dx = g in x's shape.
struct Reshape {
  static constexpr const char* name = "reshape";
  using Attrs = NoAttrs;
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs&, xt::xarray<T>& out) {
    std::copy(in[0].data(), in[0].data() + in[0].size(), out.data());
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return reshape(c.grad(), c.input(0).shape());
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(Reshape)

template <class T>
Tensor<T> reshape(const Tensor<T>& x, const Shape& shape) {
  if (checked_size("reshape", shape) != x.size()) {
    throw ShapeError("reshape: cannot reshape " + shape_to_string(x.shape()) + " (" +
                     std::to_string(x.size()) + " elements) to " + shape_to_string(shape));
  }
  if (shape == x.shape()) return x;
  return detail::apply_shaped<Reshape>(shape, {}, x);
}

namespace {
// y = x broadcast to a larger shape (NumPy rules).  dx = g summed back to x's shape.
struct BroadcastTo {
  static constexpr const char* name = "broadcast_to";
  using Attrs = NoAttrs;
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs&, xt::xarray<T>& out) {
    detail::expand_into(in[0], out.shape(), out.data());
  }
  // A compiled step: a number or a row repeated is one loop on raw buffers.
  using Raw = detail::Rows;
  template <class T>
  static std::optional<Raw> raw(const Inputs<T>& in, const Attrs&, const Shape& out) {
    return detail::as_rows(out, in[0].shape());
  }
  template <class T>
  static void raw_forward(const T* x, const T*, T* y, const Raw& rows) {
    detail::repeat_rows(x, rows, y);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return sum_to(c.grad(), c.input(0).shape());
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(BroadcastTo)

template <class T>
Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape) {
  if (!broadcastable(x.shape(), shape)) {
    throw ShapeError("broadcast_to: cannot broadcast " + shape_to_string(x.shape()) + " to " +
                     shape_to_string(shape));
  }
  if (shape == x.shape()) return x;
  checked_size("broadcast_to", shape);
  return detail::apply_shaped<BroadcastTo>(shape, {}, x);
}

namespace {
// y = x summed down to a shape that broadcasts back to x's.  dx = g broadcast to x's shape.
struct SumTo {
  static constexpr const char* name = "sum_to";
  using Attrs = NoAttrs;
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs&, xt::xarray<T>& out) {
    detail::reduce_into(in[0], out.shape(), out.data());
  }
  // A compiled step: leading axes summed (a bias's gradient) are one loop on raw buffers.
  using Raw = detail::Rows;
  template <class T>
  static std::optional<Raw> raw(const Inputs<T>& in, const Attrs&, const Shape& out) {
    return detail::as_rows(in[0].shape(), out);
  }
  template <class T>
  static void raw_forward(const T* x, const T*, T* y, const Raw& rows) {
    detail::sum_rows(x, rows, y);
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c) {
    return broadcast_to(c.grad(), c.input(0).shape());
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(SumTo)

template <class T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape) {
  if (!broadcastable(shape, x.shape())) {
    throw ShapeError("sum_to: cannot sum " + shape_to_string(x.shape()) + " down to " +
                     shape_to_string(shape) + " (it must broadcast back to the input)");
  }
  if (shape == x.shape()) return x;
  checked_size("sum_to", shape);
  return detail::apply_shaped<SumTo>(shape, {}, x);
}

namespace {
// y = the parts joined along an axis.  d(part i) = its slice of g.
struct Concat {
  static constexpr const char* name = "concat";
  struct Attrs {
    std::size_t axis;
  };
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& a, xt::xarray<T>& out) {
    const Shape& shape = out.shape();
    const std::size_t outer = extent_product(shape, 0, a.axis);
    const std::size_t inner = extent_product(shape, a.axis + 1, shape.size());
    std::size_t offset = 0;
    for (std::size_t p = 0; p < in.size(); ++p) {
      const std::size_t extent = in[p].shape()[a.axis];
      const std::size_t block = extent * inner;
      for (std::size_t o = 0; o < outer; ++o) {
        std::copy_n(in[p].data() + o * block, block,
                    out.data() + (o * shape[a.axis] + offset) * inner);
      }
      offset += extent;
    }
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    const auto axis = static_cast<std::ptrdiff_t>(a.axis);
    Gradients<T> d;
    std::size_t start = 0;
    for (std::size_t i = 0; i < c.input_count(); ++i) {
      const std::size_t length = c.input(i).shape()[a.axis];
      if (c.needs(i)) d[i] = narrow(c.grad(), axis, start, length);
      start += length;
    }
    return d;
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(Concat)

template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& parts, std::ptrdiff_t axis) {
  if (parts.empty()) throw ValueError("concat: no tensors to join");
  const Shape& first = parts[0].shape();
  if (first.empty()) throw ShapeError("concat: cannot join 0-d tensors; reshape them to (1,)");
  const std::size_t a = detail::normalize_axis("concat", axis, first.size());
  Shape out_shape = first;
  out_shape[a] = 0;
  for (std::size_t p = 0; p < parts.size(); ++p) {
    const Shape& s = parts[p].shape();
    bool same = s.size() == first.size();
    for (std::size_t i = 0; same && i < s.size(); ++i) same = i == a || s[i] == first[i];
    if (!same) {
      throw ShapeError("concat: part " + std::to_string(p) + " has shape " + shape_to_string(s) +
                       " but part 0 has shape " + shape_to_string(first) + "; only axis " +
                       std::to_string(a) + " may differ");
    }
    if (s[a] > SIZE_MAX - out_shape[a]) {
      throw ShapeError("concat: the extents along axis " + std::to_string(a) + " of part " +
                       std::to_string(p) + " " + shape_to_string(s) + " and the parts before it (" +
                       std::to_string(out_shape[a]) + ") add up to more than fit in memory");
    }
    out_shape[a] += s[a];
  }
  checked_size("concat", out_shape);
  return detail::apply_shaped<Concat>(out_shape, {a}, parts);
}

namespace {
// y = x[..., start : start + length, ...] along an axis.  dx = g placed in zeros.
struct Narrow {
  static constexpr const char* name = "narrow";
  struct Attrs {
    std::size_t axis, start;
  };
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& a, xt::xarray<T>& out) {
    const auto& x = in[0];
    const std::size_t extent = x.shape()[a.axis];
    const std::size_t length = out.shape()[a.axis];
    const std::size_t outer = extent_product(x.shape(), 0, a.axis);
    const std::size_t inner = extent_product(x.shape(), a.axis + 1, x.dimension());
    for (std::size_t o = 0; o < outer; ++o) {
      std::copy_n(x.data() + (o * extent + a.start) * inner, length * inner,
                  out.data() + o * length * inner);
    }
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    // concat(zeros before, g, zeros after).
    const auto g = c.grad();
    const Shape& full = c.input(0).shape();
    std::vector<Tensor<T>> pieces;
    Shape before = full, after = full;
    before[a.axis] = a.start;
    after[a.axis] = full[a.axis] - a.start - g.shape()[a.axis];
    if (before[a.axis] > 0) pieces.push_back(constant<T>(xt::zeros<T>(before)));
    pieces.push_back(g);
    if (after[a.axis] > 0) pieces.push_back(constant<T>(xt::zeros<T>(after)));
    return pieces.size() == 1 ? g : concat(pieces, static_cast<std::ptrdiff_t>(a.axis));
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(Narrow)

template <class T>
Tensor<T> narrow(const Tensor<T>& x, std::ptrdiff_t axis, std::size_t start, std::size_t length) {
  const std::size_t a = detail::normalize_axis("narrow", axis, x.dim());
  const std::size_t extent = x.shape()[a];
  if (start > extent || length > extent - start) {
    throw ValueError("narrow: the slice [" + std::to_string(start) + ", " +
                     std::to_string(start + length) + ") does not fit axis " + std::to_string(a) +
                     " of " + shape_to_string(x.shape()));
  }
  Shape out_shape = x.shape();
  out_shape[a] = length;
  return detail::apply_shaped<Narrow>(out_shape, {a, start}, x);
}

namespace {
// y = the rows of x at the given indices (along axis 0).  dx = index_add(g, indices).
struct IndexSelect {
  static constexpr const char* name = "index_select";
  struct Attrs {
    std::vector<std::size_t> indices;
  };
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& a, xt::xarray<T>& out) {
    const auto& x = in[0];
    const std::size_t row = extent_product(x.shape(), 1, x.dimension());
    for (std::size_t i = 0; i < a.indices.size(); ++i) {
      std::copy_n(x.data() + a.indices[i] * row, row, out.data() + i * row);
    }
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    return index_add(c.grad(), a.indices, c.input(0).shape()[0]);
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(IndexSelect)

template <class T>
Tensor<T> index_select(const Tensor<T>& x, const std::vector<std::size_t>& indices) {
  if (x.dim() == 0) throw ShapeError("index_select: cannot pick rows of a 0-d tensor");
  const std::size_t rows = x.shape()[0];
  for (auto index : indices) {
    if (index >= rows) {
      throw ValueError("index_select: index " + std::to_string(index) + " is out of range for " +
                       std::to_string(rows) + " rows of " + shape_to_string(x.shape()));
    }
  }
  Shape out_shape = x.shape();
  out_shape[0] = indices.size();
  return detail::apply_shaped<IndexSelect>(out_shape, {indices}, x);
}

namespace {
// y = zeros of `rows` rows with row i of x added to row indices[i].  dx = g's rows at the
// indices (index_select).
struct IndexAdd {
  static constexpr const char* name = "index_add";
  struct Attrs {
    std::vector<std::size_t> indices;
  };
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& a, xt::xarray<T>& out) {
    const auto& x = in[0];
    const std::size_t row = extent_product(x.shape(), 1, x.dimension());
    std::fill(out.data(), out.data() + out.size(), T(0));
    for (std::size_t i = 0; i < a.indices.size(); ++i) {
      const T* from = x.data() + i * row;
      T* to = out.data() + a.indices[i] * row;
      for (std::size_t k = 0; k < row; ++k) to[k] += from[k];
    }
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& a) {
    return index_select(c.grad(), a.indices);
  }
};
}  // namespace
TAPEGRAD_REGISTER_OP(IndexAdd)

template <class T>
Tensor<T> index_add(const Tensor<T>& x, const std::vector<std::size_t>& indices, std::size_t rows) {
  if (x.dim() == 0 || x.shape()[0] != indices.size()) {
    throw ShapeError("index_add: " + std::to_string(indices.size()) +
                     " indices for a tensor of shape " + shape_to_string(x.shape()) +
                     "; it needs one row per index");
  }
  for (auto index : indices) {
    if (index >= rows) {
      throw ValueError("index_add: index " + std::to_string(index) + " is out of range for " +
                       std::to_string(rows) + " rows");
    }
  }
  Shape out_shape = x.shape();
  out_shape[0] = rows;
  checked_size("index_add", out_shape);
  return detail::apply_shaped<IndexAdd>(out_shape, {indices}, x);
}

#define TAPEGRAD_INSTANTIATE(T)                                                          \
  template Tensor<T> transpose(const Tensor<T>&);                                        \
  template Tensor<T> transpose(const Tensor<T>&, const std::vector<std::size_t>&);       \
  template Tensor<T> reshape(const Tensor<T>&, const Shape&);                            \
  template Tensor<T> broadcast_to(const Tensor<T>&, const Shape&);                       \
  template Tensor<T> sum_to(const Tensor<T>&, const Shape&);                             \
  template Tensor<T> concat(const std::vector<Tensor<T>>&, std::ptrdiff_t);              \
  template Tensor<T> narrow(const Tensor<T>&, std::ptrdiff_t, std::size_t, std::size_t); \
  template Tensor<T> index_select(const Tensor<T>&, const std::vector<std::size_t>&);    \
  template Tensor<T> index_add(const Tensor<T>&, const std::vector<std::size_t>&, std::size_t);

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad
