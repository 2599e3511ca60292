// The BP equations here are the reference a check compares the tape with; nothing trains
// with them.
#include "tapegrad/nn/bp_check.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>
#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmath.hpp>

#include "tapegrad/nn/loss.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/tape.hpp"

namespace tapegrad::nn {

namespace {

using Array = xt::xarray<double>;

Array derivative(nn::Activation activation, const Array& z) {
  switch (activation) {
    case nn::Activation::Identity:
      return xt::ones<double>(z.shape());
    case nn::Activation::Sigmoid: {
      const Array s = 1.0 / (1.0 + xt::exp(-z));
      return s * (1.0 - s);
    }
    case nn::Activation::Tanh:
      return 1.0 - xt::square(xt::tanh(z));
    case nn::Activation::ReLU:
      return xt::cast<double>(z > 0.0);
    case nn::Activation::LeakyReLU:
      return xt::where(z > 0.0, 1.0, 0.01);
    case nn::Activation::Softplus:
      return 1.0 / (1.0 + xt::exp(-z));
    case nn::Activation::GELU: {
      const Array phi = xt::exp(-0.5 * xt::square(z)) * 0.3989422804014327;  // 1 / sqrt(2 pi)
      return 0.5 * xt::erfc(-z / std::sqrt(2.0)) + z * phi;
    }
    case nn::Activation::SiLU: {
      const Array s = 1.0 / (1.0 + xt::exp(-z));
      return s * (1.0 + z * (1.0 - s));
    }
    case nn::Activation::ELU:
      return xt::where(z > 0.0, 1.0, xt::exp(z));
  }
  return Array();
}

Array activated(nn::Activation activation, const Array& z) {
  return activate(activation, Tensor<double>(z)).value();
}

struct Network {
  std::vector<Tensor<double>> weights, biases, probes;
  std::vector<nn::Activation> activations;
};

// The forward pass with a probe added to each z, so that the tape's dC/dprobe is delta.
Tensor<double> forward_loss(const Network& net, const Array& inputs, const Array& targets,
                            BPLoss loss) {
  Tensor<double> a(inputs);
  for (std::size_t l = 0; l < net.weights.size(); ++l) {
    const auto z = matmul(a, net.weights[l]) + net.biases[l] + net.probes[l];
    a = activate(net.activations[l], z);
  }
  const Tensor<double> t(targets);
  return loss == BPLoss::mse ? nn::mse(a, t) : nn::half_sse(a, t);
}

BPQuantity compare(std::string name, const Array& tape, const Array& equations,
                   const Array& numeric) {
  BPQuantity q{std::move(name), tape, equations, numeric, 0, 0, {}};
  std::size_t worst = 0;
  for (std::size_t k = 0; k < tape.size(); ++k) {
    const double e = std::abs(tape.data()[k] - equations.data()[k]);
    if (e > q.tape_vs_equations || std::isnan(e)) {
      q.tape_vs_equations = std::isnan(e) ? INFINITY : e;
      worst = k;
    }
    const double n = std::abs(tape.data()[k] - numeric.data()[k]);
    q.tape_vs_numeric = std::isnan(n) ? INFINITY : std::max(q.tape_vs_numeric, n);
  }
  q.worst_position = unravel_index(worst, tape.shape());
  return q;
}

bool within(const BPQuantity& q, double equations_tolerance, double numeric_tolerance) {
  const double scale = 1 + xt::amax(xt::abs(q.tape))();
  return q.tape_vs_equations <= equations_tolerance * scale &&
         q.tape_vs_numeric <= numeric_tolerance * scale;
}

}  // namespace

BPCheckReport check_mlp_bp(const nn::MLP<double>& mlp, const Array& inputs, const Array& targets,
                           BPLoss loss, double equations_tolerance, double numeric_tolerance) {
  const auto& linears = mlp.linear_layers();
  const std::size_t layers = linears.size();
  const std::size_t n = inputs.dimension() == 2 ? inputs.shape()[0] : 0;
  if (inputs.dimension() != 2 || inputs.shape()[1] != linears.front()->in_features() ||
      targets.dimension() != 2 || targets.shape()[0] != n ||
      targets.shape()[1] != linears.back()->out_features()) {
    throw ShapeError("check_mlp_bp: inputs " + shape_to_string(inputs.shape()) + " and targets " +
                     shape_to_string(targets.shape()) + " do not fit a network " +
                     std::to_string(linears.front()->in_features()) + " -> ... -> " +
                     std::to_string(linears.back()->out_features()) +
                     " (expected (N, in), (N, out))");
  }

  // Leaf copies of the parameters, so the model's own gradients stay as they are.
  Network net;
  net.activations = mlp.activations();
  for (const auto& linear : linears) {
    net.weights.emplace_back(Array(linear->weight().value()), requires_grad);
    net.biases.emplace_back(Array(linear->bias().value()), requires_grad);
    net.probes.emplace_back(Array(xt::zeros<double>({n, linear->out_features()})), requires_grad);
  }

  BPCheckReport report;
  {
    Tape tape;
    const auto c = forward_loss(net, inputs, targets, loss);
    report.loss = c.item();
    c.backward();
  }

  // The BP equations, from a plain forward pass that keeps every z and a.
  std::vector<Array> z(layers), a(layers + 1);
  a[0] = inputs;
  for (std::size_t l = 0; l < layers; ++l) {
    z[l] = Array(xt::linalg::dot(a[l], net.weights[l].value())) + net.biases[l].value();
    a[l + 1] = activated(net.activations[l], z[l]);
  }
  const Array& output = a[layers];
  const Array dc_da = loss == BPLoss::mse
                          ? Array(2.0 * (output - targets) / static_cast<double>(output.size()))
                          : Array((output - targets) / static_cast<double>(n));
  std::vector<Array> delta(layers);
  delta[layers - 1] = dc_da * derivative(net.activations[layers - 1], z[layers - 1]);  // BP1
  for (std::size_t l = layers - 1; l-- > 0;) {
    delta[l] = Array(xt::linalg::dot(delta[l + 1], xt::transpose(net.weights[l + 1].value()))) *
               derivative(net.activations[l], z[l]);  // BP2
  }

  // Finite differences of the loss for every element of W, b and the probes.
  auto numeric = [&](Tensor<double>& x) {
    NoGradGuard no_grad;
    Array g = xt::zeros<double>(x.shape());
    const double h = 1e-6;
    for (std::size_t k = 0; k < x.size(); ++k) {
      const double original = x.value().data()[k];
      x.mutable_value().data()[k] = original + h;
      const double plus = forward_loss(net, inputs, targets, loss).item();
      x.mutable_value().data()[k] = original - h;
      const double minus = forward_loss(net, inputs, targets, loss).item();
      x.mutable_value().data()[k] = original;
      g.data()[k] = (plus - minus) / (2 * h);
    }
    return g;
  };

  report.passed = true;
  std::ostringstream text;
  text << std::setprecision(6);
  for (std::size_t l = 0; l < layers; ++l) {
    BPLayer row;
    row.layer = l + 1;
    row.delta = compare("delta", net.probes[l].grad(), delta[l], numeric(net.probes[l]));
    row.bias = compare("dC/db", net.biases[l].grad(), xt::sum(delta[l], {0}),  // BP3
                       numeric(net.biases[l]));
    row.weight = compare("dC/dW", net.weights[l].grad(),
                         Array(xt::linalg::dot(xt::transpose(a[l]), delta[l])),  // BP4
                         numeric(net.weights[l]));
    for (const BPQuantity* q : {&row.delta, &row.bias, &row.weight}) {
      if (!within(*q, equations_tolerance, numeric_tolerance) && report.passed) {
        report.passed = false;
        std::size_t flat = 0;
        for (std::size_t i = 0; i < q->worst_position.size(); ++i) {
          flat = flat * q->tape.shape()[i] + q->worst_position[i];
        }
        text << "layer " << row.layer << " " << q->name << " disagrees; worst element (";
        for (std::size_t i = 0; i < q->worst_position.size(); ++i) {
          text << (i ? ", " : "") << q->worst_position[i];
        }
        text << "): tape " << q->tape.data()[flat] << ", BP equations " << q->equations.data()[flat]
             << ", finite difference " << q->numeric.data()[flat];
      }
    }
    report.layers.push_back(std::move(row));
  }
  if (report.passed) {
    double worst_equations = 0, worst_numeric = 0;
    for (const auto& row : report.layers) {
      for (const BPQuantity* q : {&row.delta, &row.bias, &row.weight}) {
        worst_equations = std::max(worst_equations, q->tape_vs_equations);
        worst_numeric = std::max(worst_numeric, q->tape_vs_numeric);
      }
    }
    text << "the tape, the four BP equations and finite differences agree in all " << layers
         << " layer(s): largest |tape - BP| " << worst_equations << ", largest |tape - FD| "
         << worst_numeric;
  }
  report.message = text.str();
  return report;
}

}  // namespace tapegrad::nn
