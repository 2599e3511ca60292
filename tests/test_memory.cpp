// The array cache (memory.hpp): a training loop reuses the storage its last step freed.
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <thread>
#include <xtensor/xview.hpp>

#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

#if defined(__SANITIZE_ADDRESS__)
#define TAPEGRAD_TEST_CACHE 0  // the library leaves every free to AddressSanitizer
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPEGRAD_TEST_CACHE 0
#endif
#endif
#ifndef TAPEGRAD_TEST_CACHE
#define TAPEGRAD_TEST_CACHE 1
#endif

namespace {

struct SmallNet {
  Generator random{7};
  nn::MLP<double> model{{64, 64, 64, 64},
                        nn::Activation::ReLU,
                        nn::MLPOptions().linear(nn::LinearOptions().generator(random))};
  optim::SGD<double> sgd{model.parameters(), 0.01};
  Tensor<double> x{Array(xt::ones<double>({256, 64}) * 0.25)};
  Tensor<double> y{Array(xt::ones<double>({256, 64}) * 0.5)};

  double step() {
    double loss = 0;
    {
      Tape tape;
      const auto l = nn::mse(model(x), y);
      l.backward();
      loss = l.item();
    }
    sgd.step();
    sgd.zero_grad();
    return loss;
  }
};

#if TAPEGRAD_TEST_CACHE
long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}
#endif

// The same steps with the cache on and off give the same numbers.
std::vector<double> losses_with_limit(std::size_t limit) {
  const std::size_t old = array_cache_limit();
  set_array_cache_limit(limit);
  SmallNet net;
  std::vector<double> losses;
  for (int i = 0; i < 4; ++i) losses.push_back(net.step());
  losses.push_back(net.model.linear_layers()[0]->weight().value()(3, 5));
  set_array_cache_limit(old);
  return losses;
}

}  // namespace

TEST_CASE("the array cache changes no number") {
  const auto cached = losses_with_limit(std::size_t{64} << 20);
  const auto uncached = losses_with_limit(0);
  REQUIRE(cached.size() == uncached.size());
  for (std::size_t i = 0; i < cached.size(); ++i) CHECK(cached[i] == uncached[i]);
}

TEST_CASE("an array made on cached storage has the shape and strides of a fresh one") {
  // (1, 300) and (300, 1) have extents of 1, whose strides xtensor sets to 0: a block
  // freed as one shape comes back as the other.
  Tensor<double> a(Array(xt::arange<double>(300).reshape({1, 300})), requires_grad);
  for (int round = 0; round < 3; ++round) {
    Tape tape;
    const auto t = transpose(a);  // (300, 1)
    CHECK(t.shape() == Shape{300, 1});
    CHECK(t.value()(299, 0) == 299.0);
    CHECK(xt::view(t.value(), xt::all(), 0)(17) == 17.0);
    const auto back = reshape(t, {1, 300});
    CHECK(back.value() == a.value());
    sum(back * back).backward();
    CHECK(a.grad()(0, 299) == doctest::Approx(2 * 299.0 * (round + 1)));
  }
}

#if TAPEGRAD_TEST_CACHE
TEST_CASE("a training loop's steady state takes its arrays from the cache, not from the kernel") {
  SmallNet net;
  for (int i = 0; i < 3; ++i) net.step();
  CHECK(cached_array_bytes() > 0);
  // Before the cache, each step of this 64x256 network faulted in ~380 fresh pages, as
  // glibc gave its freed 128 KiB blocks back to the kernel.
  const long before = minor_faults();
  for (int i = 0; i < 10; ++i) net.step();
  CHECK(minor_faults() - before < 20);
}

TEST_CASE("the array cache keeps to its limit, and releases on request") {
  const std::size_t old = array_cache_limit();
  CHECK(old == std::size_t{64} << 20);
  set_array_cache_limit(std::size_t{100} << 10);
  {
    SmallNet net;
    net.step();
    CHECK(cached_array_bytes() > 0);
    CHECK(cached_array_bytes() <= std::size_t{100} << 10);
  }
  release_cached_arrays();
  CHECK(cached_array_bytes() == 0);
  set_array_cache_limit(0);
  {
    SmallNet net;
    net.step();
    CHECK(cached_array_bytes() == 0);
  }
  set_array_cache_limit(old);
}

TEST_CASE("arrays that no op asks for again are not kept") {
  // A copy of each input batch, as a training loop makes with Tensor<T>(x): kept, they
  // would fill the cache to its limit (this cost Fashion-MNIST 57 MiB of peak memory).
  release_cached_arrays();
  for (int step = 0; step < 50; ++step) {
    const Tensor<double> batch(Array(xt::ones<double>({64, 789}) * step));
    CHECK(batch.value()(3, 5) == step);
  }
  CHECK(cached_array_bytes() == 0);
  // Ops' results of that size are asked for again: their blocks are kept, as many as a
  // step needs at once, and no more however many steps run.
  Tensor<double> w(Array(xt::ones<double>({64, 789})), requires_grad);
  const auto step = [&] {
    {
      Tape tape;
      sum(w * w).backward();
    }
    w.zero_grad();
  };
  for (int i = 0; i < 3; ++i) step();
  const std::size_t kept = cached_array_bytes();
  CHECK(kept > 0);
  CHECK(kept % (64 * 789 * sizeof(double)) == 0);
  for (int i = 0; i < 20; ++i) step();
  CHECK(cached_array_bytes() == kept);
}

TEST_CASE("each thread has its own array cache") {
  release_cached_arrays();
  std::size_t other_thread_bytes = 0;
  std::thread worker([&] {
    SmallNet net;
    net.step();
    other_thread_bytes = cached_array_bytes();
  });
  worker.join();
  CHECK(other_thread_bytes > 0);
  CHECK(cached_array_bytes() == 0);
}
#endif

TEST_CASE(
    "a convolution's scratch columns are counted, and release_cached_arrays gives them back") {
  // conv2d unfolds one image at a time into the thread's scratch memory, kept from call to
  // call (also where arrays are not cached: it is not an array).
  release_cached_arrays();
  REQUIRE(cached_array_bytes() == 0);
  Tensor<double> x(test::random_array({2, 3, 10, 10}, 3), requires_grad);
  const Tensor<double> w(test::random_array({4, 3, 3, 3}, 4), requires_grad);
  Array first_value, first_dx;
  {
    Tape tape;
    const auto y = conv2d(x, w);
    sum(y * y).backward();
    first_value = y.value();
    first_dx = x.grad();
  }
  // One image's columns: C kh kw = 27 rows of Ho Wo = 64 values.
  CHECK(cached_array_bytes() >= 27 * 64 * sizeof(double));
  release_cached_arrays();
  CHECK(cached_array_bytes() == 0);
  // After the release the scratch is made anew: the same numbers.
  x.zero_grad();
  Tape tape;
  const auto y = conv2d(x, w);
  sum(y * y).backward();
  CHECK(xt::amax(xt::abs(y.value() - first_value))() == 0);
  CHECK(xt::amax(xt::abs(x.grad() - first_dx))() == 0);
}

namespace {

// Resident memory of the process, in bytes (Linux: /proc/self/statm); 0 elsewhere.
std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// A small MLP trained by SGD, one step at a time; the same seed gives the same numbers.
struct TinyNet {
  Generator random{11};
  nn::MLP<double> model{{8, 16, 16, 1},
                        nn::Activation::Tanh,
                        nn::MLPOptions().linear(nn::LinearOptions().generator(random))};
  optim::SGD<double> sgd{model.parameters(), 0.01};
  Tensor<double> x{test::random_array({32, 8}, 1)};
  Tensor<double> y{test::random_array({32, 1}, 2)};

  double step() {
    const auto loss = nn::mse(model(x), y);
    loss.backward();
    sgd.step();
    sgd.zero_grad();
    return loss.item();
  }
};

}  // namespace

TEST_CASE(
    "one Tape kept around 10,000 training steps: memory stays flat, and the numbers are those of "
    "one Tape per step") {
  constexpr int kSteps = 10000;
  TinyNet reference;
  double reference_loss = 0;
  for (int i = 0; i < kSteps; ++i) {
    Tape tape;
    reference_loss = reference.step();
  }

  TinyNet net;
  Tape tape;  // the natural mistake: one tape for the whole loop
  double loss = 0;
  for (int i = 0; i < 1000; ++i) loss = net.step();
  const std::size_t nodes = live_node_count();
  const std::size_t resident = resident_bytes();
  for (int i = 1000; i < kSteps; ++i) {
    loss = net.step();
    // Each backward() used up its step's records, so the tape released them and the
    // intermediates they held (before, every step added its ~20 nodes for good).
    if (i % 1000 == 999) REQUIRE(live_node_count() == nodes);
  }
  CHECK(tape.size() > static_cast<std::size_t>(kSteps) * 10);  // everything was recorded on it
  if (!test::kSanitized) {  // (AddressSanitizer keeps freed blocks in quarantine)
    CHECK(resident_bytes() < resident + (std::size_t{4} << 20));
  }
  CHECK(loss == reference_loss);
  const auto& a = net.model.linear_layers()[0]->weight().value();
  const auto& b = reference.model.linear_layers()[0]->weight().value();
  CHECK(a == b);
}
