// conv_transpose2d (ops.hpp): values and gradients against PyTorch
// (tests/fixtures/conv_transpose.npz, made by tests/fixtures/make_conv_transpose.py), the
// adjoint of conv2d, gradcheck, float32 against float64, zero extents and errors.
#include <cmath>
#include <string>
#include <vector>
#include <xtensor/xmath.hpp>

#include "fixture.hpp"
#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

namespace {

const test::NpzFixture& fixture() {
  static const test::NpzFixture file("conv_transpose.npz");
  return file;
}

const Array& get(const std::string& name) { return fixture().get(name); }

double max_difference(const Array& a, const Array& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]));
  return worst;
}

// The geometry of a case: kh, kw, sh, sw, ph, pw, oph, opw, dh, dw.
ConvTranspose2dOptions options_of(const std::string& c) {
  const Array& g = get(c + ".geometry");
  const auto v = [&](std::size_t i) { return static_cast<int>(g(i)); };
  return ConvTranspose2dOptions()
      .stride({v(2), v(3)})
      .padding({v(4), v(5)})
      .output_padding({v(6), v(7)})
      .dilation({v(8), v(9)});
}

Tensor<double> leaf(const Array& a) { return Tensor<double>(a, requires_grad); }

}  // namespace

TEST_CASE("conv_transpose2d matches PyTorch: values and gradients of x, weight and bias") {
  const std::vector<std::string> names = {
      "basic",     "stride2_pad1_outpad1",   "stride2_kernel2", "mixed", "dilation2_nobias",
      "unbatched", "one_channel_1x1_stride3"};
  double worst = 0;
  for (const auto& name : names) {
    const std::string c = "conv_transpose2d." + name;
    INFO(c);
    auto x = leaf(get(c + ".x")), w = leaf(get(c + ".w"));
    const bool with_bias = fixture().has(c + ".b");
    CHECK(with_bias == (name != "dilation2_nobias"));
    Tensor<double> b = with_bias ? leaf(get(c + ".b")) : Tensor<double>();
    Tape tape;
    const auto y = with_bias ? conv_transpose2d(x, w, b, options_of(c))
                             : conv_transpose2d(x, w, options_of(c));
    const auto close = [&](const std::string& what, const Array& ours, const Array& torch) {
      const double d = max_difference(ours, torch);
      worst = std::max(worst, d);
      INFO(what, ": max |tapegrad - torch| = ", d);
      CHECK(d <= 1e-10);
    };
    close("y", y.value(), get(c + ".y"));
    y.backward(Tensor<double>(get(c + ".g")));
    close("dx", x.grad(), get(c + ".dx"));
    close("dw", w.grad(), get(c + ".dw"));
    if (with_bias) close("db", b.grad(), get(c + ".db"));
  }
  MESSAGE("conv_transpose2d: largest difference to PyTorch ", worst);
}

TEST_CASE(
    "conv_transpose2d is conv2d's adjoint: sum(conv2d(y, w) x) = sum(y conv_transpose2d(x, w))") {
  // With the same stride, padding and dilation, for every output padding below the stride.
  for (const int output_padding : {0, 1}) {
    INFO("output padding ", output_padding);
    const auto options =
        ConvTranspose2dOptions().stride({2, 3}).padding({1, 0}).dilation({1, 2}).output_padding(
            {output_padding, output_padding});
    const Tensor<double> x(test::random_array({2, 3, 4, 3}, 11));
    const Tensor<double> w(test::random_array({3, 2, 3, 2}, 12));
    const auto y_shape = conv_transpose2d(x, w, options).shape();
    const Tensor<double> y(test::random_array(y_shape, 13));
    const auto forward = conv2d(y, w, options.convolution());
    REQUIRE(forward.shape() == x.shape());
    const double left = sum(forward * x).item();
    const double right = sum(y * conv_transpose2d(x, w, options)).item();
    CHECK(std::abs(left - right) <= 1e-12 * std::max(1.0, std::abs(left)));
  }
}

TEST_CASE(
    "conv_transpose2d passes a float64 gradcheck: stride, padding, output padding, dilation, "
    "unbatched") {
  using Xs = std::vector<Tensor<double>>;
  const auto rnd = [](const Shape& s, std::uint64_t seed) { return test::random_array(s, seed); };
  test::require_gradcheck<double>(
      [](const Xs& x) {
        return conv_transpose2d(
            x[0], x[1], x[2],
            ConvTranspose2dOptions().stride({2, 3}).padding({1, 0}).output_padding({1, 2}).dilation(
                {1, 2}));
      },
      {rnd({2, 2, 3, 2}, 1), rnd({2, 3, 3, 2}, 2), rnd({3}, 3)});
  test::require_gradcheck<double>([](const Xs& x) { return conv_transpose2d(x[0], x[1]); },
                                  {rnd({2, 3, 4}, 4), rnd({2, 2, 2, 3}, 5)});
}

TEST_CASE("conv_transpose2d agrees in float32 and float64") {
  const Array x = test::random_array({2, 3, 5, 4}, 21), w = test::random_array({3, 4, 3, 3}, 22),
              b = test::random_array({4}, 23);
  const auto options = ConvTranspose2dOptions().stride(2).padding(1).output_padding({1, 0});
  const auto y64 =
      conv_transpose2d(Tensor<double>(x), Tensor<double>(w), Tensor<double>(b), options);
  const auto y32 = conv_transpose2d(Tensor<float>(xt::xarray<float>(xt::cast<float>(x))),
                                    Tensor<float>(xt::xarray<float>(xt::cast<float>(w))),
                                    Tensor<float>(xt::xarray<float>(xt::cast<float>(b))), options);
  REQUIRE(y32.shape() == y64.shape());
  CHECK(y64.shape() == Shape{2, 4, 10, 7});
  double worst = 0;
  for (std::size_t i = 0; i < y64.size(); ++i) {
    worst = std::max(worst, std::abs(double(y32.value().data()[i]) - y64.value().data()[i]));
  }
  CHECK(worst < 1e-4);
}

TEST_CASE(
    "conv_transpose2d on zero extents: an empty batch, no input channels, no output channels") {
  const auto ones = [](const Shape& s) {
    return Tensor<double>(Array(xt::ones<double>(s)), requires_grad);
  };
  {
    auto x = ones({0, 2, 3, 3}), w = ones({2, 4, 2, 2}), b = ones({4});
    Tape tape;
    const auto y = conv_transpose2d(x, w, b, ConvTranspose2dOptions().stride(2));
    CHECK(y.shape() == Shape{0, 4, 6, 6});
    sum(y).backward();
    CHECK(x.grad().shape() == x.shape());
    CHECK(xt::amax(xt::abs(w.grad()))() == 0);
    CHECK(xt::amax(xt::abs(b.grad()))() == 0);
  }
  {
    // No input channels: nothing is summed, the result is the bias.
    auto x = ones({2, 0, 3, 3}), w = ones({0, 4, 2, 2}), b = ones({4});
    Tape tape;
    const auto y = conv_transpose2d(x, w, b);
    REQUIRE(y.shape() == Shape{2, 4, 4, 4});
    CHECK(xt::amin(y.value())() == 1.0);
    CHECK(xt::amax(y.value())() == 1.0);
    sum(y).backward();
    CHECK(b.grad()(0) == 32.0);  // 2 images x 4 x 4 positions
    CHECK(w.grad().shape() == w.shape());
  }
  {
    auto x = ones({2, 3, 3, 3}), w = ones({3, 0, 2, 2});
    Tape tape;
    const auto y = conv_transpose2d(x, w);
    CHECK(y.shape() == Shape{2, 0, 4, 4});
    sum(y).backward();
    CHECK(xt::amax(xt::abs(x.grad()))() == 0);
  }
}

TEST_CASE("conv_transpose2d: errors name the op and the values") {
  const Tensor<double> x(Array(xt::zeros<double>({2, 3, 4, 4})));
  const Tensor<double> w(Array(xt::zeros<double>({3, 2, 3, 3})));
  CHECK_THROWS_WITH_AS(
      conv_transpose2d(x, Tensor<double>(Array(xt::zeros<double>({2, 2, 3, 3})))),
      "conv_transpose2d: input (2, 3, 4, 4) has 3 channels, weight (2, 2, 3, 3) expects 2",
      ShapeError);
  CHECK_THROWS_WITH_AS(
      conv_transpose2d(Tensor<double>(Array(xt::zeros<double>({3, 4}))), w),
      "conv_transpose2d: the input must be 3-d (C, H, W) or 4-d (N, C, H, W), got (3, 4)",
      ShapeError);
  CHECK_THROWS_WITH_AS(
      conv_transpose2d(x, Tensor<double>(Array(xt::zeros<double>({3, 2, 3})))),
      "conv_transpose2d: the weight must be 4-d (C_in, C_out, kh, kw), got (3, 2, 3)", ShapeError);
  CHECK_THROWS_WITH_AS(
      conv_transpose2d(x, w, Tensor<double>(Array(xt::zeros<double>({3})))),
      "conv_transpose2d: the bias must have shape (2,) for weight (3, 2, 3, 3), got (3,)",
      ShapeError);
  CHECK_THROWS_WITH_AS(conv_transpose2d(x, w, ConvTranspose2dOptions().stride({1, 0})),
                       "conv_transpose2d: the stride must be at least 1, got (1, 0)", ValueError);
  CHECK_THROWS_WITH_AS(conv_transpose2d(x, w, ConvTranspose2dOptions().output_padding(-1)),
                       "conv_transpose2d: the output padding must be at least 0, got (-1, -1)",
                       ValueError);
  CHECK_THROWS_WITH_AS(
      conv_transpose2d(x, w, ConvTranspose2dOptions().stride(2).output_padding({1, 2})),
      "conv_transpose2d: the output padding (1, 2) must be below the stride (2, 2) (PyTorch also "
      "takes one below the dilation; tapegrad does not)",
      ValueError);
  CHECK_THROWS_WITH_AS(conv_transpose2d(x, w, ConvTranspose2dOptions().dilation(0)),
                       "conv_transpose2d: the dilation must be at least 1, got (0, 0)", ValueError);
  CHECK_THROWS_WITH_AS(
      conv_transpose2d(Tensor<double>(Array(xt::zeros<double>({2, 3, 0, 4}))), w),
      "conv_transpose2d: the input (2, 3, 0, 4) must have spatial extents from 1 to 2147483648 (as "
      "PyTorch: no 0)",
      ValueError);
  CHECK_THROWS_WITH_AS(
      conv_transpose2d(Tensor<double>(Array(xt::zeros<double>({2, 3, 1, 1}))), w,
                       ConvTranspose2dOptions().padding(2)),
      "conv_transpose2d: input (2, 3, 1, 1) with the kernel (3, 3), stride (1, 1), padding (2, 2), "
      "output padding (0, 0) and dilation (1, 1) gives an output of (-1, -1), below 1",
      ValueError);
  CHECK_THROWS_WITH_AS(
      conv_transpose2d(x, w, ConvTranspose2dOptions().stride(std::int64_t{1} << 40)),
      "conv_transpose2d: the stride (1099511627776, 1099511627776) is too large (at most "
      "2147483648)",
      ValueError);
}

TEST_CASE(
    "nn::ConvTranspose2d: parameters, PyTorch's initialisation bounds and printing, the function's "
    "result") {
  Generator random(9);
  nn::ConvTranspose2d<double> up(3, 8, 3,
                                 ConvTranspose2dOptions().stride(2).padding(1).output_padding(1),
                                 nn::Conv2dLayerOptions().generator(random));
  CHECK(up.weight().shape() == Shape{3, 8, 3, 3});
  CHECK(up.bias().shape() == Shape{8});
  const auto params = up.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[1].first == "bias");
  // PyTorch's fan_in of a (C_in, C_out, kh, kw) weight: C_out kh kw = 72.
  const double bound = 1 / std::sqrt(72.0);
  double largest = 0;
  for (const double v : up.weight().value()) largest = std::max(largest, std::abs(v));
  CHECK(largest <= bound);
  CHECK(largest > 0.8 * bound);  // 216 draws fill the range
  for (const double v : up.bias().value()) CHECK(std::abs(v) <= bound);

  const Tensor<double> x(test::random_array({2, 3, 4, 5}, 31));
  const auto y = up(x);
  CHECK(y.shape() == Shape{2, 8, 8, 10});
  const auto expected = conv_transpose2d(x, up.weight(), up.bias(), up.options());
  CHECK(xt::amax(xt::abs(y.value() - expected.value()))() == 0);

  CHECK(
      nn::to_string(nn::ConvTranspose2d<float>(
          16, 8, 3,
          ConvTranspose2dOptions().stride(2).padding(1).output_padding(1).dilation({1, 2}))) ==
      "ConvTranspose2d(16, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 2), "
      "output_padding=(1, 1))");
  CHECK(nn::to_string(nn::ConvTranspose2d<float>(2, 4, {3, 2}, ConvTranspose2dOptions(),
                                                 nn::Conv2dLayerOptions().bias(false))) ==
        "ConvTranspose2d(2, 4, kernel_size=(3, 2), stride=(1, 1), bias=False)");
  CHECK_THROWS_WITH_AS(nn::ConvTranspose2d<double>(3, 0, 3),
                       "ConvTranspose2d: channel counts must be positive, got 3 -> 0", ValueError);
  CHECK_THROWS_WITH_AS(
      nn::ConvTranspose2d<double>(3, 4, 3, ConvTranspose2dOptions().output_padding(1)),
      "ConvTranspose2d: the output padding (1, 1) must be below the stride (1, 1) (PyTorch also "
      "takes one below the dilation; tapegrad does not)",
      ValueError);
  CHECK_THROWS_WITH_AS(
      up(Tensor<double>(xt::zeros<double>({2, 4, 5, 5}))),
      "ConvTranspose2d(3, 8): the input has shape (2, 4, 5, 5); expected (N, 3, H, W) or (3, H, W)",
      ShapeError);
}

TEST_CASE(
    "conv_transpose2d at extreme sizes: an output that does not fit is a ShapeError, never a "
    "short buffer; a small one has the right values") {
  const std::int64_t two_31 = std::int64_t{1} << 31;  // the largest stride taken
  const Tensor<double> x(Array(xt::ones<double>({1, 1, 2, 2})));
  const std::string too_many = " has more elements than fit in memory (over 1152921504606846975)";
  struct Case {
    const char* what;
    Shape weight;
    ConvTranspose2dOptions options;
    std::string shown;
  };
  // Each output extent is (2 - 1) 2^31 - 2 p + (k - 1) + output padding + 1.
  const std::vector<Case> refused{
      // 4 (2^32)^2 = 2^66, 0 modulo 2^64: nothing was allocated, and the op wrote into it.
      {"stride 2^31 and output padding 2^31 - 1, 4 channels",
       {1, 4, 1, 1},
       ConvTranspose2dOptions().stride(two_31).output_padding(two_31 - 1),
       "(1, 4, 4294967296, 4294967296)"},
      {"stride 2^31, padding 1 and output padding 2^31 - 1",
       {1, 1, 3, 3},
       ConvTranspose2dOptions().stride(two_31).padding(1).output_padding(two_31 - 1),
       "(1, 1, 4294967296, 4294967296)"},
      {"stride 2^31 and output padding 2^31 - 1, 2 channels",
       {1, 2, 1, 1},
       ConvTranspose2dOptions().stride(two_31).output_padding(two_31 - 1),
       "(1, 2, 4294967296, 4294967296)"},
  };
  for (const auto& c : refused) {
    INFO(c.what);
    const Tensor<double> w(Array(xt::ones<double>(c.weight)));
    CHECK_THROWS_WITH_AS(conv_transpose2d(x, w, c.options),
                         ("conv_transpose2d: the shape " + c.shown + too_many).c_str(), ShapeError);
  }
  // One image of one channel, (1, 1, h, w), its rows in order.
  const auto image = [](std::vector<double> values, std::size_t h, std::size_t w) {
    return Array(Tensor<double>::from(values, {1, 1, h, w}).value());
  };
  // Stride and padding 2^31: each output position p takes tap p of input position 1 only.
  Tensor<double> xs(image({1, 2, 3, 4}, 2, 2), requires_grad);
  Tensor<double> w(image({1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3), requires_grad);
  Tape tape;
  const auto y = conv_transpose2d(
      xs, w, ConvTranspose2dOptions().stride(two_31).padding(two_31).output_padding(two_31 - 1));
  CHECK(y.value() == image({4, 8, 16, 20}, 2, 2));
  sum(y).backward();
  CHECK(xs.grad() == image({0, 0, 0, 12}, 2, 2));
  CHECK(w.grad() == image({4, 4, 0, 4, 4, 0, 0, 0, 0}, 3, 3));
  // No image: the empty result, with the extents PyTorch gives.
  CHECK(conv_transpose2d(Tensor<double>(Array::from_shape({0, 1, 2, 2})),
                         Tensor<double>(Array(xt::ones<double>({1, 1, 1, 1}))),
                         ConvTranspose2dOptions().stride(two_31))
            .shape() == Shape{0, 1, two_31 + 1, two_31 + 1});
}
