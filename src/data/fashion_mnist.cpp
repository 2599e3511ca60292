#include "tapegrad/data/fashion_mnist.hpp"

#include <sys/stat.h>

#include "../io/names.hpp"
#include "tapegrad/io/idx.hpp"
#include "tapegrad/io/npy.hpp"

namespace tapegrad::data {

namespace {

bool exists(const std::string& path) {
  // Any kind: one that is not a regular file is then refused by the reader, by name.
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

// The file as Debian ships it (gzip), or unpacked.
std::string locate(const std::string& folder, const std::string& name) {
  for (const std::string& candidate : {folder + "/" + name + ".gz", folder + "/" + name}) {
    if (exists(candidate)) return candidate;
  }
  throw io::IoError(io::detail::printable(folder + "/" + name) +
                    "(.gz): missing. Fashion-MNIST is in Debian's "
                    "dataset-fashion-mnist package (apt-get install dataset-fashion-mnist), "
                    "or pass the folder that holds the four IDX files");
}

template <class T>
void load_split(const std::string& folder, const std::string& prefix, std::size_t count,
                xt::xarray<T>& images, std::vector<std::size_t>& labels) {
  const std::string image_path = locate(folder, prefix + "-images-idx3-ubyte");
  const std::string label_path = locate(folder, prefix + "-labels-idx1-ubyte");
  xt::xarray<std::uint8_t> pixels = io::read_idx<std::uint8_t>(image_path);
  const xt::xarray<std::uint8_t> classes = io::read_idx<std::uint8_t>(label_path);
  if (pixels.shape() != Shape{count, 28, 28}) {
    throw io::IoError(io::detail::printable(image_path) + ": expected " + std::to_string(count) +
                      " images of 28x28, got shape " + shape_to_string(pixels.shape()));
  }
  if (classes.shape() != Shape{count}) {
    throw io::IoError(io::detail::printable(label_path) + ": expected " + std::to_string(count) +
                      " labels, got shape " + shape_to_string(classes.shape()));
  }
  images = xt::xarray<T>::from_shape({count, std::size_t{784}});
  for (std::size_t i = 0; i < pixels.size(); ++i) {
    images.data()[i] = static_cast<T>(pixels.data()[i]) / T(255);
  }
  labels.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (classes(i) > 9) {
      throw io::IoError(io::detail::printable(label_path) + ": label " +
                        std::to_string(classes(i)) + " of image " + std::to_string(i) +
                        " is not a class 0..9");
    }
    labels[i] = classes(i);
  }
}

}  // namespace

bool fashion_mnist_available(const std::string& folder) {
  for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    const std::string base = folder + "/" + name;
    if (!exists(base) && !exists(base + ".gz")) return false;
  }
  return true;
}

template <class T>
FashionMnist<T> load_fashion_mnist(const std::string& folder) {
  FashionMnist<T> data;
  load_split(folder, "train", 60000, data.train_images, data.train_labels);
  load_split(folder, "t10k", 10000, data.test_images, data.test_labels);
  return data;
}

template FashionMnist<float> load_fashion_mnist<float>(const std::string&);
template FashionMnist<double> load_fashion_mnist<double>(const std::string&);

}  // namespace tapegrad::data
