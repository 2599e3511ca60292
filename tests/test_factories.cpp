// Factories: zeros, ones, full, *_like, arange, linspace, eye, rand, randn, uniform,
// Tensor::from. Expected ranges are PyTorch's (torch 1.13, checked by hand), hard-coded.
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "helpers.hpp"

using namespace tapegrad;

namespace {

template <class T>
std::vector<T> elements(const xt::xarray<T>& a) {
  return std::vector<T>(a.data(), a.data() + a.size());
}
template <class T>
std::vector<T> elements(const Tensor<T>& t) {
  return elements(t.value());
}

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

}  // namespace

TEST_CASE_TEMPLATE("zeros, ones and full fill a shape with one value", T, float, double) {
  const auto z = zeros<T>({2, 3});
  static_assert(std::is_same_v<decltype(z), const Tensor<T>>);
  CHECK(z.shape() == Shape{2, 3});
  CHECK(elements(z) == std::vector<T>(6, T(0)));
  CHECK_FALSE(z.requires_grad());
  CHECK(z.is_leaf());

  const auto o = ones<T>({4});
  CHECK(o.shape() == Shape{4});
  CHECK(elements(o) == std::vector<T>(4, T(1)));

  const auto f = full<T>({3, 1, 2}, T(-2.5));
  CHECK(f.shape() == Shape{3, 1, 2});
  CHECK(elements(f) == std::vector<T>(6, T(-2.5)));
  CHECK(std::isinf(full<T>({1}, T(kInf)).value()(0)));
  CHECK(std::isnan(full<T>({1}, T(kNan)).value()(0)));

  const auto scalar = full<T>({}, T(7));
  CHECK(scalar.dim() == 0);
  CHECK(scalar.item() == T(7));
}

TEST_CASE("factories are double when the type is not given") {
  static_assert(std::is_same_v<decltype(zeros({2})), Tensor<double>>);
  static_assert(std::is_same_v<decltype(full({2}, 3)), Tensor<double>>);  // 3 is no Tensor<int>
  static_assert(std::is_same_v<decltype(arange(4)), Tensor<double>>);
  static_assert(std::is_same_v<decltype(linspace(0, 1, 3)), Tensor<double>>);
  static_assert(std::is_same_v<decltype(eye(2)), Tensor<double>>);
  static_assert(std::is_same_v<decltype(rand({2})), Tensor<double>>);
  static_assert(std::is_same_v<decltype(uniform({2}, -1, 1)), Tensor<double>>);
  CHECK(full({2}, 3).value()(1) == 3.0);
  CHECK(arange(4).size() == 4);
}

TEST_CASE_TEMPLATE("zero extents work in every factory", T, float, double) {
  CHECK(zeros<T>({0, 3}).shape() == Shape{0, 3});
  CHECK(ones<T>({3, 0}).size() == 0);
  CHECK(full<T>({0}, T(2)).shape() == Shape{0});
  CHECK(zeros_like(ones<T>({2, 0, 4})).shape() == Shape{2, 0, 4});
  CHECK(eye<T>(0).shape() == Shape{0, 0});
  CHECK(eye<T>(3, 0).shape() == Shape{3, 0});
  CHECK(linspace<T>(0, 1, 0).shape() == Shape{0});
  CHECK(arange<T>(0).shape() == Shape{0});
  Generator gen(1);
  CHECK(rand<T>({0, 5}, gen).shape() == Shape{0, 5});
  CHECK(randn<T>({5, 0}, gen).shape() == Shape{5, 0});
  CHECK(uniform<T>({0}, -1, 1, gen).shape() == Shape{0});
  CHECK(gen.next_u64() == Generator(1).next_u64());  // nothing was drawn
  CHECK(Tensor<T>::from({}, {4, 0}).shape() == Shape{4, 0});
}

TEST_CASE_TEMPLATE("requires_grad makes a leaf that requires grad, never recorded", T, float,
                   double) {
  Tape tape;
  const auto x = ones<T>({2, 2}, requires_grad);
  CHECK(zeros<T>({1}, requires_grad).requires_grad());
  CHECK(full<T>({1}, T(3), requires_grad).requires_grad());
  CHECK(arange<T>(0, 3, 1, requires_grad).requires_grad());
  CHECK(arange<T>(0, 3, requires_grad).requires_grad());
  CHECK(arange<T>(3, requires_grad).requires_grad());
  CHECK(linspace<T>(0, 1, 3, requires_grad).requires_grad());
  CHECK(eye<T>(2, requires_grad).requires_grad());
  CHECK(eye<T>(2, 3, requires_grad).requires_grad());
  Generator gen(3);
  CHECK(rand<T>({2}, gen, requires_grad).requires_grad());
  CHECK(rand<T>({2}, requires_grad).requires_grad());
  CHECK(randn<T>({2}, gen, requires_grad).requires_grad());
  CHECK(randn<T>({2}, requires_grad).requires_grad());
  CHECK(uniform<T>({2}, -1, 1, gen, requires_grad).requires_grad());
  CHECK(uniform<T>({2}, -1, 1, requires_grad).requires_grad());
  CHECK(Tensor<T>::from({1, 2}, {2}, requires_grad).requires_grad());
  CHECK(x.requires_grad());
  CHECK(x.is_leaf());

  // *_like take x's shape only: a new leaf, not linked to x, that requires grad only if asked.
  const auto y = x * x;
  for (const auto& like : {zeros_like(y), ones_like(y), full_like(y, 2.5)}) {
    CHECK(like.shape() == Shape{2, 2});
    CHECK_FALSE(like.requires_grad());
    CHECK(like.is_leaf());
  }
  CHECK(elements(ones_like(y)) == std::vector<T>(4, T(1)));
  CHECK(elements(full_like(y, 2.5)) == std::vector<T>(4, T(2.5)));
  CHECK(ones_like(y, requires_grad).requires_grad());
  CHECK(ones_like(y, requires_grad).is_leaf());
  CHECK(tape.size() == 1);  // the product only
}

TEST_CASE_TEMPLATE("gradients flow into factory-made leaves", T, float, double) {
  auto x = ones<T>({2, 3}, requires_grad);
  const auto w = reshape(arange<T>(6), {2, 3});
  auto b = zeros<T>({3}, requires_grad);
  {
    Tape tape;
    sum(w * x + b).backward();
  }
  CHECK(elements(x.grad()) == std::vector<T>{0, 1, 2, 3, 4, 5});
  CHECK(elements(b.grad()) == std::vector<T>{2, 2, 2});

  auto r = randn<T>({4}, requires_grad);
  {
    Tape tape;
    sum(ones_like(r) * r * r).backward();  // d/dr sum(r^2) = 2r
  }
  for (std::size_t i = 0; i < 4; ++i) CHECK(r.grad()(i) == 2 * r.value()(i));
}

TEST_CASE_TEMPLATE("arange counts ceil((stop - start) / step) elements, as PyTorch", T, float,
                   double) {
  CHECK(elements(arange<T>(5)) == std::vector<T>{0, 1, 2, 3, 4});
  CHECK(elements(arange<T>(2, 5)) == std::vector<T>{2, 3, 4});
  CHECK(elements(arange<T>(1, 2.5, 0.5)) == std::vector<T>{1, 1.5, 2});
  CHECK(elements(arange<T>(-1, 1.5, 0.25)) ==
        std::vector<T>{-1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25});
  CHECK(elements(arange<T>(0, 10, 3)) == std::vector<T>{0, 3, 6, 9});
  CHECK(elements(arange<T>(5, 0, -1.5)) == std::vector<T>{5, 3.5, 2, 0.5});
  CHECK(arange<T>(0, 1, T(0.1)).size() == 10);
  CHECK(arange<T>(0, 1, T(0.1)).shape() == Shape{10});
  // start == stop is empty, whatever the step's sign.
  CHECK(arange<T>(3, 3, 1).shape() == Shape{0});
  CHECK(arange<T>(3, 3, -1).shape() == Shape{0});
}

TEST_CASE("arange rounds like PyTorch: a fractional step can overshoot, computed in double") {
  // (1.3 - 1) / 0.1 is 3.0000000000000004 in double: torch.arange(1, 1.3, 0.1) has 4 elements.
  CHECK(elements(arange<double>(1, 1.3, 0.1)) == std::vector<double>{1.0, 1.1, 1.2, 1.3});
  // float: element k = 1 + k 0.1f in double, rounded once to float, as torch.arange(1, 2, s,
  // dtype=torch.float32) with s = 0.1f gives. In float arithmetic element 9 would be
  // 1.9000000953674316 (0x1.e66668p+0).
  const auto f = arange<float>(1, 2, 0.1f);
  REQUIRE(f.size() == 10);
  CHECK(f.value()(1) == 0x1.19999ap+0f);  // 1.100000023841858
  CHECK(f.value()(9) == 0x1.e66666p+0f);  // 1.899999976158142
}

TEST_CASE_TEMPLATE("arange refuses a zero or backward step, non-finite values and huge ranges", T,
                   float, double) {
  CHECK_THROWS_WITH_AS(arange<T>(0, 1, 0), "arange: step must not be 0 (start 0, stop 1, step 0)",
                       ValueError);
  CHECK_THROWS_WITH_AS(arange<T>(1, 0, 1),
                       "arange: step 1 points away from stop: start 1, stop 0, step 1 (stop - "
                       "start and step must have the same sign)",
                       ValueError);
  CHECK_THROWS_WITH_AS(arange<T>(0, 1, -0.5), doctest::Contains("step -0.5 points away from stop"),
                       ValueError);
  CHECK_THROWS_WITH_AS(arange<T>(-2), doctest::Contains("start 0, stop -2, step 1"), ValueError);
  CHECK_THROWS_WITH_AS(
      arange<T>(0, T(kInf), 1),
      "arange: expected finite start, stop and step, got start 0, stop inf, step 1", ValueError);
  CHECK_THROWS_WITH_AS(arange<T>(T(kNan), 1, 1), doctest::Contains("got start nan"), ValueError);
  CHECK_THROWS_WITH_AS(arange<T>(0, 1, T(kInf)), doctest::Contains("step inf"), ValueError);
  CHECK_THROWS_WITH_AS(arange<T>(0, T(0x1p62), 1),
                       "arange: start 0, stop 4.611686018427388e+18, step 1 make "
                       "4.611686018427388e+18 elements, more than fit in memory (over "
                       "1152921504606846975)",
                       ValueError);
}

TEST_CASE("arange's element count is checked in double, beyond 2^64 too") {
  CHECK_THROWS_WITH_AS(arange<double>(-1e308, 1e308, 1), doctest::Contains("make inf elements"),
                       ValueError);
  // 2^60 elements: one more than fit (in doubles), though the count itself is exact.
  CHECK_THROWS_WITH_AS(arange<double>(0, 0x1p60, 1), doctest::Contains("more than fit"),
                       ValueError);
}

TEST_CASE_TEMPLATE("linspace includes both ends exactly", T, float, double) {
  CHECK(elements(linspace<T>(0, 1, 5)) == std::vector<T>{0, 0.25, 0.5, 0.75, 1});
  CHECK(elements(linspace<T>(1, 0, 5)) == std::vector<T>{1, 0.75, 0.5, 0.25, 0});
  CHECK(elements(linspace<T>(0, 1, 2)) == std::vector<T>{0, 1});
  CHECK(elements(linspace<T>(3, 1, 1)) == std::vector<T>{3});
  CHECK(elements(linspace<T>(2, 2, 4)) == std::vector<T>{2, 2, 2, 2});
  CHECK(linspace<T>(3, 1, 0).shape() == Shape{0});
  for (const std::size_t steps : {3, 7, 10, 11, 1000}) {
    const auto v = elements(linspace<T>(T(0.1), T(0.7), steps));
    CHECK(v.front() == T(0.1));
    CHECK(v.back() == T(0.7));
  }
}

TEST_CASE("linspace computes its second half from stop, as torch.linspace") {
  // torch.linspace(0.1, 0.7, 7, dtype=torch.float64): element 3 is 0.7 - 3 d, one ulp below
  // 0.1 + 3 d = 0x1.999999999999ap-2.
  const auto v = elements(linspace<double>(0.1, 0.7, 7));
  CHECK(v[0] == 0x1.999999999999ap-4);
  CHECK(v[1] == 0x1.999999999999ap-3);
  CHECK(v[2] == 0x1.3333333333333p-2);
  CHECK(v[3] == 0x1.9999999999999p-2);
  CHECK(v[4] == 0x1.0000000000000p-1);
  CHECK(v[5] == 0x1.3333333333333p-1);
  CHECK(v[6] == 0x1.6666666666666p-1);
  // torch.linspace(0, 1, 7, dtype=torch.float64)
  CHECK(elements(linspace<double>(0, 1, 7)) ==
        std::vector<double>{0, 0x1.5555555555555p-3, 0x1.5555555555555p-2, 0.5,
                            0x1.5555555555556p-1, 0x1.aaaaaaaaaaaabp-1, 1});
}

TEST_CASE_TEMPLATE("linspace refuses non-finite ends", T, float, double) {
  CHECK_THROWS_WITH_AS(linspace<T>(0, T(kNan), 3),
                       "linspace: expected finite start and stop, got start 0, stop nan (3 steps)",
                       ValueError);
  CHECK_THROWS_WITH_AS(linspace<T>(T(-kInf), 0, 3), doctest::Contains("start -inf"), ValueError);
  CHECK_THROWS_WITH_AS(linspace<T>(0, 1, std::size_t{1} << 62), doctest::Contains("linspace"),
                       ShapeError);
}

TEST_CASE("linspace in double refuses a range whose width overflows") {
  CHECK_THROWS_WITH_AS(linspace<double>(-1e308, 1e308, 3),
                       "linspace: stop - start overflows double: start -1e+308, stop 1e+308",
                       ValueError);
  // In float the width is computed in double: the largest float range is fine.
  const float big = std::numeric_limits<float>::max();
  CHECK(elements(linspace<float>(-big, big, 3)) == std::vector<float>{-big, 0, big});
}

TEST_CASE_TEMPLATE("eye is the identity, square or not", T, float, double) {
  CHECK(elements(eye<T>(3)) == std::vector<T>{1, 0, 0, 0, 1, 0, 0, 0, 1});
  CHECK(eye<T>(2, 3).shape() == Shape{2, 3});
  CHECK(elements(eye<T>(2, 3)) == std::vector<T>{1, 0, 0, 0, 1, 0});
  CHECK(elements(eye<T>(3, 2)) == std::vector<T>{1, 0, 0, 1, 0, 0});
  CHECK(elements(eye<T>(1)) == std::vector<T>{1});
  CHECK_THROWS_WITH_AS(eye<T>(std::size_t{1} << 40, std::size_t{1} << 40),
                       doctest::Contains("eye: the shape (1099511627776, 1099511627776) has more "
                                         "elements than fit"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(zeros<T>({std::size_t{1} << 32, std::size_t{1} << 32}),
                       doctest::Contains("zeros: the shape"), ShapeError);
}

TEST_CASE_TEMPLATE("Tensor::from lays values out in row-major order", T, float, double) {
  const auto m = Tensor<T>::from({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(m.shape() == Shape{2, 3});
  CHECK(m.value()(0, 2) == T(3));
  CHECK(m.value()(1, 0) == T(4));
  CHECK_FALSE(m.requires_grad());
  const std::vector<T> values{1.5, -2};
  CHECK(elements(Tensor<T>::from(values, {2, 1})) == values);
  CHECK(Tensor<T>::from({7}, {}).item() == T(7));
  CHECK_THROWS_WITH_AS(Tensor<T>::from({1, 2, 3, 4, 5}, {2, 2}),
                       "Tensor::from: got 5 values for shape (2, 2), which holds 4", ShapeError);
  CHECK_THROWS_WITH_AS(Tensor<T>::from({}, {}),
                       "Tensor::from: got 0 values for shape (), which holds 1", ShapeError);
  // (2^32, 2^32) has 2^64 elements, 0 modulo 2^64: refused, not taken for an empty shape.
  CHECK_THROWS_WITH_AS(Tensor<T>::from({}, {std::size_t{1} << 32, std::size_t{1} << 32}),
                       doctest::Contains("Tensor::from: the shape (4294967296, 4294967296) has "
                                         "more elements than fit"),
                       ShapeError);
}

TEST_CASE("Tensor<double>::from takes a braced list") {
  const auto t = Tensor<double>::from({1.0, 2.0, 3.0, 4.0}, {2, 2});
  CHECK(t.value() == xt::xarray<double>{{1, 2}, {3, 4}});
}

TEST_CASE_TEMPLATE("random factories repeat for a seed and differ between seeds", T, float,
                   double) {
  Generator a(42), b(42), c(43);
  const auto ra = rand<T>({2, 3}, a), rb = rand<T>({2, 3}, b), rc = rand<T>({2, 3}, c);
  CHECK(elements(ra) == elements(rb));
  CHECK(elements(ra) != elements(rc));
  // The generator moved on: the next draw differs from the first.
  Generator a_copy = a;
  CHECK(elements(rand<T>({2, 3}, a_copy)) != elements(ra));
  const auto na = randn<T>({5}, a), nb = randn<T>({5}, b), nc = randn<T>({5}, c);
  CHECK(elements(na) == elements(nb));
  CHECK(elements(na) != elements(nc));
  const auto ua = uniform<T>({5}, -3, 2, a), ub = uniform<T>({5}, -3, 2, b);
  CHECK(elements(ua) == elements(ub));
  CHECK(elements(ua) != elements(uniform<T>({5}, -3, 2, c)));
  for (const T u : elements(ua)) {
    CHECK(u >= T(-3));
    CHECK(u < T(2));
  }

  // The default generator: manual_seed() repeats it.
  manual_seed(7);
  const auto d1 = rand<T>({4});
  const auto n1 = randn<T>({4}, requires_grad);
  manual_seed(7);
  CHECK(elements(rand<T>({4})) == elements(d1));
  CHECK(elements(randn<T>({4})) == elements(n1));
}

TEST_CASE("random factories draw from the generator in row-major order") {
  Generator gen(5), ref(5);
  const auto r = rand<double>({2, 3}, gen);
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t j = 0; j < 3; ++j) CHECK(r.value()(i, j) == ref.uniform());
  }
  const auto n = randn<double>({3, 2}, gen);
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < 2; ++j) CHECK(n.value()(i, j) == ref.normal());
  }
  const auto u = uniform<double>({4}, -1, 3, gen);
  for (std::size_t i = 0; i < 4; ++i) CHECK(u.value()(i) == -1 + 4 * ref.uniform());
  CHECK(gen.next_u64() == ref.next_u64());  // exactly the draws made
}

TEST_CASE("rand<float> truncates rand<double>'s draw to 24 bits; uniform(0, 1) is rand") {
  Generator g1(9), g2(9), g3(9), g4(9);
  const auto f = elements(rand<float>({1000}, g1));
  const auto d = elements(rand<double>({1000}, g2));
  for (std::size_t i = 0; i < f.size(); ++i) {
    CHECK(f[i] == static_cast<float>(std::floor(d[i] * 0x1p24) * 0x1p-24));
  }
  CHECK(elements(uniform<float>({1000}, 0, 1, g3)) == f);
  CHECK(elements(uniform<double>({1000}, 0, 1, g4)) == d);
}

TEST_CASE_TEMPLATE("rand and uniform stay below their upper bound after rounding", T, float,
                   double) {
  // [1, next after 1): one value only. lo + (hi - lo) u rounds to hi for about half the draws.
  const T lo = 1, hi = std::nextafter(T(1), T(2));
  Generator gen(11);
  for (const T u : elements(uniform<T>({1000}, lo, hi, gen))) CHECK(u == lo);
  CHECK(elements(uniform<T>({3}, 2, 2, gen)) == std::vector<T>{2, 2, 2});
  for (const T u : elements(rand<T>({100000}, gen))) {
    REQUIRE(u >= 0);
    REQUIRE(u < 1);
  }
}

TEST_CASE_TEMPLATE("rand and randn have the right mean and spread (100000 draws)", T, float,
                   double) {
  // Fixed seed: deterministic. The bounds are 6 standard errors or more wide.
  Generator gen(2024);
  const std::size_t n = 100000;
  const auto z = elements(randn<T>({n}, gen));
  double mean = 0, within_one = 0;
  for (const T v : z) {
    mean += v;
    within_one += std::abs(v) < 1;
  }
  mean /= n;
  double var = 0;
  for (const T v : z) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / (n - 1));
  CHECK(std::abs(mean) < 0.02);                     // standard error 0.0032
  CHECK(std::abs(sd - 1) < 0.02);                   // standard error 0.0022
  CHECK(std::abs(within_one / n - 0.6827) < 0.01);  // standard error 0.0015

  const auto u = elements(rand<T>({n}, gen));
  double umean = 0, below_tenth = 0;
  for (const T v : u) {
    umean += v;
    below_tenth += v < T(0.1);
  }
  CHECK(std::abs(umean / n - 0.5) < 0.01);         // standard error 0.0009
  CHECK(std::abs(below_tenth / n - 0.1) < 0.006);  // standard error 0.00095
}

TEST_CASE_TEMPLATE("uniform refuses reversed, non-finite or overflowing bounds", T, float, double) {
  CHECK_THROWS_WITH_AS(uniform<T>({2}, 2, 1), "uniform: expected lo <= hi, got lo 2, hi 1",
                       ValueError);
  CHECK_THROWS_WITH_AS(uniform<T>({2}, 0, T(kInf)),
                       "uniform: expected finite bounds, got lo 0, hi inf", ValueError);
  CHECK_THROWS_WITH_AS(uniform<T>({2}, T(kNan), 1, requires_grad),
                       doctest::Contains("got lo nan, hi 1"), ValueError);
}

TEST_CASE("uniform in double refuses bounds whose width overflows") {
  CHECK_THROWS_WITH_AS(uniform<double>({2}, -1e308, 1e308),
                       "uniform: hi - lo overflows double: lo -1e+308, hi 1e+308", ValueError);
  const float big = std::numeric_limits<float>::max();
  Generator gen(1);
  for (const float u : elements(uniform<float>({100}, -big, big, gen))) {
    CHECK(std::isfinite(u));
    CHECK(u < big);
  }
}

TEST_CASE_TEMPLATE(
    "every factory refuses a shape whose elements do not fit, and makes empty ones of any extents",
    T, float, double) {
  const std::size_t two_31 = std::size_t{1} << 31, two_40 = std::size_t{1} << 40,
                    two_62 = std::size_t{1} << 62;
  Generator random(5);
  const std::vector<std::pair<std::string, std::function<Tensor<T>(const Shape&)>>> factories{
      {"zeros", [](const Shape& s) { return zeros<T>(s); }},
      {"ones", [](const Shape& s) { return ones<T>(s); }},
      {"full", [](const Shape& s) { return full<T>(s, 2); }},
      {"rand", [&](const Shape& s) { return rand<T>(s, random); }},
      {"randn", [&](const Shape& s) { return randn<T>(s, random); }},
      {"uniform", [&](const Shape& s) { return uniform<T>(s, -1, 1, random); }}};
  const std::string too_many = " has more elements than fit in memory (over 1152921504606846975)";
  for (const auto& [name, make] : factories) {
    INFO(name);
    // (2^62, 4) has 2^64 elements, 0 modulo 2^64; (2^31, 2^31, 2^31) 2^93.
    CHECK_THROWS_WITH_AS(make({two_62, 4}),
                         (name + ": the shape (4611686018427387904, 4)" + too_many).c_str(),
                         ShapeError);
    CHECK_THROWS_WITH_AS(
        make({two_31, two_31, two_31}),
        (name + ": the shape (2147483648, 2147483648, 2147483648)" + too_many).c_str(), ShapeError);
    // Zero extents: no elements, whatever the other extents, as long as the extents after the
    // last 0 (which set the strides of the axes before it) fit in a stride.
    CHECK(make({two_62, 0}).shape() == Shape{two_62, 0});
    CHECK(make({3, 0, two_40}).size() == 0);
    CHECK_THROWS_WITH_AS(
        make({0, two_40, two_40}),
        (name + ": the shape (0, 1099511627776, 1099511627776) has no elements, but the "
                "extents after its last 0 multiply to more than 9223372036854775807, "
                "the largest stride")
            .c_str(),
        ShapeError);
  }
  const auto empty = zeros<T>({two_62, 0});
  CHECK(ones_like(empty).shape() == Shape{two_62, 0});
  CHECK(full_like(empty, 3).shape() == Shape{two_62, 0});
  CHECK_THROWS_WITH_AS(eye<T>(two_62, 4),
                       ("eye: the shape (4611686018427387904, 4)" + too_many).c_str(), ShapeError);
  CHECK(eye<T>(0, two_62).shape() == Shape{0, two_62});
  CHECK_THROWS_WITH_AS(linspace<T>(0, 1, two_62),
                       ("linspace: the shape (4611686018427387904,)" + too_many).c_str(),
                       ShapeError);
  CHECK_THROWS_WITH_AS(Tensor<T>::from({}, {two_62, 4}),
                       ("Tensor::from: the shape (4611686018427387904, 4)" + too_many).c_str(),
                       ShapeError);
  CHECK(Tensor<T>::from({}, {two_62, 0}).shape() == Shape{two_62, 0});
}
