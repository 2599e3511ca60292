// nn: modules, parameter names, layers, the MLP helper, initializers, a custom module.
#include <cmath>
#include <sstream>

#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

TEST_CASE("an MLP names its parameters like PyTorch and counts them") {
  nn::MLP<double> mlp({2, 10, 1}, nn::Activation::Sigmoid);
  const auto named = mlp.named_parameters();
  REQUIRE(named.size() == 4);
  CHECK(named[0].first == "0.weight");
  CHECK(named[1].first == "0.bias");
  CHECK(named[2].first == "2.weight");
  CHECK(named[3].first == "2.bias");
  CHECK(named[0].second.shape() == Shape{2, 10});
  CHECK(named[3].second.shape() == Shape{1});
  CHECK(mlp.parameter_count() == 2 * 10 + 10 + 10 + 1);
  CHECK(mlp.size() == 4);  // Linear, Sigmoid, Linear, Sigmoid
  CHECK(mlp.activations() == std::vector{nn::Activation::Sigmoid, nn::Activation::Sigmoid});
  for (const auto& p : mlp.parameters()) CHECK(p.requires_grad());
  // The registry and the layer share the node: an in-place change is seen by both.
  mlp.parameters()[0].mutable_value()(0, 0) = 42;
  CHECK(mlp.linear_layers()[0]->weight().value()(0, 0) == 42);
}

TEST_CASE("MLP options: output activation, no bias, initializers") {
  nn::MLP<double> logits(
      {3, 4, 2}, nn::Activation::ReLU,
      nn::MLPOptions()
          .output_activation(nn::Activation::Identity)
          .linear(nn::LinearOptions().bias(false).weight_init(nn::Init::constant(0.5))));
  CHECK(logits.activations() == std::vector{nn::Activation::ReLU, nn::Activation::Identity});
  CHECK(logits.named_parameters().size() == 2);
  CHECK_THROWS_AS(logits.linear_layers()[0]->bias(), ValueError);
  const auto y = logits(Tensor<double>(Array{{1.0, -2.0, 3.0}}));
  // relu(x W) with W = 0.5: 0.5 * (1 - 2 + 3) = 1 per hidden unit; output 4 * 0.5 = 2.
  CHECK(y.value() == Array{{2.0, 2.0}});
  CHECK_THROWS_AS(nn::MLP<double>({3}, nn::Activation::ReLU), ValueError);
}

TEST_CASE("Linear computes x W + b for batches and single samples, and names bad shapes") {
  nn::Linear<double> layer(
      3, 2,
      nn::LinearOptions().weight_init(nn::Init::constant(1)).bias_init(nn::Init::constant(0.5)));
  CHECK(layer(Tensor<double>(Array{{1.0, 2.0, 3.0}, {0.0, 0.0, 1.0}})).value() ==
        Array{{6.5, 6.5}, {1.5, 1.5}});
  CHECK(layer(Tensor<double>(Array{1.0, 1.0, 1.0})).value() == Array{3.5, 3.5});
  CHECK_THROWS_WITH_AS(layer(Tensor<double>(Array{{1.0, 2.0}})),
                       "Linear(3 -> 2): the input has shape (1, 2); expected (N, 3) or (3,)",
                       ShapeError);
  CHECK_THROWS_AS(nn::Linear<double>(0, 2), ValueError);
}

TEST_CASE("initializers are reproducible from a seed and have the stated spread") {
  auto draw = [](const nn::Init& init, std::uint64_t seed, Shape shape) {
    Generator random(seed);
    Array a = xt::empty<double>(shape);
    init.fill(a, random);
    return a;
  };
  CHECK(draw(nn::Init::uniform(0, 1), 7, {50, 40}) == draw(nn::Init::uniform(0, 1), 7, {50, 40}));
  CHECK(draw(nn::Init::uniform(0, 1), 7, {50, 40}) != draw(nn::Init::uniform(0, 1), 8, {50, 40}));

  const auto u = draw(nn::Init::uniform(0, 1), 1, {100, 100});
  CHECK(xt::amin(u)() >= 0);
  CHECK(xt::amax(u)() < 1);
  CHECK(xt::mean(u)() == doctest::Approx(0.5).epsilon(0.02));

  const auto g = draw(nn::Init::normal(1, 2), 2, {100, 100});
  CHECK(xt::mean(g)() == doctest::Approx(1).epsilon(0.05));
  CHECK(xt::stddev(g)() == doctest::Approx(2).epsilon(0.03));

  const auto xavier = draw(nn::Init::xavier_uniform(), 3, {200, 100});
  const double bound = std::sqrt(6.0 / 300.0);
  CHECK(xt::amax(xt::abs(xavier))() <= bound);
  CHECK(xt::amax(xt::abs(xavier))() > 0.95 * bound);
  CHECK(xt::stddev(draw(nn::Init::xavier_normal(), 4, {200, 100}))() ==
        doctest::Approx(std::sqrt(2.0 / 300.0)).epsilon(0.03));
  CHECK(xt::amax(xt::abs(draw(nn::Init::he_uniform(), 5, {150, 100})))() <= std::sqrt(6.0 / 150.0));
  CHECK(xt::stddev(draw(nn::Init::he_normal(), 6, {200, 100}))() ==
        doctest::Approx(std::sqrt(2.0 / 200.0)).epsilon(0.03));

  // A layer made from a seeded generator is the same every time.
  Generator r1(11), r2(11);
  nn::Linear<double> a(4, 3, nn::LinearOptions().generator(r1));
  nn::Linear<double> b(4, 3, nn::LinearOptions().generator(r2));
  CHECK(a.weight().value() == b.weight().value());
  manual_seed(5);
  nn::Linear<double> c(4, 3);
  manual_seed(5);
  nn::Linear<double> d(4, 3);
  CHECK(c.weight().value() == d.weight().value());
}

namespace {
// A user's own module, in a few lines: y = scale * x + shift.
struct Affine : nn::Module<double> {
  Tensor<double> scale, shift;
  Affine() {
    scale = register_parameter("scale", Tensor<double>(0.0));
    shift = register_parameter("shift", Tensor<double>(0.0));
  }
  Tensor<double> forward(const Tensor<double>& x) override { return x * scale + shift; }
};

// A module with a child and a parameter of its own.
struct Wrapper : nn::Module<double> {
  std::shared_ptr<Affine> inner;
  Tensor<double> gain;
  Wrapper() {
    gain = register_parameter("gain", Tensor<double>(1.0));
    inner = register_module("inner", std::make_shared<Affine>());
  }
  Tensor<double> forward(const Tensor<double>& x) override { return gain * (*inner)(x); }
};
}  // namespace

TEST_CASE("a custom Module subclass trains") {
  Affine model;
  optim::SGD<double> sgd(model.parameters(), 0.1);
  const Tensor<double> x(Array{-1.0, 0.0, 1.0, 2.0});
  const Tensor<double> y(Array{-2.0, 1.0, 4.0, 7.0});  // y = 3x + 1
  for (int step = 0; step < 500; ++step) {
    Tape tape;
    nn::mse(model(x), y).backward();
    sgd.step();
    sgd.zero_grad();
  }
  CHECK(model.scale.item() == doctest::Approx(3).epsilon(1e-6));
  CHECK(model.shift.item() == doctest::Approx(1).epsilon(1e-6));
}

TEST_CASE("nested modules: names, train/eval, zero_grad, bad registrations") {
  Wrapper w;
  const auto named = w.named_parameters();
  REQUIRE(named.size() == 3);
  CHECK(named[0].first == "gain");
  CHECK(named[1].first == "inner.scale");
  CHECK(named[2].first == "inner.shift");
  w.eval();
  CHECK_FALSE(w.is_training());
  CHECK_FALSE(w.inner->is_training());
  w.train();
  CHECK(w.inner->is_training());
  {
    Tape tape;
    sum(w(Tensor<double>(Array{1.0, 2.0}))).backward();
  }
  CHECK(w.inner->shift.has_grad());
  w.zero_grad();
  CHECK_FALSE(w.inner->shift.has_grad());

  struct Bad : nn::Module<double> {
    Tensor<double> forward(const Tensor<double>& x) override { return x; }
    void add(const std::string& name) { register_parameter(name, Tensor<double>(1.0)); }
  } bad;
  bad.add("a");
  CHECK_THROWS_WITH_AS(bad.add("a"), doctest::Contains("registered already"), ValueError);
  CHECK_THROWS_AS(bad.add("a.b"), ValueError);
  CHECK_THROWS_AS(bad.add(""), ValueError);
}

TEST_CASE("named_modules lists every module with its path, in named_parameters' order") {
  nn::Sequential<double> seq;
  seq.push_back(std::make_shared<nn::Linear<double>>(2, 3));
  seq.push_back(std::make_shared<nn::Tanh<double>>());
  auto wrapper = seq.push_back(std::make_shared<Wrapper>());
  const auto& const_seq = seq;
  const auto modules = const_seq.named_modules();
  std::vector<std::string> paths;
  for (const auto& entry : modules) paths.push_back(entry.first);
  CHECK(paths == std::vector<std::string>{"", "0", "1", "2", "2.inner"});
  CHECK(modules[0].second == &seq);
  CHECK(modules[2].second == &seq[1]);
  CHECK(modules[4].second == wrapper->inner.get());
  CHECK(dynamic_cast<const nn::Linear<double>*>(modules[1].second) != nullptr);
  // Each parameter's name is its module's path, a dot, and its own name, and the modules
  // come in the order their parameters do.
  std::vector<std::string> from_modules;
  for (const auto& [path, module] : modules) {
    for (const auto& entry : module->named_parameters()) {
      if (entry.first.find('.') == std::string::npos) {  // its own, not a child's
        from_modules.push_back(path.empty() ? entry.first : path + "." + entry.first);
      }
    }
  }
  std::vector<std::string> names;
  for (const auto& entry : seq.named_parameters()) names.push_back(entry.first);
  CHECK(from_modules == names);
  // The non-const overload gives modules one can change.
  for (auto& [path, module] : seq.named_modules()) module->eval();
  CHECK_FALSE(wrapper->inner->is_training());
  nn::Tanh<double> leaf;
  CHECK(leaf.named_modules().size() == 1);
}

TEST_CASE("activation modules apply their function") {
  const Tensor<double> x(Array{-1.0, 0.0, 2.0});
  CHECK(nn::ReLU<double>()(x).value() == Array{0, 0, 2});
  CHECK(nn::Identity<double>()(x).value() == x.value());
  CHECK(nn::Sigmoid<double>()(x).value()(1) == 0.5);
  CHECK(nn::Tanh<double>()(x).value()(2) == doctest::Approx(std::tanh(2.0)));
  CHECK(nn::LeakyReLU<double>()(x).value()(0) == doctest::Approx(-0.01));
  CHECK(nn::Softplus<double>()(x).value()(1) == doctest::Approx(std::log(2.0)));
}

TEST_CASE("Sequential: a refused module leaves it unchanged; a bad index is named") {
  nn::Sequential<double> seq;
  seq.push_back(std::make_shared<nn::Linear<double>>(2, 3));
  CHECK_THROWS_AS(seq.push_back(std::shared_ptr<nn::Linear<double>>()), ValueError);
  CHECK(seq.size() == 1);
  seq.push_back(std::make_shared<nn::Tanh<double>>());
  CHECK(seq.size() == 2);
  CHECK(seq.named_parameters().size() == 2);
  const auto y = seq(Tensor<double>(Array{{1.0, -1.0}}));
  CHECK(y.shape() == Shape{1, 3});
  CHECK_THROWS_WITH_AS(seq[2], doctest::Contains("module 2 asked for, but it holds 2"), ValueError);
}

namespace {

// A user module with two inputs: it defines forward(x, y) and leaves forward(x) alone.
struct Bilinear : nn::Module<double> {
  Tensor<double> w;
  Bilinear() { w = register_parameter("w", Tensor<double>(2.0)); }
  using Module::operator();
  Tensor<double> forward(const Tensor<double>& x, const Tensor<double>& y) { return w * x * y; }
  Tensor<double> operator()(const Tensor<double>& x, const Tensor<double>& y) {
    return forward(x, y);
  }
};

// A user module that names itself and shows a setting, with children.
struct Encoder : nn::Module<double> {
  std::shared_ptr<nn::LSTMCell<double>> cell;
  std::shared_ptr<nn::Linear<double>> head;
  Encoder() {
    cell = register_module("cell", std::make_shared<nn::LSTMCell<double>>(3, 5));
    head = register_module("head", std::make_shared<nn::Linear<double>>(5, 1));
  }
  std::string type_name() const override { return "MyEncoder"; }
  std::string extra_repr() const override { return "dropout=0\nsteps=7"; }
};

}  // namespace

TEST_CASE("a module with two inputs needs no one-input forward, which then names the module") {
  Bilinear m;
  Tape tape;
  const Tensor<double> x(Array{1.0, 2.0}, requires_grad), y(Array{3.0, -1.0});
  const auto z = m(x, y);
  CHECK(z.value() == Array{6.0, -4.0});
  sum(z).backward();
  CHECK(m.w.grad()() == 1.0);  // 1 * 3 + 2 * (-1)
  CHECK(x.grad() == Array{6.0, -2.0});
  CHECK_THROWS_WITH_AS(m(x),
                       "Bilinear: forward(input) is not defined: this module takes several inputs; "
                       "call its own forward(...) overloads",
                       ValueError);
  nn::Module<double>& base = m;
  CHECK_THROWS_AS(base.forward(x), ValueError);
}

TEST_CASE("Sequential from a list of modules") {
  Generator random(4);
  nn::Sequential<double> net(
      {std::make_shared<nn::Linear<double>>(2, 10, nn::LinearOptions().generator(random)),
       std::make_shared<nn::Tanh<double>>(),
       std::make_shared<nn::Linear<double>>(10, 1, nn::LinearOptions().generator(random)),
       std::make_shared<nn::Sigmoid<double>>()});
  CHECK(net.size() == 4);
  const auto named = net.named_parameters();
  REQUIRE(named.size() == 4);
  CHECK(named[0].first == "0.weight");
  CHECK(named[3].first == "2.bias");
  // The same as the layers applied by hand.
  const Tensor<double> x(test::random_array({3, 2}, 8));
  const auto& first = dynamic_cast<nn::Linear<double>&>(net[0]);
  const auto& second = dynamic_cast<nn::Linear<double>&>(net[2]);
  const auto expected = sigmoid(
      matmul(tanh(matmul(x, first.weight()) + first.bias()), second.weight()) + second.bias());
  CHECK(net(x).value() == expected.value());
  const std::vector<std::shared_ptr<nn::Module<double>>> layers{
      std::make_shared<nn::ReLU<double>>()};
  CHECK(nn::Sequential<double>(layers)(Tensor<double>(Array{-1.0, 2.0})).value() ==
        Array{0.0, 2.0});
  CHECK_THROWS_WITH_AS(nn::Sequential<double>({std::make_shared<nn::Tanh<double>>(), nullptr}),
                       "Sequential: module 1 of 2 is null", ValueError);
}

TEST_CASE("modules print as PyTorch's repr") {
  nn::Sequential<double> net(
      {std::make_shared<nn::Linear<double>>(2, 10), std::make_shared<nn::Tanh<double>>(),
       std::make_shared<nn::Sequential<double>>(
           std::initializer_list<std::shared_ptr<nn::Module<double>>>{
               std::make_shared<nn::Linear<double>>(10, 1, nn::LinearOptions().bias(false)),
               std::make_shared<nn::Sigmoid<double>>()}),
       std::make_shared<nn::LeakyReLU<double>>(), std::make_shared<nn::Softplus<double>>(),
       std::make_shared<nn::ReLU<double>>(), std::make_shared<nn::Identity<double>>()});
  // PyTorch 1.13 prints the same but "Softplus(beta=1, threshold=20)" (tapegrad's softplus
  // has no threshold).
  CHECK(nn::to_string(net) ==
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=10, bias=True)\n"
        "  (1): Tanh()\n"
        "  (2): Sequential(\n"
        "    (0): Linear(in_features=10, out_features=1, bias=False)\n"
        "    (1): Sigmoid()\n"
        "  )\n"
        "  (3): LeakyReLU(negative_slope=0.01)\n"
        "  (4): Softplus()\n"
        "  (5): ReLU()\n"
        "  (6): Identity()\n"
        ")");
  CHECK(nn::to_string(nn::Sequential<float>()) == "Sequential()");
  CHECK(nn::to_string(nn::RNNCell<double>(3, 5)) == "RNNCell(3, 5)");
  CHECK(nn::to_string(nn::RNNCell<float>(
            3, 5, nn::RNNCellOptions().bias(false).nonlinearity(nn::Nonlinearity::ReLU))) ==
        "RNNCell(3, 5, bias=False, nonlinearity=relu)");
  CHECK(nn::to_string(nn::LSTMCell<double>(3, 5)) == "LSTMCell(3, 5)");
  CHECK(nn::to_string(nn::GRUCell<double>(3, 5)) == "GRUCell(3, 5)");
  CHECK(nn::to_string(nn::MLP<double>({2, 3, 1}, nn::Activation::Sigmoid)) ==
        "MLP(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): Sigmoid()\n"
        "  (2): Linear(in_features=3, out_features=1, bias=True)\n"
        "  (3): Sigmoid()\n"
        ")");
  // A user module: its class name (namespaces dropped) by default, or the name it gives.
  CHECK(nn::to_string(Bilinear()) == "Bilinear()");
  std::ostringstream out;
  out << Encoder();
  CHECK(out.str() ==
        "MyEncoder(\n"
        "  dropout=0\n"
        "  steps=7\n"
        "  (cell): LSTMCell(3, 5)\n"
        "  (head): Linear(in_features=5, out_features=1, bias=True)\n"
        ")");
}

TEST_CASE("summary lists every parameter with its shape and count, and the total") {
  CHECK(nn::summary(nn::MLP<double>({2, 10, 1}, nn::Activation::Sigmoid)) ==
        "Parameter  Shape    Count\n"
        "0.weight   (2, 10)     20\n"
        "0.bias     (10,)       10\n"
        "2.weight   (10, 1)     10\n"
        "2.bias     (1,)         1\n"
        "Total parameters: 41\n");
  CHECK(nn::summary(Encoder()) ==
        "Parameter       Shape    Count\n"
        "cell.weight_ih  (20, 3)     60\n"
        "cell.weight_hh  (20, 5)    100\n"
        "cell.bias_ih    (20,)       20\n"
        "cell.bias_hh    (20,)       20\n"
        "head.weight     (5, 1)       5\n"
        "head.bias       (1,)         1\n"
        "Total parameters: 206\n");
  CHECK(nn::summary(nn::Tanh<float>()) == "Parameter  Shape  Count\nTotal parameters: 0\n");
}
