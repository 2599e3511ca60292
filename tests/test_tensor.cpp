// Tensor: construction, accessors, printing, leaf rules.
#include <sstream>

#include "helpers.hpp"

using namespace tapegrad;

TEST_CASE("tensors are made from xarrays, nested lists and scalars") {
  const Tensor<double> from_array(xt::xarray<double>{{1, 2, 3}, {4, 5, 6}});
  CHECK(from_array.shape() == Shape{2, 3});
  CHECK(from_array.size() == 6);
  CHECK(from_array.dim() == 2);
  CHECK_FALSE(from_array.requires_grad());

  const Tensor<float> from_list({{1.f, 2.f}, {3.f, 4.f}});
  CHECK(from_list.value()(1, 0) == 3.f);

  const Tensor<double> cube({{{1.0, 2.0}}, {{3.0, 4.0}}});
  CHECK(cube.shape() == Shape{2, 1, 2});

  const Tensor<double> scalar(2.5);
  CHECK(scalar.dim() == 0);
  CHECK(scalar.item() == 2.5);

  const Tensor<> defaulted;  // double by default
  static_assert(std::is_same_v<decltype(defaulted)::value_type, double>);
  CHECK(defaulted.item() == 0);

  const Tensor deduced(xt::xarray<float>{1.f, 2.f});  // class template argument deduction
  static_assert(std::is_same_v<decltype(deduced)::value_type, float>);

  const Tensor<double> w({1.0, 2.0}, requires_grad);
  CHECK(w.requires_grad());
  CHECK(w.is_leaf());
}

TEST_CASE("column() makes an (n, 1) tensor") {
  const auto c = Tensor<double>::column({1.0, 2.0, 3.0}, requires_grad);
  CHECK(c.shape() == Shape{3, 1});
  CHECK(c.value()(2, 0) == 3.0);
  CHECK(c.requires_grad());
}

TEST_CASE("item() refuses tensors with more than one element") {
  const Tensor<double> v({1.0, 2.0});
  CHECK_THROWS_WITH_AS(v.item(), doctest::Contains("shape (2,)"), ValueError);
}

TEST_CASE("copies share a node; detach() copies the value and leaves the graph") {
  Tape tape;
  Tensor<double> x({1.0, 2.0}, requires_grad);
  Tensor<double> alias = x;
  CHECK(alias.same_node(x));
  const auto y = x * 2.0;
  const auto d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.value() == y.value());
  CHECK_FALSE(d.same_node(y));
}

TEST_CASE("grad() without a gradient explains itself; zero_grad() forgets it") {
  Tensor<double> x(3.0, requires_grad);
  CHECK_FALSE(x.has_grad());
  CHECK_THROWS_WITH_AS(x.grad(), doctest::Contains("call backward()"), TapeError);
  {
    Tape tape;
    (x * x).backward();
  }
  CHECK(x.grad()() == 6);
  x.zero_grad();
  CHECK_FALSE(x.has_grad());
}

TEST_CASE("set_requires_grad is for leaves only") {
  Tape tape;
  Tensor<double> x(1.0);
  x.set_requires_grad();
  CHECK(x.requires_grad());
  auto y = x * 2.0;
  CHECK_THROWS_AS(y.set_requires_grad(false), TapeError);
}

TEST_CASE("printing shows type, shape, flag and values") {
  std::ostringstream out;
  out << Tensor<double>({1.0, 2.5}, requires_grad);
  CHECK(out.str().find("Tensor<double>(shape (2,), requires_grad)") != std::string::npos);
  CHECK(out.str().find("2.5") != std::string::npos);
  std::ostringstream f;
  f << Tensor<float>(1.f);
  CHECK(f.str().find("Tensor<float>(shape ()") != std::string::npos);
}

TEST_CASE("shape_to_string prints like NumPy") {
  CHECK(shape_to_string(Shape{}) == "()");
  CHECK(shape_to_string(Shape{3}) == "(3,)");
  CHECK(shape_to_string(Shape{4, 3}) == "(4, 3)");
}

TEST_CASE(
    "Tensor(xarray) and set_value refuse a shape whose element count overflows, never a short "
    "buffer; zero extents are fine") {
  using Array = xt::xarray<double>;
  const std::size_t two_62 = std::size_t{1} << 62, two_63 = std::size_t{1} << 63;
  const std::string too_many = " has more elements than fit in memory (over 1152921504606846975)";
  struct Case {
    Array array;
    std::string shown;
  };
  // Each count is 2^64 or more, which size() gives modulo 2^64: (2, 2^63) has 2^64 (0), and
  // (2, 2^63 + 2) has 2^64 + 4 (4), with 4 elements stored behind it.
  std::vector<Case> cases{{test::array_claiming({2, two_63}), "(2, 9223372036854775808)"},
                          {test::array_claiming({2, two_63 + 2}, 4), "(2, 9223372036854775810)"}};
  if (!test::kSanitized) {
    // The (2^62, 4), made as a user makes it; xtensor's own strides of it overflow a
    // signed long, which UBSan reports (see test::array_claiming).
    cases.push_back({Array::from_shape({two_62, 4}), "(4611686018427387904, 4)"});
  }
  for (const auto& c : cases) {
    INFO(c.shown);
    CHECK_THROWS_WITH_AS(Tensor<double>(c.array),
                         ("Tensor: the shape " + c.shown + too_many).c_str(), ShapeError);
    Tensor<double> t({1.0, 2.0}, requires_grad);
    CHECK_THROWS_WITH_AS(t.set_value(c.array),
                         ("set_value: the shape " + c.shown + too_many).c_str(), ShapeError);
    CHECK(t.value() == Array{1.0, 2.0});  // unchanged
  }
  // Storage that does not hold the shape's elements.
  CHECK_THROWS_WITH_AS(Tensor<double>(test::array_claiming({2, 3}, 5)),
                       "Tensor: the array's shape (2, 3) has 6 elements but its storage holds 5",
                       ShapeError);
  // Empty arrays have no element to hold, and any extents, as long as the extents after the
  // last 0 fit in the strides (xtensor computes those of the axes before from them).
  const Tensor<double> empty(Array::from_shape({two_62, 0}));
  CHECK(empty.shape() == Shape{two_62, 0});
  CHECK(empty.size() == 0);
  Tensor<double> t(1.0);
  t.set_value(Array::from_shape({0, two_62}));
  CHECK(t.shape() == Shape{0, two_62});
  CHECK_THROWS_WITH_AS(
      Tensor<double>(test::array_claiming({0, 2, two_63})),
      "Tensor: the shape (0, 2, 9223372036854775808) has no elements, but the extents after its "
      "last 0 multiply to more than 9223372036854775807, the largest stride",
      ShapeError);
}
