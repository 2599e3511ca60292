// The tape against the BP equations of the source documents, written here by hand (and only
// here): Nielsen's column form per sample (the BP-derivation article), the BP-network article's
// row-major batch form, its threshold convention and its delta rule.
#include <cmath>
#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "helpers.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

namespace {

double f(nn::Activation a, double z) {
  switch (a) {
    case nn::Activation::Sigmoid:
      return 1 / (1 + std::exp(-z));
    case nn::Activation::Tanh:
      return std::tanh(z);
    case nn::Activation::ReLU:
      return z > 0 ? z : 0;
    default:
      return z;
  }
}
double f_prime(nn::Activation a, double z) {
  switch (a) {
    case nn::Activation::Sigmoid:
      return f(a, z) * (1 - f(a, z));
    case nn::Activation::Tanh:
      return 1 - std::tanh(z) * std::tanh(z);
    case nn::Activation::ReLU:
      return z > 0 ? 1 : 0;
    default:
      return 1;
  }
}

struct BPGradients {
  std::vector<Array> dw, db;
};

// Nielsen's BP1-BP4, one sample at a time in column form: z = W^T a + b with tapegrad's
// W (in, out), so Nielsen's matrix is W^T. The batch cost is the mean (mse) or the sum over
// samples / N (half_sse) of per-sample costs, so the gradients are sums of per-sample ones.
BPGradients nielsen(const nn::MLP<double>& mlp, const Array& x, const Array& t, bool mse) {
  const auto& layers = mlp.linear_layers();
  const std::size_t depth = layers.size(), n = x.shape()[0];
  BPGradients out;
  for (const auto& l : layers) {
    out.dw.push_back(xt::zeros<double>(l->weight().shape()));
    out.db.push_back(xt::zeros<double>(l->bias().shape()));
  }
  for (std::size_t s = 0; s < n; ++s) {
    std::vector<std::vector<double>> z(depth), a(depth + 1);
    for (std::size_t i = 0; i < x.shape()[1]; ++i) a[0].push_back(x(s, i));
    for (std::size_t l = 0; l < depth; ++l) {
      const auto& w = layers[l]->weight().value();
      const auto& b = layers[l]->bias().value();
      for (std::size_t j = 0; j < w.shape()[1]; ++j) {
        double sum = b(j);
        for (std::size_t i = 0; i < w.shape()[0]; ++i) sum += w(i, j) * a[l][i];
        z[l].push_back(sum);
        a[l + 1].push_back(f(mlp.activations()[l], sum));
      }
    }
    // BP1: delta_L = dC/da_L (.) f'(z_L)
    std::vector<std::vector<double>> delta(depth);
    const std::size_t outputs = a[depth].size();
    for (std::size_t j = 0; j < outputs; ++j) {
      const double dc_da = mse ? 2 * (a[depth][j] - t(s, j)) / static_cast<double>(n * outputs)
                               : (a[depth][j] - t(s, j)) / static_cast<double>(n);
      delta[depth - 1].push_back(dc_da * f_prime(mlp.activations()[depth - 1], z[depth - 1][j]));
    }
    // BP2: delta_l = (W_{l+1} delta_{l+1}) (.) f'(z_l)   [Nielsen's (W^T delta)]
    for (std::size_t l = depth - 1; l-- > 0;) {
      const auto& w = layers[l + 1]->weight().value();
      for (std::size_t i = 0; i < z[l].size(); ++i) {
        double sum = 0;
        for (std::size_t j = 0; j < delta[l + 1].size(); ++j) sum += w(i, j) * delta[l + 1][j];
        delta[l].push_back(sum * f_prime(mlp.activations()[l], z[l][i]));
      }
    }
    // BP3: dC/db = delta;  BP4: dC/dw_jk = a_k delta_j
    for (std::size_t l = 0; l < depth; ++l) {
      for (std::size_t j = 0; j < delta[l].size(); ++j) {
        out.db[l](j) += delta[l][j];
        for (std::size_t i = 0; i < a[l].size(); ++i) out.dw[l](i, j) += a[l][i] * delta[l][j];
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the tape equals the BP equations on random MLPs, to 1e-10") {
  const std::vector<nn::Activation> activations = {nn::Activation::Sigmoid, nn::Activation::Tanh,
                                                   nn::Activation::ReLU};
  Generator random(42);
  int networks = 0;
  for (std::size_t depth = 1; depth <= 4; ++depth) {
    for (auto activation : activations) {
      for (bool mse : {true, false}) {
        for (std::size_t batch : {std::size_t{1}, std::size_t{5}}) {
          // Widths drawn from 1..16, a different draw for every network.
          std::vector<std::size_t> sizes;
          for (std::size_t l = 0; l <= depth; ++l) sizes.push_back(1 + random.next_u64() % 16);
          nn::MLP<double> mlp(sizes, activation,
                              nn::MLPOptions().linear(nn::LinearOptions()
                                                          .generator(random)
                                                          .weight_init(nn::Init::normal(0, 0.8))
                                                          .bias_init(nn::Init::normal(0, 0.3))));
          Array x = xt::empty<double>({batch, sizes.front()});
          Array t = xt::empty<double>({batch, sizes.back()});
          for (auto& v : x) v = random.uniform(-1.5, 1.5);
          for (auto& v : t) v = random.uniform(0, 1);

          {
            Tape tape;
            const Tensor<double> out = mlp(Tensor<double>(x));
            const Tensor<double> target(t);
            (mse ? nn::mse(out, target) : nn::half_sse(out, target)).backward();
          }
          const auto bp = nielsen(mlp, x, t, mse);
          INFO("depth ", depth, " activation ", nn::activation_name(activation), " mse ", mse,
               " batch ", batch);
          for (std::size_t l = 0; l < depth; ++l) {
            const auto& layer = *mlp.linear_layers()[l];
            CHECK(xt::amax(xt::abs(layer.weight().grad() - bp.dw[l]))() < 1e-10);
            CHECK(xt::amax(xt::abs(layer.bias().grad() - bp.db[l]))() < 1e-10);
          }
          // The library's own three-way check agrees (and adds finite differences).
          const auto report = nn::check_mlp_bp(
              mlp, x, t, mse ? nn::BPLoss::mse : nn::BPLoss::half_sse, 1e-10, 1e-5);
          INFO(report.message);
          CHECK(report.passed);
          mlp.zero_grad();
          ++networks;
        }
      }
    }
  }
  CHECK(networks == 4 * 3 * 2 * 2);
}

TEST_CASE("the BP-network article's row-major update equals -lr times the tape's gradient of E") {
  // E = sum((T - Y)^2) / (2N); the seed updates W2 += lr L1^T delta_L2 / N with
  // delta_L2 = (T - L2) L2 (1 - L2) and delta_L1 = delta_L2 W2^T L1 (1 - L1).
  nn::MLP<double> mlp(
      {2, 10, 1}, nn::Activation::Sigmoid,
      nn::MLPOptions().linear(nn::LinearOptions().weight_init(nn::Init::uniform(0, 1))));
  const Array x = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
  Array t = {0, 1, 1, 0};
  t.reshape({4, 1});
  const double lr = 0.1, n = 4;
  {
    Tape tape;
    nn::half_sse(mlp(Tensor<double>(x)), Tensor<double>(t)).backward();
  }
  const auto& w1 = mlp.linear_layers()[0]->weight().value();
  const auto& b1 = mlp.linear_layers()[0]->bias().value();
  const auto& w2 = mlp.linear_layers()[1]->weight().value();
  const auto& b2 = mlp.linear_layers()[1]->bias().value();
  const Array l1 = 1.0 / (1.0 + xt::exp(-(Array(xt::linalg::dot(x, w1)) + b1)));
  const Array l2 = 1.0 / (1.0 + xt::exp(-(Array(xt::linalg::dot(l1, w2)) + b2)));
  const Array delta_l2 = (t - l2) * l2 * (1.0 - l2);
  const Array delta_l1 = Array(xt::linalg::dot(delta_l2, xt::transpose(w2))) * l1 * (1.0 - l1);
  const Array delta_w2 = lr * Array(xt::linalg::dot(xt::transpose(l1), delta_l2)) / n;
  const Array delta_w1 = lr * Array(xt::linalg::dot(xt::transpose(x), delta_l1)) / n;
  const Array delta_b2 = lr * xt::mean(delta_l2, {0});
  const Array delta_b1 = lr * xt::mean(delta_l1, {0});
  CHECK(xt::amax(xt::abs(delta_w2 + lr * mlp.linear_layers()[1]->weight().grad()))() < 1e-15);
  CHECK(xt::amax(xt::abs(delta_w1 + lr * mlp.linear_layers()[0]->weight().grad()))() < 1e-15);
  CHECK(xt::amax(xt::abs(delta_b2 + lr * mlp.linear_layers()[1]->bias().grad()))() < 1e-15);
  CHECK(xt::amax(xt::abs(delta_b1 + lr * mlp.linear_layers()[0]->bias().grad()))() < 1e-15);
}

TEST_CASE("the BP-network article's threshold neuron: y = f(sum w x - theta) is a bias of -theta") {
  const Array x = {{0.3, -1.2, 0.8}, {1.0, 0.5, -0.4}};
  Array w = {0.2, -0.7, 0.5};
  w.reshape({3, 1});
  Array t = {1.0, 0.0};
  t.reshape({2, 1});
  const double theta = 0.35;
  Tensor<double> weights(w, requires_grad), threshold(theta, requires_grad);
  Tensor<double> bias(Array{-theta}, requires_grad);
  Tape tape;
  const auto with_threshold = sigmoid(matmul(Tensor<double>(x), weights) - threshold);
  const auto with_bias = sigmoid(matmul(Tensor<double>(x), weights) + bias);
  CHECK(xt::amax(xt::abs(with_threshold.value() - with_bias.value()))() == 0);
  nn::half_sse(with_threshold, Tensor<double>(t)).backward();
  const Array dw_threshold = weights.grad();
  weights.zero_grad();
  nn::half_sse(with_bias, Tensor<double>(t)).backward();
  CHECK(threshold.grad()() == doctest::Approx(-bias.grad()(0)).epsilon(1e-15));
  CHECK(xt::amax(xt::abs(dw_threshold - weights.grad()))() < 1e-16);
}

TEST_CASE(
    "the BP-network article's delta rule for one sigmoid neuron: dw_i = eta (t - y) f'(net) x_i") {
  const Array x = {0.5, -1.0, 2.0};
  const double target = 0.8, eta = 0.3;
  Tensor<double> w(Array{0.1, 0.4, -0.2}, requires_grad);
  Tape tape;
  const auto net = sum(w * Tensor<double>(x));
  const auto y = sigmoid(net);
  (0.5 * square(target - y)).backward();  // E = (t - y)^2 / 2
  const double yv = y.item();
  for (std::size_t i = 0; i < 3; ++i) {
    const double delta_rule = eta * (target - yv) * yv * (1 - yv) * x(i);
    CHECK(-eta * w.grad()(i) == doctest::Approx(delta_rule).epsilon(1e-14));
  }
}
