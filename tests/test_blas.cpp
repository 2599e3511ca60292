// OpenBLAS's thread count (blas.hpp), and training in several threads with it set to 1.
#include <thread>

#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

TEST_CASE("set_blas_threads sets OpenBLAS's thread count and refuses fewer than one") {
  const int before = blas_threads();
  CHECK(before >= 1);
  set_blas_threads(1);
  CHECK(blas_threads() == 1);
  set_blas_threads(2);
  CHECK(blas_threads() == 2);
  CHECK_THROWS_WITH_AS(set_blas_threads(0), "set_blas_threads: expected at least 1 thread, got 0",
                       ValueError);
  CHECK_THROWS_WITH_AS(set_blas_threads(-3), "set_blas_threads: expected at least 1 thread, got -3",
                       ValueError);
  CHECK(blas_threads() == 2);  // a refused count changes nothing
  set_blas_threads(before);
  CHECK(blas_threads() == before);
}

TEST_CASE(
    "two threads train MLPs through BLAS at once, with one BLAS thread: as if one after the "
    "other") {
  // matmul of (64, 32) x (32, 48) goes to OpenBLAS's gemm. No doctest assertions inside the
  // threads: the results are checked after join().
  auto train = [](std::uint64_t seed) {
    Generator random(seed);
    nn::MLP<double> mlp({32, 48, 1}, nn::Activation::Tanh,
                        nn::MLPOptions().linear(nn::LinearOptions().generator(random)));
    optim::SGD<double> sgd(mlp.parameters(), 0.05);
    const Tensor<double> x(test::random_array({64, 32}, seed));
    const Tensor<double> y(test::random_array({64, 1}, seed + 1));
    double loss = 0;
    for (int step = 0; step < 20; ++step) {
      Tape tape;
      const auto l = nn::mse(mlp(x), y);
      l.backward();
      loss = l.item();
      sgd.step();
      sgd.zero_grad();
    }
    return std::pair{loss, Array(mlp.parameters()[0].value())};
  };
  const int before = blas_threads();
  set_blas_threads(1);
  std::pair<double, Array> a, b;
  std::thread first([&] { a = train(1); });
  std::thread second([&] { b = train(2); });
  first.join();
  second.join();
  const auto alone_a = train(1), alone_b = train(2);
  set_blas_threads(before);
  CHECK(a.first == alone_a.first);  // bit-identical: one BLAS thread sums in a fixed order
  CHECK(b.first == alone_b.first);
  CHECK(a.second == alone_a.second);
  CHECK(b.second == alone_b.second);
  CHECK(a.first != b.first);
}
