// The tape: sweep order, accumulation, lifetimes, nesting, threads and every misuse error.
#include <future>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <thread>

#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

TEST_CASE("a reused subexpression gets the sum of its paths") {
  Tape tape;
  Tensor<double> x(3.0, requires_grad);
  const auto y = x * x;      // used twice below
  const auto z = y * y + y;  // z = x^4 + x^2, dz/dx = 4x^3 + 2x = 114
  z.backward();
  CHECK(x.grad()() == doctest::Approx(114));
}

TEST_CASE("a diamond-shaped graph is walked once per node") {
  Tape tape;
  Tensor<double> x(0.5, requires_grad);
  const auto a = sin(x);
  const auto b = exp(x);
  const auto top = a * b;  // d/dx sin(x) e^x = (cos x + sin x) e^x
  top.backward();
  CHECK(x.grad()() == doctest::Approx((std::cos(0.5) + std::sin(0.5)) * std::exp(0.5)));
  // Each intermediate got a record, and nothing more: sin, exp, mul.
  CHECK(tape.size() == 3);
}

TEST_CASE("a chain of 1,000,000 ops is recorded, reversed and freed without recursion") {
  const std::size_t before = live_node_count();
  {
    Tensor<double> x(1.0, requires_grad);
    Tape tape;
    Tensor<double> y = x;
    const Tensor<double> factor(1.000001);
    for (int i = 0; i < 1000000; ++i) y = y * factor;
    y.backward();
    CHECK(tape.size() == 1000000);
    CHECK(x.grad()() == doctest::Approx(std::pow(1.000001, 1000000)).epsilon(1e-9));
  }
  CHECK(live_node_count() == before);
}

TEST_CASE("live nodes return to zero after the tape and the tensors are gone") {
  const std::size_t before = live_node_count();
  {
    Tensor<double> w(test::random_array({3, 4}, 1), requires_grad);
    {
      Tape tape;
      const Tensor<double> x(test::random_array({2, 3}, 2));
      const auto loss = mean(square(tanh(matmul(x, w)) - 0.5));
      loss.backward(create_graph);  // the gradient itself is recorded on the tape
      CHECK(live_node_count() > before + 10);
    }
    CHECK(w.has_grad());  // the user's tensors keep their values
  }
  CHECK(live_node_count() == before);
}

TEST_CASE("gradients of leaves accumulate across backward calls until zero_grad") {
  Tensor<double> w(2.0, requires_grad);
  Tape tape;
  const auto y = w * w * w;  // dy/dw = 3 w^2 = 12
  y.backward(retain_graph);
  CHECK(w.grad()() == 12);
  y.backward(retain_graph);  // the same records again: the same per-call gradient, added
  CHECK(w.grad()() == 24);
  w.zero_grad();
  y.backward();
  CHECK(w.grad()() == 12);
  // Two forward passes on one tape: each backward sweeps its own records.
  const auto z = w * 5.0;
  z.backward();
  CHECK(w.grad()() == 17);
}

TEST_CASE("a second backward through used-up records throws instead of adding again") {
  Tensor<double> w(2.0, requires_grad);
  Tensor<double> b(1.0, requires_grad);
  Tape tape;
  const auto h = w * w;
  const auto y = h * 3.0;  // dy/dw = 6 w = 12
  y.backward();
  CHECK(w.grad()() == 12);
  CHECK_THROWS_WITH_AS(y.backward(),
                       doctest::Contains("backward: 'affine' (record 1) was already swept by an "
                                         "earlier backward(), which used up its records"),
                       TapeError);
  CHECK(w.grad()() == 12);  // nothing was added
  // Another result computed from the same intermediate: the shared records are used up too
  // (PyTorch: "Trying to backward through the graph a second time"). Every record was used
  // up, so the tape released them when it recorded z (see the next test).
  const auto z = h + b;
  CHECK_THROWS_WITH_AS(z.backward(),
                       doctest::Contains("input 0 of 'add' (record 2) was made by record 0, "
                                         "already swept by an earlier backward()"),
                       TapeError);
  CHECK(b.grad()() == 1);  // what the sweep reached before the used-up record stays, as in PyTorch
  // Records not reached by the first sweep are still fresh.
  Tensor<double> c(3.0, requires_grad);
  const auto u = c * c;
  u.backward();
  CHECK(c.grad()() == 6);
  // create_graph keeps the records, as retain_graph does.
  c.zero_grad();
  const auto v = c * c * c;
  v.backward(create_graph);
  v.backward();
  CHECK(c.grad_tensor().value()() == 54);  // 27 recorded + 27
}

TEST_CASE(
    "a Tape kept across steps frees a step's records once a backward() has used them all; what "
    "is still needed stays") {
  Tensor<double> w(Array{1.0, 2.0}, requires_grad);
  const Tensor<double> x(Array{3.0, -1.0});
  Tape tape;
  const std::size_t with_leaves = live_node_count();
  std::vector<Tensor<double>> kept_losses;
  for (int step = 0; step < 3; ++step) {
    // The first op recorded releases what the last backward() used up, and the intermediates
    // only its records held: this product and the first step's loss (kept) are all there is.
    const auto product = w * x;
    CHECK(live_node_count() == with_leaves + 1 + kept_losses.size());
    const auto loss = sum(square(product - 1.0));  // 4 records: mul, affine, square, sum
    loss.backward();
    CHECK(w.grad() == Array{12, 6});
    // Until the tape records again, its records are there to be drawn, with the gradients.
    CHECK(graph_dot(loss).find("grad [12, 6]") != std::string::npos);
    w.zero_grad();
    if (step == 0) kept_losses.push_back(loss);
  }
  CHECK(tape.size() == 12);  // the ops recorded since the tape was made
  // A result of a released step keeps its value; backward() through it says why it cannot run.
  const Tensor<double> first_loss = kept_losses[0];
  CHECK(first_loss.item() == 13.0);
  CHECK_THROWS_WITH_AS(first_loss.backward(),
                       doctest::Contains("backward: this tensor's record (record 3) was already "
                                         "swept by an earlier backward(), which used up its "
                                         "records and released them"),
                       TapeError);
  {
    const auto again = first_loss * 2.0;  // record 12
    CHECK_THROWS_WITH_AS(again.backward(),
                         doctest::Contains("input 0 of 'affine' (record 12) was made by record 3, "
                                           "already swept by an earlier backward()"),
                         TapeError);
  }
  CHECK_FALSE(w.has_grad());
  // A result no sweep has used, still held, keeps the records until it is swept itself.
  {
    const auto kept = sum(w * 3.0);
    const auto loss = sum(w * w);
    loss.backward();
    kept.backward();
    CHECK(w.grad() == Array{5, 7});
  }
  // retain_graph keeps the records for the next sweep.
  {
    w.zero_grad();
    const auto loss = sum(w * w);
    loss.backward(retain_graph);
    loss.backward();
    CHECK(w.grad() == Array{4, 8});
  }
  // An op recorded, never swept and no longer held (as `again` above) does not keep them.
  {
    w.zero_grad();
    { const auto unused = exp(w); }
    const auto loss = sum(w * w);
    loss.backward();
    const auto next = w * 1.0;
    CHECK(live_node_count() == with_leaves + 4);  // the kept loss, this loss, w's gradient, next
  }
  // create_graph: the recorded gradient needs the records, a second sweep through it works.
  {
    w.zero_grad();
    const auto loss = sum(w * w * w);
    loss.backward(create_graph);
    const auto g = w.grad_tensor();
    w.zero_grad();
    sum(g).backward();
    CHECK(w.grad() == Array{6, 12});
  }
  // Records made after a release are swept as any others.
  w.zero_grad();
  sum(w * x).backward();
  CHECK(w.grad() == Array{3, -1});
}

TEST_CASE("only inputs that require grad get gradients; intermediates keep none") {
  Tape tape;
  Tensor<double> w({1.0, 2.0}, requires_grad);
  const Tensor<double> c({3.0, 4.0});
  const auto h = w * c;
  sum(h).backward();
  CHECK(w.grad() == xt::xarray<double>{3, 4});
  CHECK_FALSE(c.has_grad());
  CHECK_FALSE(h.has_grad());
}

TEST_CASE("an explicit seed gradient weights a non-scalar output") {
  Tape tape;
  Tensor<double> x({1.0, 2.0, 3.0}, requires_grad);
  const auto y = x * x;
  y.backward(Tensor<double>({1.0, 0.5, -1.0}));
  CHECK(x.grad() == xt::xarray<double>{2, 2, -6});
}

TEST_CASE("the no-grad guard turns recording off, and restores it") {
  Tensor<double> w(1.0, requires_grad);
  Tape tape;
  {
    NoGradGuard guard;
    CHECK_FALSE(grad_enabled());
    const auto y = w * 3.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(tape.size() == 0);
    CHECK_THROWS_AS(y.backward(), TapeError);
  }
  CHECK(grad_enabled());
  CHECK((w * 3.0).requires_grad());
}

TEST_CASE("nested tapes: the inner one is active, and backward reaches the outer one") {
  Tensor<double> x(2.0, requires_grad);
  Tape outer;
  const auto y = x * x;  // on the outer tape
  {
    Tape inner;
    CHECK(Tape::active() == &inner);
    const auto z = y * x;  // on the inner tape, from an outer result
    CHECK(inner.size() == 1);
    z.backward();  // z = x^3: 12
    CHECK(x.grad()() == 12);
  }
  CHECK(Tape::active() == &outer);
  CHECK(outer.size() == 1);
}

TEST_CASE("two threads train with their own tapes at the same time") {
  // No doctest assertions inside the threads: results are checked after join().
  auto train = [](double start, bool& own_tape_active) {
    Tensor<double> w(start, requires_grad);
    own_tape_active = true;
    for (int step = 0; step < 200; ++step) {
      Tape tape;
      own_tape_active = own_tape_active && Tape::active() == &tape;
      const auto loss = square(w - 3.0);
      loss.backward();
      w.mutable_value() -= 0.1 * w.grad();
      w.zero_grad();
    }
    return w.item();
  };
  double a = 0, b = 0;
  bool a_own = false, b_own = false, alone_own = false;
  std::thread first([&] { a = train(0.0, a_own); });
  std::thread second([&] { b = train(10.0, b_own); });
  first.join();
  second.join();
  CHECK(a_own);
  CHECK(b_own);
  CHECK(a == doctest::Approx(3.0));
  CHECK(b == doctest::Approx(3.0));
  CHECK(a == train(0.0, alone_own));  // bit-identical to a run alone
}

// ---- misuse: each a clear error ----

TEST_CASE("backward with no tape says to create one") {
  Tensor<double> w(1.0, requires_grad);
  const auto y = w * 2.0;  // no tape active
  CHECK(y.requires_grad());
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("no Tape was active"), TapeError);
  Tape tape;
  const auto z = y * 3.0;  // recorded, but its input was not
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("computed while no Tape was active"),
                       TapeError);
}

TEST_CASE("backward through a destroyed tape is an error, never a zero gradient") {
  Tensor<double> w(1.0, requires_grad);
  Tensor<double> y;
  {
    Tape tape;
    y = w * 2.0;
  }
  CHECK(y.value()() == 2);  // the value survives
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("has been destroyed"), TapeError);
  CHECK_FALSE(w.has_grad());

  Tape later;
  const auto z = y * 3.0;  // a new tape, on top of a dead one
  CHECK_THROWS_WITH_AS(z.backward(),
                       doctest::Contains("recorded on a Tape that has been destroyed"), TapeError);
  CHECK_FALSE(w.has_grad());
}

TEST_CASE("backward of a non-scalar without a seed names the shape") {
  Tape tape;
  Tensor<double> x({1.0, 2.0}, requires_grad);
  const auto y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("shape (2,), not a single element"),
                       TapeError);
  CHECK_THROWS_WITH_AS(
      y.backward(Tensor<double>({1.0, 2.0, 3.0})),
      doctest::Contains("seed gradient has shape (3,) but the tensor has shape (2,)"), ShapeError);
}

TEST_CASE("backward of a tensor that does not require grad") {
  Tape tape;
  const Tensor<double> c(2.0);
  CHECK_THROWS_WITH_AS((c * c).backward(), doctest::Contains("does not require grad"), TapeError);
}

TEST_CASE("a value changed in place after recording is caught by its version") {
  Tape tape;
  Tensor<double> w({1.0, 2.0}, requires_grad);
  const auto y = sum(w * w);
  w.mutable_value() += 1.0;  // e.g. an optimizer step before backward
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("changed in place after it was recorded"),
                       TapeError);
  CHECK_FALSE(w.has_grad());
}

TEST_CASE("the version counter is 64 bits: 2^32 changes do not bring it back to the recorded one") {
  Tape tape;
  Tensor<double> w({1.0, 2.0}, requires_grad);
  const auto y = sum(w * w);
  // 2^32 in-place changes, all at once: a 32-bit counter would be back where it was recorded.
  w.node()->version += std::uint64_t{1} << 32;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("(version 0, now 4294967296)"), TapeError);
}

TEST_CASE("shape mismatches name the op and both shapes") {
  const Tensor<double> a(xt::xarray<double>::from_shape({3, 2}));
  const Tensor<double> b(xt::xarray<double>::from_shape({4}));
  CHECK_THROWS_WITH_AS(a + b, "add: shapes (3, 2) and (4,) cannot be broadcast together",
                       ShapeError);
  CHECK_THROWS_WITH_AS(a * b, doctest::Contains("mul: shapes (3, 2) and (4,)"), ShapeError);
  CHECK_THROWS_WITH_AS(a - b, doctest::Contains("sub: shapes (3, 2) and (4,)"), ShapeError);
  CHECK_THROWS_WITH_AS(a / b, doctest::Contains("div: shapes (3, 2) and (4,)"), ShapeError);
  CHECK_THROWS_WITH_AS(maximum(a, b), doctest::Contains("maximum: shapes"), ShapeError);
  CHECK_THROWS_WITH_AS(minimum(a, b), doctest::Contains("minimum: shapes"), ShapeError);
  const Tensor<double> m(xt::xarray<double>::from_shape({4, 3}));
  const Tensor<double> n(xt::xarray<double>::from_shape({2, 5}));
  CHECK_THROWS_WITH_AS(matmul(m, n), "matmul: inner dimensions differ: (4, 3) x (2, 5)",
                       ShapeError);
  CHECK_THROWS_WITH_AS(reshape(m, Shape{5}), doctest::Contains("reshape: cannot reshape (4, 3)"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(broadcast_to(m, Shape{4, 2}), doctest::Contains("(4, 3) to (4, 2)"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(concat(std::vector{m, n}, 0), doctest::Contains("part 1 has shape (2, 5)"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(sum(m, Axes{2}), doctest::Contains("sum: axis 2 is out of range"),
                       ValueError);
  CHECK_THROWS_WITH_AS(index_select(m, {4}), doctest::Contains("index 4 is out of range"),
                       ValueError);
}

TEST_CASE("leaves never share a gradient buffer, so in-place edits stay local") {
  Tensor<double> a({1.0, 1.0}, requires_grad), b({1.0, 1.0}, requires_grad);
  {
    Tape tape;
    sum(a + b).backward();  // add sends one gradient tensor to both inputs
  }
  a.mutable_grad() *= 10.0;
  CHECK(a.grad() == xt::xarray<double>{10, 10});
  CHECK(b.grad() == xt::xarray<double>{1, 1});
  std::vector<Tensor<double>> params{a, b};
  a.zero_grad();
  b.zero_grad();
  {
    Tape tape;
    sum(a + b).backward();
  }
  optim::clip_grad_norm(params, 1.0);  // norm 2: each gradient scaled by 1/2, once
  CHECK(a.grad()(0) == doctest::Approx(0.5).epsilon(1e-5));
  CHECK(b.grad()(0) == doctest::Approx(0.5).epsilon(1e-5));

  // The caller's seed is copied too; and a leaf seeded with itself holds no cycle.
  const std::size_t before = live_node_count();
  {
    Tensor<double> x({3.0, 4.0}, requires_grad);
    Tensor<double> seed({1.0, 2.0});
    x.backward(seed);
    seed.mutable_value() *= 0.0;
    CHECK(x.grad() == xt::xarray<double>{1, 2});
    x.zero_grad();
    x.backward(x);
    CHECK(x.grad() == xt::xarray<double>{3, 4});
  }
  CHECK(live_node_count() == before);
}

TEST_CASE("anomaly mode names the forward op that made a NaN and the backward that made an Inf") {
  Tensor<double> x({-1.0, 4.0}, requires_grad);
  {
    AnomalyModeGuard anomaly;
    CHECK(anomaly_mode());
    Tape tape;
    const auto y = x * 2.0;
    CHECK_THROWS_WITH_AS(
        log(y),
        doctest::Contains(
            "anomaly mode: 'log' made NaN or Inf from finite inputs of shape(s) (2,)"),
        TapeError);
  }
  CHECK_FALSE(anomaly_mode());
  {
    Tape tape;
    CHECK(std::isnan(log(x).value()(0)));  // without anomaly mode: no check
  }
  // sqrt at 0 is finite, its derivative is not.
  Tensor<double> z({0.0, 4.0}, requires_grad);
  AnomalyModeGuard anomaly;
  Tape tape;
  const auto loss = sum(sqrt(z) * 3.0);
  CHECK_THROWS_WITH_AS(
      loss.backward(),
      doctest::Contains("anomaly mode: the backward of 'sqrt' (record 0), inputs of shape(s) (2,), "
                        "produced NaN or Inf in the gradient of input 0"),
      TapeError);
  CHECK_FALSE(z.has_grad());
}

TEST_CASE("anomaly mode names 'div' for a division by zero, whatever the divisor's form") {
  Tensor<double> x({1.0, 0.0}, requires_grad);
  const Tensor<double> zeros({0.0, 0.0});
  AnomalyModeGuard anomaly;
  Tape tape;
  const auto named_div = doctest::Contains("anomaly mode: 'div' made NaN or Inf");
  CHECK_THROWS_WITH_AS(x / 0, named_div, TapeError);
  CHECK_THROWS_WITH_AS(x / 0.0, named_div, TapeError);
  CHECK_THROWS_WITH_AS(x / zeros, named_div, TapeError);
  CHECK_THROWS_WITH_AS(2.0 / x, named_div, TapeError);
  CHECK_THROWS_WITH_AS(div(x, 0.0f), named_div, TapeError);
}

TEST_CASE("an input recorded on another thread's live tape is named as such, not as destroyed") {
  Tensor<double> w(2.0, requires_grad);
  std::promise<Tensor<double>> made;
  std::promise<void> done;
  std::thread other([&] {
    Tape tape;  // stays alive until this thread has checked the message
    made.set_value(w * w);
    done.get_future().wait();
  });
  const Tensor<double> h = made.get_future().get();
  std::string message;
  {
    Tape tape;
    const auto y = h * 3.0;
    try {
      y.backward();
    } catch (const TapeError& e) {
      message = e.what();
    }
  }
  done.set_value();
  other.join();
  CHECK(message.find("input 0 of 'affine' (record 0) was recorded on a Tape that is alive on "
                     "another thread") != std::string::npos);
  // Once that tape is gone, the same input is reported as destroyed.
  Tape tape;
  const auto y = h * 3.0;
  CHECK_THROWS_WITH_AS(
      y.backward(), doctest::Contains("was recorded on a Tape that has been destroyed"), TapeError);
}

TEST_CASE("backward from another thread than the tape's is refused") {
  Tensor<double> w(2.0, requires_grad);
  Tape tape;
  const auto y = w * w;
  std::string message;
  std::thread other([&] {
    try {
      y.backward();
    } catch (const TapeError& e) {
      message = e.what();
    }
  });
  other.join();
  CHECK(message.find("was recorded on a Tape that is alive on another thread; a tensor can only be "
                     "differentiated on the thread that recorded it") != std::string::npos);
  CHECK_FALSE(w.has_grad());
}

TEST_CASE(
    "a leaf another thread's backward() is adding to is refused, not raced (threads sharing a "
    "model)") {
  Tensor<double> w(Array{1.0, 2.0}, requires_grad);  // shared by both threads: the misuse
  std::promise<void> inside, tried;
  std::string message;
  std::thread first([&] {
    Tensor<double> v(3.0, requires_grad);  // this thread's own
    // A leaf's hook runs at the end of the sweep, after w has received its gradient.
    v.register_hook([&](const Tensor<double>&) {
      inside.set_value();
      tried.get_future().wait();
    });
    Tape tape;
    (sum(w * 2.0) + v * v).backward();
  });
  inside.get_future().wait();
  {
    Tape tape;
    try {
      sum(w * w).backward();
    } catch (const TapeError& e) {
      message = e.what();
    }
  }
  tried.set_value();
  first.join();
  CHECK(message ==
        "backward: input 0 of 'mul' (record 0), a leaf of shape (2,), is being changed by "
        "backward() in another thread at this moment; threads must not share leaf tensors (a "
        "leaf's gradient is not locked): give each thread its own model (docs/threads.md)");
  CHECK(w.grad() == Array{2, 2});  // the first thread's gradient only
  // Once the other thread's backward() has returned, this thread may add to w.
  {
    Tape tape;
    sum(w * w).backward();
  }
  CHECK(w.grad() == Array{4, 6});
}

TEST_CASE("a Tape asked for its size from another thread than its own refuses") {
  Tape tape;
  std::string message;
  std::thread other([&] {
    try {
      (void)tape.size();
    } catch (const TapeError& e) {
      message = e.what();
    }
  });
  other.join();
  CHECK(message ==
        "Tape::size: called on another thread than the one that made the tape, which records "
        "on it; a Tape belongs to its thread");
  CHECK(tape.size() == 0);
}

TEST_CASE("100,000 training steps: the live-node count returns to its start after every step") {
  Tensor<double> w(Array{0.5, -0.5}, requires_grad);
  const Tensor<double> x(Array{1.0, 2.0});
  optim::SGD<double> sgd({w}, 0.01);
  const std::size_t with_model = live_node_count();
  long steps_with_leftovers = 0, tapes_not_empty_at_start = 0;
  for (int step = 0; step < 100000; ++step) {
    {
      Tape tape;
      tapes_not_empty_at_start += tape.size() != 0;
      sum(square(w * x - 1.0)).backward();
    }
    sgd.step();
    sgd.zero_grad();
    steps_with_leftovers += live_node_count() != with_model;
  }
  CHECK(steps_with_leftovers == 0);
  CHECK(tapes_not_empty_at_start == 0);
  CHECK(Tape::active() == nullptr);
}

TEST_CASE("a value that changes shape loses its old gradient; a resize behind its back is named") {
  Tensor<double> w(Array{1.0, 2.0}, requires_grad);
  {
    Tape tape;
    sum(w * w).backward();
  }
  w.set_value(Array{1.0, 2.0, 3.0});  // new shape: the gradient of the old one is dropped
  CHECK_FALSE(w.has_grad());
  {
    Tape tape;
    sum(w * w).backward();
  }
  CHECK(w.grad() == Array{2.0, 4.0, 6.0});
  w.set_value(Array{0.5, 0.5, 0.5});  // same shape: the gradient stays and accumulates
  CHECK(w.has_grad());

  w.mutable_value() = Array{1.0, 1.0};  // resized in place: the old gradient no longer fits
  Tape tape;
  CHECK_THROWS_WITH_AS(sum(w * w).backward(),
                       doctest::Contains("holds a gradient of shape (3,) from before its value was "
                                         "resized to (2,)"),
                       ShapeError);
}

TEST_CASE("graph_dot escapes names and tells leaves, constants and outer-tape inputs apart") {
  Tensor<double> x(2.0, requires_grad), w(3.0, requires_grad);
  const Tensor<double> c(4.0);
  Tape outer;
  const auto h = x * w;
  Tape inner;
  const auto y = h * c + w;
  const auto dot = graph_dot(y);
  CHECK(dot.find("label=\"mul") != std::string::npos);
  CHECK(dot.find("from an enclosing tape") != std::string::npos);  // h, recorded on `outer`
  CHECK(dot.find("label=\"constant") != std::string::npos);        // c
  CHECK(dot.find("label=\"leaf") != std::string::npos);            // w, unnamed
  // A name with a quote and a backslash stays inside its label.
  const auto named = graph_dot(y, {{"w \"weight\"\\", w}});
  CHECK(named.find("label=\"w \\\"weight\\\"\\\\\\n") != std::string::npos);
}

TEST_CASE("graph_dot labels inputs made without a tape and escapes custom op names") {
  Tensor<double> w(3.0, requires_grad);
  const auto untracked = w * 2.0;  // no tape yet
  const CustomOp<double> quoted(
      "say \"twice\"",
      [](const std::vector<Tensor<double>>& in) { return Array(in[0].value() * 2.0); },
      [](const CustomBackwardContext<double>& c) { return std::vector{c.grad_output() * 2.0}; });
  Tape tape;
  const auto dot = graph_dot(quoted({untracked * w}));
  CHECK(dot.find("computed without a tape") != std::string::npos);
  CHECK(dot.find("label=\"say \\\"twice\\\"\\n") != std::string::npos);
}

TEST_CASE("unravel_index refuses a position outside the shape") {
  CHECK(unravel_index(5, Shape{2, 3}) == std::vector<std::size_t>{1, 2});
  CHECK_THROWS_WITH_AS(unravel_index(6, Shape{2, 3}), doctest::Contains("outside shape (2, 3)"),
                       ValueError);
  CHECK_THROWS_AS(unravel_index(0, Shape{0, 3}), ValueError);
}

#if defined(__GLIBC__)
TEST_CASE("a long tape's record array is not kept for the thread's life once the tape is gone") {
  const auto bytes_in_use = [] {
    const auto info = mallinfo2();
    return info.uordblks + info.hblkhd;  // large blocks are mmapped, counted apart
  };
  const std::size_t before = bytes_in_use();
  {
    Tensor<double> x(0.5, requires_grad);
    Tape tape;
    Tensor<double> y = x;
    for (int i = 0; i < 200000; ++i) y = sin(y);
    CHECK(tape.size() == 200000);
  }
  // At most 4 MiB of records stay for the next tape, beside the node cache.
  CHECK(bytes_in_use() < before + (std::size_t{8} << 20));
}
#endif
