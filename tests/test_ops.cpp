// Every op: a closed-form value check, a float64 finite-difference gradient check with a
// non-uniform upstream gradient, and float32 agreement with float64.
#include <cmath>
#include <functional>

#include "helpers.hpp"
#include "op_cases.hpp"

using tapegrad::Axes;
using tapegrad::Shape;
using tapegrad::Tensor;
using test::random_array;

using test::all_cases;
using test::OpCase;

TEST_CASE("every op passes a float64 finite-difference gradient check") {
  for (const auto& c : all_cases()) {
    SUBCASE(c.name.c_str()) {
      tapegrad::GradcheckOptions options;
      options.allow_zero_gradient = false;
      const auto report =
          tapegrad::gradcheck<double>(c.f64, test::as_tensors<double>(c.inputs), options);
      INFO(c.name, ": ", report.message);
      CHECK(report.passed);
    }
  }
}

TEST_CASE("every op agrees in float32 and float64, values and gradients") {
  for (const auto& c : all_cases()) {
    SUBCASE(c.name.c_str()) {
      INFO(c.name);
      std::vector<Tensor<double>> x64;
      std::vector<Tensor<float>> x32;
      for (const auto& a : c.inputs) {
        x64.emplace_back(a, tapegrad::requires_grad);
        x32.emplace_back(xt::xarray<float>(xt::cast<float>(a)), tapegrad::requires_grad);
      }
      tapegrad::Tape tape;
      const auto y64 = c.f64(x64);
      const auto y32 = c.f32(x32);
      REQUIRE(y64.shape() == y32.shape());
      for (std::size_t k = 0; k < y64.size(); ++k) {
        const double v = y64.value().data()[k];
        CHECK(y32.value().data()[k] == doctest::Approx(v).epsilon(1e-4).scale(1));
      }
      const auto w = random_array(y64.shape(), 99, 0.5, 1.5);
      tapegrad::sum(y64 * Tensor<double>(w)).backward();
      tapegrad::sum(y32 * Tensor<float>(xt::xarray<float>(xt::cast<float>(w)))).backward();
      for (std::size_t i = 0; i < x64.size(); ++i) {
        REQUIRE(x64[i].has_grad() == x32[i].has_grad());
        if (!x64[i].has_grad()) continue;
        for (std::size_t k = 0; k < x64[i].size(); ++k) {
          const double g = x64[i].grad().data()[k];
          CHECK(x32[i].grad().data()[k] == doctest::Approx(g).epsilon(1e-3).scale(1));
        }
      }
    }
  }
}

TEST_CASE("float32 gradients pass gradcheck with float tolerances") {
  for (const auto& c : all_cases()) {
    SUBCASE(c.name.c_str()) {
      const auto report = tapegrad::gradcheck<float>(c.f32, test::as_tensors<float>(c.inputs));
      INFO(c.name, ": ", report.message);
      CHECK(report.passed);
    }
  }
}

// ---- closed-form values ----

namespace {
template <class F, class R>
void check_elementwise(F op, R reference, double lo, double hi) {
  const auto a = random_array({2, 5}, 7, lo, hi);
  const auto y = op(Tensor<double>(a));
  REQUIRE(y.shape() == a.shape());
  for (std::size_t k = 0; k < a.size(); ++k) {
    CHECK(y.value().data()[k] == doctest::Approx(reference(a.data()[k])).epsilon(1e-14));
  }
}
}  // namespace

TEST_CASE("elementwise values match their closed forms") {
  using namespace tapegrad;
  using D = Tensor<double>;
  check_elementwise([](const D& x) { return -x; }, [](double v) { return -v; }, -2, 2);
  check_elementwise([](const D& x) { return affine(x, 3.0, -1.0); },
                    [](double v) { return 3 * v - 1; }, -2, 2);
  check_elementwise([](const D& x) { return 1.0 - x / 4.0; }, [](double v) { return 1 - v / 4; },
                    -2, 2);
  check_elementwise([](const D& x) { return 2.0 / x; }, [](double v) { return 2 / v; }, 0.5, 2);
  check_elementwise([](const D& x) { return pow(x, 3.0); }, [](double v) { return v * v * v; }, -2,
                    2);
  check_elementwise([](const D& x) { return exp(x); }, [](double v) { return std::exp(v); }, -2, 2);
  check_elementwise([](const D& x) { return log(x); }, [](double v) { return std::log(v); }, 0.1,
                    3);
  check_elementwise([](const D& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, 0.1,
                    3);
  check_elementwise([](const D& x) { return abs(x); }, [](double v) { return std::abs(v); }, -2, 2);
  check_elementwise([](const D& x) { return square(x); }, [](double v) { return v * v; }, -2, 2);
  check_elementwise([](const D& x) { return sin(x); }, [](double v) { return std::sin(v); }, -3, 3);
  check_elementwise([](const D& x) { return cos(x); }, [](double v) { return std::cos(v); }, -3, 3);
  check_elementwise([](const D& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, -3,
                    3);
  check_elementwise([](const D& x) { return sigmoid(x); },
                    [](double v) { return 1 / (1 + std::exp(-v)); }, -5, 5);
  check_elementwise([](const D& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0.0; },
                    -2, 2);
  check_elementwise([](const D& x) { return leaky_relu(x, 0.2); },
                    [](double v) { return v > 0 ? v : 0.2 * v; }, -2, 2);
  check_elementwise([](const D& x) { return softplus(x); },
                    [](double v) { return std::log(1 + std::exp(v)); }, -5, 5);
  check_elementwise([](const D& x) { return clamp(x, -0.5, 1.0); },
                    [](double v) { return std::min(std::max(v, -0.5), 1.0); }, -2, 2);
}

TEST_CASE("binary ops, reductions and softmax give the textbook numbers") {
  using namespace tapegrad;
  const Tensor<double> a({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
  const Tensor<double> b({{2.0, 1.0, 3.0}, {0.5, 8.0, -1.0}});
  CHECK((a + b).value() == xt::xarray<double>{{3, 3, 6}, {4.5, 13, 5}});
  CHECK((a - b).value() == xt::xarray<double>{{-1, 1, 0}, {3.5, -3, 7}});
  CHECK((a * b).value() == xt::xarray<double>{{2, 2, 9}, {2, 40, -6}});
  CHECK((a / b).value() == xt::xarray<double>{{0.5, 2, 1}, {8, 0.625, -6}});
  CHECK(maximum(a, b).value() == xt::xarray<double>{{2, 2, 3}, {4, 8, 6}});
  CHECK(minimum(a, b).value() == xt::xarray<double>{{1, 1, 3}, {0.5, 5, -1}});
  CHECK(sum(a).item() == 21);
  CHECK(sum(a).shape() == Shape{});
  CHECK(sum(a, Axes{0}).value() == xt::xarray<double>{5, 7, 9});
  const auto column = sum(a, Axes{1}, true);
  CHECK(column.shape() == Shape{2, 1});
  CHECK(column.value()(0, 0) == 6);
  CHECK(column.value()(1, 0) == 15);
  CHECK(mean(a).item() == 3.5);
  CHECK(mean(a, Axes{1}).value() == xt::xarray<double>{2, 5});
  CHECK(max(b, 1).value() == xt::xarray<double>{3, 8});
  CHECK(max(b, 0, true).value() == xt::xarray<double>{{2, 8, 3}});
  CHECK(logsumexp(a).value()(0) ==
        doctest::Approx(std::log(std::exp(1) + std::exp(2) + std::exp(3))));
  const auto s = softmax(a);
  const double z = std::exp(1) + std::exp(2) + std::exp(3);
  CHECK(s.value()(0, 0) == doctest::Approx(std::exp(1) / z));
  CHECK(s.value()(1, 2) == doctest::Approx(std::exp(3) / z));  // shift invariance
  CHECK(log_softmax(a).value()(0, 1) == doctest::Approx(2 - std::log(z)));
  CHECK(matmul(a, transpose(b)).value() == xt::xarray<double>{{13, 13.5}, {31, 36}});
  CHECK(matmul(Tensor<double>({1.0, 2.0}), a).value() == xt::xarray<double>{9, 12, 15});
  CHECK(matmul(a, Tensor<double>({1.0, 0.0, -1.0})).value() == xt::xarray<double>{-2, -2});
  CHECK(matmul(Tensor<double>({1.0, 2.0}), Tensor<double>({3.0, 4.0})).item() == 11);
  CHECK(matmul(Tensor<double>::column({1.0, 2.0}), Tensor<double>({{3.0, 4.0, 5.0}})).value() ==
        xt::xarray<double>{{3, 4, 5}, {6, 8, 10}});  // an outer product (GER)
  CHECK(matmul(Tensor<double>({{1.0, 2.0}}), a).value() ==
        xt::xarray<double>{{9, 12, 15}});  // GEMV
  CHECK(matmul(a, Tensor<double>::column({1.0, 0.0, -1.0})).value() ==
        Tensor<double>::column({-2.0, -2.0}).value());
  CHECK(transpose(a).value() == xt::xarray<double>{{1, 4}, {2, 5}, {3, 6}});
  CHECK(reshape(a, Shape{3, 2}).value() == xt::xarray<double>{{1, 2}, {3, 4}, {5, 6}});
  CHECK(broadcast_to(Tensor<double>({1.0, 2.0}), Shape{2, 2}).value() ==
        xt::xarray<double>{{1, 2}, {1, 2}});
  CHECK(sum_to(a, Shape{1, 3}).value() == xt::xarray<double>{{5, 7, 9}});
  CHECK(concat(std::vector{a, b}, 1).value() ==
        xt::xarray<double>{{1, 2, 3, 2, 1, 3}, {4, 5, 6, 0.5, 8, -1}});
  CHECK(narrow(a, 1, 1, 2).value() == xt::xarray<double>{{2, 3}, {5, 6}});
  CHECK(index_select(a, {1, 1, 0}).value() == xt::xarray<double>{{4, 5, 6}, {4, 5, 6}, {1, 2, 3}});
  CHECK(index_add(a, {2, 2}, 3).value() == xt::xarray<double>{{0, 0, 0}, {0, 0, 0}, {5, 7, 9}});
}

TEST_CASE("max sends the gradient to the first maximum; ties of maximum split it") {
  using namespace tapegrad;
  Tape tape;
  Tensor<double> x({{1.0, 3.0, 3.0}, {2.0, 0.0, -1.0}}, requires_grad);
  max(x, 1).backward(Tensor<double>({10.0, 20.0}));
  CHECK(x.grad() == xt::xarray<double>{{0, 10, 0}, {20, 0, 0}});
  Tensor<double> a({1.0, 2.0}, requires_grad);
  Tensor<double> b({1.0, 3.0}, requires_grad);
  sum(maximum(a, b)).backward();
  CHECK(a.grad() == xt::xarray<double>{0.5, 0});
  CHECK(b.grad() == xt::xarray<double>{0.5, 1});
}

TEST_CASE("numerically stable ops stay finite at extreme inputs") {
  using namespace tapegrad;
  Tape tape;
  Tensor<double> x({-1000.0, 0.0, 1000.0}, requires_grad);
  const auto s = sigmoid(x);
  CHECK(s.value() == xt::xarray<double>{0, 0.5, 1});
  const auto sp = softplus(x);
  CHECK(sp.value()(0) == 0);
  CHECK(sp.value()(2) == 1000);
  CHECK(logsumexp(x).item() == doctest::Approx(1000));
  const auto ls = log_softmax(x);
  CHECK(std::isfinite(ls.value()(1)));
  CHECK(ls.value()(1) == doctest::Approx(-1000));
  sum(s + sp + tanh(x)).backward();
  for (double g : x.grad()) CHECK(std::isfinite(g));
  CHECK(x.grad()(2) == doctest::Approx(1.0));  // softplus' = sigmoid = 1, others 0
}

TEST_CASE("a shape whose element count overflows is a ShapeError, never a short buffer") {
  using namespace tapegrad;
  const std::size_t two_62 = std::size_t{1} << 62;
  const std::size_t two_63 = std::size_t{1} << 63;
  const Tensor<double> x({{1.0, 2.0}});
  // (2^63, 2) has 2^64 elements: the product wraps to 0.
  CHECK_THROWS_WITH_AS(index_add(x, {1000000}, two_63),
                       doctest::Contains("index_add: the shape (9223372036854775808, 2) has more "
                                         "elements than fit in memory"),
                       ShapeError);
  // (2^62 + 1) * 4 wraps to 4, the input's size.
  CHECK_THROWS_WITH_AS(reshape(Tensor<double>({1.0, 2.0, 3.0, 4.0}), Shape{two_62 + 1, 4}),
                       doctest::Contains("reshape: the shape (4611686018427387905, 4)"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(
      broadcast_to(Tensor<double>({1.0}), Shape{std::size_t{1} << 33, std::size_t{1} << 31}),
      doctest::Contains("broadcast_to: the shape (8589934592, 2147483648)"), ShapeError);
  // Zero extents make an empty tensor of any other extents; what is built from it is checked.
  const Tensor<double> tall(xt::xarray<double>::from_shape({std::size_t{1} << 40, 0}));
  const Tensor<double> wide(xt::xarray<double>::from_shape({0, std::size_t{1} << 40}));
  CHECK(tall.size() == 0);
  CHECK_THROWS_WITH_AS(matmul(tall, wide), doctest::Contains("matmul: the shape"), ShapeError);
  // (Not 2^40 x 2^40: xtensor's own strides of such a shape overflow a signed long.)
  const Tensor<double> flat(
      xt::xarray<double>::from_shape({0, std::size_t{1} << 31, std::size_t{1} << 31}));
  CHECK_THROWS_WITH_AS(sum(flat, Axes{0}), doctest::Contains("sum: the shape (1, "), ShapeError);
  CHECK_THROWS_WITH_AS(logsumexp(flat, 0), doctest::Contains("logsumexp: the shape"), ShapeError);
  CHECK(softmax(flat, 0).shape() == flat.shape());
  const Tensor<double> half(xt::xarray<double>::from_shape({two_63, 0}));
  CHECK_THROWS_WITH_AS(
      concat(std::vector{half, half}, 0),
      "concat: the extents along axis 0 of part 1 (9223372036854775808, 0) and the "
      "parts before it (9223372036854775808) add up to more than fit in memory",
      ShapeError);
  // (An xt::xarray of such a shape cannot be made: xtensor refuses to allocate it, or its
  // strides overflow first, so Tensor's constructor has nothing to check.)
  CHECK(checked_size("f", Shape{two_63, 3, 0}) == 0);
  CHECK(checked_size("f", Shape{}) == 1);
  // Empty, but no array's strides can hold the extents after the 0 (xtensor computes them).
  CHECK_THROWS_WITH_AS(checked_size("f", Shape{3, 0, two_63}),
                       "f: the shape (3, 0, 9223372036854775808) has no elements, but the extents "
                       "after its last 0 multiply to more than 9223372036854775807, the largest "
                       "stride",
                       ShapeError);
  CHECK_THROWS_AS(nn::Linear<double>(std::size_t{1} << 40, std::size_t{1} << 40), ShapeError);
}

TEST_CASE(
    "shape ops, broadcasting, concat, flatten and batched matmul at extreme extents: a "
    "ShapeError naming the op with the true extents, or the right empty result") {
  using namespace tapegrad;
  using Array = xt::xarray<double>;
  const std::size_t two_32 = std::size_t{1} << 32, two_40 = std::size_t{1} << 40,
                    two_62 = std::size_t{1} << 62;
  const std::string too_many = " has more elements than fit in memory (over 1152921504606846975)";
  const std::string no_stride =
      " has no elements, but the extents after its last 0 multiply to more than "
      "9223372036854775807, the largest stride";
  const Tensor<double> nothing(Array::from_shape({0}));
  // 3 * 12297829382473034411 is 1 modulo 2^64: a batch that wraps around to one matrix.
  const std::size_t inverse_of_3 = 12297829382473034411u;
  struct Case {
    const char* what;
    std::function<Tensor<double>()> run;
    std::string message;
  };
  const std::vector<Case> refused{
      {"reshape to an empty shape whose strides overflow",
       [&] {
         return reshape(nothing, Shape{0, two_40, two_40});
       },
       "reshape: the shape (0, 1099511627776, 1099511627776)" + no_stride},
      {"broadcast_to an empty shape whose strides overflow",
       [&] {
         return broadcast_to(Tensor<double>(Array::from_shape({0, 1, 1})), {0, two_40, two_40});
       },
       "broadcast_to: the shape (0, 1099511627776, 1099511627776)" + no_stride},
      {"broadcasting in a binary op",
       [&] {
         return Tensor<double>(Array::from_shape({0, 1, two_40})) +
                Tensor<double>(Array::from_shape({0, two_40, 1}));
       },
       "add: the shape (0, 1099511627776, 1099511627776)" + no_stride},
      {"flatten merging extents whose product wraps",
       [&] {
         return flatten(Tensor<double>(Array::from_shape({two_32, two_32, 0})), 0, 1);
       },
       "flatten: the extents of axes 0 to 1 of the shape (4294967296, 4294967296, 0) multiply to "
       "more than fit in memory (over 1152921504606846975)"},
      {"batched matmul whose batch wraps around to 1",
       [&] {
         return matmul(Tensor<double>(Array::from_shape({1, 1, 2, 0})),
                       Tensor<double>(Array::from_shape({3, inverse_of_3, 0, 2})));
       },
       "matmul: the shape (3, 12297829382473034411)" + too_many},  // the batch
      {"batched matmul whose stacked rows wrap around",
       [&] {
         return matmul(Tensor<double>(Array::from_shape({two_32, two_32, 2, 0})),
                       Tensor<double>(Array::from_shape({0, 3})));
       },
       "matmul: the shape (4294967296, 4294967296)" + too_many},
  };
  for (const auto& c : refused) {
    INFO(c.what);
    CHECK_THROWS_WITH_AS(c.run(), c.message.c_str(), ShapeError);
  }
  CHECK_THROWS_WITH_AS(unravel_index(5, Shape{two_32, two_32}),
                       ("unravel_index: the shape (4294967296, 4294967296)" + too_many).c_str(),
                       ShapeError);
  // Empty results of extreme extents are made, with the shape NumPy gives.
  const std::size_t odd = two_32 + 1, other = two_32 - 1;  // their product is 2^64 - 1
  const Tensor<double> wide(Array::from_shape({odd, other, 0}));
  CHECK(concat(std::vector{wide, wide}, 2).shape() == Shape{odd, other, 0});
  CHECK(softmax(wide, 2).shape() == Shape{odd, other, 0});
  CHECK(concat(std::vector{Tensor<double>(Array::from_shape({two_62, 0})),
                           Tensor<double>(Array::from_shape({two_62, 0}))},
               0)
            .shape() == Shape{2 * two_62, 0});
  CHECK(flatten(Tensor<double>(Array::from_shape({two_32, 0, two_32})), 0, 1).shape() ==
        Shape{0, two_32});
}

TEST_CASE("max returns the first NaN of a row, and sends the gradient there, as PyTorch") {
  using namespace tapegrad;
  const double nan = std::nan("");
  Tensor<double> x({{1.0, nan, 3.0, nan}, {2.0, 5.0, -1.0, 0.0}}, requires_grad);
  Tape tape;
  const auto y = max(x, 1);
  CHECK(std::isnan(y.value()(0)));
  CHECK(y.value()(1) == 5.0);
  y.backward(Tensor<double>({10.0, 20.0}));
  CHECK(x.grad() == xt::xarray<double>{{0, 10, 0, 0}, {0, 20, 0, 0}});
}
