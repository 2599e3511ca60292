// Printing modules: PyTorch's repr and a table of the parameters (declared in nn/module.hpp).
#include <algorithm>
#include <ostream>
#include <sstream>

#include "tapegrad/nn/module.hpp"

namespace tapegrad::nn {

namespace {

// PyTorch's _addindent: every line but the first moves right by two spaces.
std::string indent_rest(const std::string& text) {
  std::string out;
  for (const char ch : text) {
    out += ch;
    if (ch == '\n') out += "  ";
  }
  return out;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  if (text.empty()) return lines;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

}  // namespace

template <class T>
std::string to_string(const Module<T>& module) {
  const auto extra_lines = split_lines(module.extra_repr());
  std::vector<std::string> lines = extra_lines;
  for (const auto& [name, child] : module.children_) {
    lines.push_back("(" + name + "): " + indent_rest(to_string(*child)));
  }
  std::string out = module.type_name() + "(";
  if (extra_lines.size() == 1 && module.children_.empty()) {
    out += extra_lines.front();
  } else if (!lines.empty()) {
    for (const auto& line : lines) out += "\n  " + line;
    out += "\n";
  }
  return out + ")";
}

template <class T>
std::ostream& operator<<(std::ostream& out, const Module<T>& module) {
  return out << to_string(module);
}

template <class T>
std::string summary(const Module<T>& module) {
  const std::string name_title = "Parameter", shape_title = "Shape", count_title = "Count";
  std::vector<std::string> names, shapes, counts;
  for (const auto& [name, tensor] : module.named_parameters()) {
    names.push_back(name);
    shapes.push_back(shape_to_string(tensor.shape()));
    counts.push_back(std::to_string(tensor.size()));
  }
  const auto width = [](const std::vector<std::string>& column, const std::string& title) {
    std::size_t w = title.size();
    for (const auto& cell : column) w = std::max(w, cell.size());
    return w;
  };
  const std::size_t name_w = width(names, name_title), shape_w = width(shapes, shape_title),
                    count_w = width(counts, count_title);
  const auto row = [&](const std::string& name, const std::string& shape,
                       const std::string& count) {
    return name + std::string(name_w - name.size() + 2, ' ') + shape +
           std::string(shape_w - shape.size() + 2, ' ') + std::string(count_w - count.size(), ' ') +
           count + "\n";
  };
  std::string out = row(name_title, shape_title, count_title);
  for (std::size_t i = 0; i < names.size(); ++i) out += row(names[i], shapes[i], counts[i]);
  return out + "Total parameters: " + std::to_string(module.parameter_count()) + "\n";
}

template std::string to_string(const Module<float>&);
template std::string to_string(const Module<double>&);
template std::ostream& operator<<(std::ostream&, const Module<float>&);
template std::ostream& operator<<(std::ostream&, const Module<double>&);
template std::string summary(const Module<float>&);
template std::string summary(const Module<double>&);

}  // namespace tapegrad::nn
