// Embedding: rows of a table picked by index, the function and the module.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/random.hpp"

namespace tapegrad::nn {

/// @addtogroup nn
/// @{

/// Rows of `table` (shape (num_embeddings, dim)) picked by index, as
/// torch.nn.functional.embedding: the result has shape (leading_shape..., dim) and holds
/// table[indices[i]] at position i of the leading shape (row-major). Composed of
/// index_select, whose gradient is an index_add: d table gets g's rows added at their
/// indices, summed over repeats.
///
/// The indices are a list of whole numbers with the leading shape beside it, not a tensor:
/// tapegrad's tensors hold float or double, whose whole numbers are exact only up to 2^24
/// in float, and an index list is a plain constant of a compiled step (compile.hpp), where
/// an index read from a tensor's values would be frozen silently.
///
/// Throws ShapeError if the table is not 2-d or the leading shape's element count is not
/// indices.size(), and ValueError naming the first index >= num_embeddings and its position.
template <class T>
Tensor<T> embedding(const std::vector<std::size_t>& indices, const Shape& leading_shape,
                    const Tensor<T>& table);
/// The same with leading shape (indices.size(),): a result of shape (indices.size(), dim).
template <class T>
Tensor<T> embedding(const std::vector<std::size_t>& indices, const Tensor<T>& table);

/// A lookup table of num_embeddings vectors of size embedding_dim, as torch.nn.Embedding:
/// parameter "weight" of shape (num_embeddings, embedding_dim) (PyTorch's layout, so
/// io::save_torch_state writes it as stored), initialised from N(0, 1) as PyTorch's
/// default, drawn in row-major order. No buffers; the same in training and evaluation.
/// Prints as `Embedding(10, 3)`.
///
/// Its input is a list of indices (see embedding()), so it has forward(indices, shape)
/// instead of the one-tensor forward().
template <class T = double>
class Embedding : public Module<T> {
 public:
  /// Draws the weight from the calling thread's default_generator(). Throws ValueError if
  /// num_embeddings or embedding_dim is 0.
  Embedding(std::size_t num_embeddings, std::size_t embedding_dim);
  /// The same, drawing from `random`.
  Embedding(std::size_t num_embeddings, std::size_t embedding_dim, Generator& random);

  /// embedding(indices, leading_shape, weight()): shape (leading_shape..., embedding_dim).
  Tensor<T> forward(const std::vector<std::size_t>& indices, const Shape& leading_shape);
  /// embedding(indices, weight()): shape (indices.size(), embedding_dim).
  Tensor<T> forward(const std::vector<std::size_t>& indices);
  /// Throws ValueError: an Embedding takes a list of indices, not a tensor.
  Tensor<T> forward(const Tensor<T>& input) override;
  using Module<T>::operator();
  /// forward(indices, leading_shape).
  Tensor<T> operator()(const std::vector<std::size_t>& indices, const Shape& leading_shape) {
    return forward(indices, leading_shape);
  }
  /// forward(indices).
  Tensor<T> operator()(const std::vector<std::size_t>& indices) { return forward(indices); }

  /// The number of rows of the table.
  std::size_t num_embeddings() const { return num_; }
  /// The size of each row.
  std::size_t embedding_dim() const { return dim_; }
  /// The table, shape (num_embeddings, embedding_dim).
  const Tensor<T>& weight() const { return weight_; }
  /// "Embedding".
  std::string type_name() const override { return "Embedding"; }
  /// As PyTorch: "10, 3".
  std::string extra_repr() const override;

 private:
  std::size_t num_, dim_;
  Tensor<T> weight_;
};

extern template class Embedding<float>;
extern template class Embedding<double>;

/// @}

}  // namespace tapegrad::nn
