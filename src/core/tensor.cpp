#include "tapegrad/tensor.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ostream>
#include <sstream>
#include <string>
#include <xtensor/xio.hpp>

#include "core/hooks.hpp"
#include "core/node_pool.hpp"
#include "core/tape_impl.hpp"

namespace tapegrad {

namespace {
std::atomic<std::size_t> live_nodes{0};
}

namespace detail {
NodeBase::NodeBase() noexcept { live_nodes.fetch_add(1, std::memory_order_relaxed); }
NodeBase::~NodeBase() { live_nodes.fetch_sub(1, std::memory_order_relaxed); }

const char* gradient_use_name(GradientUse use) {
  switch (use) {
    case GradientUse::backward:
      return "backward()";
    case GradientUse::optimizer_step:
      return "an optimizer's step()";
    case GradientUse::zero_grad:
      return "zero_grad()";
    case GradientUse::none:
      break;
  }
  return "another change";
}
}  // namespace detail

std::size_t live_node_count() { return live_nodes.load(std::memory_order_relaxed); }

std::string number_to_string(double value) {
  std::ostringstream out;
  for (int digits = 6; digits <= 17; ++digits) {
    out.str("");
    out.precision(digits);
    out << value;
    if (!std::isfinite(value) || std::strtod(out.str().c_str(), nullptr) == value) break;
  }
  return out.str();
}

namespace {

// An array the caller made: its shape as checked_size checks it (xtensor's size() is the
// product modulo 2^64), and its storage against that shape (an xt::xarray made from storage,
// shape and strides may hold fewer elements than its shape has).
template <class T>
void check_array(const char* where, const xt::xarray<T>& value) {
  const std::size_t size = checked_size(where, value.shape());
  if (value.storage().size() != size) {
    throw ShapeError(std::string(where) + ": the array's shape " + shape_to_string(value.shape()) +
                     " has " + std::to_string(size) + " elements but its storage holds " +
                     std::to_string(value.storage().size()));
  }
}

}  // namespace

std::string printable_text(const std::string& text) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\0') {
      out += "\\0";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      out += {'\\', 'x', hex[c >> 4], hex[c & 15]};
    } else if (text.compare(i, 3, "\xEF\xBB\xBF") == 0) {
      out += "\\xEF\\xBB\\xBF";
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

template <class T>
Tensor<T>::Tensor() : Tensor(T(0)) {}

template <class T>
Tensor<T>::Tensor(Array value, RequiresGrad rg)
    : node_((check_array("Tensor", value), detail::new_node<T>(std::move(value)))) {
  node_->requires_grad = rg.on;
  if (detail::recording_everything) ++detail::constants_made;
}

template <class T>
Tensor<T>::Tensor(T scalar, RequiresGrad rg) : Tensor(Array(scalar), rg) {}

template <class T>
Tensor<T>::Tensor(xt::nested_initializer_list_t<T, 1> values, RequiresGrad rg)
    : Tensor(Array(values), rg) {}
template <class T>
Tensor<T>::Tensor(xt::nested_initializer_list_t<T, 2> values, RequiresGrad rg)
    : Tensor(Array(values), rg) {}
template <class T>
Tensor<T>::Tensor(xt::nested_initializer_list_t<T, 3> values, RequiresGrad rg)
    : Tensor(Array(values), rg) {}
template <class T>
Tensor<T>::Tensor(xt::nested_initializer_list_t<T, 4> values, RequiresGrad rg)
    : Tensor(Array(values), rg) {}

template <class T>
Tensor<T> Tensor<T>::column(std::initializer_list<T> values, RequiresGrad rg) {
  Array a = Array::from_shape({values.size(), std::size_t{1}});
  std::copy(values.begin(), values.end(), a.begin());
  return Tensor(std::move(a), rg);
}

template <class T>
Tensor<T> Tensor<T>::from(const std::vector<T>& values, const Shape& shape, RequiresGrad rg) {
  // Checked first: a product that wraps around (2^32 x 2^32 is 0 modulo 2^64) could match.
  const std::size_t size = checked_size("Tensor::from", shape);
  if (values.size() != size) {
    throw ShapeError("Tensor::from: got " + std::to_string(values.size()) + " values for shape " +
                     shape_to_string(shape) + ", which holds " + std::to_string(size));
  }
  Array a = detail::array_of_shape<T>(shape);
  std::copy_n(values.data(), size, a.data());
  return Tensor(std::move(a), rg);
}

template <class T>
typename Tensor<T>::Array& Tensor<T>::mutable_value() {
  ++node_->version;
  return typed().value;
}

template <class T>
void Tensor<T>::set_value(Array value) {
  check_array("set_value", value);
  ++node_->version;
  // A gradient of the old shape means nothing for the new value.
  if (value.shape() != typed().value.shape()) node_->grad.reset();
  typed().value = std::move(value);
}

template <class T>
T Tensor<T>::item() const {
  if (size() != 1) {
    throw ValueError("item: the tensor has shape " + shape_to_string(shape()) + " and " +
                     std::to_string(size()) + " elements, not exactly one");
  }
  return *typed().value.data();
}

template <class T>
Tensor<T>& Tensor<T>::set_requires_grad(bool on) {
  if (!is_leaf()) {
    throw TapeError(
        "set_requires_grad: only a leaf (a tensor you made, not the result of a recorded "
        "op) can change whether it requires grad; use detach() to get a leaf copy");
  }
  node_->requires_grad = on;
  return *this;
}

template <class T>
const std::shared_ptr<detail::NodeBase>& Tensor<T>::gradient_slot() const {
  if (!node_->is_leaf() && node_->extras && node_->extras->retain) return node_->extras->retained;
  return node_->grad;
}

template <class T>
bool Tensor<T>::has_grad() const {
  return gradient_slot() != nullptr;
}

template <class T>
const typename Tensor<T>::Array& Tensor<T>::grad() const {
  const auto& slot = gradient_slot();
  if (!slot) {
    std::string why;
    if (!requires_grad()) {
      why = "it does not require grad (set requires_grad)";
    } else if (!is_leaf() && !retains_grad()) {
      why =
          "it is the result of a recorded op, whose gradient backward() passes on to the op's "
          "inputs "
          "without keeping it; call retain_grad() on it before backward() to keep it (as in "
          "PyTorch)";
    } else {
      why =
          "call backward() on a result computed from it first (or it takes no part in the "
          "differentiated result)";
    }
    throw TapeError("grad: this tensor of shape " + shape_to_string(shape()) +
                    " has no gradient: " + why);
  }
  return static_cast<const detail::Node<T>&>(*slot).value;
}

template <class T>
typename Tensor<T>::Array& Tensor<T>::mutable_grad() {
  grad();  // throws the same clear error when there is none
  auto& node = static_cast<detail::Node<T>&>(*gradient_slot());
  ++node.version;
  return node.value;
}

template <class T>
void Tensor<T>::zero_grad() {
  const auto claim = detail::claim_gradient(*node_, detail::GradientUse::zero_grad);
  if (claim == detail::GradientClaim::refused) {
    throw TapeError("zero_grad: this tensor of shape " + shape_to_string(shape()) +
                    " is being changed by " +
                    detail::gradient_use_name(detail::gradient_use(*node_)) +
                    " in another thread; a tensor belongs to one thread at a time "
                    "(docs/threads.md)");
  }
  node_->grad.reset();
  if (node_->extras) node_->extras->retained.reset();
  if (claim == detail::GradientClaim::taken) detail::release_gradient(*node_);
}

template <class T>
Tensor<T>& Tensor<T>::retain_grad() {
  if (!is_leaf()) detail::extras_of<T>(*node_).retain = true;
  return *this;
}

template <class T>
bool Tensor<T>::retains_grad() const {
  return is_leaf() ? requires_grad() : node_->extras && node_->extras->retain;
}

template <class T>
std::size_t Tensor<T>::add_hook(std::function<Tensor(const Tensor&)> hook) {
  if (!requires_grad()) {
    throw TapeError("register_hook: this tensor of shape " + shape_to_string(shape()) +
                    " does not require grad, so no gradient will reach the hook");
  }
  auto& extras = detail::extras_of<T>(*node_);
  const std::size_t id = extras.next_id++;
  extras.hooks.emplace_back(id, std::move(hook));
  return id;
}

template <class T>
void Tensor<T>::remove_hook(std::size_t id) {
  if (!node_->extras) return;
  auto& hooks = static_cast<detail::TypedExtras<T>&>(*node_->extras).hooks;
  hooks.erase(
      std::remove_if(hooks.begin(), hooks.end(), [id](const auto& h) { return h.first == id; }),
      hooks.end());
}

template <class T>
Tensor<T> Tensor<T>::grad_tensor() const {
  grad();  // throws the same clear error when there is none
  return Tensor(gradient_slot());
}

template <class T>
Tensor<T> Tensor<T>::detach() const {
  if (detail::recording_everything) {
    throw TapeError(
        "compile: the function calls detach(), whose copy would keep its compile-time value in "
        "every run of the step; compute that value with ops inside the function instead (under a "
        "NoGradGuard if it must not get a gradient: such ops are replayed too)");
  }
  return Tensor(Array(typed().value));
}

template <class T>
std::ostream& operator<<(std::ostream& out, const Tensor<T>& tensor) {
  out << "Tensor<" << (std::is_same_v<T, float> ? "float" : "double") << ">(shape "
      << shape_to_string(tensor.shape());
  if (tensor.requires_grad()) out << ", requires_grad";
  out << ")\n" << tensor.value();
  return out;
}

template class Tensor<float>;
template class Tensor<double>;
template std::ostream& operator<<(std::ostream&, const Tensor<float>&);
template std::ostream& operator<<(std::ostream&, const Tensor<double>&);

}  // namespace tapegrad
