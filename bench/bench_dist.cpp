// Data-parallel training over MPI: the Fashion-MNIST MLP (784-100-10 ReLU, float32, SGD lr 0.1)
// or the CNN of fashion_cnn, one epoch at a time, started by `mpirun -np N` (bench/dist_scaling.sh
// runs -np 1 and -np 2 and prints the speed-up). Every rank trains on its share of each global
// batch (data::DistributedSampler) and averages its gradients with dist::DataParallel.
// Prints, per epoch, the wall time (the slowest rank's), the throughput, the time spent in
// MPI_Allreduce (the most any rank spent: waiting for a slower rank included) and the compute
// time per step; the last line, "RESULT ...", is for the script. Set OPENBLAS_NUM_THREADS=1:
// one BLAS thread per rank.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/fashion_cnn_network.hpp"
#include "tapegrad/dist/dist.hpp"
#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;

namespace {

double max_over_ranks(double value) {
  double out = 0;
  MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

int run(int argc, char** argv) {
  CLI::App app{"One epoch of data-parallel Fashion-MNIST training per line, under mpirun -np N."};
  std::string model_name = "mlp";
  std::size_t batch = 64, images = 60000;
  int epochs = 3;
  bool per_rank = false;
  app.add_option("--model", model_name, "mlp (784-100-10, SGD) or cnn (fashion_cnn's, Adam)")
      ->check(CLI::IsMember({"mlp", "cnn"}))
      ->capture_default_str();
  app.add_option("--batch", batch, "the global batch, split over the ranks")->capture_default_str();
  app.add_flag("--per-rank", per_rank, "--batch is each rank's batch instead (weak scaling)");
  app.add_option("--images", images, "training images per epoch")->capture_default_str();
  app.add_option("--epochs", epochs, "epochs (one line each)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const auto world = static_cast<std::size_t>(dist::world_size());
  const auto me = static_cast<std::size_t>(dist::rank());
  const std::size_t local_batch = per_rank ? batch : batch / world;
  if (local_batch == 0 || (!per_rank && batch % world != 0)) {
    throw ValueError("bench_dist: --batch " + std::to_string(batch) + " is not a multiple of the " +
                     std::to_string(world) + " ranks");
  }
  const bool cnn = model_name == "cnn";
  const auto fashion = data::load_fashion_mnist<float>(data::kFashionMnistFolder);
  images = std::min(images, fashion.train_labels.size());
  xt::xarray<float> x = cnn ? xt::xarray<float>::from_shape(
                                  {images, std::size_t{1}, std::size_t{28}, std::size_t{28}})
                            : xt::xarray<float>::from_shape({images, std::size_t{784}});
  std::copy_n(fashion.train_images.data(), images * 784, x.data());
  xt::xarray<float> y = xt::xarray<float>::from_shape({images});
  for (std::size_t i = 0; i < images; ++i) y(i) = static_cast<float>(fashion.train_labels[i]);
  const data::Dataset<float> train(std::move(x), std::move(y));

  Generator random(1);
  std::shared_ptr<nn::Module<float>> model;
  if (cnn) {
    model = examples::fashion_cnn_network(random);
  } else {
    model = std::make_shared<nn::MLP<float>>(
        std::vector<std::size_t>{784, 100, 10}, nn::Activation::ReLU,
        nn::MLPOptions()
            .output_activation(nn::Activation::Identity)
            .linear(nn::LinearOptions().weight_init(nn::Init::he_uniform()).generator(random)));
  }
  if (me > 0) random = Generator(1 + me);  // the CNN's dropout masks: a stream per rank
  std::unique_ptr<optim::Optimizer<float>> optimizer;
  if (cnn)
    optimizer = std::make_unique<optim::Adam<float>>(model->parameters(), 1e-3);
  else
    optimizer = std::make_unique<optim::SGD<float>>(model->parameters(), 0.1);
  dist::broadcast_parameters(*model);
  dist::DataParallel<float> parallel(*model);
  data::DistributedSampler sampler(images, local_batch, me, world, data::LoaderOptions().seed(1));
  if (me == 0) {
    std::printf(
        "%s, %zu images per epoch, %zu ranks x %zu = global batch %zu, %zu parameter values "
        "(%.2f MB of gradient), %zu all-reduce call(s) per step\n",
        model_name.c_str(), images, world, local_batch, world * local_batch,
        model->parameter_count(),
        static_cast<double>(model->parameter_count() * sizeof(float)) / 1e6, parallel.buckets());
  }

  double best_throughput = 0, share_at_best = 0, step_ms_at_best = 0;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    const auto batches = sampler.epoch();
    MPI_Barrier(MPI_COMM_WORLD);
    const double start = MPI_Wtime(), communication_start = parallel.communication_seconds();
    for (const auto& indices : batches) {
      if (!indices.empty()) {
        const auto part = train.subset(indices);
        std::vector<std::size_t> labels(indices.size());
        for (std::size_t i = 0; i < labels.size(); ++i)
          labels[i] = static_cast<std::size_t>(part.targets(i));
        Tape tape;
        nn::cross_entropy((*model)(Tensor<float>(part.features)), labels).backward();
      }
      parallel.average_gradients(indices.size());
      optimizer->step();
      optimizer->zero_grad();
    }
    const double mine = MPI_Wtime() - start;
    const double communication =
        max_over_ranks(parallel.communication_seconds() - communication_start);
    const double seconds = max_over_ranks(mine);
    const double throughput = static_cast<double>(images) / seconds;
    const double step_ms = 1e3 * (seconds - communication) / static_cast<double>(batches.size());
    if (me == 0) {
      std::printf(
          "epoch %d: %.3f s, %.0f images/s, all-reduce %.3f s (%.1f%%), compute %.3f ms per step "
          "(%zu steps)\n",
          epoch, seconds, throughput, communication, 100 * communication / seconds, step_ms,
          batches.size());
    }
    if (throughput > best_throughput) {
      best_throughput = throughput;
      share_at_best = communication / seconds;
      step_ms_at_best = step_ms;
    }
  }
  if (me == 0) {
    std::printf(
        "RESULT model=%s np=%zu images_per_s=%.1f communication_share=%.4f "
        "compute_ms_per_step=%.4f\n",
        model_name.c_str(), world, best_throughput, share_at_best, step_ms_at_best);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment environment(argc, argv);
  return dist::run_or_abort([&] { return run(argc, argv); }, "bench_dist");
}
