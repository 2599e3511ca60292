// Shape ops: transpose, reshape, broadcast_to / sum_to, concat / narrow,
// index_select / index_add. Each pair is the other's backward.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>

#include <xtensor/xbroadcast.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xreducer.hpp>

#include "core/backward_context.hpp"
#include "core/recording.hpp"
#include "core/shape.hpp"
#include "ops/kernels.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::Attrs;
using detail::BackwardContext;
using detail::constant;
using detail::broadcastable;
using detail::extent_product;
using detail::make_result;

template <class T>
Tensor<T> transpose(const Tensor<T>& x) {
  std::vector<std::size_t> perm(x.dim());
  std::iota(perm.rbegin(), perm.rend(), std::size_t{0});
  return transpose(x, perm);
}

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
  Attrs attrs;
  attrs.ints().resize(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) attrs.ints()[perm[i]] = i;  // the inverse
  return make_result<T>(
      "transpose", xt::transpose(x.value(), perm), x,
      [](BackwardContext<T>& c) { c.add(0, transpose(c.grad(), c.attrs().ints())); },
      std::move(attrs));
}

template <class T>
Tensor<T> reshape(const Tensor<T>& x, const Shape& shape) {
  if (checked_size("reshape", shape) != x.size()) {
    throw ShapeError("reshape: cannot reshape " + shape_to_string(x.shape()) + " (" +
                     std::to_string(x.size()) + " elements) to " + shape_to_string(shape));
  }
  if (shape == x.shape()) return x;
  auto value = detail::new_node_of_shape<T>(shape);
  std::copy(x.value().data(), x.value().data() + x.size(), value->value.data());
  return make_result<T>("reshape", std::move(value), x, [](BackwardContext<T>& c) {
    c.add(0, reshape(c.grad(), c.input(0).shape()));
  });
}

template <class T>
Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape) {
  if (!broadcastable(x.shape(), shape)) {
    throw ShapeError("broadcast_to: cannot broadcast " + shape_to_string(x.shape()) + " to " +
                     shape_to_string(shape));
  }
  if (shape == x.shape()) return x;
  checked_size("broadcast_to", shape);
  return make_result<T>("broadcast_to", detail::expand_to(x.value(), shape), x,
                        [](BackwardContext<T>& c) {
                          c.add(0, sum_to(c.grad(), c.input(0).shape()));
                        });
}

template <class T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape) {
  if (!broadcastable(shape, x.shape())) {
    throw ShapeError("sum_to: cannot sum " + shape_to_string(x.shape()) + " down to " +
                     shape_to_string(shape) + " (it must broadcast back to the input)");
  }
  if (shape == x.shape()) return x;
  checked_size("sum_to", shape);
  return make_result<T>("sum_to", detail::reduce_to(x.value(), shape), x, [](BackwardContext<T>& c) {
    c.add(0, broadcast_to(c.grad(), c.input(0).shape()));
  });
}

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
  const std::size_t outer = extent_product(first, 0, a);
  const std::size_t inner = extent_product(first, a + 1, first.size());
  xt::xarray<T> value = xt::empty<T>(out_shape);
  std::size_t offset = 0;
  for (const auto& part : parts) {
    const std::size_t block = part.shape()[a] * inner;
    for (std::size_t o = 0; o < outer; ++o) {
      std::copy_n(part.value().data() + o * block, block,
                  value.data() + (o * out_shape[a]) * inner + offset * inner);
    }
    offset += part.shape()[a];
  }
  Attrs attrs;
  attrs.axis = static_cast<std::ptrdiff_t>(a);
  return make_result<T>(
      "concat", std::move(value), parts,
      [](BackwardContext<T>& c) {
        const auto axis = c.attrs().axis;
        std::size_t start = 0;
        for (std::size_t i = 0; i < c.input_count(); ++i) {
          const std::size_t length = c.input(i).shape()[static_cast<std::size_t>(axis)];
          if (c.needs(i)) c.add(i, narrow(c.grad(), axis, start, length));
          start += length;
        }
      },
      std::move(attrs));
}

template <class T>
Tensor<T> narrow(const Tensor<T>& x, std::ptrdiff_t axis, std::size_t start, std::size_t length) {
  const std::size_t a = detail::normalize_axis("narrow", axis, x.dim());
  const std::size_t extent = x.shape()[a];
  if (start > extent || length > extent - start) {
    throw ValueError("narrow: the slice [" + std::to_string(start) + ", " +
                     std::to_string(start + length) + ") does not fit axis " +
                     std::to_string(a) + " of " + shape_to_string(x.shape()));
  }
  Shape out_shape = x.shape();
  out_shape[a] = length;
  const std::size_t outer = extent_product(x.shape(), 0, a);
  const std::size_t inner = extent_product(x.shape(), a + 1, x.dim());
  xt::xarray<T> value = xt::empty<T>(out_shape);
  for (std::size_t o = 0; o < outer; ++o) {
    std::copy_n(x.value().data() + (o * extent + start) * inner, length * inner,
                value.data() + o * length * inner);
  }
  Attrs attrs;
  attrs.axis = static_cast<std::ptrdiff_t>(a);
  attrs.ints() = {start};
  return make_result<T>(
      "narrow", std::move(value), x,
      [](BackwardContext<T>& c) {
        // g placed in zeros: concat(zeros before, g, zeros after).
        const auto a = static_cast<std::size_t>(c.attrs().axis);
        const std::size_t start = c.attrs().ints()[0];
        const auto g = c.grad();
        const Shape& full = c.input(0).shape();
        std::vector<Tensor<T>> pieces;
        Shape before = full, after = full;
        before[a] = start;
        after[a] = full[a] - start - g.shape()[a];
        if (before[a] > 0) pieces.push_back(constant<T>(xt::zeros<T>(before)));
        pieces.push_back(g);
        if (after[a] > 0) pieces.push_back(constant<T>(xt::zeros<T>(after)));
        c.add(0, pieces.size() == 1 ? g : concat(pieces, c.attrs().axis));
      },
      std::move(attrs));
}

template <class T>
Tensor<T> index_select(const Tensor<T>& x, const std::vector<std::size_t>& indices) {
  if (x.dim() == 0) throw ShapeError("index_select: cannot pick rows of a 0-d tensor");
  const std::size_t rows = x.shape()[0];
  for (auto index : indices) {
    if (index >= rows) {
      throw ValueError("index_select: index " + std::to_string(index) +
                       " is out of range for " + std::to_string(rows) + " rows of " +
                       shape_to_string(x.shape()));
    }
  }
  Shape out_shape = x.shape();
  out_shape[0] = indices.size();
  const std::size_t row = extent_product(x.shape(), 1, x.dim());
  xt::xarray<T> value = xt::empty<T>(out_shape);
  for (std::size_t i = 0; i < indices.size(); ++i) {
    std::copy_n(x.value().data() + indices[i] * row, row, value.data() + i * row);
  }
  Attrs attrs;
  attrs.ints() = indices;
  return make_result<T>(
      "index_select", std::move(value), x,
      [](BackwardContext<T>& c) {
        c.add(0, index_add(c.grad(), c.attrs().ints(), c.input(0).shape()[0]));
      },
      std::move(attrs));
}

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
  const std::size_t row = extent_product(x.shape(), 1, x.dim());
  xt::xarray<T> value = xt::zeros<T>(out_shape);
  for (std::size_t i = 0; i < indices.size(); ++i) {
    const T* from = x.value().data() + i * row;
    T* to = value.data() + indices[i] * row;
    for (std::size_t k = 0; k < row; ++k) to[k] += from[k];
  }
  Attrs attrs;
  attrs.ints() = indices;
  return make_result<T>(
      "index_add", std::move(value), x,
      [](BackwardContext<T>& c) { c.add(0, index_select(c.grad(), c.attrs().ints())); },
      std::move(attrs));
}

#define TAPEGRAD_INSTANTIATE(T)                                                             \
  template Tensor<T> transpose(const Tensor<T>&);                                           \
  template Tensor<T> transpose(const Tensor<T>&, const std::vector<std::size_t>&);          \
  template Tensor<T> reshape(const Tensor<T>&, const Shape&);                               \
  template Tensor<T> broadcast_to(const Tensor<T>&, const Shape&);                          \
  template Tensor<T> sum_to(const Tensor<T>&, const Shape&);                                \
  template Tensor<T> concat(const std::vector<Tensor<T>>&, std::ptrdiff_t);                 \
  template Tensor<T> narrow(const Tensor<T>&, std::ptrdiff_t, std::size_t, std::size_t);    \
  template Tensor<T> index_select(const Tensor<T>&, const std::vector<std::size_t>&);       \
  template Tensor<T> index_add(const Tensor<T>&, const std::vector<std::size_t>&, std::size_t);

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad
