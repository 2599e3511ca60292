// Convolution and pooling, NCHW, in op blocks (see ops/op.hpp) that are each other's
// backward: im2col and its adjoint col2im, from which avg_pool2d is composed; conv2d, its
// weight gradient and conv_transpose2d, one GEMM per image on that image's columns; and max
// pooling's select and scatter, which read each window of x where it lies (unfolding x
// first and taking max along the columns cost more than the convolutions' products).
#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

// xblas.hpp declares the CBLAS functions itself (see ops_linalg.cpp): OpenBLAS's cblas.h is
// not included.
#include <xtensor-blas/xblas.hpp>

#include "core/scratch.hpp"
#include "ops/op.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad {

using detail::BackwardContext;
using detail::Gradients;
using detail::Inputs;

namespace {

// The window of im2col / col2im (all extents checked: kernel, stride, dilation >= 1), and
// what im2col writes where a tap falls in the padding.
struct Window {
  std::size_t kh, kw, sh, sw, ph, pw, dh, dw;
  double padding_value;
};

// The output extent along one axis, as PyTorch: floor((in + 2p - d (k - 1) - 1) / s) + 1.
// The caller has checked that the dilated kernel fits the padded input.
std::size_t out_extent(std::size_t in, std::size_t k, std::size_t s, std::size_t p, std::size_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

// The output positions q in [0, out) whose tap q s - p + offset lies inside [0, in): a range
// [first, last), so that the loops below test no bounds inside a row.
struct Span {
  std::size_t first, last;
};
Span inside(std::size_t out, std::size_t in, std::size_t s, std::size_t p, std::size_t offset) {
  // q s + offset >= p  and  q s + offset < in + p.
  const std::size_t first = offset >= p ? 0 : (p - offset + s - 1) / s;
  const std::size_t last = in + p > offset ? (in + p - offset - 1) / s + 1 : 0;
  const std::size_t a = std::min(first, out), b = std::min(last, out);
  return {a, std::max(a, b)};
}

// The extents both kernels walk: x's (N, C, H, W) and the output's (Ho, Wo).
struct Extents {
  std::size_t n, c, h, w, ho, wo;
};
Extents extents_of(const Shape& x, const Window& k) {
  return {x[0],
          x[1],
          x[2],
          x[3],
          out_extent(x[2], k.kh, k.sh, k.ph, k.dh),
          out_extent(x[3], k.kw, k.sw, k.pw, k.dw)};
}

template <class T>
Tensor<T> im2col_of(const Tensor<T>& x, const Window& k, const Shape& out_shape);
template <class T>
Tensor<T> col2im_of(const Tensor<T>& columns, const Window& k, const Shape& out_shape);

// One row (c, i, j) of the unfolding below, for the common "same" convolution: stride 1 and
// rows of x as long as the output's (Wo = W). Then the row's block of image n, (Ho, Wo), is
// x's plane (n, c) shifted by (i - ph) rows and (j - pw) columns, so it is copied in one
// piece, and only the taps that fall in the padding (whole rows at the top and bottom, a
// few columns at each row's ends, which the shifted copy filled from the neighbouring row)
// are set to the padding value afterwards. Small copies row by row cost a call each.
template <class T>
void unfold_shifted_planes(const T* x, const Extents& e, const Window& k, std::size_t c,
                           std::size_t down, std::size_t right, const Span& rows, const Span& cols,
                           T* row) {
  const T pad = static_cast<T>(k.padding_value);
  const std::size_t plane = e.h * e.w;
  for (std::size_t n = 0; n < e.n; ++n) {
    T* to = row + n * e.ho * e.wo;
    const T* from = x + (n * e.c + c) * plane;
    std::fill(to, to + rows.first * e.wo, pad);
    std::fill(to + rows.last * e.wo, to + e.ho * e.wo, pad);
    if (rows.first == rows.last) continue;
    // Output position t = p Wo + q (p in rows) reads the plane at t + shift, kept inside it.
    const auto shift = static_cast<std::ptrdiff_t>(down * e.w + right) -
                       static_cast<std::ptrdiff_t>(k.ph * e.w + k.pw);
    const auto begin = static_cast<std::ptrdiff_t>(rows.first * e.wo);
    const auto end = static_cast<std::ptrdiff_t>(rows.last * e.wo);
    const std::ptrdiff_t first = std::max(begin, -shift);
    const std::ptrdiff_t last = std::min(end, static_cast<std::ptrdiff_t>(plane) - shift);
    if (first < last) std::copy(from + first + shift, from + last + shift, to + first);
    for (std::size_t p = rows.first; p < rows.last; ++p) {
      T* line = to + p * e.wo;
      std::fill(line, line + cols.first, pad);
      std::fill(line + cols.last, line + e.wo, pad);
    }
  }
}

// The unfolding itself: y[(c, i, j), (n, p, q)] = x[n, c, p sh - ph + i dh, q sw - pw + j dw],
// or the padding value, for x of extents e (N, C, H, W) and y of (C kh kw, N Ho Wo).
template <class T>
void unfold(const T* x, const Extents& e, const Window& k, T* y) {
  const T pad = static_cast<T>(k.padding_value);
  const std::size_t columns = e.n * e.ho * e.wo;
  // One row (c, i, j) at a time, written in order: for each (n, p), a strided read of one
  // row of x, padding on either side.
  for (std::size_t c = 0; c < e.c; ++c) {
    for (std::size_t i = 0; i < k.kh; ++i) {
      const Span rows = inside(e.ho, e.h, k.sh, k.ph, i * k.dh);
      for (std::size_t j = 0; j < k.kw; ++j) {
        const Span cols = inside(e.wo, e.w, k.sw, k.pw, j * k.dw);
        T* row = y + ((c * k.kh + i) * k.kw + j) * columns;
        if (k.sh == 1 && k.sw == 1 && e.wo == e.w) {
          unfold_shifted_planes(x, e, k, c, i * k.dh, j * k.dw, rows, cols, row);
          continue;
        }
        for (std::size_t n = 0; n < e.n; ++n) {
          for (std::size_t p = 0; p < e.ho; ++p) {
            T* to = row + (n * e.ho + p) * e.wo;
            if (p < rows.first || p >= rows.last || cols.first == cols.last) {
              std::fill(to, to + e.wo, pad);
              continue;
            }
            const std::size_t r = p * k.sh + i * k.dh - k.ph;  // >= 0: p is in rows
            const T* from = x + ((n * e.c + c) * e.h + r) * e.w;
            // x[n, c, r, q sw - pw + j dw] for the first q inside (>= 0 there).
            const std::size_t at = cols.first * k.sw + j * k.dw - k.pw;
            std::fill(to, to + cols.first, pad);
            if (k.sw == 1) {
              std::copy_n(from + at, cols.last - cols.first, to + cols.first);
            } else {
              for (std::size_t q = cols.first, a = at; q < cols.last; ++q, a += k.sw)
                to[q] = from[a];
            }
            std::fill(to + cols.last, to + e.wo, pad);
          }
        }
      }
    }
  }
}

// unfold's adjoint, added into x: each entry of y (C kh kw, N Ho Wo) added at the position of
// x (N, C, H, W) that unfold reads it from; entries in the padding dropped.
template <class T>
void fold_add(const T* y, const Extents& e, const Window& k, T* x) {
  const std::size_t columns = e.n * e.ho * e.wo;
  for (std::size_t c = 0; c < e.c; ++c) {
    for (std::size_t i = 0; i < k.kh; ++i) {
      const Span rows = inside(e.ho, e.h, k.sh, k.ph, i * k.dh);
      for (std::size_t j = 0; j < k.kw; ++j) {
        const Span cols = inside(e.wo, e.w, k.sw, k.pw, j * k.dw);
        const T* row = y + ((c * k.kh + i) * k.kw + j) * columns;
        for (std::size_t n = 0; n < e.n; ++n) {
          for (std::size_t p = rows.first; p < rows.last; ++p) {
            const T* from = row + (n * e.ho + p) * e.wo;
            const std::size_t r = p * k.sh + i * k.dh - k.ph;  // >= 0: p is in rows
            T* to = x + ((n * e.c + c) * e.h + r) * e.w;
            const std::size_t at = cols.first * k.sw + j * k.dw - k.pw;
            for (std::size_t q = cols.first, a = at; q < cols.last; ++q, a += k.sw)
              to[a] += from[q];
          }
        }
      }
    }
  }
}

// y = unfold(x): the columns (C kh kw, N Ho Wo), each a window of x.
// dx = col2im(g) (the padding's share dropped).
struct Im2col {
  static constexpr const char* name = "im2col";
  using Attrs = Window;
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& k, xt::xarray<T>& out) {
    if (out.size() == 0) return;  // N = 0 or C = 0 (and an empty array's data may be null)
    unfold(in[0].data(), extents_of(in[0].shape(), k), k, out.data());
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& k) {
    return col2im_of(c.grad(), k, c.input(0).shape());
  }
};

// y = zeros of shape (N, C, H, W), with each column entry added at the position im2col reads
// it from (entries in the padding dropped): the adjoint of im2col.  dx = im2col(g), padding 0.
struct Col2im {
  static constexpr const char* name = "col2im";
  using Attrs = Window;
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& k, xt::xarray<T>& out) {
    if (out.size() == 0) return;  // N = 0 or C = 0, and then the columns are empty too
    std::fill(out.data(), out.data() + out.size(), T(0));
    fold_add(in[0].data(), extents_of(out.shape(), k), k, out.data());
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& k) {
    Window zero_padded = k;
    zero_padded.padding_value = 0;
    return im2col_of(c.grad(), zero_padded, c.input(0).shape());
  }
};

template <class T>
Tensor<T> im2col_of(const Tensor<T>& x, const Window& k, const Shape& out_shape) {
  return detail::apply_shaped<Im2col>(out_shape, k, x);
}

template <class T>
Tensor<T> col2im_of(const Tensor<T>& columns, const Window& k, const Shape& out_shape) {
  return detail::apply_shaped<Col2im>(out_shape, k, columns);
}

// ---- the convolution, image by image ----
//
// conv2d is a product of three arrays, trilinear: sum of y[n, o, p, q] w[o, c, i, j]
// x[n, c, p sh - ph + i dh, q sw - pw + j dw]. Each of its three ops computes one array from
// the other two, and so each op's rule is made of the other two:
//   conv2d(x, w) -> y                    y[n] = w unfold(x[n])              (+ bias)
//   conv2d_weight_grad(g, x) -> w        w    = sum over n of g[n] unfold(x[n])^T
//   conv_transpose2d(w, g) -> x          x[n] = fold(w^T g[n])
// with w read as a matrix (O, C kh kw) and unfold(x[n]) the (C kh kw, Ho Wo) columns of one
// image. They work one image at a time, the image's columns in a scratch buffer that stays
// in cache, so the columns of the whole batch (C kh kw times the output's positions, 14 MiB
// for the second layer of the Fashion-MNIST CNN) are never stored, forward or backward,
// and y and x are written straight in NCHW.

// c = op(a) op(b) + beta c, each matrix row-major with its own leading dimension: op(a)
// (m, k), op(b) (k, n), c (m, n). conv2d has checked every extent below 2^31.
template <class T>
void gemm_strided(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a,
                  std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // BLAS rejects empty strides; the product of no terms is 0
    for (std::size_t i = 0; i < m; ++i) {
      T* row = c + i * ldc;
      for (std::size_t j = 0; j < n; ++j) row[j] = beta == T(0) ? T(0) : beta * row[j];
    }
    return;
  }
  const auto fa = ta ? CblasTrans : CblasNoTrans;
  const auto fb = tb ? CblasTrans : CblasNoTrans;
  const auto i = [](std::size_t v) { return static_cast<int>(v); };
  if constexpr (std::is_same_v<T, double>) {
    cblas_dgemm(CblasRowMajor, fa, fb, i(m), i(n), i(k), 1.0, a, i(lda), b, i(ldb), beta, c,
                i(ldc));
  } else {
    cblas_sgemm(CblasRowMajor, fa, fb, i(m), i(n), i(k), 1.0f, a, i(lda), b, i(ldb), beta, c,
                i(ldc));
  }
}

// The extents of one convolution: x's (N, C, H, W) and y's positions, O output channels,
// K = C kh kw taps, L = Ho Wo positions, and those of one image (N = 1).
struct ConvExtents {
  Extents x, image;
  std::size_t o, k, l;
};
ConvExtents conv_extents(const Shape& x, std::size_t out_channels, const Window& w) {
  const Extents e = extents_of(x, w);
  Extents image = e;
  image.n = 1;
  return {e, image, out_channels, e.c * w.kh * w.kw, e.ho * e.wo};
}

// The columns of one image, for one op's forward. Up to kKeptScratchBytes they are the
// calling thread's scratch memory (detail::thread_scratch), kept from call to call (a fresh
// block of this size each time would come from the kernel, page by page) until
// release_cached_arrays(); a larger image's columns are the call's own and freed after it,
// so that one large convolution does not hold its memory for the thread's lifetime.
constexpr std::size_t kKeptScratchBytes = std::size_t{16} << 20;

template <class T>
class ScratchColumns {
 public:
  explicit ScratchColumns(std::size_t size) {
    if (size * sizeof(T) <= kKeptScratchBytes) data_ = detail::thread_scratch<T>(size);
    if (data_ == nullptr) {
      own_.resize(size);
      data_ = own_.data();
    }
  }
  T* data() const { return data_; }

 private:
  std::vector<T> own_;
  T* data_ = nullptr;
};

template <class T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& g, const Tensor<T>& x, const Window& k,
                             const Shape& weight_shape);
template <class T>
Tensor<T> conv_transpose2d_of(const Tensor<T>& weight, const Tensor<T>& g, const Window& k,
                              const Shape& x_shape);
template <class T>
Tensor<T> conv2d_without_bias(const Tensor<T>& x, const Tensor<T>& weight, const Window& k,
                              const Shape& y_shape);

// y[n] = w unfold(x[n]) (+ bias[o] on channel o, when a bias is the third input), x (N, C,
// H, W), w (O, C, kh, kw), y (N, O, Ho, Wo).
// dx = conv_transpose2d(w, g), dw = conv2d_weight_grad(g, x), dbias = g summed over n, p, q.
struct Conv2d {
  static constexpr const char* name = "conv2d";
  using Attrs = Window;
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& k, xt::xarray<T>& out) {
    const ConvExtents e = conv_extents(in[0].shape(), out.shape()[1], k);
    const std::size_t image = e.x.c * e.x.h * e.x.w;
    const ScratchColumns<T> scratch(e.k * e.l);
    T* columns = scratch.data();
    for (std::size_t n = 0; n < e.x.n; ++n) {
      unfold(in[0].data() + n * image, e.image, k, columns);
      gemm_strided(false, false, e.o, e.l, e.k, in[1].data(), e.k, columns, e.l, T(0),
                   out.data() + n * e.o * e.l, e.l);
    }
    if (in.size() == 3) {
      const T* bias = in[2].data();
      T* y = out.data();
      for (std::size_t plane = 0; plane < e.x.n * e.o; ++plane) {
        const T b = bias[plane % e.o];
        for (std::size_t q = 0; q < e.l; ++q) y[plane * e.l + q] += b;
      }
    }
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& k) {
    const auto& g = c.grad();
    Gradients<T> d;
    if (c.needs(0)) d[0] = conv_transpose2d_of(c.input(1), g, k, c.input(0).shape());
    if (c.needs(1)) d[1] = conv2d_weight_grad(g, c.input(0), k, c.input(1).shape());
    if (c.input_count() == 3 && c.needs(2)) d[2] = sum(g, Axes{0, 2, 3});
    return d;
  }
};

// y = sum over n of g[n] unfold(x[n])^T, of w's shape (O, C, kh, kw); g (N, O, Ho, Wo).
// dg = conv2d(x, h), dx = conv_transpose2d(h, g), h the gradient (w's shape).
struct Conv2dWeightGrad {
  static constexpr const char* name = "conv2d_weight_grad";
  using Attrs = Window;
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& k, xt::xarray<T>& out) {
    const ConvExtents e = conv_extents(in[1].shape(), in[0].shape()[1], k);
    const std::size_t image = e.x.c * e.x.h * e.x.w;
    const ScratchColumns<T> scratch(e.k * e.l);
    T* columns = scratch.data();
    std::fill(out.data(), out.data() + out.size(), T(0));
    for (std::size_t n = 0; n < e.x.n; ++n) {
      unfold(in[1].data() + n * image, e.image, k, columns);
      gemm_strided(false, true, e.o, e.k, e.l, in[0].data() + n * e.o * e.l, e.l, columns, e.l,
                   T(1), out.data(), e.k);
    }
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& k) {
    const auto& h = c.grad();
    Gradients<T> d;
    if (c.needs(0)) d[0] = conv2d_without_bias(c.input(1), h, k, c.input(0).shape());
    if (c.needs(1)) d[1] = conv_transpose2d_of(h, c.input(0), k, c.input(1).shape());
    return d;
  }
};

// x[n] = fold(w^T g[n]), of shape (N, C, H, W): conv2d's adjoint in x, w (O, C, kh, kw),
// g (N, O, Ho, Wo). dw = conv2d_weight_grad(g, h), dg = conv2d(h, w), h the gradient.
struct ConvTranspose2d {
  static constexpr const char* name = "conv_transpose2d";
  using Attrs = Window;
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& k, xt::xarray<T>& out) {
    const ConvExtents e = conv_extents(out.shape(), in[0].shape()[0], k);
    const std::size_t image = e.x.c * e.x.h * e.x.w;
    const ScratchColumns<T> scratch(e.k * e.l);
    T* columns = scratch.data();
    std::fill(out.data(), out.data() + out.size(), T(0));
    for (std::size_t n = 0; n < e.x.n; ++n) {
      gemm_strided(true, false, e.k, e.l, e.o, in[0].data(), e.k, in[1].data() + n * e.o * e.l, e.l,
                   T(0), columns, e.l);
      fold_add(columns, e.image, k, out.data() + n * image);
    }
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& k) {
    const auto& h = c.grad();
    Gradients<T> d;
    if (c.needs(0)) d[0] = conv2d_weight_grad(c.input(1), h, k, c.input(0).shape());
    if (c.needs(1)) d[1] = conv2d_without_bias(h, c.input(0), k, c.input(1).shape());
    return d;
  }
};

template <class T>
Tensor<T> conv2d_without_bias(const Tensor<T>& x, const Tensor<T>& weight, const Window& k,
                              const Shape& y_shape) {
  return detail::apply_shaped<Conv2d>(y_shape, k, x, weight);
}
template <class T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& g, const Tensor<T>& x, const Window& k,
                             const Shape& weight_shape) {
  return detail::apply_shaped<Conv2dWeightGrad>(weight_shape, k, g, x);
}
template <class T>
Tensor<T> conv_transpose2d_of(const Tensor<T>& weight, const Tensor<T>& g, const Window& k,
                              const Shape& x_shape) {
  return detail::apply_shaped<ConvTranspose2d>(x_shape, k, weight, g);
}

// ---- checks ----

// The largest size or padding taken: far beyond any array, small enough that H + 2p and
// d (k - 1) cannot overflow.
constexpr std::int64_t kLargest = std::int64_t{1} << 31;

std::string pair_string(const Size2& s) { return s.to_pair_string(); }

// Checks one of the geometry's sizes: both values in [least, kLargest].
void check_size(const char* op, const char* what, const Size2& s, std::int64_t least) {
  for (const std::int64_t v : {s.h(), s.w()}) {
    if (v < least) {
      throw ValueError(std::string(op) + ": " + what + " must be at least " +
                       std::to_string(least) + ", got " + pair_string(s));
    }
    if (v > kLargest) {
      throw ValueError(std::string(op) + ": " + what + " " + pair_string(s) +
                       " is too large (at most " + std::to_string(kLargest) + ")");
    }
  }
}

// The window of `kernel` and `options` on an input of shape (N, C, H, W), checked, and the
// output's extents. Errors name `op`. The caller checks its result's shape (checked_size), and
// the columns it unfolds (checked_columns).
struct CheckedWindow {
  Window window;
  std::size_t ho, wo;
};
CheckedWindow checked_window(const char* op, const Shape& x, const Size2& kernel,
                             const Conv2dOptions& options, double padding_value,
                             const Shape& shown) {
  check_size(op, "the kernel size", kernel, 1);
  check_size(op, "the stride", options.stride(), 1);
  check_size(op, "the padding", options.padding(), 0);
  check_size(op, "the dilation", options.dilation(), 1);
  // Only an empty array has a larger extent (see checked_size); with this bound H + 2p and
  // the output extents cannot overflow.
  if (x[2] > detail::kMaxElements || x[3] > detail::kMaxElements) {
    throw ShapeError(std::string(op) + ": the input " + shape_to_string(shown) +
                     " has a spatial extent over " + std::to_string(detail::kMaxElements) +
                     ", more than any array holds");
  }
  const auto u = [](std::int64_t v) { return static_cast<std::size_t>(v); };
  const Window k{u(kernel.h()),
                 u(kernel.w()),
                 u(options.stride().h()),
                 u(options.stride().w()),
                 u(options.padding().h()),
                 u(options.padding().w()),
                 u(options.dilation().h()),
                 u(options.dilation().w()),
                 padding_value};
  const std::size_t span_h = k.dh * (k.kh - 1) + 1, span_w = k.dw * (k.kw - 1) + 1;
  const std::size_t padded_h = x[2] + 2 * k.ph, padded_w = x[3] + 2 * k.pw;
  if (span_h > padded_h || span_w > padded_w) {
    throw ValueError(std::string(op) + ": the kernel " + pair_string(kernel) + " with dilation " +
                     pair_string(options.dilation()) + " spans (" + std::to_string(span_h) + ", " +
                     std::to_string(span_w) + "), larger than the padded input (" +
                     std::to_string(padded_h) + ", " + std::to_string(padded_w) + ") of " +
                     shape_to_string(shown) + " with padding " + pair_string(options.padding()));
  }
  const Extents e = extents_of(x, k);
  return {k, e.ho, e.wo};
}

// The shape of the columns (C kh kw, N Ho Wo) that unfolding `window` over c channels of n
// images makes (n = 1: one image's, as the convolutions unfold them), checked: each extent,
// and their product, must fit. Errors name `op`, the factors and the input `shown`.
Shape checked_columns(const char* op, std::size_t c, std::size_t n, const CheckedWindow& window,
                      const Shape& shown) {
  const Window& k = window.window;
  std::size_t rows = 0, columns = 0, count = 0;
  if (!detail::product_fits({c, k.kh, k.kw}, 0, 3, rows) ||
      !detail::product_fits({n, window.ho, window.wo}, 0, 3, columns) ||
      !detail::product_fits({rows, columns}, 0, 2, count)) {
    const auto factors = [](std::size_t a, std::size_t b, std::size_t d) {
      return std::to_string(a) + " * " + std::to_string(b) + " * " + std::to_string(d);
    };
    throw ShapeError(std::string(op) + ": the columns (C kh kw, N Ho Wo) = (" +
                     factors(c, k.kh, k.kw) + ", " + factors(n, window.ho, window.wo) +
                     ") for the input " + shape_to_string(shown) +
                     " have more elements than fit in memory (over " +
                     std::to_string(detail::kMaxElements) + ")");
  }
  return {rows, columns};
}

template <class T>
void require_4d(const char* op, const Tensor<T>& x) {
  if (x.dim() != 4) {
    throw ValueError(std::string(op) + ": the input must be 4-d (N, C, H, W), got " +
                     shape_to_string(x.shape()));
  }
}

// x as 4-d: (C, H, W) gets a batch axis of 1, as PyTorch takes unbatched input.
template <class T>
Tensor<T> batched(const char* op, const Tensor<T>& x) {
  if (x.dim() == 4) return x;
  if (x.dim() == 3) return reshape(x, Shape{1, x.shape()[0], x.shape()[1], x.shape()[2]});
  throw ShapeError(std::string(op) + ": the input must be 3-d (C, H, W) or 4-d (N, C, H, W), got " +
                   shape_to_string(x.shape()));
}

// y (N, ...) back to x's batchedness: (...) for an unbatched x.
template <class T>
Tensor<T> as_input(const Tensor<T>& x, const Tensor<T>& y) {
  if (x.dim() == 4) return y;
  return reshape(y, Shape(y.shape().begin() + 1, y.shape().end()));
}

template <class T>
Tensor<T> conv2d_of(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>* bias,
                    const Conv2dOptions& options) {
  const Tensor<T> x4 = batched("conv2d", x);
  if (weight.dim() != 4) {
    throw ShapeError("conv2d: the weight must be 4-d (O, C, kh, kw), got " +
                     shape_to_string(weight.shape()));
  }
  const Shape& w = weight.shape();
  const std::size_t channels = x4.shape()[1], out_channels = w[0];
  if (w[1] != channels) {
    throw ShapeError("conv2d: input " + shape_to_string(x.shape()) + " has " +
                     std::to_string(channels) + " channels, weight " + shape_to_string(w) +
                     " expects " + std::to_string(w[1]));
  }
  if (bias != nullptr && bias->shape() != Shape{out_channels}) {
    throw ShapeError("conv2d: the bias must have shape (" + std::to_string(out_channels) +
                     ",) for weight " + shape_to_string(w) + ", got " +
                     shape_to_string(bias->shape()));
  }
  const auto window =
      checked_window("conv2d", x4.shape(), Size2(w[2], w[3]), options, 0.0, x.shape());
  const std::size_t n = x4.shape()[0];
  const Shape y{n, out_channels, window.ho, window.wo};
  checked_size("conv2d", y);
  // One image's columns, and BLAS's int extents and leading dimensions: those of one
  // image's product.
  const Shape image = checked_columns("conv2d", channels, 1, window, x.shape());
  const std::size_t taps = image[0], positions = image[1];
  if (std::max({taps, positions, out_channels}) > INT_MAX) {
    throw ShapeError("conv2d: input " + shape_to_string(x.shape()) + " with weight " +
                     shape_to_string(w) + " makes an image's product of " +
                     shape_to_string(Shape{out_channels, taps}) + " x " +
                     shape_to_string(Shape{taps, positions}) +
                     ", an extent beyond 2^31 - 1, the largest BLAS takes");
  }
  if (bias == nullptr) return as_input(x, conv2d_without_bias(x4, weight, window.window, y));
  return as_input(x, detail::apply_shaped<Conv2d>(y, window.window, x4, weight, *bias));
}

// The public transposed convolution: y's size worked out from x's, then the op block
// conv_transpose2d, which takes y's shape and the convolution's window.
template <class T>
Tensor<T> conv_transpose2d_checked(const Tensor<T>& x, const Tensor<T>& weight,
                                   const Tensor<T>* bias, const ConvTranspose2dOptions& options) {
  const char* op = "conv_transpose2d";
  const Tensor<T> x4 = batched(op, x);
  if (weight.dim() != 4) {
    throw ShapeError("conv_transpose2d: the weight must be 4-d (C_in, C_out, kh, kw), got " +
                     shape_to_string(weight.shape()));
  }
  const Shape& w = weight.shape();
  const std::size_t in_channels = x4.shape()[1], out_channels = w[1];
  if (w[0] != in_channels) {
    throw ShapeError("conv_transpose2d: input " + shape_to_string(x.shape()) + " has " +
                     std::to_string(in_channels) + " channels, weight " + shape_to_string(w) +
                     " expects " + std::to_string(w[0]));
  }
  if (bias != nullptr && bias->shape() != Shape{out_channels}) {
    throw ShapeError("conv_transpose2d: the bias must have shape (" + std::to_string(out_channels) +
                     ",) for weight " + shape_to_string(w) + ", got " +
                     shape_to_string(bias->shape()));
  }
  const Size2 kernel(static_cast<std::int64_t>(w[2]), static_cast<std::int64_t>(w[3]));
  check_size(op, "the kernel size", kernel, 1);
  check_size(op, "the stride", options.stride(), 1);
  check_size(op, "the padding", options.padding(), 0);
  check_size(op, "the output padding", options.output_padding(), 0);
  check_size(op, "the dilation", options.dilation(), 1);
  const Size2& s = options.stride();
  const Size2& out_pad = options.output_padding();
  if (out_pad.h() >= s.h() || out_pad.w() >= s.w()) {
    throw ValueError("conv_transpose2d: the output padding " + pair_string(out_pad) +
                     " must be below the stride " + pair_string(s) +
                     " (PyTorch also takes one below the dilation; tapegrad does not)");
  }
  const std::size_t h = x4.shape()[2], w_in = x4.shape()[3];
  if (h == 0 || w_in == 0 || h > static_cast<std::size_t>(kLargest) ||
      w_in > static_cast<std::size_t>(kLargest)) {
    throw ValueError("conv_transpose2d: the input " + shape_to_string(x.shape()) +
                     " must have spatial extents from 1 to " + std::to_string(kLargest) +
                     " (as PyTorch: no 0)");
  }
  // All terms at most 2^31 (checked): the products and the sum fit in 64 bits.
  const auto extent = [](std::size_t in, std::int64_t k, std::int64_t st, std::int64_t p,
                         std::int64_t d, std::int64_t op_pad) {
    return (static_cast<std::int64_t>(in) - 1) * st - 2 * p + d * (k - 1) + op_pad + 1;
  };
  const std::int64_t ho =
      extent(h, kernel.h(), s.h(), options.padding().h(), options.dilation().h(), out_pad.h());
  const std::int64_t wo =
      extent(w_in, kernel.w(), s.w(), options.padding().w(), options.dilation().w(), out_pad.w());
  if (ho < 1 || wo < 1) {
    throw ValueError("conv_transpose2d: input " + shape_to_string(x.shape()) + " with the kernel " +
                     pair_string(kernel) + ", stride " + pair_string(s) + ", padding " +
                     pair_string(options.padding()) + ", output padding " + pair_string(out_pad) +
                     " and dilation " + pair_string(options.dilation()) + " gives an output of (" +
                     std::to_string(ho) + ", " + std::to_string(wo) + "), below 1");
  }
  const Shape y{x4.shape()[0], out_channels, static_cast<std::size_t>(ho),
                static_cast<std::size_t>(wo)};
  checked_size(op, y);  // 2^31 strides make extents whose product can wrap around to 0
  // The convolution from y's size back to x's: its window, checked as conv2d checks it.
  const auto window = checked_window(op, y, kernel, options.convolution(), 0.0, y);
  if (window.ho != h ||
      window.wo != w_in) {  // cannot happen with the output padding below the stride
    throw ValueError("conv_transpose2d: internal: the convolution of " + shape_to_string(y) +
                     " gives (" + std::to_string(window.ho) + ", " + std::to_string(window.wo) +
                     "), not the input's (" + std::to_string(h) + ", " + std::to_string(w_in) +
                     ")");
  }
  const std::size_t taps = checked_columns(op, out_channels, 1, window, x.shape())[0];
  const std::size_t positions = h * w_in;
  if (std::max({taps, positions, in_channels}) > INT_MAX) {
    throw ShapeError("conv_transpose2d: input " + shape_to_string(x.shape()) + " with weight " +
                     shape_to_string(w) + " makes an image's product of " +
                     shape_to_string(Shape{taps, in_channels}) + " x " +
                     shape_to_string(Shape{in_channels, positions}) +
                     ", an extent beyond 2^31 - 1, the largest BLAS takes");
  }
  Tensor<T> result = conv_transpose2d_of(weight, x4, window.window, y);
  if (bias != nullptr) result = result + reshape(*bias, Shape{out_channels, 1, 1});
  return as_input(x, result);
}

// The pools' shared part: x (N, C, H, W) viewed as (N C, 1, H, W) and unfolded, so that
// each window is one column of kh kw taps.
template <class T>
struct PoolColumns {
  Tensor<T> columns;
  Shape result;  // (N, C, Ho, Wo), or (C, Ho, Wo) for an unbatched x
};
// The pools' window on x (N, C, H, W) or (C, H, W), checked (the padding at most half the
// kernel, as PyTorch; the result's shape), on x viewed as planes (N C, 1, H, W). Max pooling
// reads the windows in place: only avg_pool2d's columns are checked (pool_columns).
template <class T>
CheckedWindow pool_window(const char* op, const Tensor<T>& x, const Pool2dOptions& options,
                          double padding_value = 0) {
  const Tensor<T> x4 = batched(op, x);
  check_size(op, "the kernel size", options.kernel(), 1);
  check_size(op, "the padding", options.padding(), 0);
  const Size2& k = options.kernel();
  const Size2& p = options.padding();
  if (p.h() > k.h() / 2 || p.w() > k.w() / 2) {
    throw ValueError(std::string(op) + ": the padding " + pair_string(p) +
                     " must be at most half the kernel size " + pair_string(k) + " (as PyTorch)");
  }
  const Shape& s = x4.shape();
  const Shape planes{detail::checked_product(op, s, 0, 2), 1, s[2], s[3]};
  const auto window = checked_window(op, planes, k, options.window(), padding_value, x.shape());
  checked_size(op, Shape{s[0], s[1], window.ho, window.wo});
  return window;
}

template <class T>
PoolColumns<T> pool_columns(const char* op, const Tensor<T>& x, const Pool2dOptions& options,
                            double padding_value) {
  const auto window = pool_window(op, x, options, padding_value);
  const Tensor<T> x4 = batched(op, x);
  const Shape& s = x4.shape();
  const Shape planes{s[0] * s[1], 1, s[2], s[3]};  // checked by pool_window
  const Shape columns = checked_columns(op, 1, planes[0], window, x.shape());
  Shape result{s[0], s[1], window.ho, window.wo};
  if (x.dim() == 3) result.erase(result.begin());
  return {im2col_of(reshape(x4, planes), window.window, columns), std::move(result)};
}

// Max pooling reads x where it lies, without unfolding it: for every window of x (viewed as
// planes (N C, H, W)), f(output index, offset in x of the window's maximum). The maximum is
// PyTorch's CPU rule: the first tap inside the input to exceed all before it, or a NaN (the
// last NaN wins); a window whose taps are all -inf keeps its first tap inside. Taps in the
// padding never win; a window with none inside gets the offset kNoTap.
constexpr std::size_t kNoTap = static_cast<std::size_t>(-1);

// The taps t in [0, taps) whose position start + t step lies inside [0, extent).
Span taps_inside(std::ptrdiff_t start, std::size_t taps, std::size_t step, std::size_t extent) {
  const auto s = static_cast<std::ptrdiff_t>(step), e = static_cast<std::ptrdiff_t>(extent);
  const std::ptrdiff_t first = start >= 0 ? 0 : (-start + s - 1) / s;
  const std::ptrdiff_t last = start >= e ? 0 : (e - 1 - start) / s + 1;
  const auto a =
      static_cast<std::size_t>(std::min<std::ptrdiff_t>(first, static_cast<std::ptrdiff_t>(taps)));
  const auto b =
      static_cast<std::size_t>(std::min<std::ptrdiff_t>(last, static_cast<std::ptrdiff_t>(taps)));
  return {a, std::max(a, b)};
}

template <class T, class F>
void for_each_window_max(const T* x, const Extents& e, const Window& k, F f) {
  // Each output row's and column's taps inside the input, found once (a division each).
  std::vector<std::ptrdiff_t> tops(e.ho), lefts(e.wo);
  std::vector<Span> rows(e.ho), cols(e.wo);
  for (std::size_t p = 0; p < e.ho; ++p) {
    tops[p] = static_cast<std::ptrdiff_t>(p * k.sh) - static_cast<std::ptrdiff_t>(k.ph);
    rows[p] = taps_inside(tops[p], k.kh, k.dh, e.h);
  }
  for (std::size_t q = 0; q < e.wo; ++q) {
    lefts[q] = static_cast<std::ptrdiff_t>(q * k.sw) - static_cast<std::ptrdiff_t>(k.pw);
    cols[q] = taps_inside(lefts[q], k.kw, k.dw, e.w);
  }
  const auto w = static_cast<std::ptrdiff_t>(e.w);
  std::size_t out = 0;
  for (std::size_t plane = 0; plane < e.n * e.c; ++plane) {
    const auto base = static_cast<std::ptrdiff_t>(plane * e.h * e.w);
    for (std::size_t p = 0; p < e.ho; ++p) {
      const Span r = rows[p];
      for (std::size_t q = 0; q < e.wo; ++q, ++out) {
        const Span c = cols[q];
        if (r.first == r.last || c.first == c.last) {
          f(out, kNoTap);
          continue;
        }
        const auto corner = static_cast<std::size_t>(
            base + (tops[p] + static_cast<std::ptrdiff_t>(r.first * k.dh)) * w + lefts[q] +
            static_cast<std::ptrdiff_t>(c.first * k.dw));
        std::size_t best = corner;
        T largest = -std::numeric_limits<T>::infinity();
        for (std::size_t i = 0; i < r.last - r.first; ++i) {
          const std::size_t row = corner + i * k.dh * e.w;
          for (std::size_t j = 0; j < c.last - c.first; ++j) {
            const std::size_t at = row + j * k.dw;
            const T v = x[at];
            if (v > largest || v != v) {
              best = at;
              largest = v;
            }
          }
        }
        f(out, best);
      }
    }
  }
}

// The common 2x2 window with stride 2, no padding and no dilation, on whole rows: the four
// taps (0,0) (0,1) (1,0) (1,1) of each window compared in that order by the rule above,
// without branches (`|`, not `||`, which would branch), so that the compiler vectorises
// each row.
bool is_2x2_stride_2(const Window& k) {
  return k.kh == 2 && k.kw == 2 && k.sh == 2 && k.sw == 2 && k.ph == 0 && k.pw == 0 && k.dh == 1 &&
         k.dw == 1;
}

// One step of the rule above: whether tap `v` beats the largest value so far.
template <class T>
bool beats(T v, T largest) {
  return (v > largest) | (v != v);
}

// y[q] = v's value at the tap of x's maximum in window q of the row pair (x0, x1), v's rows
// (v0, v1) laid out as x's.
template <class T>
void select_2x2_row(const T* x0, const T* x1, const T* v0, const T* v1, std::size_t wo, T* y) {
  for (std::size_t q = 0; q < wo; ++q) {
    // All four values read, so that no load depends on a comparison.
    const T a = x0[2 * q + 1], b = x1[2 * q], c = x1[2 * q + 1];
    const T va = v0[2 * q + 1], vb = v1[2 * q], vc = v1[2 * q + 1];
    T largest = x0[2 * q], chosen = v0[2 * q];
    if (beats(a, largest)) largest = a, chosen = va;
    if (beats(b, largest)) largest = b, chosen = vb;
    if (beats(c, largest)) chosen = vc;
    y[q] = chosen;
  }
}

// The rows (y0, y1) of the scatter: g[q] at the tap of x's maximum in window q, zeros at the
// other three taps (the windows do not overlap, so each input position is written once).
template <class T>
void scatter_2x2_row(const T* x0, const T* x1, const T* g, std::size_t wo, T* y0, T* y1) {
  for (std::size_t q = 0; q < wo; ++q) {
    // The winner's number is kept as a T, not an int, so that all lanes have one width.
    const T a = x0[2 * q + 1], b = x1[2 * q], c = x1[2 * q + 1];
    T largest = x0[2 * q], winner = 0;
    if (beats(a, largest)) largest = a, winner = 1;
    if (beats(b, largest)) largest = b, winner = 2;
    if (beats(c, largest)) winner = 3;
    const T v = g[q];
    y0[2 * q] = winner == T(0) ? v : T(0);
    y0[2 * q + 1] = winner == T(1) ? v : T(0);
    y1[2 * q] = winner == T(2) ? v : T(0);
    y1[2 * q + 1] = winner == T(3) ? v : T(0);
  }
}

template <class T>
Tensor<T> max_pool2d_scatter(const Tensor<T>& g, const Tensor<T>& x, const Window& k);
template <class T>
Tensor<T> max_pool2d_select(const Tensor<T>& v, const Tensor<T>& x, const Window& k,
                            const Shape& out_shape);

// y = v at each window's maximum of x (N, C, H, W), shape (N, C, Ho, Wo): max_pool2d(x) is
// select(x, x). x only chooses the positions.  dv = max_pool2d_scatter(g, x); no dx.
struct MaxPoolSelect {
  static constexpr const char* name = "max_pool2d_select";
  using Attrs = Window;
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& k, xt::xarray<T>& out) {
    const T* v = in[0].data();
    T* y = out.data();
    const Extents e = extents_of(in[1].shape(), k);
    if (is_2x2_stride_2(k)) {
      const T* x = in[1].data();
      for (std::size_t plane = 0; plane < e.n * e.c; ++plane) {
        for (std::size_t p = 0; p < e.ho; ++p) {
          const std::size_t row = (plane * e.h + 2 * p) * e.w;
          select_2x2_row(x + row, x + row + e.w, v + row, v + row + e.w, e.wo,
                         y + (plane * e.ho + p) * e.wo);
        }
      }
      return;
    }
    for_each_window_max(in[1].data(), e, k, [&](std::size_t o, std::size_t at) {
      y[o] = at == kNoTap ? -std::numeric_limits<T>::infinity() : v[at];
    });
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& k) {
    Gradients<T> d;
    if (c.needs(0)) d[0] = max_pool2d_scatter(c.grad(), c.input(1), k);
    return d;
  }
};

// y = zeros of x's shape (N, C, H, W), with g's value of each window added at the window's
// maximum of x (overlapping windows add up): select's adjoint in v.
// dg = max_pool2d_select(g', x); no dx.
struct MaxPoolScatter {
  static constexpr const char* name = "max_pool2d_scatter";
  using Attrs = Window;
  template <class T>
  static void forward(const Inputs<T>& in, const Attrs& k, xt::xarray<T>& out) {
    const T* g = in[0].data();
    T* y = out.data();
    const Extents e = extents_of(in[1].shape(), k);
    if (is_2x2_stride_2(k)) {
      // Every position of a window is written; only an odd last row or column is not.
      const T* x = in[1].data();
      for (std::size_t plane = 0; plane < e.n * e.c; ++plane) {
        T* to = y + plane * e.h * e.w;
        for (std::size_t p = 0; p < e.ho; ++p) {
          const std::size_t row = (plane * e.h + 2 * p) * e.w;
          scatter_2x2_row(x + row, x + row + e.w, g + (plane * e.ho + p) * e.wo, e.wo, y + row,
                          y + row + e.w);
          if (e.w % 2 == 1) to[(2 * p) * e.w + e.w - 1] = to[(2 * p + 1) * e.w + e.w - 1] = T(0);
        }
        if (e.h % 2 == 1) std::fill(to + (e.h - 1) * e.w, to + e.h * e.w, T(0));
      }
      return;
    }
    std::fill(y, y + out.size(), T(0));
    for_each_window_max(in[1].data(), e, k, [&](std::size_t o, std::size_t at) {
      if (at != kNoTap) y[at] += g[o];
    });
  }
  template <class T>
  static Gradients<T> backward(const BackwardContext<T>& c, const Attrs& k) {
    Gradients<T> d;
    if (c.needs(0)) d[0] = max_pool2d_select(c.grad(), c.input(1), k, c.input(0).shape());
    return d;
  }
};

template <class T>
Tensor<T> max_pool2d_scatter(const Tensor<T>& g, const Tensor<T>& x, const Window& k) {
  return detail::apply_shaped<MaxPoolScatter>(x.shape(), k, g, x);
}
template <class T>
Tensor<T> max_pool2d_select(const Tensor<T>& v, const Tensor<T>& x, const Window& k,
                            const Shape& out_shape) {
  return detail::apply_shaped<MaxPoolSelect>(out_shape, k, v, x);
}
}  // namespace
TAPEGRAD_REGISTER_OP(Im2col)
TAPEGRAD_REGISTER_OP(Col2im)
TAPEGRAD_REGISTER_OP(Conv2d)
TAPEGRAD_REGISTER_OP(Conv2dWeightGrad)
TAPEGRAD_REGISTER_OP(ConvTranspose2d)
TAPEGRAD_REGISTER_OP(MaxPoolSelect)
TAPEGRAD_REGISTER_OP(MaxPoolScatter)

template <class T>
Tensor<T> im2col(const Tensor<T>& x, Size2 kernel, const Conv2dOptions& options,
                 double padding_value) {
  require_4d("im2col", x);
  const auto window =
      checked_window("im2col", x.shape(), kernel, options, padding_value, x.shape());
  const Shape columns = checked_columns("im2col", x.shape()[1], x.shape()[0], window, x.shape());
  return im2col_of(x, window.window, columns);
}

template <class T>
Tensor<T> col2im(const Tensor<T>& columns, const Shape& input_shape, Size2 kernel,
                 const Conv2dOptions& options) {
  if (input_shape.size() != 4) {
    throw ValueError("col2im: the input shape must be 4-d (N, C, H, W), got " +
                     shape_to_string(input_shape));
  }
  checked_size("col2im", input_shape);
  const auto window = checked_window("col2im", input_shape, kernel, options, 0.0, input_shape);
  const Shape expected =
      checked_columns("col2im", input_shape[1], input_shape[0], window, input_shape);
  if (columns.shape() != expected) {
    throw ShapeError("col2im: columns " + shape_to_string(columns.shape()) + " for input shape " +
                     shape_to_string(input_shape) + " and kernel " + pair_string(kernel) +
                     "; expected " + shape_to_string(expected));
  }
  return col2im_of(columns, window.window, input_shape);
}

template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                 const Conv2dOptions& options) {
  return conv2d_of(x, weight, &bias, options);
}

template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Conv2dOptions& options) {
  return conv2d_of(x, weight, static_cast<const Tensor<T>*>(nullptr), options);
}

template <class T>
Tensor<T> conv_transpose2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                           const ConvTranspose2dOptions& options) {
  return conv_transpose2d_checked(x, weight, &bias, options);
}
template <class T>
Tensor<T> conv_transpose2d(const Tensor<T>& x, const Tensor<T>& weight,
                           const ConvTranspose2dOptions& options) {
  return conv_transpose2d_checked<T>(x, weight, nullptr, options);
}

template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, const Pool2dOptions& options) {
  const auto window = pool_window("max_pool2d", x, options);
  const Tensor<T> x4 = batched("max_pool2d", x);
  const Shape& s = x4.shape();
  return as_input(
      x, max_pool2d_select(x4, x4, window.window, Shape{s[0], s[1], window.ho, window.wo}));
}

template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, const Pool2dOptions& options) {
  const Size2& d = options.dilation();
  if (d.h() != 1 || d.w() != 1) {
    throw ValueError("avg_pool2d: no dilation (PyTorch's avg_pool2d has none), got " +
                     pair_string(d));
  }
  const auto pool = pool_columns("avg_pool2d", x, options, 0.0);
  return reshape(mean(pool.columns, Axes{0}), pool.result);
}

template <class T>
Tensor<T> adaptive_avg_pool2d(const Tensor<T>& x, Size2 output_size) {
  if (output_size.h() != 1 || output_size.w() != 1) {
    throw ValueError("adaptive_avg_pool2d: only the output size 1x1 is supported, got " +
                     output_size.to_pair_string());
  }
  const Tensor<T> x4 = batched("adaptive_avg_pool2d", x);
  if (x4.shape()[2] == 0 || x4.shape()[3] == 0) {
    throw ValueError("adaptive_avg_pool2d: the input " + shape_to_string(x.shape()) +
                     " has no spatial elements");
  }
  return mean(x, Axes{-2, -1}, true);
}

template <class T>
Tensor<T> flatten(const Tensor<T>& x, std::ptrdiff_t start_dim, std::ptrdiff_t end_dim) {
  if (x.dim() == 0) {
    // torch.flatten of a 0-d tensor: shape (1,), for start and end in {0, -1}.
    detail::normalize_axis("flatten", start_dim, 1);
    detail::normalize_axis("flatten", end_dim, 1);
    return reshape(x, Shape{1});
  }
  const std::size_t first = detail::normalize_axis("flatten", start_dim, x.dim());
  const std::size_t last = detail::normalize_axis("flatten", end_dim, x.dim());
  if (first > last) {
    throw ValueError("flatten: start_dim " + std::to_string(start_dim) + " comes after end_dim " +
                     std::to_string(end_dim) + " for shape " + shape_to_string(x.shape()));
  }
  const Shape& s = x.shape();
  Shape merged(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(first));
  merged.push_back(detail::checked_product("flatten", s, first, last + 1));
  merged.insert(merged.end(), s.begin() + static_cast<std::ptrdiff_t>(last) + 1, s.end());
  return reshape(x, merged);
}

#define TAPEGRAD_INSTANTIATE(T)                                                             \
  template Tensor<T> im2col(const Tensor<T>&, Size2, const Conv2dOptions&, double);         \
  template Tensor<T> col2im(const Tensor<T>&, const Shape&, Size2, const Conv2dOptions&);   \
  template Tensor<T> conv2d(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&,           \
                            const Conv2dOptions&);                                          \
  template Tensor<T> conv2d(const Tensor<T>&, const Tensor<T>&, const Conv2dOptions&);      \
  template Tensor<T> conv_transpose2d(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&, \
                                      const ConvTranspose2dOptions&);                       \
  template Tensor<T> conv_transpose2d(const Tensor<T>&, const Tensor<T>&,                   \
                                      const ConvTranspose2dOptions&);                       \
  template Tensor<T> max_pool2d(const Tensor<T>&, const Pool2dOptions&);                    \
  template Tensor<T> avg_pool2d(const Tensor<T>&, const Pool2dOptions&);                    \
  template Tensor<T> adaptive_avg_pool2d(const Tensor<T>&, Size2);                          \
  template Tensor<T> flatten(const Tensor<T>&, std::ptrdiff_t, std::ptrdiff_t);

TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad
