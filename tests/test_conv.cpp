// Convolution and pooling (ops.hpp's "Convolution and pooling", nn/conv.hpp): values and
// gradients against PyTorch (tests/fixtures/conv_pool.npz, made by
// tests/fixtures/make_conv_pool.py), gradcheck, the im2col / col2im adjointness, float32
// against float64, errors, zero extents and the modules.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xmath.hpp>

#include "fixture.hpp"
#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

namespace {

const test::NpzFixture& fixture() {
  static const test::NpzFixture file("conv_pool.npz");
  return file;
}

const Array& get(const std::string& name) { return fixture().get(name); }

bool has(const std::string& name) { return fixture().has(name); }

// The case names of one op in the fixture ("conv2d.basic", ...).
std::vector<std::string> cases_of(const std::string& op) {
  std::vector<std::string> names;
  for (const auto& entry : fixture()) {
    const std::string& key = entry.first;
    const std::string suffix = ".geometry";
    if (key.rfind(op + ".", 0) == 0 && key.size() > suffix.size() &&
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0) {
      names.push_back(key.substr(0, key.size() - suffix.size()));
    }
  }
  return names;
}

double max_difference(const Array& a, const Array& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]));
  return worst;
}

// The geometry of a case: kh, kw, sh, sw, ph, pw, dh, dw.
struct Geometry {
  Size2 kernel{1}, stride{1}, padding{0}, dilation{1};
};
Geometry geometry(const std::string& c) {
  const Array& g = get(c + ".geometry");
  const auto v = [&](std::size_t i) { return static_cast<int>(g(i)); };
  return {Size2(v(0), v(1)), Size2(v(2), v(3)), Size2(v(4), v(5)), Size2(v(6), v(7))};
}
Conv2dOptions conv_options(const Geometry& g) {
  return Conv2dOptions().stride(g.stride).padding(g.padding).dilation(g.dilation);
}
Pool2dOptions pool_options(const Geometry& g) {
  return Pool2dOptions(g.kernel).stride(g.stride).padding(g.padding).dilation(g.dilation);
}

double worst_seen = 0;  // the largest difference to PyTorch over all cases, for the report

void check_close(const std::string& what, const Array& ours, const Array& torch) {
  const double d = max_difference(ours, torch);
  worst_seen = std::max(worst_seen, d);
  INFO(what, ": max |tapegrad - torch| = ", d);
  CHECK(d <= 1e-10);
}

Tensor<double> leaf(const Array& a) { return Tensor<double>(a, requires_grad); }

}  // namespace

TEST_CASE("conv2d matches PyTorch: values and gradients of x, weight and bias") {
  const auto names = cases_of("conv2d");
  REQUIRE(names.size() == 10);
  for (const auto& c : names) {
    INFO(c);
    auto x = leaf(get(c + ".x")), w = leaf(get(c + ".w"));
    if (c == names.front()) worst_seen = 0;
    const bool with_bias = has(c + ".b");
    Tensor<double> b = with_bias ? leaf(get(c + ".b")) : Tensor<double>();
    Tape tape;
    const auto options = conv_options(geometry(c));
    const auto y = with_bias ? conv2d(x, w, b, options) : conv2d(x, w, options);
    check_close(c + ".y", y.value(), get(c + ".y"));
    y.backward(Tensor<double>(get(c + ".g")));
    check_close(c + ".dx", x.grad(), get(c + ".dx"));
    check_close(c + ".dw", w.grad(), get(c + ".dw"));
    if (with_bias) check_close(c + ".db", b.grad(), get(c + ".db"));
  }
  MESSAGE("conv2d: largest difference to PyTorch ", worst_seen);
}

TEST_CASE(
    "max_pool2d and avg_pool2d match PyTorch, ties included (the first maximum gets the "
    "gradient)") {
  std::size_t count = 0;
  for (const std::string op : {"max_pool2d", "avg_pool2d"}) {
    worst_seen = 0;
    for (const auto& c : cases_of(op)) {
      INFO(c);
      ++count;
      auto x = leaf(get(c + ".x"));
      Tape tape;
      const auto options = pool_options(geometry(c));
      const auto y = op == "max_pool2d" ? max_pool2d(x, options) : avg_pool2d(x, options);
      check_close(c + ".y", y.value(), get(c + ".y"));
      y.backward(Tensor<double>(get(c + ".g")));
      check_close(c + ".dx", x.grad(), get(c + ".dx"));
    }
    MESSAGE(op, ": largest difference to PyTorch ", worst_seen);
  }
  CHECK(count == 10);
  // The tie cases have ties indeed: some window holds its maximum twice.
  const Array& tied = get("max_pool2d.ties.x");
  std::size_t repeated = 0;
  for (std::size_t i = 0; i + 1 < tied.size(); i += 2)
    repeated += tied.data()[i] == tied.data()[i + 1];
  CHECK(repeated > 0);
}

TEST_CASE(
    "conv2d passes a float64 gradcheck: stride, padding, dilation, odd sizes, batch 1, no bias") {
  using Xs = std::vector<Tensor<double>>;
  const auto rnd = [](const Shape& s, std::uint64_t seed) { return test::random_array(s, seed); };
  // 5x7 input, 3x2 kernel, stride (2, 1), padding (1, 2), dilation (1, 2).
  test::require_gradcheck<double>(
      [](const Xs& x) {
        return conv2d(x[0], x[1], x[2],
                      Conv2dOptions().stride({2, 1}).padding({1, 2}).dilation({1, 2}));
      },
      {rnd({2, 2, 5, 7}, 1), rnd({3, 2, 3, 2}, 2), rnd({3}, 3)});
  // Batch 1, no bias, stride 2, dilation 2, padding 1.
  test::require_gradcheck<double>(
      [](const Xs& x) {
        return conv2d(x[0], x[1], Conv2dOptions().stride(2).padding(1).dilation(2));
      },
      {rnd({1, 2, 6, 5}, 4), rnd({2, 2, 2, 3}, 5)});
  // Unbatched (C, H, W), stride 3.
  test::require_gradcheck<double>(
      [](const Xs& x) { return conv2d(x[0], x[1], x[2], Conv2dOptions().stride(3)); },
      {rnd({2, 7, 7}, 6), rnd({2, 2, 3, 3}, 7), rnd({2}, 8)});
}

TEST_CASE("the pools pass a float64 gradcheck") {
  using Xs = std::vector<Tensor<double>>;
  const auto rnd = [](const Shape& s, std::uint64_t seed) { return test::random_array(s, seed); };
  test::require_gradcheck<double>([](const Xs& x) { return max_pool2d(x[0], Pool2dOptions(2)); },
                                  {rnd({2, 2, 4, 6}, 11)});
  test::require_gradcheck<double>(
      [](const Xs& x) {
        return max_pool2d(x[0], Pool2dOptions({3, 2}).stride({2, 1}).padding(1).dilation({1, 2}));
      },
      {rnd({1, 2, 5, 7}, 12)});
  test::require_gradcheck<double>(
      [](const Xs& x) { return avg_pool2d(x[0], Pool2dOptions(3).stride(2).padding(1)); },
      {rnd({2, 2, 5, 6}, 13)});
  test::require_gradcheck<double>(
      [](const Xs& x) {
        return avg_pool2d(x[0], Pool2dOptions({2, 3}));
      },
      {rnd({3, 4, 7}, 14)});
  test::require_gradcheck<double>(
      [](const Xs& x) {
        return adaptive_avg_pool2d(x[0], {1, 1});
      },
      {rnd({2, 3, 3, 4}, 15)});
  test::require_gradcheck<double>([](const Xs& x) { return flatten(x[0]); },
                                  {rnd({2, 3, 2, 2}, 16)});
}

// PyTorch's CPU rule for one max-pooling window, written out: the taps in row-major order,
// the first to exceed all before it wins, and a NaN always wins (so the last NaN).
struct WindowMax {
  double value;
  std::size_t at;  // offset in x
};
WindowMax window_max(const Array& x, std::size_t plane, std::size_t p, std::size_t q) {
  const std::size_t w = x.shape()[3], h = x.shape()[2];
  WindowMax best{-INFINITY, plane * h * w + 2 * p * w + 2 * q};
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t j = 0; j < 2; ++j) {
      const std::size_t at = plane * h * w + (2 * p + i) * w + 2 * q + j;
      const double v = x.data()[at];
      if (v > best.value || std::isnan(v)) best = {v, at};
    }
  }
  return best;
}

TEST_CASE(
    "max_pool2d's 2x2, stride 2 path (vectorised) keeps the rule: NaN, -inf, ties, odd sizes, "
    "float and double") {
  // 2 x 3 planes of 5 x 7: the last row and column are in no window. NaN, -inf and ties are
  // put at chosen places; the rest is random.
  Array x = test::random_array({2, 3, 5, 7}, 21);
  const double nan = NAN, inf = INFINITY;
  x(0, 0, 0, 0) = nan;                       // a NaN first in its window
  x(0, 0, 1, 3) = nan;                       // a NaN last, the others finite
  x(0, 1, 0, 0) = nan, x(0, 1, 1, 1) = nan;  // two NaNs: the last wins
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t j = 2; j < 4; ++j) x(0, 2, i, j) = -inf;  // all -inf: the first tap
  }
  x(1, 0, 2, 4) = 3.0, x(1, 0, 3, 5) = 3.0;  // a tie: the first wins
  x(1, 1, 3, 6) = 100.0;                     // the largest value, in no window
  x(1, 2, 0, 1) = inf;                       // +inf in the second tap
  const Array g = test::random_array({2, 3, 2, 3}, 22);

  Array expected_y = xt::zeros<double>({2, 3, 2, 3}), expected_dx = xt::zeros<double>({2, 3, 5, 7});
  for (std::size_t plane = 0; plane < 6; ++plane) {
    for (std::size_t p = 0; p < 2; ++p) {
      for (std::size_t q = 0; q < 3; ++q) {
        const WindowMax m = window_max(x, plane, p, q);
        expected_y.data()[(plane * 2 + p) * 3 + q] = m.value;
        expected_dx.data()[m.at] += g.data()[(plane * 2 + p) * 3 + q];
      }
    }
  }
  const auto same = [](const auto& found, const Array& expected) {
    REQUIRE(found.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const double f = static_cast<double>(found.data()[i]), e = expected.data()[i];
      INFO("element ", i, ": ", f, " expected ", e);
      CHECK(((std::isnan(e) && std::isnan(f)) || f == e));
    }
  };
  {
    Tape tape;
    auto xd = leaf(x);
    const auto y = max_pool2d(xd, Pool2dOptions(2));
    same(y.value(), expected_y);
    y.backward(Tensor<double>(g));
    same(xd.grad(), expected_dx);
  }
  {
    Tape tape;
    Tensor<float> xf(xt::xarray<float>(xt::cast<float>(x)), requires_grad);
    const auto y = max_pool2d(xf, Pool2dOptions(2));
    // In float, random doubles round, but the winners' places do not change (no near ties).
    same(y.value(), Array(xt::cast<double>(xt::cast<float>(expected_y))));
    y.backward(Tensor<float>(xt::xarray<float>(xt::cast<float>(g))));
    same(xf.grad(), Array(xt::cast<double>(xt::cast<float>(expected_dx))));
  }
}

TEST_CASE("im2col and col2im are each other's adjoint: <col2im(g), x> = <g, im2col(x)>") {
  struct Case {
    Shape x;
    Size2 kernel;
    Conv2dOptions options;
  };
  const std::vector<Case> cases = {
      {{2, 3, 5, 7}, Size2(3, 2), Conv2dOptions()},
      {{1, 2, 6, 5}, Size2(3, 3), Conv2dOptions().stride(2).padding(1)},
      {{2, 1, 7, 8}, Size2(2, 3), Conv2dOptions().stride({3, 2}).padding({2, 1}).dilation({2, 3})},
  };
  std::uint64_t seed = 30;
  for (const auto& c : cases) {
    const Tensor<double> x(test::random_array(c.x, ++seed));
    const auto columns = im2col(x, c.kernel, c.options);
    const Tensor<double> g(test::random_array(columns.shape(), ++seed));
    const auto folded = col2im(g, c.x, c.kernel, c.options);
    REQUIRE(folded.shape() == c.x);
    const double left = sum(folded * x).item(), right = sum(g * columns).item();
    INFO("x ", shape_to_string(c.x), ": ", left, " vs ", right);
    CHECK(left == doctest::Approx(right).epsilon(1e-12));
    CHECK(std::abs(left) > 1e-3);
  }
  // A value by hand: a 1x1x3x3 image, 2x2 kernel, padding 1 with value -1.
  const Tensor<double> x(Array{{{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}}});
  const auto columns = im2col(x, 2, Conv2dOptions().stride(2).padding(1), -1.0);
  // Windows at (-1, -1), (-1, 1), (1, -1), (1, 1); rows are the taps (0, 0), (0, 1), (1, 0), (1,
  // 1).
  const Array expected{{-1, -1, -1, 5}, {-1, -1, 4, 6}, {-1, 2, -1, 8}, {1, 3, 7, 9}};
  CHECK(columns.value() == expected);
}

TEST_CASE(
    "im2col equals its definition, written out, with a padding value: the shifted-plane path "
    "(stride 1, Wo = W) and the general one") {
  struct Case {
    Shape x;
    Size2 kernel;
    Conv2dOptions options;
  };
  const std::vector<Case> cases = {
      {{2, 2, 4, 5}, Size2(3, 3), Conv2dOptions().padding(1)},              // shifted planes
      {{1, 2, 5, 6}, Size2(3, 5), Conv2dOptions().padding({1, 2})},         // shifted planes
      {{2, 1, 6, 6}, Size2(3, 3), Conv2dOptions().padding(2).dilation(2)},  // shifted planes
      {{1, 1, 1, 3}, Size2(3, 3), Conv2dOptions().padding(1)},            // one row: mostly padding
      {{1, 2, 5, 7}, Size2(2, 2), Conv2dOptions()},                       // Wo < W: general
      {{2, 1, 5, 5}, Size2(3, 3), Conv2dOptions().stride(2).padding(1)},  // stride 2: general
  };
  const double pad = -1.5;
  std::uint64_t seed = 50;
  for (const auto& c : cases) {
    const Array x = test::random_array(c.x, ++seed);
    const auto found = im2col(Tensor<double>(x), c.kernel, c.options, pad).value();
    const auto kh = static_cast<std::ptrdiff_t>(c.kernel.h()),
               kw = static_cast<std::ptrdiff_t>(c.kernel.w());
    const auto sh = c.options.stride().h(), sw = c.options.stride().w(),
               ph = c.options.padding().h(), pw = c.options.padding().w(),
               dh = c.options.dilation().h(), dw = c.options.dilation().w();
    const auto n = static_cast<std::ptrdiff_t>(c.x[0]), ch = static_cast<std::ptrdiff_t>(c.x[1]),
               h = static_cast<std::ptrdiff_t>(c.x[2]), w = static_cast<std::ptrdiff_t>(c.x[3]);
    const std::ptrdiff_t ho = (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1,
                         wo = (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
    Array expected = xt::zeros<double>(
        {static_cast<std::size_t>(ch * kh * kw), static_cast<std::size_t>(n * ho * wo)});
    for (std::ptrdiff_t cc = 0; cc < ch; ++cc)
      for (std::ptrdiff_t i = 0; i < kh; ++i)
        for (std::ptrdiff_t j = 0; j < kw; ++j)
          for (std::ptrdiff_t b = 0; b < n; ++b)
            for (std::ptrdiff_t p = 0; p < ho; ++p)
              for (std::ptrdiff_t q = 0; q < wo; ++q) {
                const std::ptrdiff_t r = p * sh - ph + i * dh, col = q * sw - pw + j * dw;
                const bool inside = r >= 0 && r < h && col >= 0 && col < w;
                expected((cc * kh + i) * kw + j, (b * ho + p) * wo + q) =
                    inside ? x(b, cc, r, col) : pad;
              }
    INFO("x ", shape_to_string(c.x), ", kernel ", c.kernel.to_pair_string());
    CHECK(found == expected);
  }
}

TEST_CASE(
    "conv2d of an image whose columns outgrow the kept scratch buffer (42 MB) equals im2col, "
    "matmul and col2im") {
  // 64 channels, 3x3, 96 x 96 "same": one image's columns are 576 x 9216 doubles, beyond the
  // 16 MiB a thread keeps, so the ops use a buffer of the call's own.
  const Array x = test::random_array({1, 64, 96, 96}, 60),
              w = test::random_array({2, 64, 3, 3}, 61);
  const Array g = test::random_array({1, 2, 96, 96}, 62);
  const auto options = Conv2dOptions().padding(1);
  Tensor<double> xd(x, requires_grad), wd(w, requires_grad);
  Tape tape;
  const auto y = conv2d(xd, wd, options);
  y.backward(Tensor<double>(g));
  // The same through the public im2col, matmul and col2im, the whole batch at once.
  const auto columns = im2col(Tensor<double>(x), 3, options);
  const Tensor<double> w2(Array(xt::reshape_view(w, {2, 576})));
  const auto expected_y = matmul(w2, columns);
  const auto g2 = Tensor<double>(Array(xt::reshape_view(g, {2, 9216})));
  const auto expected_dx =
      col2im(matmul(transpose(w2, {1, 0}), g2), Shape{1, 64, 96, 96}, 3, options);
  const auto expected_dw = matmul(g2, transpose(columns, {1, 0}));
  CHECK(xt::allclose(Array(xt::reshape_view(y.value(), {2, 9216})), expected_y.value(), 1e-12,
                     1e-12));
  CHECK(xt::allclose(xd.grad(), expected_dx.value(), 1e-12, 1e-12));
  CHECK(xt::allclose(Array(xt::reshape_view(wd.grad(), {2, 576})), expected_dw.value(), 1e-12,
                     1e-12));
}

TEST_CASE("conv2d and the pools agree in float32 and float64") {
  const Array x = test::random_array({2, 3, 9, 8}, 40), w = test::random_array({4, 3, 3, 3}, 41),
              b = test::random_array({4}, 42);
  const auto run = [&](auto zero) {
    using T = decltype(zero);
    Tensor<T> xt_(xt::xarray<T>(xt::cast<T>(x)), requires_grad),
        wt(xt::xarray<T>(xt::cast<T>(w)), requires_grad),
        bt(xt::xarray<T>(xt::cast<T>(b)), requires_grad);
    Tape tape;
    const auto h = relu(conv2d(xt_, wt, bt, Conv2dOptions().padding(1).stride({1, 2})));
    const auto y = avg_pool2d(max_pool2d(h, Pool2dOptions(2).padding(1)), Pool2dOptions(2));
    const Tensor<T> weights(
        xt::xarray<T>(xt::cast<T>(test::random_array(y.shape(), 43, 0.5, 1.5))));
    sum(y * weights).backward();
    return std::vector<Array>{
        Array(xt::cast<double>(y.value())), Array(xt::cast<double>(xt_.grad())),
        Array(xt::cast<double>(wt.grad())), Array(xt::cast<double>(bt.grad()))};
  };
  const auto f64 = run(0.0);
  const auto f32 = run(0.0f);
  for (std::size_t i = 0; i < f64.size(); ++i) {
    INFO("result ", i);
    CHECK(test::all_close(f32[i], f64[i], 1e-4, 1e-4));
  }
}

TEST_CASE("conv2d and the pools: errors name the op and the values") {
  const Tensor<double> x(xt::zeros<double>({2, 3, 5, 5})), w(xt::zeros<double>({4, 3, 3, 3}));
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor<double>(xt::zeros<double>({4, 2, 3, 3}))),
                       "conv2d: input (2, 3, 5, 5) has 3 channels, weight (4, 2, 3, 3) expects 2",
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv2d(Tensor<double>(xt::zeros<double>({3, 5})), w),
                       "conv2d: the input must be 3-d (C, H, W) or 4-d (N, C, H, W), got (3, 5)",
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor<double>(xt::zeros<double>({4, 3, 3}))),
                       "conv2d: the weight must be 4-d (O, C, kh, kw), got (4, 3, 3)", ShapeError);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor<double>(xt::zeros<double>({3}))),
                       "conv2d: the bias must have shape (4,) for weight (4, 3, 3, 3), got (3,)",
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Conv2dOptions().stride({1, 0})),
                       "conv2d: the stride must be at least 1, got (1, 0)", ValueError);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Conv2dOptions().padding(-1)),
                       "conv2d: the padding must be at least 0, got (-1, -1)", ValueError);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Conv2dOptions().dilation(0)),
                       "conv2d: the dilation must be at least 1, got (0, 0)", ValueError);
  CHECK_THROWS_WITH_AS(
      conv2d(x, w, Conv2dOptions().dilation(3)),
      "conv2d: the kernel (3, 3) with dilation (3, 3) spans (7, 7), larger than the padded input "
      "(5, 5) of (2, 3, 5, 5) with padding (0, 0)",
      ValueError);
  CHECK_THROWS_WITH_AS(
      max_pool2d(x, Pool2dOptions(3).padding(2)),
      "max_pool2d: the padding (2, 2) must be at most half the kernel size (3, 3) (as PyTorch)",
      ValueError);
  CHECK_THROWS_WITH_AS(max_pool2d(x, Pool2dOptions(0)),
                       "max_pool2d: the kernel size must be at least 1, got (0, 0)", ValueError);
  CHECK_THROWS_WITH_AS(max_pool2d(x, Pool2dOptions(6)),
                       "max_pool2d: the kernel (6, 6) with dilation (1, 1) spans (6, 6), larger "
                       "than the padded input "
                       "(5, 5) of (2, 3, 5, 5) with padding (0, 0)",
                       ValueError);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, Pool2dOptions(2).dilation(2)),
                       "avg_pool2d: no dilation (PyTorch's avg_pool2d has none), got (2, 2)",
                       ValueError);
  CHECK_THROWS_WITH_AS(
      avg_pool2d(Tensor<double>(xt::zeros<double>({5, 5})), Pool2dOptions(2)),
      "avg_pool2d: the input must be 3-d (C, H, W) or 4-d (N, C, H, W), got (5, 5)", ShapeError);
  CHECK_THROWS_WITH_AS(adaptive_avg_pool2d(x, {2, 2}),
                       "adaptive_avg_pool2d: only the output size 1x1 is supported, got (2, 2)",
                       ValueError);
  CHECK_THROWS_WITH_AS(flatten(x, 2, 1),
                       "flatten: start_dim 2 comes after end_dim 1 for shape (2, 3, 5, 5)",
                       ValueError);
  CHECK_THROWS_AS(flatten(x, 4), ValueError);
  CHECK_THROWS_WITH_AS(im2col(Tensor<double>(xt::zeros<double>({3, 5, 5})), 2),
                       "im2col: the input must be 4-d (N, C, H, W), got (3, 5, 5)", ValueError);
  CHECK_THROWS_WITH_AS(
      col2im(Tensor<double>(xt::zeros<double>({12, 30})), Shape{2, 3, 5, 5}, 2),
      "col2im: columns (12, 30) for input shape (2, 3, 5, 5) and kernel (2, 2); expected (12, 32)",
      ShapeError);
}

TEST_CASE(
    "conv2d, im2col, col2im, the pools and flatten at extreme sizes: a ShapeError with the true "
    "extents, or the right values") {
  const std::int64_t two_31 = std::int64_t{1} << 31;
  const std::size_t two_32 = std::size_t{1} << 32;
  // One image of one channel, (1, 1, h, w), its rows in order.
  const auto image = [](std::vector<double> values, std::size_t h, std::size_t w) {
    return Array(Tensor<double>::from(values, {1, 1, h, w}).value());
  };
  const Tensor<double> one(image({3}, 1, 1));
  const Tensor<double> two(image({2}, 1, 1));
  const std::string too_many = "more than fit in memory (over 1152921504606846975)";
  // Extents whose product wraps around 2^64: 4294967297^2 = 2^64 + 2^33 + 1.
  const std::string columns =
      " the columns (C kh kw, N Ho Wo) = (1 * 1 * 1, 1 * 4294967297 * "
      "4294967297) for the input (1, 1, 1, 1) have more elements than fit in memory (over "
      "1152921504606846975)";
  // (2^32, 2^32, 3, 0) is empty, but its N C planes number 2^64.
  const Tensor<double> planes(Array::from_shape({two_32, two_32, 3, 0}));
  struct Case {
    const char* what;
    std::function<Tensor<double>()> run;
    std::string message;
  };
  const std::vector<Case> refused{
      {"conv2d with a padding of 2^31",
       [&] { return conv2d(one, two, Conv2dOptions().padding(two_31)); },
       "conv2d: the shape (1, 1, 4294967297, 4294967297) has more elements than fit in memory "
       "(over 1152921504606846975)"},
      {"conv2d of no image with a padding of 2^31",
       [&] {
         return conv2d(Tensor<double>(Array::from_shape({0, 1, 1, 1})), two,
                       Conv2dOptions().padding(two_31));
       },
       "conv2d: the shape (0, 1, 4294967297, 4294967297) has no elements, but the extents after "
       "its last 0 multiply to more than 9223372036854775807, the largest stride"},
      {"im2col with a padding of 2^31",
       [&] { return im2col(one, 1, Conv2dOptions().padding(two_31)); }, "im2col:" + columns},
      {"col2im with a padding of 2^31",
       [&] {
         return col2im(Tensor<double>(Array::from_shape({1, 0})), Shape{1, 1, 1, 1}, 1,
                       Conv2dOptions().padding(two_31));
       },
       "col2im:" + columns},
      {"max_pool2d of 2^64 empty planes",
       [&] { return max_pool2d(planes, Pool2dOptions(2).padding(1)); },
       "max_pool2d: the extents of axes 0 to 1 of the shape (4294967296, 4294967296, 3, 0) "
       "multiply to " +
           too_many},
      {"avg_pool2d of 2^64 empty planes",
       [&] { return avg_pool2d(planes, Pool2dOptions(2).padding(1)); },
       "avg_pool2d: the extents of axes 0 to 1 of the shape (4294967296, 4294967296, 3, 0) "
       "multiply to " +
           too_many},
  };
  for (const auto& c : refused) {
    INFO(c.what);
    CHECK_THROWS_WITH_AS(c.run(), c.message.c_str(), ShapeError);
  }

  // Strides, paddings, dilations and kernels of 2^31 where the result is small: its values.
  Tensor<double> x(image({1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3), requires_grad);
  Tensor<double> w(image({1, 2, 3, 4}, 2, 2), requires_grad);
  {
    Tape tape;
    const auto y = conv2d(x, w, Conv2dOptions().stride(two_31));  // one window, at (0, 0)
    CHECK(y.value() == image({37}, 1, 1));
    y.backward(Tensor<double>(image({1}, 1, 1)));
    CHECK(x.grad() == image({1, 2, 0, 3, 4, 0, 0, 0, 0}, 3, 3));
    CHECK(w.grad() == image({1, 2, 4, 5}, 2, 2));
  }
  // Padding 2^31 and stride 2^31 on one pixel: three windows per axis, the middle one on it.
  CHECK(conv2d(one, two, Conv2dOptions().padding(two_31).stride(two_31)).value() ==
        image({0, 0, 0, 0, 6, 0, 0, 0, 0}, 3, 3));
  CHECK(conv2d(one, two, Conv2dOptions().dilation(two_31)).value() == image({6}, 1, 1));
  Tensor<double> pixel(image({3}, 1, 1), requires_grad);
  {
    Tape tape;
    const auto y = max_pool2d(pixel, Pool2dOptions(two_31).padding(two_31 / 2));
    CHECK(y.value() == image({3}, 1, 1));
    y.backward(Tensor<double>(image({5}, 1, 1)));
    CHECK(pixel.grad() == image({5}, 1, 1));
  }
  // An empty input: the empty result, with the extents PyTorch gives.
  CHECK(conv2d(Tensor<double>(Array::from_shape({0, 1, 3, 3})), w,
               Conv2dOptions().stride(two_31).padding(two_31))
            .shape() == Shape{0, 1, 3, 3});
}

TEST_CASE(
    "conv2d and the pools on zero extents: a result with the zero extent, gradients of the right "
    "shape") {
  struct Case {
    std::string name;
    std::function<Tensor<double>(const std::vector<Tensor<double>>&)> f;
    std::vector<Shape> inputs;
    Shape expected;
  };
  const std::vector<Case> cases = {
      {"conv2d, N = 0",
       [](const auto& x) { return conv2d(x[0], x[1], x[2], Conv2dOptions().padding(1)); },
       {{0, 3, 5, 5}, {4, 3, 3, 3}, {4}},
       {0, 4, 5, 5}},
      {"conv2d, C = 0",
       [](const auto& x) { return conv2d(x[0], x[1], x[2]); },
       {{2, 0, 5, 5}, {4, 0, 3, 3}, {4}},
       {2, 4, 3, 3}},
      {"conv2d, O = 0",
       [](const auto& x) { return conv2d(x[0], x[1]); },
       {{2, 3, 5, 5}, {0, 3, 3, 3}},
       {2, 0, 3, 3}},
      {"max_pool2d, N = 0",
       [](const auto& x) { return max_pool2d(x[0], Pool2dOptions(2)); },
       {{0, 3, 4, 4}},
       {0, 3, 2, 2}},
      {"max_pool2d, C = 0",
       [](const auto& x) { return max_pool2d(x[0], Pool2dOptions(2)); },
       {{2, 0, 4, 4}},
       {2, 0, 2, 2}},
      {"avg_pool2d, C = 0",
       [](const auto& x) { return avg_pool2d(x[0], Pool2dOptions(2).padding(1)); },
       {{2, 0, 4, 4}},
       {2, 0, 3, 3}},
      {"adaptive_avg_pool2d, N = 0",
       [](const auto& x) { return adaptive_avg_pool2d(x[0], 1); },
       {{0, 3, 4, 4}},
       {0, 3, 1, 1}},
      {"flatten, N = 0", [](const auto& x) { return flatten(x[0]); }, {{0, 3, 4, 4}}, {0, 48}},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    std::vector<Tensor<double>> xs;
    for (const auto& s : c.inputs) xs.emplace_back(Array(xt::ones<double>(s)), requires_grad);
    Tape tape;
    const auto y = c.f(xs);
    REQUIRE(y.shape() == c.expected);
    for (std::size_t k = 0; k < y.size(); ++k)
      CHECK(y.value().data()[k] == (c.name == "conv2d, C = 0" ? 1.0 : 0.0));
    y.backward(Tensor<double>(Array(xt::ones<double>(y.shape()))));
    for (const auto& x : xs) {
      if (!x.has_grad()) continue;
      CHECK(x.grad().shape() == x.shape());
    }
  }
}

TEST_CASE("flatten merges axes as torch.flatten") {
  const Tensor<double> x(test::random_array({2, 3, 4, 5}, 50));
  CHECK(flatten(x).shape() == Shape{2, 60});
  CHECK(flatten(x, 0).shape() == Shape{120});
  CHECK(flatten(x, 1, 2).shape() == Shape{2, 12, 5});
  CHECK(flatten(x, -2, -1).shape() == Shape{2, 3, 20});
  CHECK(flatten(x, 2, 2).shape() == Shape{2, 3, 4, 5});
  CHECK(flatten(Tensor<double>(3.0), 0).shape() == Shape{1});
}

TEST_CASE(
    "nn::Conv2d: parameters, PyTorch's initialisation bounds, printing, and a CNN in Sequential") {
  Generator random(7);
  nn::Conv2d<double> conv(3, 8, 3, Conv2dOptions().padding(1),
                          nn::Conv2dLayerOptions().generator(random));
  CHECK(conv.weight().shape() == Shape{8, 3, 3, 3});
  CHECK(conv.bias().shape() == Shape{8});
  const auto params = conv.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[1].first == "bias");
  const double bound = 1 / std::sqrt(27.0);
  double largest = 0;
  for (const double v : conv.weight().value()) largest = std::max(largest, std::abs(v));
  CHECK(largest <= bound);
  CHECK(largest > 0.8 * bound);  // 216 draws fill the range
  for (const double v : conv.bias().value()) CHECK(std::abs(v) <= bound);
  // The same generator state gives the same parameters.
  Generator again(7);
  nn::Conv2d<double> twin(3, 8, 3, Conv2dOptions().padding(1),
                          nn::Conv2dLayerOptions().generator(again));
  CHECK(twin.weight().value() == conv.weight().value());

  CHECK(nn::to_string(nn::Conv2d<float>(1, 32, 3, Conv2dOptions().padding(1))) ==
        "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))");
  CHECK(nn::to_string(nn::Conv2d<float>(2, 4, {3, 2}, Conv2dOptions().stride(2).dilation({1, 2}),
                                        nn::Conv2dLayerOptions().bias(false))) ==
        "Conv2d(2, 4, kernel_size=(3, 2), stride=(2, 2), dilation=(1, 2), bias=False)");
  CHECK(nn::to_string(nn::MaxPool2d<float>(Pool2dOptions(2))) ==
        "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)");
  CHECK(nn::to_string(nn::MaxPool2d<float>(Pool2dOptions({3, 2}).stride(1).padding({1, 0}))) ==
        "MaxPool2d(kernel_size=(3, 2), stride=1, padding=(1, 0), dilation=1, ceil_mode=False)");
  CHECK(nn::to_string(nn::AvgPool2d<float>(Pool2dOptions(3).stride(2).padding(1))) ==
        "AvgPool2d(kernel_size=3, stride=2, padding=1)");
  CHECK(nn::to_string(nn::AdaptiveAvgPool2d<float>({1, 1})) ==
        "AdaptiveAvgPool2d(output_size=(1, 1))");
  CHECK(nn::to_string(nn::Flatten<float>()) == "Flatten(start_dim=1, end_dim=-1)");

  CHECK_THROWS_WITH_AS(nn::Conv2d<double>(0, 4, 3),
                       "Conv2d: channel counts must be positive, got 0 -> 4", ValueError);
  CHECK_THROWS_WITH_AS(
      nn::MaxPool2d<double>(Pool2dOptions(2).padding(2)),
      "MaxPool2d: the padding (2, 2) must be at most half the kernel size (2, 2) (as PyTorch)",
      ValueError);
  CHECK_THROWS_WITH_AS(nn::AdaptiveAvgPool2d<double>(2),
                       "AdaptiveAvgPool2d: only the output size 1x1 is supported, got (2, 2)",
                       ValueError);
  CHECK_THROWS_WITH_AS(
      conv(Tensor<double>(xt::zeros<double>({2, 4, 5, 5}))),
      "Conv2d(3, 8): the input has shape (2, 4, 5, 5); expected (N, 3, H, W) or (3, H, W)",
      ShapeError);

  // The CNN, small: conv -> ReLU -> pool -> conv -> ReLU -> pool -> flatten -> linear.
  Generator net_random(8);
  nn::Sequential<double> net(
      {std::make_shared<nn::Conv2d<double>>(1, 2, 3, Conv2dOptions().padding(1),
                                            nn::Conv2dLayerOptions().generator(net_random)),
       std::make_shared<nn::ReLU<double>>(),
       std::make_shared<nn::MaxPool2d<double>>(Pool2dOptions(2)),
       std::make_shared<nn::Conv2d<double>>(2, 3, 3, Conv2dOptions().padding(1),
                                            nn::Conv2dLayerOptions().generator(net_random)),
       std::make_shared<nn::ReLU<double>>(),
       std::make_shared<nn::MaxPool2d<double>>(Pool2dOptions(2)),
       std::make_shared<nn::Flatten<double>>(),
       std::make_shared<nn::Linear<double>>(6, 5, nn::LinearOptions().generator(net_random))});
  CHECK(nn::to_string(net).find(
            "(0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))") !=
        std::string::npos);
  const Array images = test::random_array({2, 1, 8, 6}, 60);
  const auto parameters = net.parameters();
  REQUIRE(parameters.size() == 6);
  CHECK(net(Tensor<double>(images)).shape() == Shape{2, 5});
  // gradcheck of the network's output with respect to the images.
  test::require_gradcheck<double>([&](const std::vector<Tensor<double>>& x) { return net(x[0]); },
                                  {images});
}

TEST_CASE(
    "io::save_torch_state writes a Conv2d weight as it is: (O, C, kh, kw), PyTorch's layout") {
  Generator random(9);
  nn::Sequential<double> net(
      {std::make_shared<nn::Conv2d<double>>(2, 3, Size2(3, 2), Conv2dOptions(),
                                            nn::Conv2dLayerOptions().generator(random)),
       std::make_shared<nn::Flatten<double>>(),
       std::make_shared<nn::Linear<double>>(4, 2, nn::LinearOptions().generator(random))});
  const auto path = std::filesystem::temp_directory_path() / "tapegrad_conv_state.npz";
  io::save_torch_state(net, path.string());
  const auto arrays = io::read_npz(path.string());
  std::map<std::string, Array> saved;
  for (const auto& [name, array] : arrays) saved.emplace(name, array.to<double>());
  const auto& conv = static_cast<const nn::Conv2d<double>&>(net[0]);
  REQUIRE(saved.count("0.weight") == 1);
  CHECK(saved["0.weight"] == conv.weight().value());
  CHECK(saved["0.bias"] == conv.bias().value());
  CHECK(saved["2.weight"].shape() == Shape{2, 4});  // the Linear's, transposed
  // And back.
  nn::Sequential<double> copy({std::make_shared<nn::Conv2d<double>>(2, 3, Size2(3, 2)),
                               std::make_shared<nn::Flatten<double>>(),
                               std::make_shared<nn::Linear<double>>(4, 2)});
  io::load_torch_state(copy, path.string());
  CHECK(static_cast<const nn::Conv2d<double>&>(copy[0]).weight().value() == conv.weight().value());
  std::filesystem::remove(path);
}
