// Module: the base of every layer and model, with its parameters and sub-modules.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/tensor.hpp"

/// Models built from ops: Module and its parameters, the layers (Linear, activations,
/// Sequential, MLP), initializers and losses. Nothing here has a backward of its own.
namespace tapegrad::nn {

/// @addtogroup nn
/// @{

/// What a buffer (Module::register_buffer) holds, which decides how it is saved.
enum class BufferKind {
  /// Numbers of the module's element type (BatchNorm's running_mean, running_var), saved as
  /// float32 or float64 like the parameters.
  values,
  /// A count kept in T as a whole number (BatchNorm's num_batches_tracked), saved as an int64
  /// as PyTorch's state_dict holds it. Exact up to 2^24 for float, 2^53 for double.
  count
};

/// A model or a part of one: owns parameters and sub-modules, maps an input to an output.
///
/// A subclass registers its parameters and children in its constructor and defines
/// forward():
///
///     struct Affine : tapegrad::nn::Module<double> {
///       tapegrad::Tensor<double> scale, shift;
///       Affine() {
///         scale = register_parameter("scale", tapegrad::Tensor<double>(1.0));
///         shift = register_parameter("shift", tapegrad::Tensor<double>(0.0));
///       }
///       tapegrad::Tensor<double> forward(const tapegrad::Tensor<double>& x) override {
///         return x * scale + shift;
///       }
///     };
///
/// Parameters are tensor handles: the module's member and the registry share one node, so
/// an optimizer's in-place update is seen by both. (Assigning a new tensor to the member
/// afterwards would split them: change values with mutable_value() or set_value().)
///
/// Buffers are state that is not a parameter (BatchNorm's running statistics): a subclass
/// registers them with register_buffer() and keeps the handle; they need no gradient, are
/// not in parameters() (so optimizers never see them) and are saved and loaded with the
/// parameters (io::save_state, io::save_torch_state).
///
/// A module with several inputs or outputs defines its own forward() overloads and a
/// matching operator(), and leaves the one-input forward() alone: called, it throws
/// ValueError naming the module. `using` keeps the base's operator() visible beside the new
/// one (C++ hides a base member of the same name otherwise):
///
///     struct Bilinear : tapegrad::nn::Module<double> {
///       tapegrad::Tensor<double> w;
///       Bilinear() { w = register_parameter("w", tapegrad::Tensor<double>(2.0)); }
///       using Module::operator();
///       tapegrad::Tensor<double> forward(const tapegrad::Tensor<double>& x,
///                                        const tapegrad::Tensor<double>& y) {
///         return w * x * y;
///       }
///       tapegrad::Tensor<double> operator()(const tapegrad::Tensor<double>& x,
///                                           const tapegrad::Tensor<double>& y) {
///         return forward(x, y);
///       }
///     };
///
/// Printing (`std::cout << module`, to_string()) shows the module as PyTorch's repr does:
/// type_name(), then extra_repr() and the children. type_name() is the class's own name by
/// default; override it, and extra_repr(), to print more.
template <class T = double>
class Module {
 public:
  /// A module without parameters or children, in training mode.
  Module() = default;
  virtual ~Module() = default;
  /// Not copyable.
  Module(const Module&) = delete;
  /// Not copyable.
  Module& operator=(const Module&) = delete;

  /// The output for `input`; shapes and errors are the subclass's to document. A module
  /// that does not override it (one taking several inputs) throws ValueError naming
  /// type_name(): "Bilinear: forward(input) is not defined: this module takes several
  /// inputs; call its own forward(...) overloads".
  virtual Tensor<T> forward(const Tensor<T>& input);
  /// forward(input).
  Tensor<T> operator()(const Tensor<T>& input) { return forward(input); }

  /// Every parameter, this module's first, then each child's in registration order.
  std::vector<Tensor<T>> parameters() const;
  /// The same, with dotted names: "weight", "0.weight", "encoder.1.bias", ...
  std::vector<std::pair<std::string, Tensor<T>>> named_parameters() const;
  /// Every module with its dotted path: this one as "", then each child as "0", "encoder",
  /// "encoder.1", ... depth first, in the order named_parameters() walks them (a parameter's
  /// name is its module's path, a dot, and its own name). Pointers into this module, valid
  /// while it lives. Find layers of a type with dynamic_cast:
  ///
  ///     for (auto& [path, m] : model.named_modules())
  ///       if (auto* linear = dynamic_cast<tapegrad::nn::Linear<double>*>(m)) ...
  std::vector<std::pair<std::string, Module*>> named_modules();
  /// The same, read-only.
  std::vector<std::pair<std::string, const Module*>> named_modules() const;
  /// The number of scalar parameters: the sum of the parameters' element counts.
  std::size_t parameter_count() const;
  /// Every buffer, this module's first, then each child's in registration order (the order
  /// of named_parameters()).
  std::vector<Tensor<T>> buffers() const;
  /// The same, with dotted names as named_parameters(): "running_mean", "1.running_var",
  /// "encoder.0.num_batches_tracked", ...
  std::vector<std::pair<std::string, Tensor<T>>> named_buffers() const;
  /// The kind the buffer with this dotted name (as named_buffers() gives it) was registered
  /// with. Throws ValueError if there is no such buffer.
  BufferKind buffer_kind(const std::string& dotted_name) const;
  /// Clears the gradient of every parameter, children's included (has_grad() becomes false).
  void zero_grad();

  /// Sets training (true) or evaluation mode here and in every child; a subclass may read
  /// is_training(). Of the built-in layers, these behave differently in the two modes (as
  /// in PyTorch); all others behave the same:
  /// - Dropout (nn/dropout.hpp) zeroes elements in training mode only; in evaluation mode it
  ///   is the identity.
  /// - BatchNorm1d and BatchNorm2d (nn/norm.hpp) normalise by the batch's statistics and
  ///   update their running statistics (and num_batches_tracked) in training mode; in
  ///   evaluation mode they normalise by the running statistics and change nothing.
  /// (LayerNorm and Embedding behave the same in both.)
  void train(bool on = true);
  /// train(false): evaluation mode here and in every child.
  void eval() { train(false); }
  /// True in training mode (the default), false after eval() or train(false).
  bool is_training() const { return training_; }

  /// The name printing shows, PyTorch's class name: by default the class's demangled name
  /// without namespaces or template arguments (`my::Encoder<double>` prints "Encoder").
  /// The built-in modules return PyTorch's names ("Linear", "Sigmoid", "LSTMCell", ...).
  virtual std::string type_name() const;
  /// What printing shows between the parentheses after type_name(), PyTorch's
  /// extra_repr(): "" by default; Linear gives "in_features=2, out_features=10, bias=True".
  /// Several lines (separated by '\n') are printed one per line, as in PyTorch.
  virtual std::string extra_repr() const { return ""; }

 protected:
  /// Adds a parameter (it is made to require grad) and returns the shared handle.
  /// Throws ValueError for an empty name, a name with '.', a name used already (by a
  /// parameter or a child), or a value that is not a leaf (detach() a computed one).
  Tensor<T> register_parameter(const std::string& name, Tensor<T> value);
  /// Adds a buffer: state that is saved and loaded with the parameters but is not one (no
  /// gradient, not in parameters(), not seen by optimizers). Returns the shared handle; the
  /// module changes the buffer's value in place through it, outside the tape, with
  /// `handle.mutable_value()` or `handle.set_value(...)` (as an optimizer changes a
  /// parameter; a backward() through an op that read the old value then throws TapeError
  /// rather than use the new one). Throws ValueError for an empty name, a name with '.', a
  /// name used already (by a parameter, buffer or child), a value that is not a leaf or
  /// one that requires grad.
  Tensor<T> register_buffer(const std::string& name, Tensor<T> value,
                            BufferKind kind = BufferKind::values);
  /// Adds a child module whose parameters are listed under "name." and returns it. Throws
  /// ValueError for an empty name, a name with '.', a name used already, or a null module.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix,
               std::vector<std::pair<std::string, Tensor<T>>>& out) const;

  struct Buffer {
    std::string name;
    Tensor<T> value;
    BufferKind kind;
  };
  void collect_buffers(const std::string& prefix,
                       std::vector<std::pair<std::string, Buffer>>& out) const;

  std::vector<std::pair<std::string, Tensor<T>>> parameters_;
  std::vector<Buffer> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;

  template <class U>
  friend std::string to_string(const Module<U>& module);
};

/// The module as PyTorch prints it: `type_name()(extra_repr())` on one line without
/// children; otherwise one line per extra_repr() line and per child `(name): ...`, each
/// indented by two spaces, with the children printed the same way (nested ones indented
/// further), and `)` on a line of its own:
///
///     Sequential(
///       (0): Linear(in_features=2, out_features=10, bias=True)
///       (1): Tanh()
///     )
template <class T>
std::string to_string(const Module<T>& module);
/// Writes to_string(module) to `out`.
template <class T>
std::ostream& operator<<(std::ostream& out, const Module<T>& module);
/// A table of the module's parameters, one row each in named_parameters() order: dotted
/// name, shape and number of elements, and a last line "Total parameters: N" (N is
/// parameter_count()). For an MLP({2, 10, 1}):
///
///     Parameter  Shape    Count
///     0.weight   (2, 10)     20
///     0.bias     (10,)       10
///     2.weight   (10, 1)     10
///     2.bias     (1,)         1
///     Total parameters: 41
template <class T>
std::string summary(const Module<T>& module);

extern template class Module<float>;
extern template class Module<double>;

/// @}

}  // namespace tapegrad::nn
