// io/torch_state: a PyTorch state_dict in .npz, loaded and reproduced, round trips, and
// every refusal with its message. The fixtures come from tests/fixtures/make_torch_sequential.py.
#include <cmath>
#include <xtensor/xmanipulation.hpp>

#include "helpers.hpp"
#include "io_helpers.hpp"
#include "tapegrad/io/npz.hpp"
#include "tapegrad/io/torch_state.hpp"

using namespace tapegrad;
using io::IoError;

namespace {

const std::string fixtures = TAPEGRAD_FIXTURE_DIR;

// torch.nn.Sequential(Linear(4, 8), Tanh(), Linear(8, 8), Sigmoid(), Linear(8, 3)).
template <class T>
std::shared_ptr<nn::Sequential<T>> torch_sequential(std::uint64_t seed = 1) {
  Generator random(seed);
  const auto options = nn::LinearOptions().generator(random);
  auto model = std::make_shared<nn::Sequential<T>>();
  model->push_back(std::make_shared<nn::Linear<T>>(4, 8, options));
  model->push_back(std::make_shared<nn::Tanh<T>>());
  model->push_back(std::make_shared<nn::Linear<T>>(8, 8, options));
  model->push_back(std::make_shared<nn::Sigmoid<T>>());
  model->push_back(std::make_shared<nn::Linear<T>>(8, 3, options));
  return model;
}

xt::xarray<double> member(const io::NpzArchive& archive, const std::string& name) {
  for (const auto& [key, array] : archive) {
    if (key == name) return array.to<double>();
  }
  FAIL("no member " << name);
  return {};
}

template <class T>
std::vector<xt::xarray<T>> values_of(const nn::Module<T>& module) {
  std::vector<xt::xarray<T>> out;
  for (const auto& p : module.parameters()) out.push_back(p.value());
  return out;
}

// y = scale * x with a (2, 3) scale: a user module whose parameter is never transposed.
struct Scale : nn::Module<double> {
  Tensor<double> scale;
  Scale() { scale = register_parameter("scale", Tensor<double>(test::random_array({2, 3}, 5))); }
  Tensor<double> forward(const Tensor<double>& x) override { return x * scale; }
};

std::string message_of_load(nn::Module<double>& model, const std::string& path) {
  try {
    io::load_torch_state(model, path);
  } catch (const IoError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("a PyTorch Sequential's state_dict loads and reproduces PyTorch's output") {
  auto model = torch_sequential<double>();
  io::load_torch_state(*model, fixtures + "/torch_sequential_state.npz");
  const auto state = io::read_npz(fixtures + "/torch_sequential_state.npz");
  const auto& w0 = dynamic_cast<const nn::Linear<double>&>((*model)[0]).weight().value();
  CHECK(w0.shape() == Shape{4, 8});  // (in, out) here, (out, in) = (8, 4) in the file
  CHECK(w0(3, 5) == member(state, "0.weight")(5, 3));

  const auto cases = io::read_npz(fixtures + "/torch_sequential_case.npz");
  const auto output = (*model)(Tensor<double>(member(cases, "input"))).value();
  const auto expected = member(cases, "output");
  REQUIRE(output.shape() == Shape{5, 3});
  double worst = 0;
  for (std::size_t i = 0; i < output.size(); ++i) {
    worst = std::max(worst, std::abs(output.data()[i] - expected.data()[i]));
  }
  CHECK(worst <= 1e-12);
}

TEST_CASE("save_torch_state writes (out, in) weights and loads back to the same parameters") {
  test::ScratchFolder folder;
  const auto model = torch_sequential<double>(7);
  io::save_torch_state(*model, folder.file("m.npz"));

  const auto archive = io::read_npz(folder.file("m.npz"));
  std::vector<std::string> names;
  for (const auto& entry : archive) names.push_back(entry.first);
  CHECK(names ==
        std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"});
  CHECK(archive[0].second.shape() == Shape{8, 4});  // (out, in)
  CHECK(archive[0].second.dtype() == io::DType::float64);
  CHECK(archive[4].second.shape() == Shape{3, 8});
  CHECK(archive[5].second.shape() == Shape{3});
  const auto& w4 = dynamic_cast<const nn::Linear<double>&>((*model)[4]).weight().value();
  CHECK(member(archive, "4.weight") == xt::xarray<double>(xt::transpose(w4)));

  const auto fresh = torch_sequential<double>(8);
  CHECK(values_of(*fresh) != values_of(*model));
  io::load_torch_state(*fresh, folder.file("m.npz"));
  CHECK(values_of(*fresh) == values_of(*model));
}

TEST_CASE(
    "save_torch_state: a root Linear's weight is transposed, a user module's parameter is not") {
  test::ScratchFolder folder;
  nn::Linear<double> linear(2, 3);
  io::save_torch_state(linear, folder.file("linear.npz"));
  CHECK(io::read_npz(folder.file("linear.npz"))[0].first == "weight");
  CHECK(io::read_npz(folder.file("linear.npz"))[0].second.shape() == Shape{3, 2});

  Scale scale;
  io::save_torch_state(scale, folder.file("scale.npz"));
  const auto archive = io::read_npz(folder.file("scale.npz"));
  CHECK(archive[0].second.shape() == Shape{2, 3});
  CHECK(archive[0].second.to<double>() == scale.scale.value());
  Scale other;
  other.scale.set_value(xt::zeros<double>({2, 3}));
  io::load_torch_state(other, folder.file("scale.npz"));
  CHECK(other.scale.value() == scale.scale.value());
}

TEST_CASE("load_torch_state: float32 widens into a double model; float64 narrows only if allowed") {
  test::ScratchFolder folder;
  const auto single = torch_sequential<float>(3);
  io::save_torch_state(*single, folder.file("f32.npz"));
  CHECK(io::read_npz(folder.file("f32.npz"))[0].second.dtype() == io::DType::float32);
  auto wide = torch_sequential<double>(4);
  io::load_torch_state(*wide, folder.file("f32.npz"));  // PyTorch's default dtype, exactly
  const auto narrow_values = values_of(*single);
  const auto wide_values = values_of(*wide);
  for (std::size_t i = 0; i < narrow_values.size(); ++i) {
    CHECK(wide_values[i] == xt::xarray<double>(xt::cast<double>(narrow_values[i])));
  }

  const auto precise = torch_sequential<double>(5);
  io::save_torch_state(*precise, folder.file("f64.npz"));
  auto target = torch_sequential<float>(6);
  const auto before = values_of(*target);
  try {
    io::load_torch_state(*target, folder.file("f64.npz"));
    FAIL("float64 values were narrowed without being asked");
  } catch (const IoError& e) {
    const std::string message = e.what();
    CHECK(message.find("0.weight is float64 in the file but float32 in the model") !=
          std::string::npos);
    CHECK(message.find("model.float()") != std::string::npos);
    CHECK(message.find("Narrowing::allow") != std::string::npos);
    CHECK(message.find("nothing was loaded") != std::string::npos);
  }
  CHECK(values_of(*target) == before);
  io::load_torch_state(*target, folder.file("f64.npz"), io::Narrowing::allow);
  const auto precise_values = values_of(*precise);
  const auto rounded = values_of(*target);
  for (std::size_t i = 0; i < rounded.size(); ++i) {
    CHECK(rounded[i] == xt::xarray<float>(xt::cast<float>(precise_values[i])));
  }

  // A value beyond float32's range cannot be rounded, even when asked: nothing is loaded.
  auto state = io::read_npz(folder.file("f64.npz"));
  xt::xarray<double> huge = state[5].second.to<double>();
  huge(2) = 1e300;
  state[5].second = io::NpyArray::from(huge);
  io::write_npz(folder.file("huge.npz"), state);
  const auto loaded = values_of(*target);
  CHECK_THROWS_WITH_AS(io::load_torch_state(*target, folder.file("huge.npz"), io::Narrowing::allow),
                       doctest::Contains("4.bias: NpyArray::to: element 2 (1e+300) of a float64 "
                                         "array does not fit in float32 (nothing was loaded)"),
                       IoError);
  CHECK(values_of(*target) == loaded);
}

TEST_CASE("load_torch_state refuses a mismatched file whole and names every difference") {
  test::ScratchFolder folder;
  nn::Sequential<double> small;
  small.push_back(std::make_shared<nn::Linear<double>>(2, 3));
  io::save_torch_state(small, folder.file("small.npz"));

  nn::Sequential<double> wider;
  wider.push_back(std::make_shared<nn::Linear<double>>(2, 10));
  const auto before = values_of(wider);
  const std::string shapes = message_of_load(wider, folder.file("small.npz"));
  CHECK(shapes.find("small.npz does not match the model as a PyTorch state_dict (nothing was "
                    "loaded)") != std::string::npos);
  CHECK(shapes.find("0.weight: file has (3, 2), expected (10, 2) = (out, in)") !=
        std::string::npos);
  CHECK(shapes.find("0.bias: file has (3,), expected (10,)") != std::string::npos);
  CHECK(values_of(wider) == before);

  // The same sizes the other way round: a file in tapegrad's own (in, out) layout.
  nn::Sequential<double> square;
  square.push_back(std::make_shared<nn::Linear<double>>(3, 2));
  CHECK(message_of_load(square, folder.file("small.npz"))
            .find("0.weight: file has (3, 2), expected (2, 3) = (out, in)") != std::string::npos);

  auto sequential = torch_sequential<double>();
  const std::string names = message_of_load(*sequential, folder.file("small.npz"));
  CHECK(names.find("missing 2.weight") != std::string::npos);
  CHECK(names.find("missing 4.bias") != std::string::npos);
  nn::Linear<double> root(2, 3);
  const std::string unexpected = message_of_load(root, folder.file("small.npz"));
  CHECK(unexpected.find("missing weight") != std::string::npos);
  CHECK(unexpected.find("unexpected 0.weight") != std::string::npos);
  CHECK(unexpected.find("unexpected 0.bias") != std::string::npos);

  // A state_dict with a buffer the model does not have, and an integer array.
  const auto state = io::read_npz(fixtures + "/torch_sequential_state.npz");
  io::NpzArchive extra = state;
  extra.emplace_back("1.num_batches_tracked", io::NpyArray::from(xt::xarray<std::int64_t>(0)));
  io::write_npz(folder.file("extra.npz"), extra);
  const auto loaded_before = values_of(*sequential);
  CHECK(message_of_load(*sequential, folder.file("extra.npz"))
            .find("unexpected 1.num_batches_tracked") != std::string::npos);
  io::NpzArchive integers = state;
  integers[1].second = io::NpyArray::from(xt::xarray<std::int64_t>(xt::zeros<std::int64_t>({8})));
  io::write_npz(folder.file("integers.npz"), integers);
  const std::string dtype = message_of_load(*sequential, folder.file("integers.npz"));
  CHECK(dtype.find("0.bias is int64 in the file but float64 in the model") != std::string::npos);
  CHECK(dtype.find("model.double()") != std::string::npos);
  CHECK(values_of(*sequential) == loaded_before);

  CHECK_THROWS_WITH_AS(io::load_torch_state(*sequential, folder.file("absent.npz")),
                       doctest::Contains("absent.npz"), IoError);
}
