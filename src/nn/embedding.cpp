#include "tapegrad/nn/embedding.hpp"

#include <string>

#include "tapegrad/ops.hpp"

namespace tapegrad::nn {

template <class T>
Tensor<T> embedding(const std::vector<std::size_t>& indices, const Shape& leading_shape,
                    const Tensor<T>& table) {
  if (table.dim() != 2) {
    throw ShapeError("embedding: the table has shape " + shape_to_string(table.shape()) +
                     "; expected (num_embeddings, embedding_dim)");
  }
  const std::size_t count = checked_size("embedding", leading_shape);
  if (count != indices.size()) {
    throw ShapeError("embedding: " + std::to_string(indices.size()) +
                     " indices for a leading shape " + shape_to_string(leading_shape) + " of " +
                     std::to_string(count) + " elements");
  }
  const std::size_t rows = table.shape()[0];
  for (std::size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] >= rows) {
      throw ValueError("embedding: index " + std::to_string(indices[i]) + " at position " +
                       std::to_string(i) + " is out of range for a table of " +
                       std::to_string(rows) + " rows (num_embeddings)");
    }
  }
  Shape shape = leading_shape;
  shape.push_back(table.shape()[1]);
  return reshape(index_select(table, indices), shape);
}

template <class T>
Tensor<T> embedding(const std::vector<std::size_t>& indices, const Tensor<T>& table) {
  return embedding(indices, Shape{indices.size()}, table);
}

namespace {

template <class T>
xt::xarray<T> standard_normal(std::size_t rows, std::size_t columns, Generator& random) {
  if (rows == 0 || columns == 0) {
    throw ValueError("Embedding: sizes must be positive, got " + std::to_string(rows) + " x " +
                     std::to_string(columns));
  }
  checked_size("Embedding", {rows, columns});
  xt::xarray<T> table = xt::xarray<T>::from_shape({rows, columns});
  for (auto& v : table) v = static_cast<T>(random.normal());
  return table;
}

}  // namespace

template <class T>
Embedding<T>::Embedding(std::size_t num_embeddings, std::size_t embedding_dim)
    : Embedding(num_embeddings, embedding_dim, default_generator()) {}

template <class T>
Embedding<T>::Embedding(std::size_t num_embeddings, std::size_t embedding_dim, Generator& random)
    : num_(num_embeddings), dim_(embedding_dim) {
  weight_ = this->register_parameter(
      "weight", Tensor<T>(standard_normal<T>(num_embeddings, embedding_dim, random)));
}

template <class T>
Tensor<T> Embedding<T>::forward(const std::vector<std::size_t>& indices,
                                const Shape& leading_shape) {
  return embedding(indices, leading_shape, weight_);
}

template <class T>
Tensor<T> Embedding<T>::forward(const std::vector<std::size_t>& indices) {
  return embedding(indices, weight_);
}

template <class T>
Tensor<T> Embedding<T>::forward(const Tensor<T>&) {
  throw ValueError(
      "Embedding: forward takes a list of indices (std::vector<std::size_t>, and a leading "
      "shape), not a tensor");
}

template <class T>
std::string Embedding<T>::extra_repr() const {
  return std::to_string(num_) + ", " + std::to_string(dim_);
}

template Tensor<float> embedding(const std::vector<std::size_t>&, const Shape&,
                                 const Tensor<float>&);
template Tensor<double> embedding(const std::vector<std::size_t>&, const Shape&,
                                  const Tensor<double>&);
template Tensor<float> embedding(const std::vector<std::size_t>&, const Tensor<float>&);
template Tensor<double> embedding(const std::vector<std::size_t>&, const Tensor<double>&);
template class Embedding<float>;
template class Embedding<double>;

}  // namespace tapegrad::nn
