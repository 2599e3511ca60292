// The confusion matrix of a Fashion-MNIST classifier, printed as the two Fashion-MNIST
// demos print it: one row per true class (with its name), one column per predicted class.
#pragma once

#include <cstdio>
#include <vector>

#include "tapegrad/data/fashion_mnist.hpp"

namespace examples {

/// Prints the counts of (true class, predicted class) for labels[i] and predicted[i], both
/// in [0, 10).
template <class Label>
void print_confusion_matrix(const std::vector<Label>& labels,
                            const std::vector<std::size_t>& predicted) {
  std::size_t confusion[10][10] = {};
  for (std::size_t i = 0; i < predicted.size(); ++i) ++confusion[labels[i]][predicted[i]];
  std::printf("confusion matrix (rows: true class, columns: predicted)\n%13s", "");
  for (std::size_t c = 0; c < 10; ++c) std::printf("%6zu", c);
  std::printf("\n");
  for (std::size_t r = 0; r < 10; ++r) {
    std::printf("%2zu %-10s", r, tapegrad::data::FashionMnist<float>::class_names[r]);
    for (std::size_t c = 0; c < 10; ++c) std::printf("%6zu", confusion[r][c]);
    std::printf("\n");
  }
}

}  // namespace examples
