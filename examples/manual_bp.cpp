// One back-propagation step of a small sigmoid network, printed like a worked exercise (as in the
// worked-BP article, "【机器学习】神经网络(BP算法)含具体计算过程"): every number from the tape
// beside the same number from the four BP equations (tapegrad's nn::check_mlp_bp), then the updated
// weights. The network comes from a text file (manual_bp.txt beside this program shows the format
// and the default numbers).
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "common/cli.hpp"
#include "common/output.hpp"
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

// A hand-written exercise: every weight is typed, so layers stay small.
constexpr long long kLargestSize = 1000;

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

// "1 layer", "2 layers".
std::string count(std::size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// One "key values..." line of the file, without its comment.
struct Line {
  std::string where;               // "file:number"
  std::vector<std::string> words;  // after the key
};

std::vector<double> numbers(const Line& line, const std::string& key) {
  std::vector<double> values;
  for (const auto& word : line.words) {
    const auto value = examples::parse_finite(word);
    if (!value) bad(line.where, key + ": '" + word + "' is not a finite number");
    values.push_back(*value);
  }
  return values;
}

Exercise read_exercise(const std::string& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    bad(path, "is a directory; expected an exercise file like examples/manual_bp.txt");
  }
  std::ifstream in(path);
  if (!in) bad(path, std::string("cannot open it: ") + std::strerror(errno));
  std::map<std::string, Line> lines;  // each key once
  std::vector<Line> weights;          // one line per layer
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    const auto hash = text.find('#');
    if (hash != std::string::npos) text.resize(hash);
    std::istringstream words(text);
    std::string key;
    if (!(words >> key)) continue;
    Line line{path + ":" + std::to_string(number), {}};
    for (std::string word; words >> word;) line.words.push_back(word);
    if (key == "weights") {
      weights.push_back(line);
    } else if (key == "sizes" || key == "learning_rate" || key == "inputs" || key == "targets" ||
               key == "biases") {
      const auto [first, inserted] = lines.emplace(key, line);
      if (!inserted)
        bad(line.where, "a second '" + key + "' line (the first is " + first->second.where + ")");
    } else {
      bad(line.where, "unknown key '" + key +
                          "'; expected sizes, learning_rate, inputs, targets, biases or weights");
    }
  }
  if (in.bad()) bad(path, "read error");
  const auto line_of = [&](const std::string& key) -> const Line& {
    const auto found = lines.find(key);
    if (found == lines.end()) bad(path, "no '" + key + "' line");
    return found->second;
  };

  Exercise e;
  const Line& sizes = line_of("sizes");
  e.sizes.clear();
  for (const auto& word : sizes.words) {
    const auto size = examples::parse_whole(word, 1, kLargestSize);
    if (!size) {
      bad(sizes.where, "sizes: expected whole numbers from 1 to " + std::to_string(kLargestSize) +
                           ", got '" + word + "'");
    }
    e.sizes.push_back(static_cast<std::size_t>(*size));
  }
  if (e.sizes.size() < 2) {
    bad(sizes.where, "sizes: expected at least two (inputs, then each layer's neurons), got " +
                         std::to_string(e.sizes.size()));
  }
  const std::size_t layers = e.sizes.size() - 1;
  const auto counted = [&](const std::string& key, std::size_t expected, const std::string& why) {
    const Line& line = line_of(key);
    const auto values = numbers(line, key);
    if (values.size() != expected) {
      bad(line.where, key + ": expected " + count(expected, "value") +
                          (why.empty() ? "" : " (" + why + ")") + ", got " +
                          std::to_string(values.size()));
    }
    return values;
  };
  e.learning_rate = counted("learning_rate", 1, "")[0];
  e.inputs =
      counted("inputs", e.sizes.front(), "sizes begins with " + std::to_string(e.sizes.front()));
  e.targets =
      counted("targets", e.sizes.back(), "sizes ends with " + std::to_string(e.sizes.back()));
  e.biases = counted("biases", layers, "one per layer");
  e.weights.clear();
  for (const Line& line : weights) {
    const std::size_t l = e.weights.size();  // this line's layer, from 0
    const std::string layer = std::to_string(l + 1);
    if (line.words.empty() ||
        examples::parse_whole(line.words[0], 1, kLargestSize) != static_cast<long long>(l + 1)) {
      bad(line.where, "weights: expected layer number " + layer +
                          " first (one line per layer, in order), got '" +
                          (line.words.empty() ? "" : line.words[0]) + "'");
    }
    if (l == layers)
      bad(line.where, "weights " + layer + ": the network has only " + count(layers, "layer"));
    const Line values{line.where, {line.words.begin() + 1, line.words.end()}};
    const std::size_t expected = e.sizes[l] * e.sizes[l + 1];
    auto w = numbers(values, "weights " + layer);
    if (w.size() != expected) {
      bad(line.where, "weights " + layer + ": expected " + std::to_string(expected) + " values (" +
                          std::to_string(e.sizes[l]) + " x " + std::to_string(e.sizes[l + 1]) +
                          "), got " + std::to_string(w.size()));
    }
    e.weights.push_back(std::move(w));
  }
  if (e.weights.size() < layers) {
    bad(path, "no 'weights " + std::to_string(e.weights.size() + 1) + "' line (one per layer, " +
                  count(layers, "layer") + ")");
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

// The larger of two gaps; a NaN in either wins, so that it can never pass for agreement.
double worse(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? std::nan("") : std::max(a, b);
}

double largest_gap(const Array& a, const Array& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = worse(m, std::abs(a.data()[i] - b.data()[i]));
  return m;
}

}  // namespace

namespace {

int run(int argc, char** argv) {
  CLI::App app{"One BP step of a small sigmoid network, tape beside the BP equations."};
  std::string file, dot = "manual_bp.dot", out_folder = ".";
  bool quick = false;
  app.add_option("--network", file,
                 "the exercise (see examples/manual_bp.txt); default: those numbers");
  app.add_option("--dot", dot, "write the recorded graph as Graphviz DOT here ('' for none)")
      ->capture_default_str();
  examples::add_out_option(app, out_folder, "--dot");
  app.add_flag("--quick", quick, "the same run (it is one step)");
  CLI11_PARSE(app, argc, argv);
  dot = examples::out_path(out_folder, dot);
  if (!dot.empty()) examples::make_out_folder(out_folder);
  const Exercise e = file.empty() ? Exercise{} : read_exercise(file);
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
  const auto bp = nn::check_mlp_bp(mlp, x, t, nn::BPLoss::half_sse);  // half_sse with N = 1 is E

  std::printf("One BP step: a %zu", e.sizes[0]);
  for (std::size_t l = 1; l < e.sizes.size(); ++l) std::printf("-%zu", e.sizes[l]);
  std::printf(" sigmoid network, one bias per layer, learning rate %g, E = 1/2 sum (t - o)^2\n\n",
              e.learning_rate);
  std::printf("Forward pass\n");
  for (std::size_t l = 0; l < layers; ++l) {
    const char* what = l + 1 == layers ? "output" : "hidden";
    std::printf("  layer %zu (%s)  net = a W%zu + b%zu:  %s\n", l + 1, what, l + 1, l + 1,
                row(net[l].value()).c_str());
    std::printf("  layer %zu (%s)  out = sigmoid(net): %s\n", l + 1, what,
                row(out[l].value()).c_str());
  }
  std::printf(
      "  error E = %.9f\n\nBackward pass           tape, then the BP equations (|difference|)\n",
      error.item());
  double worst = 0;
  for (std::size_t l = layers; l-- > 0;) {
    const auto& eq = bp.layers[l];
    const Array bias_bp = Array{xt::sum(eq.bias.equations)()};  // one shared bias: the sum (BP3)
    std::printf("  layer %zu delta = dE/dnet  (%s)\n    tape %s\n    BP   %s   (%.1e)\n", l + 1,
                l + 1 == layers ? "BP1: (o - t) o (1 - o)" : "BP2: (delta_next W_next^T) h (1 - h)",
                row(probe[l].grad()).c_str(), row(eq.delta.equations).c_str(),
                largest_gap(probe[l].grad(), eq.delta.equations));
    std::printf("  layer %zu dE/dW%zu  (BP4: a^T delta)\n    tape %s\n    BP   %s   (%.1e)\n",
                l + 1, l + 1, row(w[l].grad()).c_str(), row(eq.weight.equations).c_str(),
                largest_gap(w[l].grad(), eq.weight.equations));
    std::printf(
        "  layer %zu dE/db%zu  (BP3, summed over the layer's neurons)\n    tape %s\n    BP   %s   "
        "(%.1e)\n",
        l + 1, l + 1, row(b[l].grad()).c_str(), row(bias_bp).c_str(),
        largest_gap(Array{b[l].grad()()}, bias_bp));
    worst = worse(worse(worst, largest_gap(probe[l].grad(), eq.delta.equations)),
                  worse(largest_gap(w[l].grad(), eq.weight.equations),
                        largest_gap(Array{b[l].grad()()}, bias_bp)));
  }
  std::printf("\nUpdated parameters (w - %g dE/dw)\n", e.learning_rate);
  for (std::size_t l = 0; l < layers; ++l) {
    std::printf("  W%zu: %s\n  b%zu: %.9f\n", l + 1,
                row(w[l].value() - e.learning_rate * w[l].grad()).c_str(), l + 1,
                b[l].item() - e.learning_rate * b[l].grad()());
  }
  const bool agree = worst < 1e-12 && bp.passed;
  std::printf(
      "\n%s: tape and BP equations differ by at most %.1e; finite differences confirm: %s\n",
      agree ? "agree" : "DISAGREE", worst, bp.passed ? "yes" : "no");
  if (!dot.empty()) {
    std::vector<std::pair<std::string, Tensor<double>>> names{{"E", error}, {"x", input}};
    for (std::size_t l = 0; l < layers; ++l) {
      names.push_back({"W" + std::to_string(l + 1), w[l]});
      names.push_back({"b" + std::to_string(l + 1), b[l]});
      names.push_back({"probe" + std::to_string(l + 1), probe[l]});
    }
    std::ofstream out(dot);
    out << graph_dot(error, names);
    out.close();
    if (!out) throw std::runtime_error("--dot: cannot write '" + dot + "'");
    const std::string png = std::filesystem::path(dot).replace_extension(".png").string();
    std::printf("graph of the tape: %s (render: dot -Tpng %s -o %s)\n", dot.c_str(), dot.c_str(),
                png.c_str());
  }
  return agree ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
