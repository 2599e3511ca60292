// The table of op cases that the per-op tests iterate over: one entry per op (and per form
// of an op: axes, keepdims, broadcasting), with inputs where the op is smooth. test_ops.cpp
// runs the first-order checks over it, test_second_order.cpp the per-op second-order check,
// and a test there fails when an op the library records is missing from it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "helpers.hpp"

namespace test {

struct OpCase {
  std::string name;
  std::function<Tensor<double>(const std::vector<Tensor<double>>&)> f64;
  std::function<Tensor<float>(const std::vector<Tensor<float>>&)> f32;
  std::vector<xt::xarray<double>> inputs;
};

template <class F>
OpCase op(std::string name, F f, std::vector<xt::xarray<double>> inputs) {
  return {std::move(name), f, f, std::move(inputs)};
}

inline xt::xarray<double> rnd(const Shape& s, std::uint64_t seed, double lo = -2, double hi = 2) {
  return test::random_array(s, seed, lo, hi);
}

inline std::vector<OpCase> all_cases() {
  using namespace tapegrad;
  const Shape m{3, 4};
  return {
      op("add", [](const auto& x) { return x[0] + x[1]; }, {rnd(m, 1), rnd(m, 2)}),
      op("sub", [](const auto& x) { return x[0] - x[1]; }, {rnd(m, 3), rnd(m, 4)}),
      op("mul", [](const auto& x) { return x[0] * x[1]; }, {rnd(m, 5), rnd(m, 6)}),
      op("div", [](const auto& x) { return x[0] / x[1]; }, {rnd(m, 7), rnd(m, 8, 0.5, 2)}),
      op("maximum", [](const auto& x) { return maximum(x[0], x[1]); }, {rnd(m, 9), rnd(m, 10)}),
      op("minimum", [](const auto& x) { return minimum(x[0], x[1]); }, {rnd(m, 11), rnd(m, 12)}),
      op("scalar operators", [](const auto& x) { return 2.0 - x[0] * 3.0 + 1.5 / (x[0] + 4.0); },
         {rnd(m, 13)}),
      op("div by a number", [](const auto& x) { return x[0] / 3.0; }, {rnd(m, 68)}),
      op("a number by div", [](const auto& x) { return 2.0 / x[0]; }, {rnd(m, 69, 0.5, 2)}),
      op("neg", [](const auto& x) { return -x[0]; }, {rnd(m, 14)}),
      op("affine", [](const auto& x) { return affine(x[0], -1.5, 0.25); }, {rnd(m, 67)}),
      op("pow 3", [](const auto& x) { return pow(x[0], 3.0); }, {rnd(m, 15)}),
      op("pow -1.5", [](const auto& x) { return pow(x[0], -1.5); }, {rnd(m, 16, 0.5, 2)}),
      op("exp", [](const auto& x) { return exp(x[0]); }, {rnd(m, 17)}),
      op("log", [](const auto& x) { return log(x[0]); }, {rnd(m, 18, 0.3, 3)}),
      op("sqrt", [](const auto& x) { return sqrt(x[0]); }, {rnd(m, 19, 0.3, 3)}),
      op("abs", [](const auto& x) { return abs(x[0]); }, {rnd(m, 20)}),
      op("square", [](const auto& x) { return square(x[0]); }, {rnd(m, 21)}),
      op("sin", [](const auto& x) { return sin(x[0]); }, {rnd(m, 22)}),
      op("cos", [](const auto& x) { return cos(x[0]); }, {rnd(m, 23)}),
      op("tanh", [](const auto& x) { return tanh(x[0]); }, {rnd(m, 24)}),
      op("sigmoid", [](const auto& x) { return sigmoid(x[0]); }, {rnd(m, 25, -4, 4)}),
      op("relu", [](const auto& x) { return relu(x[0]); }, {rnd(m, 26)}),
      op("leaky_relu", [](const auto& x) { return leaky_relu(x[0], 0.1); }, {rnd(m, 27)}),
      op("softplus", [](const auto& x) { return softplus(x[0]); }, {rnd(m, 28, -4, 4)}),
      // Inputs kept away from the bounds, where the derivative jumps.
      op("clamp", [](const auto& x) { return clamp(x[0], -0.5, 0.7); },
         {xt::xarray<double>{
             {-1.3, -0.2, 0.1, 0.9}, {1.7, -0.8, 0.45, -0.35}, {0.3, 2.0, -1.9, 0.6}}}),
      op("sum", [](const auto& x) { return sum(x[0]); }, {rnd(m, 30)}),
      op("sum axis 0", [](const auto& x) { return sum(x[0], Axes{0}); }, {rnd(m, 31)}),
      op("sum axis 1 keepdims", [](const auto& x) { return sum(x[0], Axes{1}, true); },
         {rnd(m, 32)}),
      op("sum axes (0, 2)",
         [](const auto& x) {
           return sum(x[0], Axes{0, -1});
         },
         {rnd({2, 3, 4}, 33)}),
      op("mean", [](const auto& x) { return mean(x[0]); }, {rnd(m, 34)}),
      op("mean axis 1", [](const auto& x) { return mean(x[0], Axes{1}); }, {rnd(m, 35)}),
      op("max axis 0", [](const auto& x) { return max(x[0], 0); }, {rnd(m, 36)}),
      op("max axis 1 keepdims", [](const auto& x) { return max(x[0], 1, true); }, {rnd(m, 37)}),
      op("logsumexp", [](const auto& x) { return logsumexp(x[0]); }, {rnd(m, 38)}),
      op("logsumexp axis 0 keepdims", [](const auto& x) { return logsumexp(x[0], 0, true); },
         {rnd(m, 39)}),
      op("softmax", [](const auto& x) { return softmax(x[0]); }, {rnd(m, 40)}),
      op("softmax axis 0", [](const auto& x) { return softmax(x[0], 0); }, {rnd(m, 41)}),
      op("log_softmax", [](const auto& x) { return log_softmax(x[0]); }, {rnd(m, 42)}),
      op("matmul 2-d", [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({3, 4}, 43), rnd({4, 5}, 44)}),
      op("matmul vector-matrix", [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({4}, 45), rnd({4, 5}, 46)}),
      op("matmul matrix-vector", [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({3, 4}, 47), rnd({4}, 48)}),
      op("matmul dot", [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({4}, 49), rnd({4}, 50)}),
      // One row, one column, an outer product: GEMV and GER instead of GEMM, forward and in
      // the backward rules (which pass transpose flags).
      op("matmul one row", [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({1, 4}, 70), rnd({4, 5}, 71)}),
      op("matmul one column", [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({3, 4}, 72), rnd({4, 1}, 73)}),
      op("matmul outer product", [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({3, 1}, 74), rnd({1, 5}, 75)}),
      op("matmul 1 x 1", [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({1, 3}, 76), rnd({3, 1}, 77)}),
      op("transpose", [](const auto& x) { return transpose(x[0]); }, {rnd(m, 51)}),
      op("transpose perm",
         [](const auto& x) {
           return transpose(x[0], {1, 2, 0});
         },
         {rnd({2, 3, 4}, 52)}),
      op("reshape",
         [](const auto& x) {
           return reshape(x[0], Shape{2, 6});
         },
         {rnd(m, 53)}),
      op("broadcast_to",
         [](const auto& x) {
           return broadcast_to(x[0], Shape{2, 3, 4});
         },
         {rnd({3, 1}, 54)}),
      op("sum_to",
         [](const auto& x) {
           return sum_to(x[0], Shape{3, 1});
         },
         {rnd({2, 3, 4}, 55)}),
      op("concat axis 0",
         [](const auto& x) {
           return concat(std::vector{x[0], x[1], x[2]}, 0);
         },
         {rnd({1, 4}, 56), rnd({2, 4}, 57), rnd({3, 4}, 58)}),
      op("concat axis 1",
         [](const auto& x) {
           return concat(std::vector{x[0], x[1]}, -1);
         },
         {rnd({3, 2}, 59), rnd({3, 3}, 60)}),
      op("narrow", [](const auto& x) { return narrow(x[0], 1, 1, 2); }, {rnd(m, 61)}),
      op("slice with a step", [](const auto& x) { return slice(x[0], 1, 0, {}, 2); }, {rnd(m, 67)}),
      op("slice with a step, 3-d, axis 1", [](const auto& x) { return slice(x[0], -2, 1, 5, 3); },
         {rnd({2, 5, 3}, 68)}),
      op("select and index",
         [](const auto& x) {
           return x[0].select(1, -1) * sum(x[0].index({Slice(1, {}, 2), 2}));
         },
         {rnd(m, 69)}),
      op("index_select",
         [](const auto& x) {
           return index_select(x[0], {2, 0, 2, 1});
         },
         {rnd(m, 62)}),
      op("index_add",
         [](const auto& x) {
           return index_add(x[0], {1, 3, 1}, 4);
         },
         {rnd({3, 2}, 63)}),
      op("composite of many ops",
         [](const auto& x) {
           auto h = tanh(matmul(x[0], x[1]) + x[2]);
           return mean(log_softmax(h * h - sigmoid(h), -1)) + sum(softplus(x[2]));
         },
         {rnd({2, 3}, 64), rnd({3, 4}, 65), rnd({4}, 66)}),
      // convolution and pooling (ops_conv.cpp): im2col and col2im, and the composites on them
      op("im2col",
         [](const auto& x) {
           return im2col(x[0], Size2(2, 3),
                         Conv2dOptions().stride({2, 1}).padding(1).dilation({1, 2}));
         },
         {rnd({1, 2, 4, 5}, 80)}),
      op("col2im",
         [](const auto& x) {
           return col2im(x[0], Shape{1, 2, 4, 5}, Size2(2, 3),
                         Conv2dOptions().stride({2, 1}).padding(1).dilation({1, 2}));
         },
         {rnd({12, 9}, 81)}),
      op("conv2d",
         [](const auto& x) {
           return conv2d(x[0], x[1], x[2], Conv2dOptions().stride(2).padding(1));
         },
         {rnd({2, 2, 3, 4}, 82), rnd({2, 2, 2, 2}, 83), rnd({2}, 84)}),
      op("max_pool2d",
         [](const auto& x) { return max_pool2d(x[0], Pool2dOptions(3).stride(2).padding(1)); },
         {rnd({1, 2, 5, 4}, 85)}),
      op("max_pool2d 2x2, stride 2, odd sizes (the vectorised path)",
         [](const auto& x) { return max_pool2d(x[0], Pool2dOptions(2)); }, {rnd({2, 2, 5, 7}, 91)}),
      op("conv2d unbatched, no bias, dilation 2, stride (1, 2)",
         [](const auto& x) {
           return conv2d(x[0], x[1], Conv2dOptions().stride({1, 2}).dilation(2).padding({0, 1}));
         },
         {rnd({2, 5, 6}, 92), rnd({3, 2, 2, 2}, 93)}),
      op("conv_transpose2d, stride (2, 1), padding 1, output padding (1, 0), dilation (1, 2)",
         [](const auto& x) {
           return conv_transpose2d(
               x[0], x[1], x[2],
               ConvTranspose2dOptions().stride({2, 1}).padding(1).output_padding({1, 0}).dilation(
                   {1, 2}));
         },
         {rnd({2, 2, 3, 3}, 94), rnd({2, 3, 2, 2}, 95), rnd({3}, 96)}),
      op("transpose keeping the last axes (a block copy)",
         [](const auto& x) {
           return transpose(x[0], {2, 0, 1, 3});
         },
         {rnd({2, 3, 2, 2}, 87)}),
      op("avg_pool2d",
         [](const auto& x) {
           return avg_pool2d(x[0], Pool2dOptions({2, 3}).stride(1).padding({1, 1}));
         },
         {rnd({1, 2, 3, 4}, 86)}),
      // activations and batched matmul (issue 16): elu's inputs kept away from its kink at 0
      op("erf", [](const auto& x) { return erf(x[0]); }, {rnd(m, 80)}),
      op("gelu", [](const auto& x) { return gelu(x[0]); }, {rnd(m, 81, -3, 3)}),
      op("silu", [](const auto& x) { return silu(x[0]); }, {rnd(m, 82, -4, 4)}),
      op("elu", [](const auto& x) { return elu(x[0], 0.7); },
         {xt::xarray<double>{
             {-1.3, -0.2, 0.1, 0.9}, {1.7, -0.8, 0.45, -0.35}, {0.3, 2.0, -1.9, 0.6}}}),
      op("matmul batched 3-d x 3-d", [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({2, 2, 3}, 83), rnd({2, 3, 2}, 84)}),
      op("matmul batched 2-d x 3-d, broadcast", [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({2, 3}, 85), rnd({2, 3, 2}, 86)}),
      op("matmul batched 3-d x 2-d, stacked rows", [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({2, 2, 3}, 87), rnd({3, 2}, 88)}),
      op("matmul batched (1, 2, 3) x (2, 1, 3, 2)",
         [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({1, 2, 3}, 89), rnd({2, 1, 3, 2}, 90)}),
      op("matmul batched 1-d x 3-d", [](const auto& x) { return matmul(x[0], x[1]); },
         {rnd({3}, 91), rnd({2, 3, 2}, 92)}),
  };
}

}  // namespace test
