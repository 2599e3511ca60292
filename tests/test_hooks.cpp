// retain_grad() and register_hook(): a recorded result's gradient kept, and gradients read or
// replaced during the sweep, for first and second derivatives.
#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "helpers.hpp"
#include "tapegrad/compile.hpp"

using namespace tapegrad;

TEST_CASE(
    "retain_grad keeps a recorded result's gradient, summed over backward() calls until "
    "zero_grad()") {
  Tensor<double> x({1.0, 2.0, 3.0}, requires_grad);
  Tape tape;
  auto y = x * x;
  CHECK_FALSE(y.retains_grad());
  y.retain_grad();
  CHECK(y.retains_grad());
  const auto z = sum(y * 3.0);
  z.backward(retain_graph);
  CHECK(y.grad() == xt::xarray<double>{3, 3, 3});
  CHECK(x.grad() == xt::xarray<double>{6, 12, 18});
  z.backward();
  CHECK(y.grad() == xt::xarray<double>{6, 6, 6});
  y.zero_grad();
  CHECK_FALSE(y.has_grad());
  // A leaf keeps its gradient anyway.
  CHECK(x.retain_grad().retains_grad());
}

TEST_CASE("grad() of a recorded result without retain_grad says to call retain_grad") {
  Tensor<double> x(2.0, requires_grad);
  Tape tape;
  const auto y = x * x;
  (y * 3.0).backward();
  CHECK_THROWS_WITH_AS(y.grad(), doctest::Contains("call retain_grad() on it before backward()"),
                       TapeError);
  CHECK_THROWS_WITH_AS(Tensor<double>(1.0).grad(), doctest::Contains("does not require grad"),
                       TapeError);
}

TEST_CASE(
    "a hook on a recorded result reads its whole gradient once, and a replacement reaches the "
    "inputs") {
  Tensor<double> x({1.0, 2.0}, requires_grad);
  Tape tape;
  auto y = x * x;
  std::vector<xt::xarray<double>> seen;
  y.register_hook([&](const Tensor<double>& g) { seen.push_back(g.value()); });
  // y feeds two ops: the hook sees the sum of both contributions, once.
  (sum(y * 2.0) + sum(y * 5.0)).backward(retain_graph);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == xt::xarray<double>{7, 7});
  CHECK(x.grad() == xt::xarray<double>{14, 28});
  // Hooks run in order, each on the previous one's result: (g * 2) + 1.
  const auto doubling = y.register_hook([](const Tensor<double>& g) { return g * 2.0; });
  y.register_hook([](const Tensor<double>& g) { return g + 1.0; });
  y.retain_grad();
  x.zero_grad();
  (sum(y * 2.0) + sum(y * 5.0)).backward(retain_graph);
  CHECK(seen.back() == xt::xarray<double>{7, 7});  // the first hook saw the gradient as it came
  CHECK(y.grad() == xt::xarray<double>{15, 15});   // retain_grad keeps the hooked one
  CHECK(x.grad() == xt::xarray<double>{30, 60});
  y.remove_hook(doubling);
  x.zero_grad();
  (sum(y * 2.0) + sum(y * 5.0)).backward();
  CHECK(x.grad() == xt::xarray<double>{16, 32});
}

TEST_CASE(
    "a hook on a leaf sees each backward()'s gradient, summed over the graph, before it is "
    "accumulated") {
  Tensor<double> x(3.0, requires_grad);
  std::vector<double> seen;
  x.register_hook([&](const Tensor<double>& g) {
    seen.push_back(g.item());
    return g * 10.0;
  });
  for (int k = 0; k < 2; ++k) {
    Tape tape;
    (x * x + x).backward();  // d/dx = 2x + 1 = 7, from two records
  }
  CHECK(seen == std::vector<double>{7, 7});
  CHECK(x.grad()() == 140.0);
  // backward() on the leaf itself.
  x.zero_grad();
  x.backward();
  CHECK(seen.back() == 1.0);
  CHECK(x.grad()() == 10.0);
}

TEST_CASE("with create_graph a hook's tensor ops are recorded: second derivatives go through it") {
  Tensor<double> x(2.0, requires_grad);
  Tape tape;
  auto y = x * x;
  auto s = sin(x);
  y.register_hook([&](const Tensor<double>& g) { return g * s; });  // dz/dy becomes sin(x)
  (y * 1.0).backward(create_graph);
  // dz/dx = sin(x) 2x; d2z/dx2 through the hook = cos(x) 2x + 2 sin(x).
  const auto gx = x.grad_tensor();
  CHECK(gx.item() == doctest::Approx(std::sin(2.0) * 4.0).epsilon(1e-14));
  x.zero_grad();
  gx.backward();
  CHECK(x.grad()() == doctest::Approx(std::cos(2.0) * 4.0 + 2.0 * std::sin(2.0)).epsilon(1e-14));
}

TEST_CASE("hook errors: a wrong shape, a throwing hook, a tensor without grad, and compile()") {
  Tensor<double> x({1.0, 2.0}, requires_grad);
  {
    Tape tape;
    auto y = x * 2.0;
    y.register_hook([](const Tensor<double>& g) { return sum(g); });
    CHECK_THROWS_WITH_AS(
        sum(y).backward(),
        "backward: hook 0 of a tensor of shape (2,) returned a gradient of shape (); a hook must "
        "keep the gradient's shape",
        ShapeError);
  }
  {
    Tensor<double> w({1.0, 2.0}, requires_grad);
    const auto id = w.register_hook(
        [](const Tensor<double>&) -> Tensor<double> { throw std::runtime_error("no"); });
    {
      Tape tape;
      CHECK_THROWS_WITH_AS(sum(w * w).backward(), "no", std::runtime_error);
    }
    CHECK_FALSE(w.has_grad());
    w.remove_hook(id);
    Tape tape;
    sum(w * w).backward();  // the failed sweep left nothing pending
    CHECK(w.grad() == xt::xarray<double>{2, 4});
  }
  CHECK_THROWS_WITH_AS(
      Tensor<double>(1.0).register_hook([](const Tensor<double>&) {}),
      "register_hook: this tensor of shape () does not require grad, so no gradient will reach "
      "the hook",
      TapeError);
  Tensor<double> w(1.5, requires_grad);
  w.register_hook([](const Tensor<double>& g) { return g * 2.0; });
  CHECK_THROWS_WITH_AS(compile(std::vector<Tensor<double>>{w}, [&] { return w * w; }),
                       doctest::Contains("a gradient hook or retain_grad()"), TapeError);
  Tensor<double> v(1.5, requires_grad);
  CHECK_THROWS_WITH_AS(compile(std::vector<Tensor<double>>{v},
                               [&] {
                                 auto y = v * v;
                                 y.retain_grad();
                                 return y * 2.0;
                               }),
                       doctest::Contains("compile: op 'mul'"), TapeError);
}

TEST_CASE(
    "a hook or a custom op that destroys the tape being swept: the sweep ends, then the tape is "
    "freed, and the gradients are right") {
  const std::size_t before = live_node_count();
  {
    Tensor<double> w(2.0, requires_grad);
    // A result's hook resets the std::optional<Tape> that recorded it, mid-sweep.
    std::optional<Tape> tape(std::in_place);
    {
      auto h = w * w;
      h.register_hook([&](const Tensor<double>&) { tape.reset(); });
      (sin(h) * 3.0).backward();  // d/dw = 3 cos(w^2) 2w
    }
    CHECK_FALSE(tape.has_value());
    CHECK(Tape::active() == nullptr);
    CHECK(w.grad()() == doctest::Approx(12 * std::cos(4.0)).epsilon(1e-14));

    // A custom op's backward resets the std::unique_ptr<Tape> that recorded it.
    auto owned = std::make_unique<Tape>();
    const CustomOp<double> twice(
        "twice",
        [](const std::vector<Tensor<double>>& in) {
          return xt::xarray<double>(in[0].value() * 2.0);
        },
        [&](const CustomBackwardContext<double>& c) {
          owned.reset();
          return std::vector{c.grad_output() * 2.0};
        });
    w.zero_grad();
    (twice({w * w}) * 5.0).backward();  // d/dw = 5 2 2w
    CHECK(owned == nullptr);
    CHECK(w.grad()() == 40.0);

    // An inner tape's hook destroys the outer tape, which the sweep reaches next.
    auto outer = std::make_unique<Tape>();
    const auto h = w * w;  // on the outer tape
    {
      Tape inner;
      auto y = h * 3.0;
      y.register_hook([&](const Tensor<double>&) { outer.reset(); });
      w.zero_grad();
      (y + 1.0).backward();  // d/dw = 6w
    }
    CHECK(w.grad()() == 12.0);

    // A leaf's hook (run at the end of the sweep) destroys the tape.
    auto last = std::make_unique<Tape>();
    Tensor<double> v(3.0, requires_grad);
    v.register_hook([&](const Tensor<double>&) { last.reset(); });
    (v * v).backward();
    CHECK(v.grad()() == 6.0);

    // A hook destroys the tape and then throws: the error comes out, nothing is left behind.
    std::optional<Tape> failing(std::in_place);
    {
      auto g = w * w;
      g.register_hook([&](const Tensor<double>&) -> Tensor<double> {
        failing.reset();
        throw std::runtime_error("hook failed");
      });
      CHECK_THROWS_WITH_AS((g * 2.0).backward(), "hook failed", std::runtime_error);
    }
    CHECK_FALSE(failing.has_value());

    // backward(create_graph): what was recorded after the tape died has no tape, and says so.
    std::optional<Tape> graph(std::in_place);
    {
      auto g = w * w;
      g.register_hook([&](const Tensor<double>& gradient) {
        graph.reset();
        return gradient * 1.0;
      });
      w.zero_grad();
      (g * g).backward(create_graph);  // d/dw w^4 = 4 w^3
    }
    CHECK(w.grad()() == 32.0);
    CHECK_THROWS_AS(w.grad_tensor().backward(), TapeError);
  }
  CHECK(live_node_count() == before);
}

TEST_CASE("a hook that runs backward() on the tape being swept does not free records under it") {
  Tensor<double> v(2.0, requires_grad);
  Tape tape;
  const auto other = v * 5.0;
  Tensor<double> y;
  {
    // h is held by its records only: once the inner sweep has used up `other`, nothing the
    // user holds needs the records any more, but the outer sweep is still on them.
    auto h = v * v;
    h.register_hook([&](const Tensor<double>&) { other.backward(); });
    y = h * 3.0;
  }
  y.backward();
  CHECK(v.grad()() == 6 * 2.0 + 5.0);
}
