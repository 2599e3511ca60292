// gradcheck itself: it must pass right gradients and catch wrong ones, with a useful report.
#include "helpers.hpp"

using namespace tapegrad;

TEST_CASE("gradcheck passes a right gradient and names the worst element") {
  const TensorFunction<double> f = [](const std::vector<Tensor<double>>& x) {
    return matmul(x[0], x[1]);
  };
  GradcheckOptions options;
  options.names = {"A", "B"};
  const auto report = gradcheck(f,
                                {Tensor<double>(test::random_array({2, 3}, 1)),
                                 Tensor<double>(test::random_array({3, 2}, 2))},
                                options);
  CHECK(report.passed);
  CHECK(report.message.find("gradcheck passed") != std::string::npos);
  CHECK(report.error <= report.tolerance);
  CHECK(report.worst_position.size() == 2);
}

TEST_CASE("gradcheck catches a gradient the tape cannot see, and says where") {
  // x * c where c is x's value taken outside the graph: the tape's gradient is c, the true
  // one 2x. The classic bug of a value that silently left the graph.
  const TensorFunction<double> f = [](const std::vector<Tensor<double>>& x) {
    return x[0] * x[0].detach();
  };
  GradcheckOptions options;
  options.names = {"weights"};
  const auto report = gradcheck(f, {Tensor<double>({{0.5, -1.0}, {2.0, 3.0}})}, options);
  CHECK_FALSE(report.passed);
  INFO(report.message);
  CHECK(report.message.find("'weights' element (1, 1)") != std::string::npos);
  // Both sides carry the same upstream weight w: the true gradient is 2x w, the tape's x w.
  CHECK(report.numeric_value == doctest::Approx(2 * report.tape_value));
}

TEST_CASE("gradcheck does not pass when both sides are zero everywhere") {
  const TensorFunction<double> f = [](const std::vector<Tensor<double>>& x) {
    return relu(x[0]);  // all inputs negative: the gradient is zero on both sides
  };
  const auto report = gradcheck(f, {Tensor<double>({-1.0, -2.0, -0.5})});
  CHECK_FALSE(report.passed);
  CHECK(report.message.find("zero on both sides") != std::string::npos);
  GradcheckOptions allow;
  allow.allow_zero_gradient = true;
  CHECK(gradcheck(f, {Tensor<double>({-1.0, -2.0, -0.5})}, allow).passed);
}

TEST_CASE("gradcheck weights the outputs unevenly, so a permuted gradient fails") {
  // y = x[perm], but written so the tape sees y = x: the tape's Jacobian is the identity,
  // the true one a permutation. With an all-ones upstream gradient both give all ones and a
  // naive check passes; gradcheck's uneven weights must catch it.
  const TensorFunction<double> f = [](const std::vector<Tensor<double>>& x) {
    const auto constant = x[0].detach();
    return x[0] + (index_select(constant, {1, 2, 3, 0}) - constant);
  };
  const auto report = gradcheck(f, {Tensor<double>({1.0, 2.0, 3.0, 4.0})});
  INFO(report.message);
  CHECK_FALSE(report.passed);
}

TEST_CASE("gradcheck in float32 uses float steps and tolerances") {
  const TensorFunction<float> f = [](const std::vector<Tensor<float>>& x) {
    return tanh(x[0]) * exp(x[0]);
  };
  const auto report = gradcheck(f, {Tensor<float>({0.3f, -0.8f, 1.2f})});
  CHECK(report.passed);
  CHECK(report.tolerance > 1e-4);  // float tolerances, not double ones
}
