// Recurrent cells: one time step of an Elman RNN, an LSTM and a GRU, as PyTorch's
// nn.RNNCell, nn.LSTMCell and nn.GRUCell (same equations, parameter names, layouts and
// initialization), composed from graph ops.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "tapegrad/factories.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/random.hpp"

namespace tapegrad::nn {

/// @addtogroup nn
/// @{

/// The nonlinearity of an RNNCell: tanh (the default) or relu, PyTorch's `nonlinearity=`.
enum class Nonlinearity { Tanh, ReLU };

/// Settings of an LSTMCell or GRUCell, builder style: `CellOptions().bias(false)`.
class CellOptions {
 public:
  /// With the biases bias_ih and bias_hh (default) or without.
  CellOptions& bias(bool on) {
    bias_ = on;
    return *this;
  }
  /// The generator the initial values are drawn from (default: the thread's
  /// default_generator()). Not owned: it must outlive the options.
  CellOptions& generator(Generator& random) {
    generator_ = &random;
    return *this;
  }

  /// Whether the cell gets biases.
  bool has_bias() const { return bias_; }
  /// The generator set with generator(), or else the calling thread's default_generator().
  Generator& random() const { return generator_ ? *generator_ : default_generator(); }

 private:
  bool bias_ = true;
  Generator* generator_ = nullptr;
};

/// Settings of an RNNCell, builder style:
/// `RNNCellOptions().nonlinearity(Nonlinearity::ReLU).bias(false)`.
class RNNCellOptions {
 public:
  /// With the biases bias_ih and bias_hh (default) or without.
  RNNCellOptions& bias(bool on) {
    cell_.bias(on);
    return *this;
  }
  /// tanh (default) or relu.
  RNNCellOptions& nonlinearity(Nonlinearity f) {
    nonlinearity_ = f;
    return *this;
  }
  /// The generator the initial values are drawn from (default: the thread's
  /// default_generator()). Not owned: it must outlive the options.
  RNNCellOptions& generator(Generator& random) {
    cell_.generator(random);
    return *this;
  }

  /// Whether the cell gets biases.
  bool has_bias() const { return cell_.has_bias(); }
  /// The nonlinearity.
  Nonlinearity nonlinearity_kind() const { return nonlinearity_; }
  /// The bias and generator settings, as an LSTMCell or GRUCell takes them.
  const CellOptions& cell() const { return cell_; }

 private:
  CellOptions cell_;
  Nonlinearity nonlinearity_ = Nonlinearity::Tanh;
};

/// What the recurrent cells share, as PyTorch's RNNCellBase: the sizes and the parameters
/// of G gates over a hidden state of size H,
///   - "weight_ih" of shape (G H, input_size), "weight_hh" of shape (G H, H),
///   - "bias_ih" and "bias_hh" of shape (G H,) unless made without biases,
/// registered in that order, the gates stacked in PyTorch's order, every element drawn
/// uniform in [-1/sqrt(H), 1/sqrt(H)) from the options' generator in that order (PyTorch's
/// reset_parameters()). G is 1 for RNNCell, 4 for LSTMCell, 3 for GRUCell.
///
/// Inputs are batched, x of shape (N, input_size) with states of shape (N, H), or not,
/// x of shape (input_size,) with states of shape (H,), as in PyTorch; N may be 0.
template <class T = double>
class RNNCellBase : public Module<T> {
 public:
  /// The width of an input.
  std::size_t input_size() const { return input_size_; }
  /// The width H of the hidden state.
  std::size_t hidden_size() const { return hidden_size_; }
  /// Whether the cell has biases.
  bool has_bias() const { return has_bias_; }
  /// weight_ih, shape (G H, input_size).
  const Tensor<T>& weight_ih() const { return weight_ih_; }
  /// weight_hh, shape (G H, H).
  const Tensor<T>& weight_hh() const { return weight_hh_; }
  /// bias_ih, shape (G H,). Throws ValueError for a cell without biases.
  const Tensor<T>& bias_ih() const;
  /// bias_hh, shape (G H,). Throws ValueError for a cell without biases.
  const Tensor<T>& bias_hh() const;
  /// As PyTorch: "3, 5", then ", bias=False" for a cell without biases.
  std::string extra_repr() const override;

 protected:
  /// Makes and registers the parameters of `gates` gates. Throws ValueError, naming the
  /// cell, if input_size or hidden_size is 0.
  RNNCellBase(const std::string& name, std::size_t input_size, std::size_t hidden_size,
              std::size_t gates, const CellOptions& options);
  /// Zeros of the state's shape for input x: (N, H), or (H,) for a 1-d x. Checks x first.
  Tensor<T> zero_state(const Tensor<T>& input) const;
  /// Throws ShapeError naming the cell (to_string(*this)) and the shape unless the input
  /// is (N, input_size) or (input_size,).
  void check_input(const Tensor<T>& input) const;
  /// Throws ShapeError naming the cell, the state (`what`: "h" or "c") and both shapes
  /// unless `state` is (N, H) for an input (N, input_size), or (H,) for an input
  /// (input_size,).
  void check_state(const Tensor<T>& input, const Tensor<T>& state, const char* what) const;
  /// bias_ih, or nothing for a cell without biases.
  std::optional<Tensor<T>> optional_bias_ih() const;
  /// bias_hh, or nothing for a cell without biases.
  std::optional<Tensor<T>> optional_bias_hh() const;

 private:
  std::size_t input_size_, hidden_size_;
  bool has_bias_;
  Tensor<T> weight_ih_, weight_hh_, bias_ih_, bias_hh_;
};

/// An Elman RNN cell, PyTorch's nn.RNNCell:
///   h' = f(x W_ih^T + b_ih + h W_hh^T + b_hh),  f = tanh or relu.
/// Parameters as in RNNCellBase with G = 1. Printed "RNNCell(3, 5)", with ", bias=False"
/// and ", nonlinearity=relu" when those are set.
template <class T = double>
class RNNCell : public RNNCellBase<T> {
 public:
  /// A cell from inputs of `input_size` to a hidden state of `hidden_size`. Throws
  /// ValueError if either is 0.
  RNNCell(std::size_t input_size, std::size_t hidden_size,
          const RNNCellOptions& options = RNNCellOptions());
  using Module<T>::operator();
  /// One step from the zero state: forward(x, zeros).
  Tensor<T> forward(const Tensor<T>& input) override;
  /// One step: h' from x of shape (N, input_size) and h of shape (N, H), or x of shape
  /// (input_size,) and h of shape (H,); h' has h's shape. Throws ShapeError naming the
  /// cell and the shapes for any other shapes.
  Tensor<T> forward(const Tensor<T>& input, const Tensor<T>& hidden);
  /// forward(input, hidden).
  Tensor<T> operator()(const Tensor<T>& input, const Tensor<T>& hidden) {
    return forward(input, hidden);
  }
  /// The nonlinearity f.
  Nonlinearity nonlinearity() const { return nonlinearity_; }
  /// "RNNCell".
  std::string type_name() const override { return "RNNCell"; }
  /// "3, 5", then ", bias=False" and ", nonlinearity=relu" when set (PyTorch's order).
  std::string extra_repr() const override;

 private:
  Nonlinearity nonlinearity_;
};

/// The state of an LSTMCell: (h, c), the hidden state and the cell state, both of the same
/// shape. `auto [h, c] = cell(x, {h0, c0});` reads as PyTorch's `h, c = cell(x, (h0, c0))`.
template <class T = double>
using LSTMState = std::pair<Tensor<T>, Tensor<T>>;

/// A long short-term memory cell, PyTorch's nn.LSTMCell, gates i, f, g, o in that order
/// (rows [0, H), [H, 2H), [2H, 3H), [3H, 4H) of the weights):
///   i = sigmoid(x W_ii^T + b_ii + h W_hi^T + b_hi)
///   f = sigmoid(x W_if^T + b_if + h W_hf^T + b_hf)
///   g = tanh(x W_ig^T + b_ig + h W_hg^T + b_hg)
///   o = sigmoid(x W_io^T + b_io + h W_ho^T + b_ho)
///   c' = f * c + i * g,   h' = o * tanh(c').
/// Parameters as in RNNCellBase with G = 4. Printed "LSTMCell(3, 5)".
template <class T = double>
class LSTMCell : public RNNCellBase<T> {
 public:
  /// A cell from inputs of `input_size` to states of `hidden_size`. Throws ValueError if
  /// either is 0.
  LSTMCell(std::size_t input_size, std::size_t hidden_size,
           const CellOptions& options = CellOptions());
  /// Refused: an LSTMCell returns two states. Throws ValueError pointing to step(x) and
  /// forward(x, {h, c}).
  Tensor<T> forward(const Tensor<T>& input) override;
  /// One step from the zero state (h = c = 0): (h', c').
  LSTMState<T> step(const Tensor<T>& input);
  /// One step: (h', c') from x of shape (N, input_size) with h and c of shape (N, H), or x
  /// of shape (input_size,) with h and c of shape (H,). Throws ShapeError naming the cell
  /// and the shapes for any other shapes.
  LSTMState<T> forward(const Tensor<T>& input, const LSTMState<T>& state);
  /// step(input): one step from the zero state.
  LSTMState<T> operator()(const Tensor<T>& input) { return step(input); }
  /// forward(input, state).
  LSTMState<T> operator()(const Tensor<T>& input, const LSTMState<T>& state) {
    return forward(input, state);
  }
  /// "LSTMCell".
  std::string type_name() const override { return "LSTMCell"; }
};

/// A gated recurrent unit cell, PyTorch's nn.GRUCell, gates r, z, n in that order (rows
/// [0, H), [H, 2H), [2H, 3H) of the weights):
///   r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
///   z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
///   n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
///   h' = (1 - z) * n + z * h.
/// Parameters as in RNNCellBase with G = 3. Printed "GRUCell(3, 5)".
template <class T = double>
class GRUCell : public RNNCellBase<T> {
 public:
  /// A cell from inputs of `input_size` to a hidden state of `hidden_size`. Throws
  /// ValueError if either is 0.
  GRUCell(std::size_t input_size, std::size_t hidden_size,
          const CellOptions& options = CellOptions());
  using Module<T>::operator();
  /// One step from the zero state: forward(x, zeros).
  Tensor<T> forward(const Tensor<T>& input) override;
  /// One step: h' from x of shape (N, input_size) and h of shape (N, H), or x of shape
  /// (input_size,) and h of shape (H,); h' has h's shape. Throws ShapeError naming the
  /// cell and the shapes for any other shapes.
  Tensor<T> forward(const Tensor<T>& input, const Tensor<T>& hidden);
  /// forward(input, hidden).
  Tensor<T> operator()(const Tensor<T>& input, const Tensor<T>& hidden) {
    return forward(input, hidden);
  }
  /// "GRUCell".
  std::string type_name() const override { return "GRUCell"; }
};

/// The step of RNNCell as a function of all its tensors (for gradcheck, or for weights
/// that are not a module's): h' = f(x W_ih^T + b_ih + h W_hh^T + b_hh). Shapes as
/// RNNCell's: x (N, in) or (in,), h (N, H) or (H,), weight_ih (H, in), weight_hh (H, H),
/// biases (H,) or none. Throws ShapeError naming "rnn_cell" and the shapes otherwise.
template <class T>
Tensor<T> rnn_cell(const Tensor<T>& input, const Tensor<T>& hidden, const Tensor<T>& weight_ih,
                   const Tensor<T>& weight_hh,
                   const detail::NoDeduce<std::optional<Tensor<T>>>& bias_ih = std::nullopt,
                   const detail::NoDeduce<std::optional<Tensor<T>>>& bias_hh = std::nullopt,
                   Nonlinearity nonlinearity = Nonlinearity::Tanh);
/// The step of LSTMCell as a function of all its tensors: (h', c') from x, (h, c) and the
/// weights, shapes as LSTMCell's with 4 H rows. Throws ShapeError naming "lstm_cell" and
/// the shapes otherwise.
template <class T>
LSTMState<T> lstm_cell(const Tensor<T>& input, const LSTMState<T>& state,
                       const Tensor<T>& weight_ih, const Tensor<T>& weight_hh,
                       const detail::NoDeduce<std::optional<Tensor<T>>>& bias_ih = std::nullopt,
                       const detail::NoDeduce<std::optional<Tensor<T>>>& bias_hh = std::nullopt);
/// The step of GRUCell as a function of all its tensors: h' from x, h and the weights,
/// shapes as GRUCell's with 3 H rows. Throws ShapeError naming "gru_cell" and the shapes
/// otherwise.
template <class T>
Tensor<T> gru_cell(const Tensor<T>& input, const Tensor<T>& hidden, const Tensor<T>& weight_ih,
                   const Tensor<T>& weight_hh,
                   const detail::NoDeduce<std::optional<Tensor<T>>>& bias_ih = std::nullopt,
                   const detail::NoDeduce<std::optional<Tensor<T>>>& bias_hh = std::nullopt);

extern template class RNNCellBase<float>;
extern template class RNNCellBase<double>;
extern template class RNNCell<float>;
extern template class RNNCell<double>;
extern template class LSTMCell<float>;
extern template class LSTMCell<double>;
extern template class GRUCell<float>;
extern template class GRUCell<double>;

/// @}

}  // namespace tapegrad::nn
