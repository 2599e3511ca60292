#include "tapegrad/nn/recurrent.hpp"

#include <cmath>
#include <string>

#include "tapegrad/nn/init.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad::nn {

namespace {

template <class T>
using OptionalTensor = std::optional<Tensor<T>>;

std::string sizes_text(std::size_t input_size, std::size_t hidden_size) {
  return std::to_string(input_size) + ", " + std::to_string(hidden_size);
}

// The shapes every cell step checks, whether it comes from a module (named like its print,
// "LSTMCell(3, 5)") or from a free function ("lstm_cell").
struct StepShapes {
  std::string where;
  std::size_t input_size, hidden_size;

  void check_input(const Shape& x) const {
    if ((x.size() == 1 || x.size() == 2) && x.back() == input_size) return;
    throw ShapeError(where + ": the input has shape " + shape_to_string(x) + "; expected (N, " +
                     std::to_string(input_size) + ") or (" + std::to_string(input_size) + ",)");
  }
  // A batched input (N, in) takes a state (N, H); an unbatched (in,) one a state (H,).
  Shape state_shape(const Shape& x) const {
    return x.size() == 2 ? Shape{x[0], hidden_size} : Shape{hidden_size};
  }
  void check_state(const Shape& x, const Shape& state, const char* what) const {
    const Shape expected = state_shape(x);
    if (state == expected) return;
    throw ShapeError(where + ": the state " + what + " has shape " + shape_to_string(state) +
                     "; expected " + shape_to_string(expected) + " for an input of shape " +
                     shape_to_string(x));
  }
};

// The free functions read the sizes from the weights, so they check those first.
template <class T>
StepShapes weight_shapes(const char* where, std::size_t gates, const Tensor<T>& weight_ih,
                         const Tensor<T>& weight_hh, const OptionalTensor<T>& bias_ih,
                         const OptionalTensor<T>& bias_hh) {
  const auto& hh = weight_hh.shape();
  if (hh.size() != 2 || hh[0] != gates * hh[1] || hh[1] == 0) {
    throw ShapeError(std::string(where) + ": weight_hh has shape " + shape_to_string(hh) +
                     "; expected (" + std::to_string(gates) + " H, H) with H > 0");
  }
  const std::size_t hidden = hh[1];
  const auto& ih = weight_ih.shape();
  if (ih.size() != 2 || ih[0] != gates * hidden) {
    throw ShapeError(std::string(where) + ": weight_ih has shape " + shape_to_string(ih) +
                     "; expected (" + std::to_string(gates * hidden) + ", input_size)");
  }
  if (bias_ih.has_value() != bias_hh.has_value()) {
    throw ShapeError(std::string(where) + ": got one bias; expected both or none");
  }
  for (const auto* bias : {&bias_ih, &bias_hh}) {
    if (*bias && (*bias)->shape() != Shape{gates * hidden}) {
      throw ShapeError(std::string(where) + ": " + (bias == &bias_ih ? "bias_ih" : "bias_hh") +
                       " has shape " + shape_to_string((*bias)->shape()) + "; expected (" +
                       std::to_string(gates * hidden) + ",)");
    }
  }
  return {where, ih[1], hidden};
}

// x W^T + b for a 2-d x (N, in) and W (G H, in): (N, G H).
template <class T>
Tensor<T> project(const Tensor<T>& x, const Tensor<T>& weight, const OptionalTensor<T>& bias) {
  const auto product = matmul(x, transpose(weight));
  return bias ? product + *bias : product;
}

// A 1-d (unbatched) tensor as a batch of one row, so that each step is written once, for
// (N, .) operands.
template <class T>
Tensor<T> as_batch(const Tensor<T>& x) {
  return x.dim() == 1 ? reshape(x, Shape{1, x.shape()[0]}) : x;
}

template <class T>
Tensor<T> like_input(const Tensor<T>& y, const Tensor<T>& input) {
  return input.dim() == 1 ? reshape(y, Shape{y.shape()[1]}) : y;
}

template <class T>
Tensor<T> gate(const Tensor<T>& stacked, std::size_t k, std::size_t hidden) {
  return narrow(stacked, 1, k * hidden, hidden);
}

template <class T>
Tensor<T> rnn_step(const Tensor<T>& x, const Tensor<T>& h, const Tensor<T>& w_ih,
                   const Tensor<T>& w_hh, const OptionalTensor<T>& b_ih,
                   const OptionalTensor<T>& b_hh, Nonlinearity f) {
  const auto pre = project(as_batch(x), w_ih, b_ih) + project(as_batch(h), w_hh, b_hh);
  return like_input(f == Nonlinearity::ReLU ? relu(pre) : tanh(pre), x);
}

template <class T>
LSTMState<T> lstm_step(const Tensor<T>& x, const LSTMState<T>& state, const Tensor<T>& w_ih,
                       const Tensor<T>& w_hh, const OptionalTensor<T>& b_ih,
                       const OptionalTensor<T>& b_hh, std::size_t hidden) {
  const auto gates = project(as_batch(x), w_ih, b_ih) + project(as_batch(state.first), w_hh, b_hh);
  const auto i = sigmoid(gate(gates, 0, hidden));
  const auto f = sigmoid(gate(gates, 1, hidden));
  const auto g = tanh(gate(gates, 2, hidden));
  const auto o = sigmoid(gate(gates, 3, hidden));
  const auto c = f * as_batch(state.second) + i * g;
  const auto h = o * tanh(c);
  return {like_input(h, x), like_input(c, x)};
}

template <class T>
Tensor<T> gru_step(const Tensor<T>& x, const Tensor<T>& h, const Tensor<T>& w_ih,
                   const Tensor<T>& w_hh, const OptionalTensor<T>& b_ih,
                   const OptionalTensor<T>& b_hh, std::size_t hidden) {
  const auto h2 = as_batch(h);
  const auto gi = project(as_batch(x), w_ih, b_ih);
  const auto gh = project(h2, w_hh, b_hh);
  const auto r = sigmoid(gate(gi, 0, hidden) + gate(gh, 0, hidden));
  const auto z = sigmoid(gate(gi, 1, hidden) + gate(gh, 1, hidden));
  // b_hn stays inside r * (...), as PyTorch's GRU (unlike the original paper's).
  const auto n = tanh(gate(gi, 2, hidden) + r * gate(gh, 2, hidden));
  return like_input((1.0 - z) * n + z * h2, x);
}

}  // namespace

// ---- RNNCellBase ----

template <class T>
RNNCellBase<T>::RNNCellBase(const std::string& name, std::size_t input_size,
                            std::size_t hidden_size, std::size_t gates, const CellOptions& options)
    : input_size_(input_size), hidden_size_(hidden_size), has_bias_(options.has_bias()) {
  if (input_size == 0 || hidden_size == 0) {
    throw ValueError(name + ": sizes must be positive, got input_size " +
                     std::to_string(input_size) + ", hidden_size " + std::to_string(hidden_size));
  }
  const std::size_t rows = checked_size(name.c_str(), {gates, hidden_size});
  checked_size(name.c_str(), {rows, input_size});
  checked_size(name.c_str(), {rows, hidden_size});
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  const Init init = Init::uniform(-bound, bound);
  const auto draw = [&](const std::string& what, Shape shape) {
    xt::xarray<T> values = xt::xarray<T>::from_shape(shape);
    init.fill(values, options.random());
    return this->register_parameter(what, Tensor<T>(std::move(values)));
  };
  weight_ih_ = draw("weight_ih", {rows, input_size});
  weight_hh_ = draw("weight_hh", {rows, hidden_size});
  if (has_bias_) {
    bias_ih_ = draw("bias_ih", {rows});
    bias_hh_ = draw("bias_hh", {rows});
  }
}

template <class T>
const Tensor<T>& RNNCellBase<T>::bias_ih() const {
  if (!has_bias_) throw ValueError(this->type_name() + ": this cell was made without biases");
  return bias_ih_;
}

template <class T>
const Tensor<T>& RNNCellBase<T>::bias_hh() const {
  if (!has_bias_) throw ValueError(this->type_name() + ": this cell was made without biases");
  return bias_hh_;
}

template <class T>
std::optional<Tensor<T>> RNNCellBase<T>::optional_bias_ih() const {
  return has_bias_ ? std::optional<Tensor<T>>(bias_ih_) : std::nullopt;
}

template <class T>
std::optional<Tensor<T>> RNNCellBase<T>::optional_bias_hh() const {
  return has_bias_ ? std::optional<Tensor<T>>(bias_hh_) : std::nullopt;
}

template <class T>
std::string RNNCellBase<T>::extra_repr() const {
  return sizes_text(input_size_, hidden_size_) + (has_bias_ ? "" : ", bias=False");
}

template <class T>
void RNNCellBase<T>::check_input(const Tensor<T>& input) const {
  StepShapes{to_string(*this), input_size_, hidden_size_}.check_input(input.shape());
}

template <class T>
void RNNCellBase<T>::check_state(const Tensor<T>& input, const Tensor<T>& state,
                                 const char* what) const {
  StepShapes{to_string(*this), input_size_, hidden_size_}.check_state(input.shape(), state.shape(),
                                                                      what);
}

template <class T>
Tensor<T> RNNCellBase<T>::zero_state(const Tensor<T>& input) const {
  check_input(input);
  return zeros<T>(StepShapes{"", input_size_, hidden_size_}.state_shape(input.shape()));
}

// ---- RNNCell ----

template <class T>
RNNCell<T>::RNNCell(std::size_t input_size, std::size_t hidden_size, const RNNCellOptions& options)
    : RNNCellBase<T>("RNNCell", input_size, hidden_size, 1, options.cell()),
      nonlinearity_(options.nonlinearity_kind()) {}

template <class T>
Tensor<T> RNNCell<T>::forward(const Tensor<T>& input) {
  return forward(input, this->zero_state(input));
}

template <class T>
Tensor<T> RNNCell<T>::forward(const Tensor<T>& input, const Tensor<T>& hidden) {
  this->check_input(input);
  this->check_state(input, hidden, "h");
  return rnn_step(input, hidden, this->weight_ih(), this->weight_hh(), this->optional_bias_ih(),
                  this->optional_bias_hh(), nonlinearity_);
}

template <class T>
std::string RNNCell<T>::extra_repr() const {
  return RNNCellBase<T>::extra_repr() +
         (nonlinearity_ == Nonlinearity::ReLU ? ", nonlinearity=relu" : "");
}

// ---- LSTMCell ----

template <class T>
LSTMCell<T>::LSTMCell(std::size_t input_size, std::size_t hidden_size, const CellOptions& options)
    : RNNCellBase<T>("LSTMCell", input_size, hidden_size, 4, options) {}

template <class T>
Tensor<T> LSTMCell<T>::forward(const Tensor<T>&) {
  throw ValueError(to_string(*this) +
                   ": forward(input) is not defined: an LSTM cell returns (h, c); call "
                   "step(input) or forward(input, {h, c})");
}

template <class T>
LSTMState<T> LSTMCell<T>::step(const Tensor<T>& input) {
  const auto zero = this->zero_state(input);
  return forward(input, {zero, zero});
}

template <class T>
LSTMState<T> LSTMCell<T>::forward(const Tensor<T>& input, const LSTMState<T>& state) {
  this->check_input(input);
  this->check_state(input, state.first, "h");
  this->check_state(input, state.second, "c");
  return lstm_step(input, state, this->weight_ih(), this->weight_hh(), this->optional_bias_ih(),
                   this->optional_bias_hh(), this->hidden_size());
}

// ---- GRUCell ----

template <class T>
GRUCell<T>::GRUCell(std::size_t input_size, std::size_t hidden_size, const CellOptions& options)
    : RNNCellBase<T>("GRUCell", input_size, hidden_size, 3, options) {}

template <class T>
Tensor<T> GRUCell<T>::forward(const Tensor<T>& input) {
  return forward(input, this->zero_state(input));
}

template <class T>
Tensor<T> GRUCell<T>::forward(const Tensor<T>& input, const Tensor<T>& hidden) {
  this->check_input(input);
  this->check_state(input, hidden, "h");
  return gru_step(input, hidden, this->weight_ih(), this->weight_hh(), this->optional_bias_ih(),
                  this->optional_bias_hh(), this->hidden_size());
}

// ---- the free functions ----

template <class T>
Tensor<T> rnn_cell(const Tensor<T>& input, const Tensor<T>& hidden, const Tensor<T>& weight_ih,
                   const Tensor<T>& weight_hh, const detail::NoDeduce<OptionalTensor<T>>& bias_ih,
                   const detail::NoDeduce<OptionalTensor<T>>& bias_hh, Nonlinearity nonlinearity) {
  const auto shapes = weight_shapes("rnn_cell", 1, weight_ih, weight_hh, bias_ih, bias_hh);
  shapes.check_input(input.shape());
  shapes.check_state(input.shape(), hidden.shape(), "h");
  return rnn_step(input, hidden, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity);
}

template <class T>
LSTMState<T> lstm_cell(const Tensor<T>& input, const LSTMState<T>& state,
                       const Tensor<T>& weight_ih, const Tensor<T>& weight_hh,
                       const detail::NoDeduce<OptionalTensor<T>>& bias_ih,
                       const detail::NoDeduce<OptionalTensor<T>>& bias_hh) {
  const auto shapes = weight_shapes("lstm_cell", 4, weight_ih, weight_hh, bias_ih, bias_hh);
  shapes.check_input(input.shape());
  shapes.check_state(input.shape(), state.first.shape(), "h");
  shapes.check_state(input.shape(), state.second.shape(), "c");
  return lstm_step(input, state, weight_ih, weight_hh, bias_ih, bias_hh, shapes.hidden_size);
}

template <class T>
Tensor<T> gru_cell(const Tensor<T>& input, const Tensor<T>& hidden, const Tensor<T>& weight_ih,
                   const Tensor<T>& weight_hh, const detail::NoDeduce<OptionalTensor<T>>& bias_ih,
                   const detail::NoDeduce<OptionalTensor<T>>& bias_hh) {
  const auto shapes = weight_shapes("gru_cell", 3, weight_ih, weight_hh, bias_ih, bias_hh);
  shapes.check_input(input.shape());
  shapes.check_state(input.shape(), hidden.shape(), "h");
  return gru_step(input, hidden, weight_ih, weight_hh, bias_ih, bias_hh, shapes.hidden_size);
}

#define TAPEGRAD_INSTANTIATE_CELLS(T)                                                      \
  template class RNNCellBase<T>;                                                           \
  template class RNNCell<T>;                                                               \
  template class LSTMCell<T>;                                                              \
  template class GRUCell<T>;                                                               \
  template Tensor<T> rnn_cell(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&,        \
                              const Tensor<T>&, const OptionalTensor<T>&,                  \
                              const OptionalTensor<T>&, Nonlinearity);                     \
  template LSTMState<T> lstm_cell(const Tensor<T>&, const LSTMState<T>&, const Tensor<T>&, \
                                  const Tensor<T>&, const OptionalTensor<T>&,              \
                                  const OptionalTensor<T>&);                               \
  template Tensor<T> gru_cell(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&,        \
                              const Tensor<T>&, const OptionalTensor<T>&,                  \
                              const OptionalTensor<T>&);
TAPEGRAD_INSTANTIATE_CELLS(float)
TAPEGRAD_INSTANTIATE_CELLS(double)

}  // namespace tapegrad::nn
