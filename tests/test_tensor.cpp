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
