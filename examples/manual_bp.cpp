// D3: one back-propagation step of a small sigmoid network, printed like a worked exercise
// (seed 003): every number from the tape beside the same number from the four BP equations
// (tapegrad's check_mlp_bp), then the updated weights. The network comes from a text file
// (manual_bp.txt beside this program shows the format and the default numbers).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;
using Array = xt::xarray<double>;

namespace {

struct Exercise {
  std::vector<std::size_t> sizes{2, 3, 2};
  double learning_rate = 0.5;
  std::vector<double> inputs{0.05, 0.10}, targets{0.01, 0.99}, biases{0.35, 0.60};
  std::vector<std::vector<double>> weights{{0.15, 0.20, 0.25, 0.30, 0.35, 0.40},
                                           {0.40, 0.45, 0.50, 0.55, 0.60, 0.65}};
};

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

Exercise read_exercise(const std::string& path) {
  std::ifstream in(path);
  if (!in) bad(path, "cannot open");
  Exercise e;
  e.weights.clear();
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string key;
    if (!(words >> key)) continue;
    const std::string where = path + ":" + std::to_string(number);
    std::vector<double> values;
    std::string word;
    while (words >> word) {
      try {
        std::size_t used = 0;
        values.push_back(std::stod(word, &used));
        if (used != word.size()) throw std::invalid_argument(word);
      } catch (const std::exception&) {
        bad(where, "'" + word + "' is not a number");
      }
    }
    if (key == "sizes") {
      e.sizes.clear();
      for (double v : values) {
        if (v < 1 || v != std::floor(v)) bad(where, "sizes must be positive integers");
        e.sizes.push_back(static_cast<std::size_t>(v));
      }
    } else if (key == "learning_rate" && values.size() == 1) {
      e.learning_rate = values[0];
    } else if (key == "inputs") {
      e.inputs = values;
    } else if (key == "targets") {
      e.targets = values;
    } else if (key == "biases") {
      e.biases = values;
    } else if (key == "weights" && !values.empty()) {
      const auto layer = static_cast<std::size_t>(values[0]);
      if (layer != e.weights.size() + 1) bad(where, "weights lines must come in layer order 1, 2, ...");
      e.weights.emplace_back(values.begin() + 1, values.end());
    } else {
      bad(where, "unknown or malformed line '" + key + " ...'");
    }
  }
  const std::size_t layers = e.sizes.size() - 1;
  if (e.sizes.size() < 2) bad(path, "need at least two sizes");
  if (e.inputs.size() != e.sizes.front()) bad(path, "inputs: expected " + std::to_string(e.sizes.front()) + " values");
  if (e.targets.size() != e.sizes.back()) bad(path, "targets: expected " + std::to_string(e.sizes.back()) + " values");
  if (e.biases.size() != layers) bad(path, "biases: expected one per layer (" + std::to_string(layers) + ")");
  if (e.weights.size() != layers) bad(path, "expected one weights line per layer (" + std::to_string(layers) + ")");
  for (std::size_t l = 0; l < layers; ++l) {
    if (e.weights[l].size() != e.sizes[l] * e.sizes[l + 1]) {
      bad(path, "weights " + std::to_string(l + 1) + ": expected " + std::to_string(e.sizes[l] * e.sizes[l + 1]) +
                    " values (" + std::to_string(e.sizes[l]) + " x " + std::to_string(e.sizes[l + 1]) + ")");
    }
  }
  return e;
}

std::string row(const Array& a) {
  std::string text;
  char number[32];
  for (double v : a) {
    std::snprintf(number, sizeof number, "%s%.9f", text.empty() ? "" : "  ", v);
    text += number;
  }
  return text;
}

double largest_gap(const Array& a, const Array& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a.data()[i] - b.data()[i]));
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"D3: one BP step of a small sigmoid network, tape beside the BP equations."};
  std::string file, dot = "manual_bp.dot";
  bool quick = false;
  app.add_option("--network", file, "the exercise (see examples/manual_bp.txt); default: those numbers");
  app.add_option("--dot", dot, "write the recorded graph as Graphviz DOT here ('' for none)")->capture_default_str();
  app.add_flag("--quick", quick, "the same run (it is one step)");
  CLI11_PARSE(app, argc, argv);
  Exercise e;
  try {
    if (!file.empty()) e = read_exercise(file);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 2;
  }
  const std::size_t layers = e.sizes.size() - 1;

  // The network on the tape: one shared bias per layer, and a zero probe added to each net
  // input so that the tape also reports dE/dnet (the deltas).
  std::vector<Tensor<double>> w, b, probe, net, out;
  for (std::size_t l = 0; l < layers; ++l) {
    Array weights = Array::from_shape({e.sizes[l], e.sizes[l + 1]});
    std::copy(e.weights[l].begin(), e.weights[l].end(), weights.begin());
    w.emplace_back(weights, requires_grad);
    b.emplace_back(e.biases[l], requires_grad);
    probe.emplace_back(Array(xt::zeros<double>({std::size_t{1}, e.sizes[l + 1]})), requires_grad);
  }
  Array x = Array::from_shape({std::size_t{1}, e.sizes.front()});
  std::copy(e.inputs.begin(), e.inputs.end(), x.begin());
  Array t = Array::from_shape({std::size_t{1}, e.sizes.back()});
  std::copy(e.targets.begin(), e.targets.end(), t.begin());

  Tape tape;
  const Tensor<double> input(x);
  Tensor<double> a = input;
  for (std::size_t l = 0; l < layers; ++l) {
    net.push_back(matmul(a, w[l]) + b[l] + probe[l]);
    a = sigmoid(net.back());
    out.push_back(a);
  }
  const auto error = 0.5 * sum(square(Tensor<double>(t) - a));  // E = 1/2 sum (t - o)^2
  error.backward();

  // The same network as an MLP (the shared bias repeated per neuron) for the BP equations.
  nn::MLP<double> mlp(e.sizes, nn::Activation::Sigmoid);
  for (std::size_t l = 0; l < layers; ++l) {
    auto params = mlp.parameters();
    params[2 * l].set_value(w[l].value());
    params[2 * l + 1].set_value(Array(xt::ones<double>({e.sizes[l + 1]}) * e.biases[l]));
  }
  const auto bp = check_mlp_bp(mlp, x, t, BPLoss::half_sse);  // half_sse with N = 1 is E

  std::printf("One BP step: a %zu", e.sizes[0]);
  for (std::size_t l = 1; l < e.sizes.size(); ++l) std::printf("-%zu", e.sizes[l]);
  std::printf(" sigmoid network, one bias per layer, learning rate %g, E = 1/2 sum (t - o)^2\n\n", e.learning_rate);
  std::printf("Forward pass\n");
  for (std::size_t l = 0; l < layers; ++l) {
    const char* what = l + 1 == layers ? "output" : "hidden";
    std::printf("  layer %zu (%s)  net = a W%zu + b%zu:  %s\n", l + 1, what, l + 1, l + 1, row(net[l].value()).c_str());
    std::printf("  layer %zu (%s)  out = sigmoid(net): %s\n", l + 1, what, row(out[l].value()).c_str());
  }
  std::printf("  error E = %.9f\n\nBackward pass           tape, then the BP equations (|difference|)\n", error.item());
  double worst = 0;
  for (std::size_t l = layers; l-- > 0;) {
    const auto& eq = bp.layers[l];
    const Array bias_bp = Array{xt::sum(eq.bias.equations)()};  // one shared bias: the sum (BP3)
    std::printf("  layer %zu delta = dE/dnet  (%s)\n    tape %s\n    BP   %s   (%.1e)\n", l + 1,
                l + 1 == layers ? "BP1: (o - t) o (1 - o)" : "BP2: (delta_next W_next^T) h (1 - h)",
                row(probe[l].grad()).c_str(), row(eq.delta.equations).c_str(), largest_gap(probe[l].grad(), eq.delta.equations));
    std::printf("  layer %zu dE/dW%zu  (BP4: a^T delta)\n    tape %s\n    BP   %s   (%.1e)\n", l + 1, l + 1,
                row(w[l].grad()).c_str(), row(eq.weight.equations).c_str(), largest_gap(w[l].grad(), eq.weight.equations));
    std::printf("  layer %zu dE/db%zu  (BP3, summed over the layer's neurons)\n    tape %s\n    BP   %s   (%.1e)\n", l + 1,
                l + 1, row(b[l].grad()).c_str(), row(bias_bp).c_str(), largest_gap(Array{b[l].grad()()}, bias_bp));
    worst = std::max({worst, largest_gap(probe[l].grad(), eq.delta.equations), largest_gap(w[l].grad(), eq.weight.equations),
                      largest_gap(Array{b[l].grad()()}, bias_bp)});
  }
  std::printf("\nUpdated parameters (w - %g dE/dw)\n", e.learning_rate);
  for (std::size_t l = 0; l < layers; ++l) {
    std::printf("  W%zu: %s\n  b%zu: %.9f\n", l + 1, row(w[l].value() - e.learning_rate * w[l].grad()).c_str(), l + 1,
                b[l].item() - e.learning_rate * b[l].grad()());
  }
  const bool agree = worst < 1e-12 && bp.passed;
  std::printf("\n%s: tape and BP equations differ by at most %.1e; finite differences confirm: %s\n",
              agree ? "agree" : "DISAGREE", worst, bp.passed ? "yes" : "no");
  if (!dot.empty()) {
    std::vector<std::pair<std::string, Tensor<double>>> names{{"E", error}, {"x", input}};
    for (std::size_t l = 0; l < layers; ++l) {
      names.push_back({"W" + std::to_string(l + 1), w[l]});
      names.push_back({"b" + std::to_string(l + 1), b[l]});
      names.push_back({"probe" + std::to_string(l + 1), probe[l]});
    }
    std::ofstream(dot) << graph_dot(error, names);
    std::printf("graph of the tape: %s (render: dot -Tpng %s -o manual_bp.png)\n", dot.c_str(), dot.c_str());
  }
  return agree ? 0 : 1;
}
