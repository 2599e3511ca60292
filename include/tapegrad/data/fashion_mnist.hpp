// Fashion-MNIST (Zalando): 28x28 gray images of clothes in 10 classes.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

namespace tapegrad::data {

/// Where Debian's dataset-fashion-mnist package puts the IDX files.
inline constexpr const char* kFashionMnistFolder = "/usr/share/datasets/fashion-mnist";

template <class T = double>
struct FashionMnist {
  /// (60000, 784) and (10000, 784): pixels scaled from 0..255 to [0, 1], rows of 28x28.
  xt::xarray<T> train_images, test_images;
  /// One class in 0..9 per image.
  std::vector<std::size_t> train_labels, test_labels;
  static constexpr std::array<const char*, 10> class_names = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
};

/// True if the four files are in `folder`.
bool fashion_mnist_available(const std::string& folder = kFashionMnistFolder);

/// Reads train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-... from
/// `folder`. Throws io::IoError when a file is missing (saying how to install the data:
/// `apt-get install dataset-fashion-mnist`) or does not hold 28x28 images with one label
/// in 0..9 each.
template <class T>
FashionMnist<T> load_fashion_mnist(const std::string& folder = kFashionMnistFolder);

}  // namespace tapegrad::data
