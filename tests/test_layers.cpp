// nn/norm, nn/dropout, nn/embedding and module buffers: batch_norm, layer_norm and
// embedding against PyTorch (tests/fixtures/layers.npz, made by
// tests/fixtures/make_layers.py), gradchecks, dropout's mask and statistics, running
// statistics, buffers saved and loaded, train/eval, zero extents, printing and compile().
#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>

#include "fixture.hpp"
#include "helpers.hpp"
#include "io_helpers.hpp"
#include "tapegrad/io/npz.hpp"

using namespace tapegrad;
using io::IoError;
using Array = xt::xarray<double>;

namespace {

const test::NpzFixture& fixture() {
  static const test::NpzFixture file("layers.npz");
  return file;
}

const Array& get(const std::string& name) { return fixture().get(name); }

template <class T>
Tensor<T> tensor(const Array& a, bool grad = false) {
  return Tensor<T>(xt::xarray<T>(xt::cast<T>(a)), RequiresGrad{grad});
}

template <class T>
double max_diff(const xt::xarray<T>& a, const Array& b) {
  REQUIRE(a.shape() == b.shape());
  const Array ad = xt::cast<double>(a);
  return a.size() == 0 ? 0.0 : xt::amax(xt::abs(ad - b))();
}

// The largest difference from PyTorch seen per op, printed by the last test case.
std::map<std::string, double>& worst() {
  static std::map<std::string, double> w;
  return w;
}
void note(const std::string& op, double diff) { worst()[op] = std::max(worst()[op], diff); }

template <class T>
double tolerance() {
  return std::is_same_v<T, double> ? 1e-10 : 2e-5;
}

template <class T>
void check_batch_norm_case(const std::string& c, bool training) {
  const std::string p = "batch_norm." + c + ".";
  auto x = tensor<T>(get(p + "x"), true), w = tensor<T>(get(p + "weight"), true),
       b = tensor<T>(get(p + "bias"), true);
  auto rm = tensor<T>(get(p + "running_mean0")), rv = tensor<T>(get(p + "running_var0"));
  Tape tape;
  const auto y =
      nn::batch_norm<T>(x, rm, rv, w, b, training, get(p + "momentum")(), get(p + "eps")());
  sum(y * tensor<T>(get(p + "wy"))).backward();
  double d = 0;
  d = std::max(d, max_diff(y.value(), get(p + "y")));
  d = std::max(d, max_diff(x.grad(), get(p + "grad.x")));
  d = std::max(d, max_diff(w.grad(), get(p + "grad.weight")));
  d = std::max(d, max_diff(b.grad(), get(p + "grad.bias")));
  if (training) {
    d = std::max(d, max_diff(rm.value(), get(p + "running_mean")));
    d = std::max(d, max_diff(rv.value(), get(p + "running_var")));
  } else {
    // Evaluation changes nothing (float: the fixture's values rounded once).
    CHECK(max_diff(rm.value(), get(p + "running_mean0")) <= (std::is_same_v<T, double> ? 0 : 1e-7));
    CHECK(max_diff(rv.value(), get(p + "running_var0")) <= (std::is_same_v<T, double> ? 0 : 1e-7));
  }
  INFO("case " << c << ", T = " << (std::is_same_v<T, double> ? "double" : "float"));
  CHECK(d <= tolerance<T>());
  if (std::is_same_v<T, double>) note("batch_norm", d);
}

template <class T>
void check_layer_norm_case(const std::string& c, std::size_t k) {
  const std::string p = "layer_norm." + c + ".";
  auto x = tensor<T>(get(p + "x"), true), w = tensor<T>(get(p + "weight"), true),
       b = tensor<T>(get(p + "bias"), true);
  const Shape norm(x.shape().end() - static_cast<std::ptrdiff_t>(k), x.shape().end());
  Tape tape;
  const auto y = nn::layer_norm<T>(x, norm, w, b, get(p + "eps")());
  sum(y * tensor<T>(get(p + "wy"))).backward();
  double d = max_diff(y.value(), get(p + "y"));
  d = std::max(d, max_diff(x.grad(), get(p + "grad.x")));
  d = std::max(d, max_diff(w.grad(), get(p + "grad.weight")));
  d = std::max(d, max_diff(b.grad(), get(p + "grad.bias")));
  INFO("case " << c);
  CHECK(d <= tolerance<T>());
  if (std::is_same_v<T, double>) note("layer_norm", d);
}

std::vector<std::size_t> fixture_indices() {
  std::vector<std::size_t> indices;
  for (const double v : get("embedding.repeated.indices"))
    indices.push_back(static_cast<std::size_t>(v));
  return indices;
}

template <class T>
void check_embedding_case() {
  const std::string p = "embedding.repeated.";
  auto table = tensor<T>(get(p + "table"), true);
  Tape tape;
  const auto y = nn::embedding<T>(fixture_indices(), {2, 3}, table);
  sum(y * tensor<T>(get(p + "wy"))).backward();
  const double d =
      std::max(max_diff(y.value(), get(p + "y")), max_diff(table.grad(), get(p + "grad.table")));
  CHECK(d <= tolerance<T>());
  if (std::is_same_v<T, double>) note("embedding", d);
}

// A module with a parameter, a buffer of each kind and a child, for the buffer API.
struct Counter : nn::Module<double> {
  Tensor<double> scale, total, calls;
  std::shared_ptr<nn::BatchNorm1d<double>> norm;
  Counter() {
    scale = register_parameter("scale", Tensor<double>(2.0));
    total = register_buffer("total", Tensor<double>({0.0, 0.0}));
    calls = register_buffer("calls", Tensor<double>(0.0), nn::BufferKind::count);
    norm = register_module("norm", std::make_shared<nn::BatchNorm1d<double>>(2));
  }
  Tensor<double> forward(const Tensor<double>& x) override {
    total.mutable_value() += xt::sum(x.value(), {0});
    calls.mutable_value()() += 1;
    return (*norm)(x * scale);
  }
};

template <class T>
std::shared_ptr<nn::Sequential<T>> small_net() {
  Generator random(7);
  auto net = std::make_shared<nn::Sequential<T>>();
  net->push_back(std::make_shared<nn::Linear<T>>(3, 4, nn::LinearOptions().generator(random)));
  net->push_back(std::make_shared<nn::BatchNorm1d<T>>(4));
  net->push_back(std::make_shared<nn::ReLU<T>>());
  net->push_back(std::make_shared<nn::Dropout<T>>(0.25));  // the thread's default generator
  net->push_back(std::make_shared<nn::Linear<T>>(4, 2, nn::LinearOptions().generator(random)));
  return net;
}

template <class T>
std::map<std::string, xt::xarray<T>> state_of(const nn::Module<T>& m) {
  std::map<std::string, xt::xarray<T>> out;
  for (const auto& [name, t] : m.named_parameters()) out[name] = t.value();
  for (const auto& [name, t] : m.named_buffers()) out[name] = t.value();
  return out;
}

}  // namespace

TEST_CASE(
    "batch_norm against PyTorch: training (2-d, 3-d, 4-d) and evaluation, values, gradients, "
    "running statistics") {
  REQUIRE(fixture().size() == 97);
  for (const char* c : {"train2", "train3", "train4"}) {
    check_batch_norm_case<double>(c, true);
    check_batch_norm_case<float>(c, true);
  }
  for (const char* c : {"eval2", "eval4"}) {
    check_batch_norm_case<double>(c, false);
    check_batch_norm_case<float>(c, false);
  }
}

TEST_CASE(
    "layer_norm over the last one and two axes and embedding with repeated indices against "
    "PyTorch") {
  check_layer_norm_case<double>("last1", 1);
  check_layer_norm_case<double>("last2", 2);
  check_layer_norm_case<float>("last1", 1);
  check_layer_norm_case<float>("last2", 2);
  check_embedding_case<double>();
  check_embedding_case<float>();
}

TEST_CASE(
    "BatchNorm2d: running statistics and num_batches_tracked after 3 training steps match "
    "PyTorch") {
  nn::BatchNorm2d<double> bn(3);
  nn::BatchNorm2d<float> bn32(3);
  for (int i = 0; i < 3; ++i) {
    const Array& x = get("batch_norm.steps3.x" + std::to_string(i));
    bn(tensor<double>(x));
    bn32(tensor<float>(x));
  }
  const double d =
      std::max(max_diff(bn.running_mean().value(), get("batch_norm.steps3.running_mean")),
               max_diff(bn.running_var().value(), get("batch_norm.steps3.running_var")));
  CHECK(d <= 1e-10);
  note("batch_norm (3 steps)", d);
  CHECK(max_diff(bn32.running_mean().value(), get("batch_norm.steps3.running_mean")) <= 1e-5);
  CHECK(max_diff(bn32.running_var().value(), get("batch_norm.steps3.running_var")) <= 1e-4);
  CHECK(bn.num_batches_tracked().item() == get("batch_norm.steps3.num_batches_tracked")());
  CHECK(bn.num_batches_tracked().item() == 3);
  // Evaluation uses them and changes nothing.
  bn.eval();
  const auto x = tensor<double>(get("batch_norm.steps3.x0"));
  const auto y = bn(x);
  CHECK(bn.num_batches_tracked().item() == 3);
  const xt::xarray<double> rm = xt::reshape_view(bn.running_mean().value(), {1, 3, 1, 1});
  const xt::xarray<double> rv = xt::reshape_view(bn.running_var().value(), {1, 3, 1, 1});
  CHECK(xt::allclose(y.value(), (x.value() - rm) / xt::sqrt(rv + 1e-5), 1e-12, 1e-12));
}

TEST_CASE("gradcheck (float64) of batch_norm in training and evaluation, 2-d and 4-d") {
  const auto r = [](Shape s, std::uint64_t seed) { return test::random_array(s, seed, -1, 1); };
  const auto positive = [](Shape s, std::uint64_t seed) {
    return test::random_array(s, seed, 0.5, 1.5);
  };
  for (const Shape& shape : {Shape{4, 3}, Shape{2, 3, 2, 2}}) {
    INFO("shape " << shape_to_string(shape));
    // Training: fresh running statistics at each call (they are updated, not differentiated).
    test::require_gradcheck<double>(
        [](const std::vector<Tensor<double>>& v) {
          const std::size_t c = v[0].shape()[1];
          Tensor<double> rm(xt::xarray<double>(xt::zeros<double>({c}))),
              rv(xt::xarray<double>(xt::ones<double>({c})));
          return nn::batch_norm<double>(v[0], rm, rv, v[1], v[2], true);
        },
        {r(shape, 1), r({3}, 2), r({3}, 3)});
    test::require_gradcheck<double>(
        [](const std::vector<Tensor<double>>& v) {
          return nn::batch_norm<double>(v[0], std::nullopt, std::nullopt, std::nullopt,
                                        std::nullopt, true, 0.1, 1e-3);
        },
        {r(shape, 4)});
    // Evaluation: with respect to the input, the running statistics and the affine parameters.
    test::require_gradcheck<double>(
        [](const std::vector<Tensor<double>>& v) {
          return nn::batch_norm<double>(v[0], v[1], v[2], v[3], v[4], false);
        },
        {r(shape, 5), r({3}, 6), positive({3}, 7), r({3}, 8), r({3}, 9)});
  }
}

TEST_CASE(
    "gradcheck (float64) of layer_norm, embedding with repeated indices, and dropout with a fixed "
    "mask") {
  const auto r = [](Shape s, std::uint64_t seed) { return test::random_array(s, seed, -1, 1); };
  test::require_gradcheck<double>(
      [](const std::vector<Tensor<double>>& v) {
        return nn::layer_norm<double>(v[0], {4}, v[1], v[2]);
      },
      {r({3, 4}, 1), r({4}, 2), r({4}, 3)});
  test::require_gradcheck<double>(
      [](const std::vector<Tensor<double>>& v) {
        return nn::layer_norm<double>(v[0], {2, 3}, v[1], v[2], 1e-3);
      },
      {r({2, 2, 3}, 4), r({2, 3}, 5), r({2, 3}, 6)});
  test::require_gradcheck<double>(
      [](const std::vector<Tensor<double>>& v) { return nn::layer_norm<double>(v[0], {5}); },
      {r({2, 5}, 7)});
  test::require_gradcheck<double>(
      [](const std::vector<Tensor<double>>& v) {
        return nn::embedding<double>({2, 0, 2, 2, 3, 0}, {3, 2}, v[0]);
      },
      {r({4, 3}, 8)});
  // The same generator seed at every call: the same mask.
  test::require_gradcheck<double>(
      [](const std::vector<Tensor<double>>& v) {
        Generator random(11);
        return nn::dropout(v[0], 0.4, true, random);
      },
      {r({4, 5}, 9)});

  // The gradient is mask / (1 - p) exactly: 0 or 1 / (1 - p).
  Tensor<double> x(xt::xarray<double>(r({50}, 10)), requires_grad);
  Generator random(12);
  Tape tape;
  const auto y = nn::dropout(x, 0.25, true, random);
  sum(y).backward();
  std::size_t kept = 0;
  for (std::size_t i = 0; i < 50; ++i) {
    const double g = x.grad()(i);
    CHECK((g == 0.0 || g == 1.0 / 0.75));
    CHECK(y.value()(i) == x.value()(i) * g);
    kept += g != 0;
  }
  CHECK(kept > 0);
  CHECK(kept < 50);
}

TEST_CASE(
    "dropout: the fraction kept is close to 1 - p, kept values scaled by 1 / (1 - p); eval, p = 0 "
    "and p = 1") {
  const std::size_t n = 100000;
  Tensor<double> x(xt::xarray<double>(xt::ones<double>({n})));
  for (const double p : {0.1, 0.5, 0.8}) {
    Generator random(2026);
    const auto y = nn::dropout(x, p, true, random);
    std::size_t kept = 0, wrong = 0;
    for (const double v : y.value()) {
      kept += v != 0;
      wrong += v != 0 && v != 1 / (1 - p);
    }
    CHECK(wrong == 0);
    const double fraction = static_cast<double>(kept) / n;
    INFO("p = " << p << ", kept " << fraction);
    CHECK(std::abs(fraction - (1 - p)) < 0.01);  // sd is at most 0.0016 here
    CHECK(std::abs(xt::mean(y.value())() - 1.0) < 0.05);
  }
  Generator random(1);
  const auto identity = nn::dropout(x, 0.5, false, random);
  CHECK(identity.same_node(x));
  CHECK(nn::dropout(x, 0.0, true, random).same_node(x));
  CHECK(random.next_u64() == Generator(1).next_u64());  // nothing drawn
  Tensor<double> w({1.0, -2.0, 3.0}, requires_grad);
  Tape tape;
  const auto zero = nn::dropout(w, 1.0, true, random);
  CHECK(zero.value() == xt::xarray<double>({0.0, 0.0, 0.0}));
  sum(zero).backward();
  CHECK(w.grad() == xt::xarray<double>({0.0, 0.0, 0.0}));
  for (const double p : {-0.1, 1.5}) {
    CHECK_THROWS_WITH_AS(nn::dropout(x, p, true, random),
                         doctest::Contains("dropout: the probability p must be in [0, 1], got"),
                         ValueError);
  }
  CHECK_THROWS_WITH_AS(nn::Dropout<double>(1.5),
                       "Dropout: the probability p must be in [0, 1], got 1.5", ValueError);
}

TEST_CASE(
    "buffers: registered, named with dotted paths, not parameters, updated in place, refused when "
    "misused") {
  Counter m;
  CHECK(m.parameters().size() == 3);  // scale, norm.weight, norm.bias
  std::vector<std::string> names;
  for (const auto& [name, t] : m.named_buffers()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"total", "calls", "norm.running_mean", "norm.running_var",
                                          "norm.num_batches_tracked"});
  CHECK(m.buffers().size() == 5);
  CHECK(m.buffer_kind("calls") == nn::BufferKind::count);
  CHECK(m.buffer_kind("norm.num_batches_tracked") == nn::BufferKind::count);
  CHECK(m.buffer_kind("norm.running_var") == nn::BufferKind::values);
  CHECK_THROWS_WITH_AS(m.buffer_kind("nope"), "Module: no buffer named 'nope'", ValueError);
  for (const auto& b : m.buffers()) CHECK_FALSE(b.requires_grad());

  // The module's handle and the registry share the node; an optimizer never sees buffers.
  Tensor<double> x({{1.0, 2.0}, {3.0, 5.0}});
  optim::SGD<double> sgd(m.parameters(), 0.1);
  Tape tape;
  sum(square(m(x))).backward();
  sgd.step();
  CHECK(m.named_buffers()[0].second.value() == xt::xarray<double>({4.0, 7.0}));
  CHECK(m.named_buffers()[1].second.item() == 1);
  CHECK(m.named_buffers()[4].second.item() == 1);
  CHECK(m.norm->running_mean().value()(0) == doctest::Approx(0.1 * 4.0));  // mean of 2x: 4

  struct Bad : nn::Module<double> {
    Bad(int what) {
      register_parameter("w", Tensor<double>(1.0));
      if (what == 0) register_buffer("w", Tensor<double>(0.0));
      if (what == 1) register_buffer("b", Tensor<double>(0.0, requires_grad));
      if (what == 2) register_buffer("a.b", Tensor<double>(0.0));
      if (what == 3) {
        register_buffer("b", Tensor<double>(0.0));
        register_parameter("b", Tensor<double>(0.0));
      }
    }
  };
  CHECK_THROWS_WITH_AS(Bad(0), "Module: the name 'w' is registered already", ValueError);
  CHECK_THROWS_WITH_AS(
      Bad(1), "Module: buffer 'b' must be a leaf tensor that does not require grad (detach() it)",
      ValueError);
  CHECK_THROWS_WITH_AS(Bad(2), "Module: the name 'a.b' is empty or contains '.'", ValueError);
  CHECK_THROWS_WITH_AS(Bad(3), "Module: the name 'b' is registered already", ValueError);
}

TEST_CASE(
    "train() and eval() propagate through Sequential: batch norm and dropout switch behaviour") {
  auto net = small_net<double>();
  auto& bn = dynamic_cast<nn::BatchNorm1d<double>&>((*net)[1]);
  auto& drop = dynamic_cast<nn::Dropout<double>&>((*net)[3]);
  const Tensor<double> x(xt::xarray<double>(test::random_array({6, 3}, 3)));
  CHECK(bn.is_training());
  CHECK(drop.is_training());
  net->eval();
  CHECK_FALSE(bn.is_training());
  CHECK_FALSE(drop.is_training());
  const auto before = state_of(*net);
  const auto y1 = (*net)(x), y2 = (*net)(x);
  CHECK(y1.value() == y2.value());  // no mask, running statistics unchanged
  CHECK(state_of(*net) == before);
  net->train();
  CHECK(bn.is_training());
  CHECK(drop.is_training());
  (*net)(x);
  CHECK(bn.num_batches_tracked().item() == 1);
  CHECK_FALSE(bn.running_mean().value() == before.at("1.running_mean"));
}

TEST_CASE(
    "buffers are saved and loaded: save_state and save_torch_state round trips, file contents") {
  test::ScratchFolder folder;
  auto source = small_net<double>();
  for (int i = 0; i < 3; ++i)
    (*source)(Tensor<double>(xt::xarray<double>(test::random_array({5, 3}, 20 + i))));
  const auto saved = state_of(*source);

  io::save_state(*source, folder.file("state.npz"));
  io::save_torch_state(*source, folder.file("torch.npz"));
  for (const char* file : {"state.npz", "torch.npz"}) {
    std::map<std::string, io::NpyArray> members;
    for (auto& [name, array] : io::read_npz(folder.file(file))) members.emplace(name, array);
    CHECK(members.size() == 9);  // 3 layers with weight and bias, 3 buffers
    REQUIRE(members.count("1.num_batches_tracked") == 1);
    CHECK(members.at("1.num_batches_tracked").dtype() == io::DType::int64);
    CHECK(members.at("1.num_batches_tracked").shape() == Shape{});
    CHECK(members.at("1.num_batches_tracked").to<std::int64_t>()() == 3);
    CHECK(members.at("1.running_var").dtype() == io::DType::float64);
    CHECK(members.at("1.running_var").shape() == Shape{4});
  }

  auto state_target = small_net<double>();
  io::load_state(*state_target, folder.file("state.npz"));
  CHECK(state_of(*state_target) == saved);
  auto torch_target = small_net<double>();
  io::load_torch_state(*torch_target, folder.file("torch.npz"));
  CHECK(state_of(*torch_target) == saved);

  // The loaded buffers are the ones the layer uses.
  source->eval();
  torch_target->eval();
  const Tensor<double> x(xt::xarray<double>(test::random_array({2, 3}, 30)));
  CHECK((*source)(x).value() == (*torch_target)(x).value());

  // float: float32 values, the count still int64.
  auto f = small_net<float>();
  io::save_state(*f, folder.file("f.npz"));
  for (auto& [name, array] : io::read_npz(folder.file("f.npz"))) {
    CHECK(array.dtype() ==
          (name == "1.num_batches_tracked" ? io::DType::int64 : io::DType::float32));
  }
  auto f2 = small_net<float>();
  io::load_state(*f2, folder.file("f.npz"));
  CHECK(state_of(*f2) == state_of(*f));
}

TEST_CASE(
    "a PyTorch state_dict with BatchNorm1d buffers (int64 num_batches_tracked) loads and gives "
    "torch's outputs") {
  const std::string file = TAPEGRAD_FIXTURE_DIR "/layers_state_dict.npz";
  auto net = small_net<double>();
  io::load_torch_state(*net, file);
  auto& bn = dynamic_cast<nn::BatchNorm1d<double>&>((*net)[1]);
  CHECK(bn.num_batches_tracked().item() == 2);
  net->eval();
  const auto y = (*net)(tensor<double>(get("torch_state.bn_net.x")));
  const double d = max_diff(y.value(), get("torch_state.bn_net.y"));
  CHECK(d <= 1e-10);
  note("BatchNorm1d net from a state_dict", d);
  auto net32 = small_net<float>();
  io::load_torch_state(*net32, file, io::Narrowing::allow);
  net32->eval();
  CHECK(max_diff((*net32)(tensor<float>(get("torch_state.bn_net.x"))).value(),
                 get("torch_state.bn_net.y")) <= 1e-5);
  // And back: the same members, dtypes and shapes as PyTorch's file.
  test::ScratchFolder folder;
  io::save_torch_state(*net, folder.file("again.npz"));
  std::map<std::string, io::NpyArray> ours;
  for (auto& [name, array] : io::read_npz(folder.file("again.npz"))) ours.emplace(name, array);
  const auto theirs = io::read_npz(file);
  CHECK(ours.size() == theirs.size());
  for (const auto& [name, array] : theirs) {
    INFO(name);
    REQUIRE(ours.count(name) == 1);
    CHECK(ours.at(name).dtype() == array.dtype());
    CHECK(ours.at(name).shape() == array.shape());
    CHECK(ours.at(name).bytes() == array.bytes());
  }
}

TEST_CASE(
    "loading buffers into another architecture is refused, naming every difference, and changes "
    "nothing") {
  test::ScratchFolder folder;
  auto with_bn = small_net<double>();
  (*with_bn)(Tensor<double>(xt::xarray<double>(test::random_array({5, 3}, 1))));
  io::save_state(*with_bn, folder.file("bn.npz"));
  io::save_torch_state(*with_bn, folder.file("bn_torch.npz"));

  // Without the batch norm: three unexpected buffers (and its two parameters).
  nn::Sequential<double> plain(
      {std::make_shared<nn::Linear<double>>(3, 4), std::make_shared<nn::Identity<double>>(),
       std::make_shared<nn::ReLU<double>>(), std::make_shared<nn::Dropout<double>>(0.25),
       std::make_shared<nn::Linear<double>>(4, 2)});
  const auto plain_before = state_of(plain);
  CHECK_THROWS_WITH_AS(
      io::load_state(plain, folder.file("bn.npz")),
      doctest::Contains("does not match the model (nothing was loaded): unexpected 1.bias; "
                        "unexpected 1.num_batches_tracked; unexpected 1.running_mean; "
                        "unexpected 1.running_var; unexpected 1.weight"),
      IoError);
  CHECK_THROWS_WITH_AS(
      io::load_torch_state(plain, folder.file("bn_torch.npz")),
      doctest::Contains("unexpected 1.num_batches_tracked; unexpected 1.running_mean; "
                        "unexpected 1.running_var"),
      IoError);
  CHECK(state_of(plain) == plain_before);

  // The reverse: missing buffers.
  io::save_state(plain, folder.file("plain.npz"));
  const auto bn_before = state_of(*with_bn);
  CHECK_THROWS_WITH_AS(
      io::load_state(*with_bn, folder.file("plain.npz")),
      doctest::Contains("missing 1.weight; missing 1.bias; missing 1.running_mean; "
                        "missing 1.running_var; missing 1.num_batches_tracked"),
      IoError);
  CHECK(state_of(*with_bn) == bn_before);

  // Another width: every shape named.
  nn::Sequential<double> wide(
      {std::make_shared<nn::Linear<double>>(3, 4), std::make_shared<nn::BatchNorm1d<double>>(5)});
  CHECK_THROWS_WITH_AS(
      io::load_state(wide, folder.file("bn.npz")),
      doctest::Contains("1.weight has shape (4,) in the file but (5,) in the model; 1.bias "
                        "has shape (4,) in the file but (5,) in the model; 1.running_mean has "
                        "shape (4,) in the file but (5,) in the model; 1.running_var has shape "
                        "(4,) in the file but (5,) in the model; unexpected 4.bias; "
                        "unexpected 4.weight"),
      IoError);
  CHECK_THROWS_WITH_AS(
      io::load_torch_state(wide, folder.file("bn_torch.npz")),
      doctest::Contains("1.running_mean: file has (4,), expected (5,); 1.running_var: file "
                        "has (4,), expected (5,)"),
      IoError);

  // A count saved as a float (not as PyTorch keeps it) is refused by both.
  auto members = io::read_npz(folder.file("bn_torch.npz"));
  for (auto& [name, array] : members) {
    if (name == "1.num_batches_tracked") array = io::NpyArray::from(xt::xarray<double>(1.0));
  }
  io::write_npz(folder.file("float_count.npz"), members);
  CHECK_THROWS_WITH_AS(
      io::load_torch_state(*with_bn, folder.file("float_count.npz")),
      doctest::Contains("1.num_batches_tracked is float64 in the file but int64 in the model "
                        "(a count, as PyTorch's num_batches_tracked)"),
      IoError);
  CHECK_THROWS_WITH_AS(
      io::load_state(*with_bn, folder.file("float_count.npz")),
      doctest::Contains("1.num_batches_tracked is float64 in the file but int64 in the model"),
      IoError);
  CHECK(state_of(*with_bn) == bn_before);
}

TEST_CASE("zero extents: empty batches where PyTorch allows them") {
  SUBCASE("batch norm, training and evaluation, N = 0 and H = 0") {
    nn::BatchNorm1d<double> bn(3);
    Tensor<double> x(xt::xarray<double>(xt::zeros<double>({0, 3})), requires_grad);
    Tape tape;
    const auto y = bn(x);
    CHECK(y.shape() == Shape{0, 3});
    sum(y).backward();
    CHECK(bn.parameters()[0].grad() == xt::xarray<double>({0.0, 0.0, 0.0}));
    CHECK(bn.running_mean().value() ==
          xt::xarray<double>({0.0, 0.0, 0.0}));  // as PyTorch: unchanged
    CHECK(bn.running_var().value() == xt::xarray<double>({1.0, 1.0, 1.0}));
    CHECK(bn.num_batches_tracked().item() == 1);  // PyTorch counts the batch too
    bn.eval();
    CHECK(bn(x).shape() == Shape{0, 3});
    nn::BatchNorm2d<double> bn2(2);
    CHECK(bn2(Tensor<double>(xt::xarray<double>(xt::zeros<double>({2, 2, 0, 3})))).shape() ==
          Shape{2, 2, 0, 3});
    CHECK(bn2.running_mean().value() == xt::xarray<double>({0.0, 0.0}));
  }
  SUBCASE("layer norm, embedding, dropout") {
    nn::LayerNorm<double> ln({3});
    CHECK(ln(Tensor<double>(xt::xarray<double>(xt::zeros<double>({0, 3})))).shape() == Shape{0, 3});
    CHECK(nn::layer_norm(Tensor<double>(xt::xarray<double>(xt::zeros<double>({2, 0}))), {0})
              .shape() == Shape{2, 0});
    nn::Embedding<double> e(10, 3);
    Tape tape;
    const auto rows = e({}, {0, 2});
    CHECK(rows.shape() == Shape{0, 2, 3});
    sum(rows).backward();
    CHECK(xt::amax(xt::abs(e.weight().grad()))() == 0);
    Generator random(3);
    CHECK(nn::dropout(Tensor<double>(xt::xarray<double>(xt::zeros<double>({0, 4}))), 0.5, true,
                      random)
              .shape() == Shape{0, 4});
  }
}

TEST_CASE("errors name the layer and the values") {
  Tensor<double> x(xt::xarray<double>(xt::zeros<double>({1, 3})));
  nn::BatchNorm1d<double> bn(3);
  CHECK_THROWS_WITH_AS(
      bn(x),
      "batch_norm: Expected more than 1 value per channel when training, got input size (1, 3)",
      ValueError);
  CHECK(bn.num_batches_tracked().item() == 0);  // a call that throws changes nothing
  bn.eval();
  CHECK(bn(x).shape() == Shape{1, 3});  // fine in evaluation, as PyTorch
  CHECK_THROWS_WITH_AS(
      bn(Tensor<double>(xt::xarray<double>(xt::zeros<double>({2, 4})))),
      "batch_norm: running_mean has shape (3,) but the input (2, 4) has 4 channels", ShapeError);
  CHECK_THROWS_WITH_AS(
      bn(Tensor<double>(xt::xarray<double>(xt::zeros<double>({2, 3, 2, 2})))),
      "BatchNorm1d: expected 2D or 3D input, (N, C) or (N, C, L), got shape (2, 3, 2, 2)",
      ShapeError);
  nn::BatchNorm2d<double> bn2(3);
  CHECK_THROWS_WITH_AS(bn2(Tensor<double>(xt::xarray<double>(xt::zeros<double>({2, 3})))),
                       "BatchNorm2d: expected 4D input, (N, C, H, W), got shape (2, 3)",
                       ShapeError);
  CHECK_THROWS_WITH_AS(
      nn::batch_norm<double>(Tensor<double>(xt::xarray<double>(xt::zeros<double>({2, 3}))),
                             std::nullopt, std::nullopt, std::nullopt, std::nullopt, false),
      "batch_norm: evaluation (training = false) needs running_mean and running_var", ValueError);
  CHECK_THROWS_WITH_AS(nn::BatchNorm1d<double>(0),
                       "BatchNorm1d: num_features must be positive, got 0", ValueError);
  CHECK_THROWS_WITH_AS(nn::BatchNorm2d<double>(3, 1e-5, 1.5),
                       "BatchNorm2d: momentum must be in [0, 1], got 1.5", ValueError);
  {
    // The functions check their settings too: a NaN momentum or eps would give NaN unseen.
    const Tensor<double> x(xt::xarray<double>(xt::ones<double>({4, 3})));
    Tensor<double> mean(xt::xarray<double>(xt::zeros<double>({3}))),
        var(xt::xarray<double>(xt::ones<double>({3})));
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH_AS(
        nn::batch_norm<double>(x, mean, var, std::nullopt, std::nullopt, true, nan),
        doctest::Contains("batch_norm: momentum must be in [0, 1], got"), ValueError);
    CHECK_THROWS_WITH_AS(
        nn::batch_norm<double>(x, mean, var, std::nullopt, std::nullopt, true, 0.1, -1.0),
        doctest::Contains("batch_norm: eps must be finite and >= 0, got -1"), ValueError);
    CHECK(mean.value()(0) == 0.0);  // nothing changed by a refused call
    CHECK_THROWS_WITH_AS(nn::layer_norm<double>(x, {3}, std::nullopt, std::nullopt, nan),
                         doctest::Contains("layer_norm: eps must be finite and >= 0, got"),
                         ValueError);
  }
  CHECK_THROWS_WITH_AS(
      nn::layer_norm(Tensor<double>(xt::xarray<double>(xt::zeros<double>({2, 3}))), {2}),
      "layer_norm: normalized_shape (2,) is not the trailing shape of the input (2, 3) (it must "
      "name at least one axis)",
      ShapeError);
  Tensor<double> table(xt::xarray<double>(xt::zeros<double>({10, 3})));
  CHECK_THROWS_WITH_AS(
      nn::embedding<double>({1, 2, 12, 3}, table),
      "embedding: index 12 at position 2 is out of range for a table of 10 rows (num_embeddings)",
      ValueError);
  CHECK_THROWS_WITH_AS(nn::embedding<double>({1, 2, 3}, {2, 2}, table),
                       "embedding: 3 indices for a leading shape (2, 2) of 4 elements", ShapeError);
  // (2^32, 2^32) has 2^64 elements, 0 modulo 2^64: not taken for an empty leading shape.
  CHECK_THROWS_WITH_AS(
      nn::embedding<double>({}, {std::size_t{1} << 32, std::size_t{1} << 32}, table),
      "embedding: the shape (4294967296, 4294967296) has more elements than fit in memory (over "
      "1152921504606846975)",
      ShapeError);
  nn::Embedding<double> e(4, 2);
  CHECK_THROWS_WITH_AS(e(table), doctest::Contains("Embedding: forward takes a list of indices"),
                       ValueError);
}

TEST_CASE("modules print as PyTorch's repr; initialisers as PyTorch's") {
  CHECK(to_string(nn::BatchNorm2d<double>(32)) ==
        "BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
  CHECK(to_string(nn::BatchNorm1d<float>(3, 1e-3, 0.3, false)) ==
        "BatchNorm1d(3, eps=0.001, momentum=0.3, affine=False, track_running_stats=True)");
  CHECK(to_string(nn::Dropout<double>(0.25)) == "Dropout(p=0.25, inplace=False)");
  CHECK(to_string(nn::Dropout<double>()) == "Dropout(p=0.5, inplace=False)");
  CHECK(to_string(nn::Dropout<double>(1.0)) == "Dropout(p=1.0, inplace=False)");
  CHECK(to_string(nn::LayerNorm<double>({8})) ==
        "LayerNorm((8,), eps=1e-05, elementwise_affine=True)");
  CHECK(to_string(nn::LayerNorm<double>({2, 3}, 1e-6, false)) ==
        "LayerNorm((2, 3), eps=1e-06, elementwise_affine=False)");
  CHECK(to_string(nn::Embedding<double>(10, 3)) == "Embedding(10, 3)");
  CHECK(to_string(*small_net<double>()) ==
        "Sequential(\n"
        "  (0): Linear(in_features=3, out_features=4, bias=True)\n"
        "  (1): BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (2): ReLU()\n"
        "  (3): Dropout(p=0.25, inplace=False)\n"
        "  (4): Linear(in_features=4, out_features=2, bias=True)\n"
        ")");

  nn::BatchNorm2d<double> bn(2);
  CHECK(bn.parameters()[0].value() == xt::xarray<double>({1.0, 1.0}));
  CHECK(bn.parameters()[1].value() == xt::xarray<double>({0.0, 0.0}));
  CHECK(bn.running_var().value() == xt::xarray<double>({1.0, 1.0}));
  CHECK(nn::BatchNorm1d<double>(3, 1e-5, 0.1, false).parameters().empty());
  nn::LayerNorm<double> ln({2, 2});
  CHECK(ln.parameters()[0].value() == xt::xarray<double>(xt::ones<double>({2, 2})));
  CHECK(ln.parameters()[1].value() == xt::xarray<double>(xt::zeros<double>({2, 2})));
  // N(0, 1) from the generator, row-major.
  Generator random(99), replay(99);
  nn::Embedding<double> e(200, 5, random);
  CHECK(e.weight().value()(0, 0) == replay.normal());
  CHECK(e.weight().value()(0, 1) == replay.normal());
  const auto& w = e.weight().value();
  CHECK(std::abs(xt::mean(w)()) < 0.1);
  CHECK(std::abs(xt::stddev(w)() - 1) < 0.1);
}

TEST_CASE(
    "compile(): refuses training dropout and batch norm; evaluation compiles and gives the eager "
    "numbers") {
  auto net = small_net<double>();
  const Tensor<double> x(xt::xarray<double>(test::random_array({6, 3}, 40)));
  const Tensor<double> target(xt::xarray<double>(test::random_array({6, 2}, 41)));
  const auto loss = [&] { return mean(square((*net)(x)-target)); };
  CHECK_THROWS_WITH_AS(
      compile(net->parameters(), loss),
      doctest::Contains("batch_norm: in training it updates the running statistics outside the "
                        "tape, which a compiled step would not replay"),
      TapeError);
  CHECK(dynamic_cast<nn::BatchNorm1d<double>&>((*net)[1]).num_batches_tracked().item() == 0);
  nn::Dropout<double> drop(0.5);
  Tensor<double> w(xt::xarray<double>(test::random_array({4}, 42)), requires_grad);
  CHECK_THROWS_WITH_AS(
      compile<double>({w}, [&] { return sum(drop(w)); }),
      doctest::Contains("dropout: a compiled step would replay the mask drawn at compile time"),
      TapeError);
  drop.eval();
  CHECK(compile<double>({w}, [&] { return sum(drop(w)); }).run() ==
        doctest::Approx(xt::sum(w.value())()));

  // Some training first, so that the running statistics are not the initial ones.
  for (int i = 0; i < 3; ++i)
    (*net)(Tensor<double>(xt::xarray<double>(test::random_array({6, 3}, 50 + i))));
  net->eval();
  auto step = compile(net->parameters(), loss);
  const auto eager = [&] {
    net->zero_grad();
    Tape tape;
    const auto l = loss();
    l.backward();
    std::vector<xt::xarray<double>> grads;
    for (const auto& p : net->parameters()) grads.push_back(p.grad());
    return std::make_pair(l.item(), grads);
  };
  for (int round = 0; round < 2; ++round) {
    const auto [value, grads] = eager();
    net->zero_grad();
    CHECK(step.run() == doctest::Approx(value).epsilon(1e-14));
    const auto params = net->parameters();
    for (std::size_t i = 0; i < params.size(); ++i)
      CHECK(test::all_close(params[i].grad(), grads[i], 1e-12, 1e-14));
    // The step reads the running statistics' current values: change them eagerly.
    net->train();
    (*net)(Tensor<double>(xt::xarray<double>(test::random_array({6, 3}, 60 + round))));
    net->eval();
  }
}

TEST_CASE("largest differences from PyTorch (float64)") {
  for (const auto& [op, d] : worst()) MESSAGE(op << ": " << d);
  CHECK(worst().size() >= 3);
}
