#include "tapegrad/trace.hpp"

#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "core/record.hpp"
#include "core/tape_impl.hpp"

namespace tapegrad {

namespace {

template <class T>
std::string values(const xt::xarray<T>& a, std::size_t max_elements) {
  if (a.size() > max_elements) return "";
  std::ostringstream out;
  out << std::setprecision(6) << "[";
  for (std::size_t i = 0; i < a.size(); ++i) out << (i ? ", " : "") << a.data()[i];
  out << "]";
  return out.str();
}

// A user's name inside a quoted DOT label: quotes, backslashes and line breaks escaped.
std::string escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// What a node is when the user gave it no name and no kept record made it. Only the
// result's own tape is walked, so the inputs of the last three kinds are not drawn.
std::string anonymous_kind(const detail::NodeBase& node) {
  if (node.untracked) return "computed without a tape";
  if (node.is_leaf()) return node.requires_grad ? "leaf" : "constant";
  for (const auto* tape : detail::tape_stack()) {
    if (tape->serial != node.tape_serial) continue;
    // (The walk only stops short of the result's own tape for released records.)
    return node.record_index < tape->records.first() ? "released by a backward()"
                                                     : "from an enclosing tape";
  }
  return "from a destroyed tape";
}

}  // namespace

template <class T>
std::string graph_dot(const Tensor<T>& result,
                      const std::vector<std::pair<std::string, Tensor<T>>>& names,
                      std::size_t max_elements) {
  const detail::NodeBase& root = *result.node();
  detail::TapeImpl* tape = nullptr;
  for (auto* candidate : detail::tape_stack()) {
    if (candidate->serial == root.tape_serial) tape = candidate;
  }
  if (root.tape_serial == 0 || tape == nullptr) {
    throw TapeError("graph_dot: the tensor was not recorded, or its Tape is gone");
  }
  if (root.record_index < tape->records.first()) {
    throw TapeError(
        "graph_dot: the tensor's records were used up by a backward() and released by its Tape");
  }
  std::map<const detail::NodeBase*, std::string> given;
  for (const auto& [name, tensor] : names) given[tensor.node().get()] = name;

  // Walk back from the result, keeping the records whose output it depends on.
  std::set<const detail::NodeBase*> needed{&root};
  std::vector<const detail::Record*> kept;
  for (std::size_t i = root.record_index + 1; i-- > tape->records.first();) {
    const auto& record = tape->records[i];
    if (!needed.count(record.output.get())) continue;
    kept.push_back(&record);
    for (std::size_t k = 0; k < record.input_count; ++k) needed.insert(record.input(k).get());
  }

  std::map<const detail::NodeBase*, std::string> ids;
  std::map<const detail::NodeBase*, std::string> makers;
  for (const auto* record : kept) makers[record->output.get()] = record->op;
  std::ostringstream dot;
  dot << "digraph tape {\n  rankdir=LR;\n  node [shape=box, fontname=\"sans\", fontsize=10];\n";
  for (const auto* node : needed) {
    const std::string id = "n" + std::to_string(ids.size());
    ids[node] = id;
    const auto& typed = static_cast<const detail::Node<T>&>(*node);
    std::string label = given.count(node)    ? escaped(given[node])
                        : makers.count(node) ? escaped(makers[node])  // custom ops' names
                                             : anonymous_kind(*node);
    label += "\\n" + shape_to_string(typed.value.shape());
    const std::string value = values(typed.value, max_elements);
    if (!value.empty()) label += "\\nvalue " + value;
    if (node->grad) {
      const std::string grad =
          values(static_cast<const detail::Node<T>&>(*node->grad).value, max_elements);
      if (!grad.empty()) label += "\\ngrad " + grad;
    }
    const char* style =
        node->is_leaf() && node->requires_grad ? ", style=filled, fillcolor=\"#ffe9a8\"" : "";
    dot << "  " << id << " [label=\"" << label << "\"" << style << "];\n";
  }
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    for (std::size_t k = 0; k < (*it)->input_count; ++k) {
      dot << "  " << ids[(*it)->input(k).get()] << " -> " << ids[(*it)->output.get()] << ";\n";
    }
  }
  dot << "}\n";
  return dot.str();
}

template std::string graph_dot(const Tensor<float>&,
                               const std::vector<std::pair<std::string, Tensor<float>>>&,
                               std::size_t);
template std::string graph_dot(const Tensor<double>&,
                               const std::vector<std::pair<std::string, Tensor<double>>>&,
                               std::size_t);

}  // namespace tapegrad
