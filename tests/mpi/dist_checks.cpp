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
            "dist::DataParallel: parameter 0 (0.weight) has shape (5, 8) on rank 0 but (5, 9) on "
            "rank 1; every rank must build the same model",
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

// The message of the DistError or ShapeError `action` throws ("no error" if none).
template <class Action>
std::string refusal(Action action) {
  try {
    action();
  } catch (const dist::DistError& error) {
    return std::string("DistError: ") + error.what();
  } catch (const ShapeError& error) {
    return std::string("ShapeError: ") + error.what();
  }
  return "no error";
}

Tensor<double> leaf(const Shape& shape, double value) {
  return Tensor<double>(xt::xarray<double>(xt::xarray<double>::from_shape(shape)) * 0 + value,
                        requires_grad);
}

// p's gradient becomes all ones.
void give_gradient(Tensor<double>& p) {
  Tape tape;
  sum(p).backward();
}

// Ranks whose parameter lists differ in shape, count, element type or bucket size are refused
// on every rank before any exchange, naming the difference (before, only the total value
// count was compared: a (2, 3) weight and a (3, 2) one mixed their gradients, and
// broadcast_parameters copied one into the other).
void disagreeing_lists() {
  const bool one = dist::rank() == 1;
  const std::string model = "; every rank must build the same model";
  std::vector<Tensor<double>> weights{leaf(one ? Shape{3, 2} : Shape{2, 3}, 1.0 + dist::rank())};
  check(refusal([&] { dist::DataParallel<double> parallel(weights); }) ==
            "DistError: dist::DataParallel: parameter 0 has shape (2, 3) on rank 0 but (3, 2) on "
            "rank 1" +
                model,
        "transposed shapes are refused by DataParallel");
  check(refusal([&] { dist::broadcast_parameters(weights); }) ==
            "DistError: dist::broadcast_parameters: tensor 0 has shape (2, 3) on rank 0 but "
            "(3, 2) on rank 1" +
                model,
        "transposed shapes are refused by broadcast_parameters");
  check(weights[0].value()(0, 0) == 1.0 + dist::rank(), "a refused broadcast copies nothing");
  auto small = toy_model<double>(1);
  auto bigger =
      std::make_shared<nn::MLP<double>>(std::vector<std::size_t>{5, 9, 3}, nn::Activation::Tanh);
  check(refusal([&] { dist::broadcast_parameters(one ? *bigger : *small); }) ==
            "DistError: dist::broadcast_parameters: tensor 0 (0.weight) has shape (5, 8) on rank "
            "0 but (5, 9) on rank 1" +
                model,
        "a module's tensors are named");
  std::vector<Tensor<double>> counted{leaf({2}, 1.0)};
  if (one) counted.push_back(leaf({2}, 1.0));
  check(
      refusal([&] { dist::DataParallel<double> parallel(counted); }) ==
          "DistError: dist::DataParallel: rank 0 has 1 parameter, rank 1 has 2 parameters" + model,
      "another number of parameters is refused");
  std::vector<Tensor<double>> same{leaf({2, 3}, 1.0)};
  check(refusal([&] {
          dist::DataParallel<double> parallel(
              same, dist::DataParallelOptions().bucket_bytes(one ? 4096 : 100));
        }) ==
            "DistError: dist::DataParallel: bucket_bytes is 100 on rank 0 but 4096 on rank 1; "
            "every rank must cut the same buckets",
        "another bucket size is refused");
  const std::string types = refusal([&] {
    if (one) {
      dist::DataParallel<double> parallel(same);
    } else {
      dist::DataParallel<float> parallel(std::vector<Tensor<float>>{
          Tensor<float>(xt::xarray<float>(xt::ones<float>({2, 3})), requires_grad)});
    }
  });
  check(types == "DistError: dist::DataParallel: rank 0 holds float32 values, rank 1 float64",
        "another element type is refused, got: '" + types + "'");
}

// A parameter resized, or a gradient changed to another shape, after DataParallel was made:
// ShapeError on the rank that has it, DistError naming that rank on the others, never an
// overflow of the flat buffer (before: a heap overflow on every rank).
void resized_parameters() {
  const bool one = dist::rank() == 1;
  Tensor<double> b = leaf({3}, 1.0), w = leaf({2, 3}, 1.0);
  dist::DataParallel<double> parallel(std::vector<Tensor<double>>{b, w});
  give_gradient(b);
  give_gradient(w);
  parallel.average_gradients(4);
  w.set_value(xt::ones<double>({3, 3}));  // on every rank
  give_gradient(w);
  const std::string resized =
      "ShapeError: dist::DataParallel::average_gradients: parameter 1 has shape (3, 3) but "
      "DataParallel was made for (2, 3): the buckets are cut for the shapes at construction; "
      "make a new DataParallel (on every rank) after resizing a parameter";
  check(refusal([&] { parallel.average_gradients(4); }) == resized,
        "a parameter resized on every rank is refused on every rank");
  w.set_value(xt::ones<double>(one ? Shape{3, 3} : Shape{2, 3}));  // on rank 1 only
  give_gradient(w);
  check(refusal([&] { parallel.average_gradients(4); }) ==
            (one ? resized
                 : "DistError: dist::DataParallel::average_gradients: rank 1 refused exchange 3 "
                   "(a parameter or gradient of another shape: see its message); every rank "
                   "stops there"),
        "a parameter resized on rank 1 only is refused on every rank");
  w.set_value(xt::ones<double>({2, 3}));
  give_gradient(w);
  if (!one) w.mutable_grad() = xt::ones<double>({3});
  check(refusal([&] { parallel.average_gradients(); }) ==
            (one ? "DistError: dist::DataParallel::average_gradients: rank 0 refused exchange 4 "
                   "(a parameter or gradient of another shape: see its message); every rank "
                   "stops there"
                 : "ShapeError: dist::DataParallel::average_gradients: parameter 1 has shape (2, "
                   "3) but its gradient has shape (3,); expected a gradient of the parameter's "
                   "shape (was it changed through mutable_grad()?)"),
        "a gradient of another shape on rank 0 is refused on every rank");
  // Ranks that mix the weighted and the plain average are refused on every rank.
  w.zero_grad();
  give_gradient(w);
  check(refusal([&] {
          if (one) {
            parallel.average_gradients();
          } else {
            parallel.average_gradients(4);
          }
        }) ==
            "DistError: dist::DataParallel::average_gradients: exchange 5: 1 of 2 ranks called "
            "average_gradients(local_samples), the others average_gradients(); every rank "
            "must call the same one",
        "mixed averages are refused on every rank");
  // And the exchanges go on once the shapes fit again.
  w.zero_grad();
  give_gradient(w);
  w.mutable_grad() *= 1.0 + dist::rank();
  parallel.average_gradients();
  check(w.grad()(0, 0) == 1.5, "after the refusals the average is right again");
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
  // A resized parameter is refused here too (the one-rank path makes no exchange).
  auto parameters = model->parameters();
  parameters[0].set_value(xt::ones<double>({6, 8}));
  check(refusal([&] { parallel.average_gradients(3); }) ==
            "ShapeError: dist::DataParallel::average_gradients: parameter 0 (0.weight) has shape "
            "(6, 8) but DataParallel was made for (5, 8): the buckets are cut for the shapes at "
            "construction; make a new DataParallel (on every rank) after resizing a parameter",
        "one rank: a resized parameter is refused");
}

// A rank that stops calling average_gradients while the other waits: with --leave-early rank
// 1 makes 3 exchanges and destroys its DataParallel while rank 0 is in its 4th; with --stall
// rank 1 makes 3 and waits in a barrier, rank 0's 4th times out after 3 s. Both end the job
// with a message (before: a hang mpirun could not even stop).
int stop_early(bool stall) {
  auto model = toy_model<double>(7);
  const int exchanges = dist::rank() == 1 ? 3 : 4;
  {
    dist::DataParallel<double> parallel(*model, dist::DataParallelOptions().timeout(3));
    for (int s = 0; s < exchanges; ++s) {
      {
        Tape tape;
        nn::cross_entropy((*model)(Tensor<double>(xt::ones<double>({2, 5}))), {0, 1}).backward();
      }
      parallel.average_gradients(2);
    }
    if (stall) MPI_Barrier(MPI_COMM_WORLD);
  }
  return 0;
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
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--leave-early") return stop_early(false);
    if (std::string(argv[i]) == "--stall") return stop_early(true);
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
  disagreeing_lists();
  resized_parameters();
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment environment(argc, argv);
  return dist::run_or_abort([&] { return run(argc, argv); }, "dist_checks");
}
