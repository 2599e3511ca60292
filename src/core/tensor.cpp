#include "tapegrad/tensor.hpp"

#include "core/tape_impl.hpp"

#include "core/node_pool.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <atomic>
#include <ostream>
#include <sstream>

#include <xtensor/xio.hpp>

namespace tapegrad {

namespace {
std::atomic<std::size_t> live_nodes{0};
}

namespace detail {
NodeBase::NodeBase() noexcept { live_nodes.fetch_add(1, std::memory_order_relaxed); }
NodeBase::~NodeBase() { live_nodes.fetch_sub(1, std::memory_order_relaxed); }
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

template <class T>
Tensor<T>::Tensor() : Tensor(T(0)) {}

template <class T>
Tensor<T>::Tensor(Array value, RequiresGrad rg)
    : node_(detail::new_node<T>(std::move(value))) {
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
  ++node_->version;
  // A gradient of the old shape means nothing for the new value.
  if (value.shape() != typed().value.shape()) node_->grad.reset();
  typed().value = std::move(value);
}

template <class T>
T Tensor<T>::item() const {
  if (size() != 1) {
    throw ValueError("item: the tensor has shape " + shape_to_string(shape()) +
                     " and " + std::to_string(size()) + " elements, not exactly one");
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
const typename Tensor<T>::Array& Tensor<T>::grad() const {
  if (!node_->grad) {
    throw TapeError("grad: this tensor of shape " + shape_to_string(shape()) +
                    " has no gradient: " +
                    (requires_grad() ? "call backward() on a result computed from it first"
                                     : "it does not require grad (set requires_grad)"));
  }
  return static_cast<const detail::Node<T>&>(*node_->grad).value;
}

template <class T>
typename Tensor<T>::Array& Tensor<T>::mutable_grad() {
  grad();  // throws the same clear error when there is none
  auto& node = static_cast<detail::Node<T>&>(*node_->grad);
  ++node.version;
  return node.value;
}

template <class T>
Tensor<T> Tensor<T>::grad_tensor() const {
  grad();  // throws the same clear error when there is none
  return Tensor(node_->grad);
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
