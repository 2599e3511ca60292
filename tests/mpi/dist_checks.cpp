// tapegrad::dist under `mpirun -np 2` (tests/mpi/mpirun.sh): data-parallel training equals
// single-process training on the same global batches, broadcast_parameters makes the ranks'
// models equal, mismatched models and a second Environment are refused. Under -np 1, training
// through DataParallel equals one process bit for bit. With
// --throw-at-step S --throw-rank R, rank R throws at step S instead, to show that the job
// then ends (run_or_abort) rather than hanging.
//
// Every rank runs the single-process reference itself (DataLoader with the global batch), so
// no file is exchanged. Exit status 0 when every check passed on every rank.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "checks.hpp"
#include "tapegrad/dist/dist.hpp"
#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;

namespace {

using mpi_checks::check;

// 49 samples of 5 features, 3 classes: with 2 ranks x 4 an epoch is 6 full global batches and
// one of a single sample (rank 1's last batch is empty), so 20 steps cross two epoch ends.
template <class T>
data::Dataset<T> toy_data() {
  Generator random(42);
  const std::size_t n = 49;
  xt::xarray<T> x = xt::xarray<T>::from_shape({n, std::size_t{5}});
  xt::xarray<T> y = xt::xarray<T>::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < 5; ++j) x(i, j) = static_cast<T>(random.normal());
    y(i) = static_cast<T>(i % 3);
  }
  return data::Dataset<T>(x, y);
}

template <class T>
std::shared_ptr<nn::MLP<T>> toy_model(std::uint64_t seed) {
  Generator random(seed);
  return std::make_shared<nn::MLP<T>>(std::vector<std::size_t>{5, 8, 3}, nn::Activation::Tanh,
                                      nn::MLPOptions()
                                          .output_activation(nn::Activation::Identity)
                                          .linear(nn::LinearOptions().generator(random)));
}

std::vector<std::size_t> labels_of(const xt::xarray<double>& t) {
  std::vector<std::size_t> out(t.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::size_t>(t(i));
  return out;
}
std::vector<std::size_t> labels_of(const xt::xarray<float>& t) {
  std::vector<std::size_t> out(t.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::size_t>(t(i));
  return out;
}

template <class T>
std::unique_ptr<optim::Optimizer<T>> make_optimizer(nn::Module<T>& model, bool adam) {
  if (adam) return std::make_unique<optim::Adam<T>>(model.parameters(), 0.01);
  return std::make_unique<optim::SGD<T>>(model.parameters(), 0.1,
                                         optim::SGDOptions().momentum(0.9));
}

// The largest over tensors of max|a - b| / max|b|.
template <class T>
double largest_relative_difference(const nn::Module<T>& a, const nn::Module<T>& b) {
  const auto pa = a.parameters(), pb = b.parameters();
  double worst = 0;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    double diff = 0, scale = 0;
    for (std::size_t k = 0; k < pa[i].value().size(); ++k) {
      diff =
          std::max(diff, std::abs(double(pa[i].value().flat(k)) - double(pb[i].value().flat(k))));
      scale = std::max(scale, std::abs(double(pb[i].value().flat(k))));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

struct Setup {
  bool adam = false, drop_last = false, weighted = true;
  std::size_t bucket_bytes = std::size_t{4} << 20;
  int steps = 20, throw_at_step = -1, throw_rank = -1;
};

// 20 steps of data-parallel training (this rank's share of each global batch), and on the
// side the same 20 steps in one process on the whole global batches; returns the largest
// relative difference of the parameters.
template <class T>
double train_both(const Setup& setup, const char* label) {
  const auto data = toy_data<T>();
  const std::size_t local_batch = 4;
  const auto options = data::LoaderOptions().seed(11).drop_last(setup.drop_last);
  const auto world = static_cast<std::size_t>(dist::world_size());
  const auto me = static_cast<std::size_t>(dist::rank());

  // Distributed: each rank starts from its own seed; the broadcast must make them equal.
  auto model = toy_model<T>(7 + me);
  auto reference = toy_model<T>(7);
  if (me != 0)
    check(largest_relative_difference(*model, *reference) > 0.01,
          std::string(label) + ": seeds differ");
  dist::broadcast_parameters(*model);
  check(largest_relative_difference(*model, *reference) == 0,
        std::string(label) + ": broadcast_parameters gives rank 0's weights");
  dist::DataParallel<T> parallel(*model,
                                 dist::DataParallelOptions().bucket_bytes(setup.bucket_bytes));
  auto optimizer = make_optimizer(*model, setup.adam);
  data::DistributedSampler sampler(data.size(), local_batch, me, world, options);
  int step = 0;
  while (step < setup.steps) {
    for (const auto& indices : sampler.epoch()) {
      if (step == setup.steps) break;
      if (step == setup.throw_at_step && static_cast<int>(me) == setup.throw_rank) {
        throw ValueError("deliberate failure at step " + std::to_string(step));
      }
      if (!indices.empty()) {
        const auto batch = data.subset(indices);
        Tape tape;
        nn::cross_entropy((*model)(Tensor<T>(batch.features)), labels_of(batch.targets)).backward();
      }
      if (setup.weighted) {
        parallel.average_gradients(indices.size());
      } else {
        parallel.average_gradients();
      }
      optimizer->step();
      optimizer->zero_grad();
      ++step;
    }
  }

  // Single process: DataLoader with the global batch, the same seed, the same order.
  auto reference_optimizer = make_optimizer(*reference, setup.adam);
  data::DataLoader<T> loader(data, local_batch * world, options);
  step = 0;
  while (step < setup.steps) {
    for (const auto& batch : loader.epoch()) {
      if (step == setup.steps) break;
      {
        Tape tape;
        nn::cross_entropy((*reference)(Tensor<T>(batch.features)), labels_of(batch.targets))
            .backward();
      }
      reference_optimizer->step();
      reference_optimizer->zero_grad();
      ++step;
    }
  }

  // The ranks' models are bit-for-bit equal: rank 0's, broadcast, changes nothing elsewhere.
  auto copy = toy_model<T>(99);
  const auto mine = model->parameters();
  auto theirs = copy->parameters();
  for (std::size_t i = 0; i < mine.size(); ++i) theirs[i].mutable_value() = mine[i].value();
  dist::broadcast_parameters(*copy);
  check(largest_relative_difference(*model, *copy) == 0,
        std::string(label) + ": the ranks' models are equal");

  const double difference = largest_relative_difference(*model, *reference);
  if (me == 0) {
    std::printf(
        "%s: %d steps on %zu ranks (%zu buckets): largest relative parameter difference to "
        "1-rank training %.3g\n",
        label, setup.steps, world, parallel.buckets(), difference);
  }
  // Training moved the weights: the comparison is not between two untouched models.
  check(largest_relative_difference(*model, *toy_model<T>(7)) > 1e-3,
        std::string(label) + ": training changed the weights");
  return difference;
}

// Buffers travel too: BatchNorm's running statistics (and its count) become rank 0's.
void broadcast_buffers() {
  nn::BatchNorm1d<double> norm(3);
  const double mine = 1.0 + dist::rank();
  for (auto& buffer : norm.buffers()) buffer.mutable_value().fill(mine);
  dist::broadcast_parameters(norm);
  for (const auto& [name, buffer] : norm.named_buffers()) {
    for (const double v : buffer.value())
      check(v == 1.0, "broadcast_parameters: buffer " + name + " is rank 0's");
  }
  check(norm.buffers().size() == 3, "BatchNorm1d has 3 buffers");
}

void refusals() {
  // A model of another size on rank 1: refused on every rank, not a hang.
  auto model = toy_model<double>(1);
  auto bigger =
      std::make_shared<nn::MLP<double>>(std::vector<std::size_t>{5, 9, 3}, nn::Activation::Tanh);
  std::string message;
  try {
    dist::DataParallel<double> parallel(dist::rank() == 1 ? *bigger : *model);
  } catch (const dist::DistError& error) {
    message = error.what();
  }
  check(message ==
            "dist::DataParallel: rank 0 has 75 values, rank 1 has 84; every rank must build the "
            "same model",
        "a mismatched model is refused, got: '" + message + "'");

  message.clear();
  try {
    int argc = 0;
    char** argv = nullptr;
    dist::Environment again(argc, argv);
  } catch (const dist::DistError& error) {
    message = error.what();
  }
  check(message.find("MPI can be started only once") != std::string::npos,
        "a second Environment is refused, got: '" + message + "'");
}

// Under mpirun -np 1 the average over one rank is its own gradient, untouched: training equals
// the single-process run bit for bit (no copy through MPI, no multiply and divide by the count).
void one_rank() {
  Setup sgd;
  check(train_both<double>(sgd, "one rank, f64 SGD momentum, weighted") == 0,
        "one rank, weighted: bit for bit");
  Setup plain;
  plain.weighted = false;
  check(train_both<float>(plain, "one rank, f32 SGD momentum, unweighted") == 0,
        "one rank, unweighted: bit for bit");

  // A parameter without a gradient gets zeros, as with several ranks; a step of no samples
  // is refused.
  auto model = toy_model<double>(1);
  dist::DataParallel<double> parallel(*model);
  parallel.average_gradients(3);
  for (const auto& p : model->parameters()) {
    check(p.has_grad() && xt::amax(xt::abs(p.grad()))() == 0,
          "one rank: an unused parameter gets a zero gradient");
  }
  std::string message;
  try {
    parallel.average_gradients(0);
  } catch (const dist::DistError& error) {
    message = error.what();
  }
  check(message.find("sample counts sum to 0") != std::string::npos,
        "one rank: a step of no samples is refused, got: '" + message + "'");
}

void several_ranks();

int run(int argc, char** argv) {
  Setup fault;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    if (name == "--throw-at-step") fault.throw_at_step = std::atoi(argv[i + 1]);
    if (name == "--throw-rank") fault.throw_rank = std::atoi(argv[i + 1]);
  }
  if (fault.throw_at_step >= 0) {
    train_both<double>(fault, "fault");
    return 0;
  }

  if (dist::world_size() == 1) {
    one_rank();
  } else {
    several_ranks();
  }

  return mpi_checks::verdict("dist_checks");
}

void several_ranks() {
  Setup sgd;
  check(train_both<double>(sgd, "f64 SGD momentum, weighted, 1 bucket") <= 1e-12,
        "f64 SGD within 1e-12");
  Setup small_buckets;
  small_buckets.bucket_bytes = 100;
  check(train_both<double>(small_buckets, "f64 SGD momentum, weighted, 100-byte buckets") <= 1e-12,
        "f64 SGD with many buckets within 1e-12");
  // Plain averaging, float. (SGD: Adam's step hardly changes when every gradient is scaled,
  // so it would not notice a sum in place of the average.)
  Setup plain;
  plain.drop_last = true;
  plain.weighted = false;
  plain.bucket_bytes = 128;
  check(
      train_both<float>(plain, "f32 SGD momentum, drop_last, unweighted, 128-byte buckets") <= 1e-5,
      "f32 SGD within 1e-5");
  Setup adam;
  adam.adam = true;
  check(train_both<double>(adam, "f64 Adam, weighted, 1 bucket") <= 1e-12, "f64 Adam within 1e-12");
  broadcast_buffers();
  refusals();
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment environment(argc, argv);
  return dist::run_or_abort([&] { return run(argc, argv); }, "dist_checks");
}
