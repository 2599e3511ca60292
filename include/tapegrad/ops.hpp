// The differentiable operations. Each primitive's derivative is written beside it here;
// forward and backward live side by side in src/ops_*.cpp. Composites (mean, matmul's
// 1-d cases, the operators with a scalar but division) are built from primitives and have no
// backward of their own.
//
// Notation: x, a, b inputs; y the result; g the gradient flowing into y (same shape as y).
// Binary elementwise ops broadcast like NumPy; the gradient of a broadcast input is summed
// back to its shape. Shape mismatches throw ShapeError, bad axes and indices ValueError; the
// message names the op and the shapes. In anomaly mode any recorded op may also throw
// TapeError (see AnomalyModeGuard in tape.hpp).
#pragma once

#include <cstddef>
#include <optional>
#include <type_traits>
#include <vector>

#include "tapegrad/conv_options.hpp"
#include "tapegrad/tensor.hpp"

namespace tapegrad {

/// @addtogroup reductions
/// @{

/// Axes of a reduction; negative values count from the end, as in NumPy.
using Axes = std::vector<std::ptrdiff_t>;
/// @}

// ---- elementwise, two operands (broadcasting) ----

/// @addtogroup elementwise
/// @{

/// y = a + b elementwise, a and b broadcast to y's shape (NumPy rules).  da = g, db = g (each
/// summed to its input's shape). Also written `a + b`. Throws ShapeError if the shapes do not
/// broadcast.
template <class T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b);
/// y = a - b elementwise, a and b broadcast to y's shape.  da = g, db = -g (each summed to its
/// input's shape). Also written `a - b`. Throws ShapeError if the shapes do not broadcast.
/// (A primitive rather than a + (-b): it is on every loss.)
template <class T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b);
/// y = a * b elementwise, a and b broadcast to y's shape.  da = g b, db = g a (each summed to
/// its input's shape). Also written `a * b`. Throws ShapeError if the shapes do not broadcast.
template <class T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b);
/// y = a / b elementwise, a and b broadcast to y's shape.  da = g / b and db = -g y / b
/// (= -g a / b^2), each summed to its input's shape. Division by zero gives Inf or NaN, as
/// in IEEE arithmetic (anomaly mode names 'div'). Also written `a / b`. Throws ShapeError if
/// the shapes do not broadcast.
template <class T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b);
/// y = x / s for a number s, recorded as 'div' (s = 0 gives Inf or NaN).  dx = g / s.
/// Also written `x / s`.
template <class T>
Tensor<T> div(const Tensor<T>& x, double s);
/// y = s / x for a number s, recorded as 'div' (x = 0 gives Inf or NaN).  dx = -g y / x
/// (= -s g / x^2). Also written `s / x`.
template <class T>
Tensor<T> div(double s, const Tensor<T>& x);
/// y = max(a, b) elementwise, a and b broadcast to y's shape.  da = g where a > b,
/// db = g where b > a; ties split the gradient in half (each summed to its input's shape).
/// Throws ShapeError if the shapes do not broadcast.
template <class T>
Tensor<T> maximum(const Tensor<T>& a, const Tensor<T>& b);
/// y = min(a, b) elementwise, a and b broadcast to y's shape.  da = g where a < b,
/// db = g where b < a; ties split the gradient in half (each summed to its input's shape).
/// Throws ShapeError if the shapes do not broadcast.
template <class T>
Tensor<T> minimum(const Tensor<T>& a, const Tensor<T>& b);

// ---- elementwise, one operand: any shape, y has x's shape ----

/// y = -x elementwise; y has x's shape.  dx = -g. Also written `-x`.
template <class T>
Tensor<T> neg(const Tensor<T>& x);
/// y = scale x + shift elementwise, for plain numbers scale and shift (rounded to T); y has
/// x's shape.  dx = scale g.
/// The operators with a scalar operand (x * 2, 1 - x, x / 4, ...) are this op, so a scalar
/// costs no tensor of its own.
template <class T>
Tensor<T> affine(const Tensor<T>& x, double scale, double shift = 0);
/// y = x^p elementwise for a constant exponent p (rounded to T); y has x's shape.
/// dx = g p x^(p-1), and 0 for p = 0. No domain check: as std::pow, a negative x with a
/// non-integer p gives NaN.
template <class T>
Tensor<T> pow(const Tensor<T>& x, double p);
/// y = e^x elementwise; y has x's shape.  dx = g y.
template <class T>
Tensor<T> exp(const Tensor<T>& x);
/// y = ln x elementwise; y has x's shape.  dx = g / x. No domain check: ln 0 is -Inf and the
/// log of a negative number NaN.
template <class T>
Tensor<T> log(const Tensor<T>& x);
/// y = sqrt(x) elementwise; y has x's shape.  dx = g / (2 y). No domain check: a negative x
/// gives NaN, and x = 0 an infinite derivative.
template <class T>
Tensor<T> sqrt(const Tensor<T>& x);
/// y = |x| elementwise; y has x's shape.  dx = g sign(x) (0 at x = 0).
template <class T>
Tensor<T> abs(const Tensor<T>& x);
/// y = x^2 elementwise; y has x's shape.  dx = 2 g x.
template <class T>
Tensor<T> square(const Tensor<T>& x);
/// y = sin x elementwise (radians); y has x's shape.  dx = g cos x.
template <class T>
Tensor<T> sin(const Tensor<T>& x);
/// y = cos x elementwise (radians); y has x's shape.  dx = -g sin x.
template <class T>
Tensor<T> cos(const Tensor<T>& x);
/// y = tanh x elementwise; y has x's shape.  dx = g (1 - y^2).
template <class T>
Tensor<T> tanh(const Tensor<T>& x);
/// y = 1 / (1 + e^-x) elementwise, computed as e^x / (1 + e^x) for x < 0 so that nothing
/// overflows for large |x|; y has x's shape.  dx = g y (1 - y).
template <class T>
Tensor<T> sigmoid(const Tensor<T>& x);
/// y = max(x, 0) elementwise; y has x's shape.  dx = g where x > 0, else 0 (0 at x = 0;
/// exactly 0 even where g is infinite or NaN, as in PyTorch).
template <class T>
Tensor<T> relu(const Tensor<T>& x);
/// y = x for x > 0, slope x otherwise, elementwise; y has x's shape.  dx = g for x > 0,
/// slope g otherwise (so slope g at x = 0).
template <class T>
Tensor<T> leaky_relu(const Tensor<T>& x, double slope = 0.01);
/// y = ln(1 + e^x) elementwise, computed as max(x, 0) + ln(1 + e^-|x|) so that nothing
/// overflows; y has x's shape.  dx = g sigmoid(x).
template <class T>
Tensor<T> softplus(const Tensor<T>& x);
/// y = erf(x) = 2/sqrt(pi) times the integral of e^{-t^2} from 0 to x, elementwise; y has
/// x's shape.  dx = g 2/sqrt(pi) e^{-x^2} (written in tensor ops, so it differentiates again).
template <class T>
Tensor<T> erf(const Tensor<T>& x);
/// y = x Phi(x) elementwise, Phi the standard normal CDF, computed as x erfc(-x/sqrt(2)) / 2
/// (exact GELU, torch.nn.functional.gelu's default, approximate='none'; erfc keeps the tiny
/// values of large negative x and nothing overflows); y has x's shape.
/// dx = g (Phi(x) + x phi(x)), phi(x) = e^{-x^2/2} / sqrt(2 pi), one op (gelu_backward) whose
/// own rule, dx = g' g phi(x) (2 - x^2), is in tensor ops.
template <class T>
Tensor<T> gelu(const Tensor<T>& x);
/// y = x sigmoid(x) elementwise (SiLU, also called swish), with sigmoid's overflow-free
/// form; y has x's shape.  dx = g (s + x s (1 - s)), s = sigmoid(x).
template <class T>
Tensor<T> silu(const Tensor<T>& x);
/// y = x for x > 0, alpha (e^x - 1) otherwise (computed with expm1), elementwise; y has x's
/// shape (ELU, as torch.nn.functional.elu).  dx = g for x > 0, g alpha e^x otherwise (so
/// g alpha at x = 0, as PyTorch), one op (elu_backward) that also makes the mask.
template <class T>
Tensor<T> elu(const Tensor<T>& x, double alpha = 1.0);
/// y = min(max(x, lo), hi) elementwise; y has x's shape.  dx = g where lo <= x <= hi (bounds
/// included), else 0 (exactly 0 even where g is infinite or NaN, as in PyTorch). Throws
/// ValueError unless lo <= hi (so also for a NaN bound).
template <class T>
Tensor<T> clamp(const Tensor<T>& x, double lo, double hi);

/// @}

// ---- reductions ----

/// @addtogroup reductions
/// @{

/// y = the sum of all elements of x (any shape; 0 for an empty x); y has shape `()`.
/// dx = g broadcast to x's shape.
template <class T>
Tensor<T> sum(const Tensor<T>& x);
/// Sum along the given axes (negative ones count from the end; any order). y has x's shape
/// without those axes, or with extent 1 there if keepdims.  dx = g broadcast back to x's
/// shape. Throws ValueError if an axis is out of range or given twice.
template <class T>
Tensor<T> sum(const Tensor<T>& x, const Axes& axes, bool keepdims = false);
/// y = the mean of all elements, composed as sum(x) / size; y has shape `()`.
/// dx = g / size broadcast to x's shape. Throws ValueError if x has no elements (PyTorch and
/// NumPy return NaN there; an empty batch's loss is refused instead of turning into NaN).
template <class T>
Tensor<T> mean(const Tensor<T>& x);
/// Mean along axes, composed as sum(x, axes, keepdims) / count, where count is the product
/// of the extents of those axes; shapes as for sum.  dx = g / count broadcast back to x's
/// shape. Throws ValueError if an axis is out of range or given twice, or if count is 0 (where
/// PyTorch returns NaN, as for mean(x)).
template <class T>
Tensor<T> mean(const Tensor<T>& x, const Axes& axes, bool keepdims = false);
/// Maximum along one axis (negative counts from the end). y has x's shape without that axis,
/// or with extent 1 there if keepdims; NaN where the axis holds a NaN (as PyTorch).  dx = g at
/// the first position of the maximum (or of the first NaN) along the axis, 0 elsewhere.
/// Throws ValueError if the axis is out of range or has extent 0 (as NumPy and PyTorch).
template <class T>
Tensor<T> max(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims = false);
/// y = ln sum exp(x) along an axis (default the last), computed as m + ln sum exp(x - m) with
/// m the maximum along the axis (m = 0 where that maximum is infinite, so rows of infinities
/// stay exact). y has x's shape without that axis, or with extent 1 there if keepdims; an
/// axis of extent 0 gives -Inf.  dx = g exp(x - y) (the softmax of x). Throws ValueError if
/// the axis is out of range.
template <class T>
Tensor<T> logsumexp(const Tensor<T>& x, std::ptrdiff_t axis = -1, bool keepdims = false);

// ---- softmax ----

/// y = exp(x - logsumexp(x)) along an axis (default the last), computed from x minus its
/// maximum along the axis; y has x's shape and sums to 1 along the axis.
/// dx = y (g - sum(g y)), the sum along that axis. Throws ValueError if the axis is out of
/// range.
template <class T>
Tensor<T> softmax(const Tensor<T>& x, std::ptrdiff_t axis = -1);
/// y = x - logsumexp(x) along an axis (default the last), computed from x minus its maximum
/// along the axis; y has x's shape.  dx = g - softmax(x) sum(g), the sum along that axis.
/// Throws ValueError if the axis is out of range.
template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, std::ptrdiff_t axis = -1);

/// @}

// ---- linear algebra ----

/// @addtogroup linalg
/// @{

/// Matrix product as torch.matmul, through OpenBLAS's GEMM. 2-d: y[i, j] = sum over k of
/// a[i, k] b[k, j], (m,k) x (k,n) -> (m,n); da = g b^T, db = a^T g. 1-d: (k,) x (k,n) ->
/// (n,); (m,k) x (k,) -> (m,); (k,) x (k,) -> () (a 1-d a is read as a row (1,k), a 1-d b as
/// a column (k,1), and that axis removed from the result).
/// 3-d and more (batched): the last two axes are the matrices and the leading ones, the batch
/// axes, broadcast as NumPy: (2,1,m,k) x (3,k,n) -> (2,3,m,n); a 1-d operand is promoted as
/// above, and a 2-d one is one matrix for the whole batch. Each gradient is the batched
/// product above summed over the batch axes its operand was broadcast along (a batched a
/// times a 2-d b is one GEMM over all the batch's rows). Throws ShapeError if an operand is
/// 0-d, if a's last extent differs from b's second-to-last (its only, for 1-d b), or if the
/// batch axes do not broadcast.
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b);

/// @}

// ---- shape ----

/// @addtogroup shape
/// @{

/// Reverses the axes: y's shape is x's reversed (the matrix transpose for 2-d; for 0-d and
/// 1-d, y equals x).  dx = transpose(g).
template <class T>
Tensor<T> transpose(const Tensor<T>& x);
/// Permutes the axes: y's axis i is x's axis perm[i], so y's extent i is x's extent perm[i].
/// dx = g permuted by the inverse. Throws ValueError unless perm lists each axis of x exactly
/// once.
template <class T>
Tensor<T> transpose(const Tensor<T>& x, const std::vector<std::size_t>& perm);
/// Same elements (row-major order), new shape of the same size.  dx = reshape(g, x's shape).
/// When `shape` is already x's shape, returns x itself (the same node; nothing recorded).
/// Throws ShapeError if the sizes differ.
template <class T>
Tensor<T> reshape(const Tensor<T>& x, const Shape& shape);
/// Broadcasts x to a shape, NumPy rules: aligned from the right, each extent of x is 1 or
/// equals the target's, and the target may have more leading axes.  dx = sum_to(g, x's
/// shape). When `shape` is already x's shape, returns x itself. Throws ShapeError if x's
/// shape does not broadcast to `shape`.
template <class T>
Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape);
/// Sums x down to a shape that broadcasts to x's (the adjoint of broadcast_to): sums over the
/// leading axes that `shape` lacks and over the axes where it has extent 1.
/// dx = broadcast_to(g, x's shape). When `shape` is already x's shape, returns x itself.
/// Throws ShapeError if `shape` does not broadcast to x's shape.
template <class T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape);
/// Joins tensors along an existing axis (negative counts from the end). The parts have the
/// same number of axes, at least 1, and the same extents except along `axis`, where y's
/// extent is their sum. Each input's gradient is its slice of g. Throws ValueError if `parts`
/// is empty or the axis is out of range; ShapeError if the parts are 0-d or their shapes
/// differ elsewhere than along the axis.
template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& parts, std::ptrdiff_t axis = 0);
/// The slice [start, start + length) of x along an axis (negative counts from the end); y has
/// x's shape with extent `length` on that axis.  dx = g placed in zeros. Throws ValueError if
/// the axis is out of range (so always for a 0-d x) or the slice does not fit in it.
template <class T>
Tensor<T> narrow(const Tensor<T>& x, std::ptrdiff_t axis, std::size_t start, std::size_t length);
/// The sub-tensor at `index` along an axis, the axis dropped: y has x's shape without that
/// axis (NumPy's x[:, i] is select(x, 1, i)). Negative axis and index count from the end, as
/// in Python.  dx = g placed at that index in zeros. Throws ValueError naming the axis and its
/// extent if the axis or the index is out of range (always for a 0-d x).
template <class T>
Tensor<T> select(const Tensor<T>& x, std::ptrdiff_t axis, std::ptrdiff_t index);
/// Python's x[..., start:stop:step, ...] along one axis: the elements at start, start + step,
/// ... before stop. An absent bound (`{}`) is the start or the end of the axis; negative bounds
/// count from the end; bounds beyond the axis are clamped and an empty range gives extent 0,
/// as in Python and PyTorch. y has x's shape with the number of elements taken on that axis.
/// dx = g placed back at those positions in zeros. Throws ValueError if the axis is out of
/// range or step < 1 (PyTorch takes no negative step; flip the result of a slice instead).
template <class T>
Tensor<T> slice(const Tensor<T>& x, std::ptrdiff_t axis, std::optional<std::ptrdiff_t> start,
                std::optional<std::ptrdiff_t> stop, std::ptrdiff_t step = 1);
/// NumPy-style indexing over the leading axes, one entry per axis in order: a position
/// selects (and drops the axis, as select), a Slice slices (and keeps it); axes after the
/// last entry are kept whole. index(x, {all, t, all}) is x[:, t, :],
/// index(x, {0, Slice(1, {}, 2)}) is x[0, 1::2]. Differentiable as select and slice are.
/// Throws ValueError naming the entry, its axis and extent if there are more entries than
/// axes or one is out of range.
template <class T>
Tensor<T> index(const Tensor<T>& x, const std::vector<Index>& indices);
/// Rows of x (axis 0) picked by index, repeats allowed: y[i] = x[indices[i]]; y has shape
/// (indices.size(), x's other extents).
/// dx = zeros with g's rows added at their indices (a repeated row gets the sum). Throws
/// ShapeError if x is 0-d and ValueError if an index is not below x's number of rows.
template <class T>
Tensor<T> index_select(const Tensor<T>& x, const std::vector<std::size_t>& indices);
/// The adjoint of index_select: zeros of shape (rows, x's other extents) with x's row i added
/// to row indices[i] (repeated indices sum).  dx = index_select(g, indices). Throws
/// ShapeError if x is 0-d or its number of rows differs from the number of indices, and
/// ValueError if an index is not below `rows`.
template <class T>
Tensor<T> index_add(const Tensor<T>& x, const std::vector<std::size_t>& indices, std::size_t rows);

/// @}

// ---- convolution and pooling (NCHW) ----

/// @addtogroup conv
/// @{

/// The sliding windows of x as columns (PyTorch's F.unfold, with the whole batch in one
/// matrix): x of shape (N, C, H, W) gives y of shape (C kh kw, N Ho Wo) with
///
///     y[(c, i, j), (n, p, q)] = x[n, c, p sh - ph + i dh, q sw - pw + j dw]
///
/// (rows ordered c, i, j and columns n, p, q, row-major), and `padding_value` where that
/// position lies in the padding. Ho = floor((H + 2 ph - dh (kh - 1) - 1) / sh) + 1 and Wo
/// likewise, as PyTorch. A convolution is then one GEMM, weight (O, C kh kw) x y.
/// dx = col2im(g): each column's gradient summed back to the positions it was read from
/// (the padding's share dropped, whatever its value). Throws ValueError if x is not 4-d, a
/// kernel size, stride or dilation is below 1 or a padding below 0, or the (dilated) kernel
/// is larger than the padded input.
template <class T>
Tensor<T> im2col(const Tensor<T>& x, Size2 kernel, const Conv2dOptions& options = Conv2dOptions(),
                 double padding_value = 0);
/// The adjoint of im2col (PyTorch's F.fold): columns of shape (C kh kw, N Ho Wo), laid out
/// as im2col makes them, summed into an array of `input_shape` (N, C, H, W); entries that
/// fall in the padding are dropped. sum(col2im(g) x) = sum(g im2col(x)) for padding value 0.
/// dx = im2col(g) (padding value 0). Throws ValueError as im2col does for `input_shape`,
/// and ShapeError if the columns' shape is not the one im2col gives for it.
template <class T>
Tensor<T> col2im(const Tensor<T>& columns, const Shape& input_shape, Size2 kernel,
                 const Conv2dOptions& options = Conv2dOptions());
/// 2-d convolution (cross-correlation, as PyTorch's F.conv2d): x of shape (N, C, H, W) or
/// unbatched (C, H, W), weight of shape (O, C, kh, kw), bias of shape (O,); y of shape
/// (N, O, Ho, Wo) (or (O, Ho, Wo)) with Ho, Wo as for im2col and
///
///     y[n, o, p, q] = b[o] + sum over c, i, j of w[o, c, i, j] x[n, c, p sh - ph + i dh, q sw - pw
///     + j dw]
///
/// (zero padding). Computed one image at a time: the image's im2col columns, in a scratch
/// buffer, times the weight read as (O, C kh kw), one GEMM written straight into y, the bias
/// added. dweight = sum over n of g[n] columns[n]^T (the op conv2d_weight_grad), dx =
/// col2im of weight^T g[n] for each n (the op conv_transpose2d), dbias = g summed over n, p,
/// q; each of the three ops' rules is made of the other two. No groups (every
/// output channel sees every input channel). Throws ShapeError if x is not 3-d or 4-d,
/// weight not 4-d, bias not (O,), or x's channels differ from weight's; ValueError as
/// im2col does for the geometry.
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                 const Conv2dOptions& options = Conv2dOptions());
/// conv2d without a bias.
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight,
                 const Conv2dOptions& options = Conv2dOptions());
/// 2-d transposed convolution (PyTorch's F.conv_transpose2d, groups 1): the adjoint of
/// conv2d with the same stride, padding and dilation, so that conv_transpose2d(g, w) is
/// conv2d's gradient with respect to its input. x of shape (N, C_in, H, W) or unbatched
/// (C_in, H, W), weight of shape (C_in, C_out, kh, kw) (PyTorch's layout: the input's
/// channels first), bias of shape (C_out,); y of shape (N, C_out, Ho, Wo) with
///
///     Ho = (H - 1) sh - 2 ph + dh (kh - 1) + oph + 1   (Wo likewise)
///
///     y[n, o, p sh - ph + i dh, q sw - pw + j dw] += x[n, c, p, q] w[c, o, i, j]   (+ b[o])
///
/// Each image is one GEMM, weight^T x[n], whose columns are summed into y (col2im), the op
/// conv_transpose2d; dx = conv2d(g, w) and dw = conv2d_weight_grad, the same op blocks as
/// conv2d's rules; the bias is added by broadcasting. Throws ShapeError if x is not 3-d or
/// 4-d, weight not 4-d, bias not (C_out,), or x's channels differ from weight's first
/// extent; ValueError for a kernel size, stride or dilation below 1, a padding or output
/// padding below 0, an output padding not below the stride (PyTorch also takes one below
/// the dilation; tapegrad does not), a spatial extent of x of 0 (as PyTorch), or an
/// output extent below 1.
template <class T>
Tensor<T> conv_transpose2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                           const ConvTranspose2dOptions& options = ConvTranspose2dOptions());
/// conv_transpose2d without a bias.
template <class T>
Tensor<T> conv_transpose2d(const Tensor<T>& x, const Tensor<T>& weight,
                           const ConvTranspose2dOptions& options = ConvTranspose2dOptions());
/// 2-d max pooling (PyTorch's F.max_pool2d with ceil_mode=False): x of shape (N, C, H, W)
/// or (C, H, W); y[n, c, p, q] the largest element of the window of (n, c) at (p, q), the
/// padding counting as -inf; sizes as for im2col. Each window is read where it lies (the op
/// max_pool2d_select); dx = g at the FIRST maximum of each window in row-major window order,
/// a NaN counting as the maximum, as PyTorch's CPU kernel (the op max_pool2d_scatter). Throws
/// ShapeError if x is not 3-d or 4-d; ValueError for a kernel size, stride or dilation below 1, a
/// padding below 0 or above half the kernel size, or a window larger than the padded input. No
/// ceil_mode and no returned indices.
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, const Pool2dOptions& options);
/// 2-d average pooling (PyTorch's F.avg_pool2d with its defaults count_include_pad=True,
/// ceil_mode=False): the mean of each window, the zero padding counted, so every window
/// divides by kh kw. Composed as im2col (zero padding) then mean along axis 0;
/// dx = col2im(g / (kh kw)). Throws as max_pool2d does, and ValueError for a dilation other
/// than 1 (PyTorch's avg_pool2d has none).
template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, const Pool2dOptions& options);
/// Adaptive average pooling to a 1x1 output (the global average pool before a classifier):
/// the mean over H and W with the axes kept, (N, C, H, W) -> (N, C, 1, 1) or (C, H, W) ->
/// (C, 1, 1).  dx = g / (H W) broadcast back. Throws ValueError for an output size other
/// than 1x1 (only that one is supported) or an empty H W; ShapeError if x is not 3-d or 4-d.
template <class T>
Tensor<T> adaptive_avg_pool2d(const Tensor<T>& x, Size2 output_size);
/// torch.flatten: the axes start_dim..end_dim (negative count from the end, both included)
/// merged into one, as a reshape; a 0-d x gives shape (1,).  dx = reshape(g, x's shape).
/// Throws ValueError if an axis is out of range or start_dim comes after end_dim.
template <class T>
Tensor<T> flatten(const Tensor<T>& x, std::ptrdiff_t start_dim = 1, std::ptrdiff_t end_dim = -1);

/// @}

// ---- operators; a scalar operand folds into affine(), so it makes no tensor ----

/// @addtogroup elementwise
/// @{

/// -x, the same as neg(x).
template <class T>
Tensor<T> operator-(const Tensor<T>& x) {
  return neg(x);
}

// a + b, a - b, a * b and a / b on two tensors are add, sub, mul and div. Mixing
// Tensor<float> and Tensor<double> in one of them is a compile error (the static_assert).
// (The Doxyfile defines this macro away, so these operators appear in the reference only
// through the functions' docs.)
/// @cond
#define TAPEGRAD_BINARY_OPERATOR(symbol, function)                                    \
  template <class T>                                                                  \
  Tensor<T> operator symbol(const Tensor<T>& a, const Tensor<T>& b) {                 \
    return function(a, b);                                                            \
  }                                                                                   \
  template <class A, class B, class = std::enable_if_t<!std::is_same_v<A, B>>>        \
  Tensor<A> operator symbol(const Tensor<A>&, const Tensor<B>&) {                     \
    static_assert(std::is_same_v<A, B>,                                               \
                  "tapegrad: cannot mix Tensor<float> and Tensor<double> in one op; " \
                  "build both operands in one element type");                         \
    return {};                                                                        \
  }

TAPEGRAD_BINARY_OPERATOR(+, add)
TAPEGRAD_BINARY_OPERATOR(-, sub)
TAPEGRAD_BINARY_OPERATOR(*, mul)
TAPEGRAD_BINARY_OPERATOR(/, div)
/// @endcond

/// Enables an overload only for an arithmetic type S (the scalar operators below).
template <class S>
using EnableIfScalar = std::enable_if_t<std::is_arithmetic_v<S>>;

// Scalars fold into affine(x, scale, shift): each of these has x's shape and throws nothing.
/// x + s: adds the number s to every element, as affine(x, 1, s).  dx = g.
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator+(const Tensor<T>& x, S s) {
  return affine(x, 1.0, static_cast<double>(s));
}
/// s + x: adds the number s to every element, as affine(x, 1, s).  dx = g.
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator+(S s, const Tensor<T>& x) {
  return affine(x, 1.0, static_cast<double>(s));
}
/// x - s: subtracts the number s from every element, as affine(x, 1, -s).  dx = g.
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator-(const Tensor<T>& x, S s) {
  return affine(x, 1.0, -static_cast<double>(s));
}
/// s - x: the number s minus every element, as affine(x, -1, s).  dx = -g.
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator-(S s, const Tensor<T>& x) {
  return affine(x, -1.0, static_cast<double>(s));
}
/// x * s: scales every element by the number s, as affine(x, s).  dx = s g.
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator*(const Tensor<T>& x, S s) {
  return affine(x, static_cast<double>(s));
}
/// s * x: scales every element by the number s, as affine(x, s).  dx = s g.
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator*(S s, const Tensor<T>& x) {
  return affine(x, static_cast<double>(s));
}
/// x / s: divides every element by the number s, as div(x, s).  dx = g / s.
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator/(const Tensor<T>& x, S s) {
  return div(x, static_cast<double>(s));
}
/// s / x: the number s divided by every element, as div(s, x).  dx = -s g / x^2.
template <class T, class S, class = EnableIfScalar<S>>
Tensor<T> operator/(S s, const Tensor<T>& x) {
  return div(static_cast<double>(s), x);
}

/// @}

#undef TAPEGRAD_BINARY_OPERATOR

}  // namespace tapegrad
