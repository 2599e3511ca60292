// Fashion-MNIST (Zalando): 28x28 gray images of clothes in 10 classes.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>

namespace tapegrad::data {

/// @addtogroup data
/// @{

/// Where Debian's dataset-fashion-mnist package puts the IDX files.
inline constexpr const char* kFashionMnistFolder = "/usr/share/datasets/fashion-mnist";

/// The Fashion-MNIST training and test sets, as load_fashion_mnist() returns them.
template <class T = double>
struct FashionMnist {
  /// Training images, (60000, 784): pixels scaled from 0..255 to [0, 1], rows of 28x28.
  xt::xarray<T> train_images, test_images;  ///< test images, (10000, 784), the same way
  /// The class in 0..9 of each training image.
  std::vector<std::size_t> train_labels, test_labels;  ///< the class in 0..9 of each test image
  /// The names of classes 0..9.
  static constexpr std::array<const char*, 10> class_names = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
};

/// True if each of the four IDX files is in `folder`, plain or gzip-compressed (".gz").
bool fashion_mnist_available(const std::string& folder = kFashionMnistFolder);

/// Reads train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-... from
/// `folder` (the .gz file when both exist), T = float or double. Throws io::IoError when a
/// file is missing (saying how to install the data: `apt-get install
/// dataset-fashion-mnist`), cannot be read as IDX (see io::read_idx()), or does not hold
/// 60000 (train) or 10000 (t10k) 28x28 images with one label in 0..9 each.
template <class T>
FashionMnist<T> load_fashion_mnist(const std::string& folder = kFashionMnistFolder);

/// @}

}  // namespace tapegrad::data
