// One epoch of examples/fashion_cnn's network (conv 1->32 3x3 pad 1, ReLU, max-pool 2,
// conv 32->64 3x3 pad 1, ReLU, max-pool 2, flatten, dropout 0.25, linear 3136->128, ReLU,
// linear 10; cross-entropy, Adam 1e-3, batch 64, float32, one thread) in tapegrad, LibTorch
// and PyTorch, side by side. Each side runs in a process of its own, one after the other,
// and prints "seconds base_kib peak_kib faults": the training loop's time, the resident memory
// with the images loaded, the most resident during the loop (the kernel's peak mark is reset
// once the data is in: /proc/self/clear_refs), so the memory compared is the training's own,
// and the minor page faults during the loop (fresh pages the allocator took from the kernel).
// LibTorch's side is bench_cnn_libtorch (built when CMake finds Debian's libtorch-dev),
// PyTorch's bench/torch/cnn.py (run when python3-torch is installed).
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"
#include "common/fashion_cnn_network.hpp"
#include "tapegrad/tapegrad.hpp"

extern "C" void openblas_set_num_threads(int threads);
extern "C" char* openblas_get_corename(void);

namespace {

using namespace tapegrad;

// tapegrad's side: the loop of examples/fashion_cnn.cpp without its test evaluation.
int tapegrad_side(std::size_t count) {
  openblas_set_num_threads(1);
  // The first `count` training images as (N, 1, 28, 28); the rest of the file is freed before
  // the memory is measured, as the other sides hold only the training images.
  const data::Dataset<float> train = [count] {
    const auto fashion = data::load_fashion_mnist<float>();
    xt::xarray<float> images =
        xt::xarray<float>::from_shape({count, std::size_t{1}, std::size_t{28}, std::size_t{28}});
    std::copy_n(fashion.train_images.data(), count * 784, images.data());
    xt::xarray<float> labels = xt::xarray<float>::from_shape({count});
    for (std::size_t i = 0; i < count; ++i) labels(i) = static_cast<float>(fashion.train_labels[i]);
    return data::Dataset<float>(std::move(images), std::move(labels));
  }();
  data::DataLoader<float> loader(train, 64, data::LoaderOptions().seed(1));
  Generator random(1);
  const auto network = examples::fashion_cnn_network(random);
  auto& model = *network;

  optim::Adam<float> adam(model.parameters(), 1e-3);
  const auto batches = loader.epoch();
  std::ofstream("/proc/self/clear_refs") << "5";
  const long base = bench::status_kib("VmRSS");
  const long faults = bench::minor_faults();
  const auto start = bench::Clock::now();
  for (const auto& batch : batches) {
    std::vector<std::size_t> targets(batch.targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i)
      targets[i] = static_cast<std::size_t>(batch.targets(i));
    {
      Tape tape;
      nn::cross_entropy(model(Tensor<float>(batch.features)), targets).backward();
    }
    adam.step();
    adam.zero_grad();
  }
  const double seconds = bench::seconds_since(start);
  std::printf("%.3f %ld %ld %ld\n", seconds, base, bench::status_kib("VmHWM"),
              bench::minor_faults() - faults);
  return 0;
}

struct Result {
  bool ran = false;
  double seconds = 0;
  long base_kib = 0, peak_kib = 0, faults = 0;
};

// Runs `argv` in a child process and reads its line, "seconds base_kib peak_kib faults".
Result run_side(const std::vector<std::string>& argv) {
  int pipe_ends[2];
  if (pipe(pipe_ends) != 0) return {};
  const pid_t child = fork();
  if (child == 0) {
    dup2(pipe_ends[1], STDOUT_FILENO);
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(pipe_ends[1]);
  std::string output;
  std::array<char, 256> buffer;
  for (ssize_t n; (n = read(pipe_ends[0], buffer.data(), buffer.size())) > 0;)
    output.append(buffer.data(), n);
  close(pipe_ends[0]);
  int status = 0;
  waitpid(child, &status, 0);
  Result r;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
      std::sscanf(output.c_str(), "%lf %ld %ld %ld", &r.seconds, &r.base_kib, &r.peak_kib,
                  &r.faults) == 4) {
    r.ran = true;
  }
  return r;
}

bool executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "One epoch of the Fashion-MNIST CNN: tapegrad, LibTorch and PyTorch, one thread each."};
  std::size_t images = 60000;
  int rounds = 1;
  std::string side;
  app.add_option("--images", images, "training images per epoch")
      ->capture_default_str()
      ->check(CLI::Range(64, 60000));
  app.add_option("--rounds", rounds, "epochs per side, alternating sides; medians are printed")
      ->capture_default_str()
      ->check(CLI::Range(1, 20));
  app.add_option("--side", side, "run one side only and print its raw line (tapegrad)");
  bool without_pytorch = false;
  app.add_flag("--without-pytorch", without_pytorch,
               "leave PyTorch's side out (it takes 4x tapegrad's time)");
  CLI11_PARSE(app, argc, argv);
  if (!data::fashion_mnist_available(data::kFashionMnistFolder)) {
    std::fprintf(stderr, "bench_cnn needs Fashion-MNIST: apt-get install dataset-fashion-mnist\n");
    return 3;
  }
  if (side == "tapegrad") return tapegrad_side(images);
  if (!side.empty()) {
    std::fprintf(stderr, "bench_cnn: --side takes tapegrad, not '%s'\n", side.c_str());
    return 2;
  }

  const std::string self = argv[0];
  const std::string folder = self.substr(0, self.find_last_of('/') + 1);
  const std::string libtorch = folder + "bench_cnn_libtorch";
  const std::string python = "/usr/bin/python3",
                    script = std::string(TAPEGRAD_SOURCE_DIR) + "/bench/torch/cnn.py";
  const bool have_libtorch = executable(libtorch);
  const bool have_pytorch = !without_pytorch && executable(python) &&
                            std::system((python + " -c 'import torch' 2>/dev/null").c_str()) == 0;
  const std::string count = std::to_string(images);
  struct Side {
    const char* name;
    std::vector<std::string> argv;
    bool available;
    std::vector<Result> results;
  };
  std::vector<Side> sides{{"tapegrad", {self, "--side", "tapegrad", "--images", count}, true, {}},
                          {"LibTorch", {libtorch, count}, have_libtorch, {}},
                          {"PyTorch", {python, script, count}, have_pytorch, {}}};
  for (int round = 0; round < rounds; ++round) {
    for (auto& s : sides) {
      if (!s.available) continue;
      const Result r = run_side(s.argv);
      if (!r.ran) {
        std::fprintf(stderr, "bench_cnn: the %s side failed\n", s.name);
        return 1;
      }
      s.results.push_back(r);
      std::fprintf(
          stderr, "round %d: %-8s %7.2f s, peak %6.0f MiB above the loaded data, %ld page faults\n",
          round + 1, s.name, r.seconds, static_cast<double>(r.peak_kib - r.base_kib) / 1024,
          r.faults);
    }
  }
  std::printf(
      "Fashion-MNIST CNN, %zu images (batch 64, float32, one thread), median of %d round(s)\n",
      images, rounds);
  // The kernels OpenBLAS chose for this CPU at load time (all three sides see the same
  // environment): Debian 12's OpenBLAS 0.3.21 takes its Haswell kernels on AMD's AVX-512
  // processors, where OPENBLAS_CORETYPE=SKYLAKEX selects the AVX-512 ones.
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("OpenBLAS kernels: %s (OPENBLAS_CORETYPE %s)\n", openblas_get_corename(),
              coretype != nullptr ? coretype : "not set");
  std::printf("%-10s %10s %12s %22s %14s %12s\n", "side", "seconds", "tapegrad/it",
              "peak MiB above data", "peak MiB all", "page faults");
  std::vector<double> tapegrad_times;
  for (const auto& r : sides[0].results) tapegrad_times.push_back(r.seconds);
  const double tapegrad_seconds = bench::median(tapegrad_times);
  for (const auto& s : sides) {
    if (!s.available) {
      std::printf("%-10s %10s   (%s)\n", s.name, "-",
                  s.name == std::string("LibTorch")
                      ? "not built: apt-get install libtorch-dev, then reconfigure"
                  : without_pytorch ? "left out: --without-pytorch"
                                    : "apt-get install python3-torch");
      continue;
    }
    std::vector<double> times, above, all, faults;
    for (const auto& r : s.results) {
      times.push_back(r.seconds);
      above.push_back(static_cast<double>(r.peak_kib - r.base_kib) / 1024);
      all.push_back(static_cast<double>(r.peak_kib) / 1024);
      faults.push_back(static_cast<double>(r.faults));
    }
    const double seconds = bench::median(times);
    std::printf("%-10s %10.2f %11.2fx %22.0f %14.0f %12.0f\n", s.name, seconds,
                tapegrad_seconds / seconds, bench::median(above), bench::median(all),
                bench::median(faults));
  }
  return 0;
}
