#include "tapegrad/nn/module.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <typeinfo>
#include <utility>

namespace tapegrad::nn {

namespace {

// "ns::Outer<double>::Inner<float>" -> "Inner", "(anonymous namespace)::Affine" -> "Affine",
// "f()::Local" -> "Local": the last name outside brackets, without its template arguments.
std::string short_class_name(const std::string& full) {
  std::size_t start = 0;
  int depth = 0;
  for (std::size_t i = 0; i < full.size(); ++i) {
    const char ch = full[i];
    if (ch == '<' || ch == '(') ++depth;
    if (ch == '>' || ch == ')') --depth;
    if (depth == 0 && ch == ':' && i + 1 < full.size() && full[i + 1] == ':') start = i + 2;
  }
  std::string name = full.substr(start);
  return name.substr(0, name.find('<'));
}

std::string demangled(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

}  // namespace

template <class T>
std::string Module<T>::type_name() const {
  return short_class_name(demangled(typeid(*this)));
}

template <class T>
Tensor<T> Module<T>::forward(const Tensor<T>&) {
  throw ValueError(type_name() +
                   ": forward(input) is not defined: this module takes several inputs; call its "
                   "own forward(...) overloads");
}

template <class T>
void Module<T>::check_new_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos) {
    throw ValueError("Module: the name '" + name + "' is empty or contains '.'");
  }
  const auto taken = [&](const auto& entries) {
    return std::any_of(entries.begin(), entries.end(),
                       [&](const auto& entry) { return entry.first == name; });
  };
  const bool buffer_taken = std::any_of(buffers_.begin(), buffers_.end(),
                                        [&](const Buffer& buffer) { return buffer.name == name; });
  if (taken(parameters_) || taken(children_) || buffer_taken) {
    throw ValueError("Module: the name '" + name + "' is registered already");
  }
}

template <class T>
Tensor<T> Module<T>::register_parameter(const std::string& name, Tensor<T> value) {
  check_new_name(name);
  if (!value.is_leaf()) {
    throw ValueError("Module: parameter '" + name +
                     "' must be a leaf tensor (detach() a computed one)");
  }
  value.set_requires_grad(true);
  parameters_.emplace_back(name, value);
  return value;
}

template <class T>
Tensor<T> Module<T>::register_buffer(const std::string& name, Tensor<T> value, BufferKind kind) {
  check_new_name(name);
  if (!value.is_leaf() || value.requires_grad()) {
    throw ValueError("Module: buffer '" + name +
                     "' must be a leaf tensor that does not require grad (detach() it)");
  }
  buffers_.push_back({name, value, kind});
  return value;
}

template <class T>
void Module<T>::collect_buffers(const std::string& prefix,
                                std::vector<std::pair<std::string, Buffer>>& out) const {
  for (const auto& buffer : buffers_) out.emplace_back(prefix + buffer.name, buffer);
  for (const auto& [name, child] : children_) child->collect_buffers(prefix + name + ".", out);
}

template <class T>
std::vector<std::pair<std::string, Tensor<T>>> Module<T>::named_buffers() const {
  std::vector<std::pair<std::string, Buffer>> all;
  collect_buffers("", all);
  std::vector<std::pair<std::string, Tensor<T>>> out;
  for (auto& [name, buffer] : all) out.emplace_back(std::move(name), buffer.value);
  return out;
}

template <class T>
std::vector<Tensor<T>> Module<T>::buffers() const {
  std::vector<Tensor<T>> out;
  for (auto& entry : named_buffers()) out.push_back(std::move(entry.second));
  return out;
}

template <class T>
BufferKind Module<T>::buffer_kind(const std::string& dotted_name) const {
  std::vector<std::pair<std::string, Buffer>> all;
  collect_buffers("", all);
  for (const auto& [name, buffer] : all) {
    if (name == dotted_name) return buffer.kind;
  }
  throw ValueError("Module: no buffer named '" + dotted_name + "'");
}

template <class T>
void Module<T>::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  if (!module) throw ValueError("Module: the child '" + name + "' is null");
  children_.emplace_back(name, std::move(module));
}

template <class T>
void Module<T>::collect(const std::string& prefix,
                        std::vector<std::pair<std::string, Tensor<T>>>& out) const {
  for (const auto& [name, tensor] : parameters_) out.emplace_back(prefix + name, tensor);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

template <class T>
std::vector<std::pair<std::string, Tensor<T>>> Module<T>::named_parameters() const {
  std::vector<std::pair<std::string, Tensor<T>>> out;
  collect("", out);
  return out;
}

template <class T>
std::vector<std::pair<std::string, const Module<T>*>> Module<T>::named_modules() const {
  std::vector<std::pair<std::string, const Module*>> out;
  // An explicit stack, children pushed last to first: preorder, as collect() walks.
  std::vector<std::pair<std::string, const Module*>> pending{{"", this}};
  while (!pending.empty()) {
    auto [path, module] = std::move(pending.back());
    pending.pop_back();
    const std::string prefix = path.empty() ? "" : path + ".";
    for (auto child = module->children_.rbegin(); child != module->children_.rend(); ++child) {
      pending.emplace_back(prefix + child->first, child->second.get());
    }
    out.emplace_back(std::move(path), module);
  }
  return out;
}

template <class T>
std::vector<std::pair<std::string, Module<T>*>> Module<T>::named_modules() {
  // Children are held through non-const pointers and *this is non-const here, so casting
  // the read-only walk's results back is sound.
  std::vector<std::pair<std::string, Module*>> out;
  for (auto& [path, module] : std::as_const(*this).named_modules()) {
    out.emplace_back(std::move(path), const_cast<Module*>(module));
  }
  return out;
}

template <class T>
std::vector<Tensor<T>> Module<T>::parameters() const {
  std::vector<Tensor<T>> out;
  for (auto& entry : named_parameters()) out.push_back(std::move(entry.second));
  return out;
}

template <class T>
std::size_t Module<T>::parameter_count() const {
  std::size_t count = 0;
  for (const auto& p : parameters()) count += p.size();
  return count;
}

template <class T>
void Module<T>::zero_grad() {
  for (auto& p : parameters()) p.zero_grad();
}

template <class T>
void Module<T>::train(bool on) {
  training_ = on;
  for (auto& entry : children_) entry.second->train(on);
}

template class Module<float>;
template class Module<double>;

}  // namespace tapegrad::nn
