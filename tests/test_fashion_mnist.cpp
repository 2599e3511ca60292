// Fashion-MNIST from Debian's dataset-fashion-mnist package: run as its own ctest entry
// when the package is installed (CI installs it).
#include <algorithm>

#include "helpers.hpp"
#include "tapegrad/data/fashion_mnist.hpp"
#include "tapegrad/io/npy.hpp"

using namespace tapegrad;

TEST_SUITE("fashion") {
  TEST_CASE("Fashion-MNIST: 60000 + 10000 images of 28x28 in [0, 1], 6000 + 1000 per class") {
    REQUIRE(data::fashion_mnist_available());
    const auto fashion = data::load_fashion_mnist<float>();
    CHECK(fashion.train_images.shape() == Shape{60000, 784});
    CHECK(fashion.test_images.shape() == Shape{10000, 784});
    REQUIRE(fashion.train_labels.size() == 60000);
    REQUIRE(fashion.test_labels.size() == 10000);
    CHECK(*std::min_element(fashion.train_images.begin(), fashion.train_images.end()) == 0.0f);
    CHECK(*std::max_element(fashion.train_images.begin(), fashion.train_images.end()) == 1.0f);
    for (std::size_t c = 0; c < 10; ++c) {
      INFO("class ", c, " (", data::FashionMnist<float>::class_names[c], ")");
      CHECK(std::count(fashion.train_labels.begin(), fashion.train_labels.end(), c) == 6000);
      CHECK(std::count(fashion.test_labels.begin(), fashion.test_labels.end(), c) == 1000);
    }
    // The first training image is an ankle boot (class 9), as in the dataset's documentation.
    CHECK(fashion.train_labels[0] == 9);
  }

  TEST_CASE("a missing folder says how to install the data") {
    CHECK_FALSE(data::fashion_mnist_available("/nonexistent"));
    CHECK_THROWS_WITH_AS(data::load_fashion_mnist<float>("/nonexistent"),
                         doctest::Contains("apt-get install dataset-fashion-mnist"), io::IoError);
  }
}
