#include "tapegrad/nn/dropout.hpp"

#include <string>

#include "core/compiling.hpp"
#include "python_repr.hpp"
#include "tapegrad/ops.hpp"

namespace tapegrad::nn {

namespace {

void check_probability(const char* who, double p) {
  if (!(p >= 0 && p <= 1)) {
    throw ValueError(std::string(who) + ": the probability p must be in [0, 1], got " +
                     detail::python_float(p));
  }
}

}  // namespace

template <class T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& random) {
  check_probability("dropout", p);
  if (!training || p == 0) return x;
  if (p == 1) return x * 0.0;
  if (tapegrad::detail::compiling()) {
    throw TapeError(
        "dropout: a compiled step would replay the mask drawn at compile time in every run; "
        "compile the step in evaluation mode (eval(), or training = false), or train with "
        "backward()");
  }
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  xt::xarray<T> mask = xt::xarray<T>::from_shape(x.shape());
  for (std::size_t i = 0; i < mask.size(); ++i) {
    mask.data()[i] = random.uniform() >= p ? scale : T(0);
  }
  return x * Tensor<T>(std::move(mask));
}

template <class T>
Dropout<T>::Dropout(double p) : p_(p), random_(nullptr) {
  check_probability("Dropout", p);
}

template <class T>
Dropout<T>::Dropout(double p, Generator& random) : p_(p), random_(&random) {
  check_probability("Dropout", p);
}

template <class T>
Tensor<T> Dropout<T>::forward(const Tensor<T>& input) {
  return dropout(input, p_, this->is_training(), random_ ? *random_ : default_generator());
}

template <class T>
std::string Dropout<T>::extra_repr() const {
  return "p=" + detail::python_float(p_) + ", inplace=False";
}

template Tensor<float> dropout(const Tensor<float>&, double, bool, Generator&);
template Tensor<double> dropout(const Tensor<double>&, double, bool, Generator&);
template class Dropout<float>;
template class Dropout<double>;

}  // namespace tapegrad::nn
