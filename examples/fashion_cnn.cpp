// A convolutional network on Fashion-MNIST (Debian's dataset-fashion-mnist):
//   conv(1->32, 3x3, pad 1) -> ReLU -> max-pool 2 -> conv(32->64, 3x3, pad 1) -> ReLU ->
//   max-pool 2 -> flatten -> dropout 0.25 -> linear(3136->128) -> ReLU -> linear(10),
// softmax cross-entropy, Adam 1e-3, batch 64. A progress bar, the test accuracy after every
// epoch (the model in eval mode: no dropout), a confusion matrix, pictures of the first
// layer's filters and of the accuracy curve, and the weights in PyTorch's names (.npz).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/checkpointing.hpp"
#include "common/cli.hpp"
#include "common/confusion.hpp"
#include "common/distributed.hpp"
#include "common/fashion_cnn_network.hpp"
#include "common/output.hpp"
#include "common/plot.hpp"
#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;

namespace {

constexpr std::size_t kSide = 28, kClasses = 10;

// The images as (N, 1, 28, 28), the first `count` of them.
xt::xarray<float> as_images(const xt::xarray<float>& rows, std::size_t count) {
  xt::xarray<float> images = xt::xarray<float>::from_shape({count, std::size_t{1}, kSide, kSide});
  std::copy_n(rows.data(), count * kSide * kSide, images.data());
  return images;
}

// The predicted class of every test image, in batches of 500 (the model in eval mode, no
// tape: the activations of 10,000 images at once would take 1 GB).
std::vector<std::size_t> predict(nn::Module<float>& model, const xt::xarray<float>& images) {
  NoGradGuard no_grad;
  const std::size_t count = images.shape()[0], chunk = 500;
  std::vector<std::size_t> predicted(count);
  for (std::size_t first = 0; first < count; first += chunk) {
    const std::size_t n = std::min(chunk, count - first);
    xt::xarray<float> part = xt::xarray<float>::from_shape({n, std::size_t{1}, kSide, kSide});
    std::copy_n(images.data() + first * kSide * kSide, n * kSide * kSide, part.data());
    const auto scores = model(Tensor<float>(std::move(part))).value();
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t best = 0;
      for (std::size_t c = 1; c < kClasses; ++c) {
        if (scores(i, c) > scores(i, best)) best = c;
      }
      predicted[first + i] = best;
    }
  }
  return predicted;
}

double accuracy(const std::vector<std::size_t>& predicted, const std::vector<std::size_t>& labels) {
  std::size_t correct = 0;
  for (std::size_t i = 0; i < predicted.size(); ++i) correct += predicted[i] == labels[i];
  return static_cast<double>(correct) / static_cast<double>(predicted.size());
}

// "[#########.........]" for `done` of `total`.
std::string progress_bar(std::size_t done, std::size_t total, std::size_t width = 30) {
  const std::size_t filled = total == 0 ? width : done * width / total;
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

// The first layer's 32 filters (32, 1, 3, 3) as a grid of 4 x 8 tiles, each filter scaled
// to its own range (white: its largest weight, black: its smallest), one pixel apart.
bool save_filters(const xt::xarray<float>& weight, const std::string& path) {
  const std::size_t filters = weight.shape()[0], kh = weight.shape()[2], kw = weight.shape()[3];
  const std::size_t columns = 8, rows = (filters + columns - 1) / columns;
  const std::size_t height = rows * (kh + 1) - 1, width = columns * (kw + 1) - 1;
  std::vector<double> pixels(height * width, 0.5);
  for (std::size_t f = 0; f < filters; ++f) {
    float lo = weight(f, 0, 0, 0), hi = lo;
    for (std::size_t i = 0; i < kh; ++i) {
      for (std::size_t j = 0; j < kw; ++j)
        lo = std::min(lo, weight(f, 0, i, j)), hi = std::max(hi, weight(f, 0, i, j));
    }
    const std::size_t top = (f / columns) * (kh + 1), left = (f % columns) * (kw + 1);
    for (std::size_t i = 0; i < kh; ++i) {
      for (std::size_t j = 0; j < kw; ++j) {
        const double v = hi > lo ? (weight(f, 0, i, j) - lo) / (hi - lo) : 0.5;
        pixels[(top + i) * width + left + j] = v;
      }
    }
  }
  std::ostringstream script;
  script << "set terminal pngcairo size 960,520 font 'DejaVu Sans,12'\n"
         << "set output " << examples::gnuplot_quote(path) << "\n"
         << "set title "
         << examples::gnuplot_quote(
                "The first convolution's 32 filters (3x3) after training\n"
                "each scaled to its own range: white = its largest weight, black = its smallest")
         << "\nset palette gray\nunset colorbox\nunset xtics\nunset ytics\nunset border\nset size "
            "ratio -1\n"
         << "set yrange [" << height << "-0.5:-0.5]\nset xrange [-0.5:" << width << "-0.5]\n"
         << "$filters << EOD\n";
  for (std::size_t i = 0; i < height; ++i) {
    for (std::size_t j = 0; j < width; ++j) script << (j ? " " : "") << pixels[i * width + j];
    script << "\n";
  }
  script << "EOD\nplot $filters matrix with image notitle\n";
  return examples::run_gnuplot(script.str());
}

int run(int argc, char** argv) {
  CLI::App app{
      "A convolutional network on Fashion-MNIST: conv, ReLU, max-pool (twice), dropout, two linear "
      "layers."};
  std::string folder = data::kFashionMnistFolder, weights = "fashion_cnn_weights.npz", out = ".";
  std::string filters_plot = "fashion_cnn_filters.png", accuracy_plot = "fashion_cnn_accuracy.png";
  int epochs = 5;
  std::size_t batch_size = 64, train_limit = 60000, test_limit = 10000;
  double learning_rate = 1e-3;
  std::uint64_t seed = 1;
  bool quick = false;
  bool distributed = false;
  examples::CheckpointSettings checkpointing;
  app.add_option("--data", folder, "folder of the four IDX files")->capture_default_str();
  app.add_option("--epochs", epochs, "passes over the training images")
      ->capture_default_str()
      ->transform(examples::whole(1, 1000));
  app.add_option("--batch-size", batch_size, "images per step")
      ->capture_default_str()
      ->transform(examples::whole(1, 60000));
  app.add_option("--lr", learning_rate, "Adam's learning rate")
      ->capture_default_str()
      ->check(examples::positive());
  app.add_option("--train-limit", train_limit, "use only this many training images")
      ->capture_default_str()
      ->transform(examples::whole(1, 60000));
  app.add_option("--test-limit", test_limit, "test on only this many test images")
      ->capture_default_str()
      ->transform(examples::whole(1, 10000));
  app.add_option("--seed", seed, "seed of the weights, the dropout masks and the batch order")
      ->transform(examples::seed_number())
      ->capture_default_str();
  app.add_option("--weights", weights,
                 ".npz file for the trained weights, PyTorch's names ('' for none)")
      ->capture_default_str();
  app.add_option("--filters-plot", filters_plot, "PNG of the first layer's filters ('' for none)")
      ->capture_default_str();
  app.add_option("--accuracy-plot", accuracy_plot,
                 "PNG of the test accuracy per epoch ('' for none)")
      ->capture_default_str();
  examples::add_checkpoint_options(app, checkpointing, "fashion_cnn_checkpoint.npz");
  examples::add_out_option(app, out, "--weights, --filters-plot, --accuracy-plot, --checkpoint");
  app.add_flag("--quick", quick, "one epoch on the first 20,000 training images (about 10 s)");
  app.add_flag(
      "--distributed", distributed,
      "data-parallel over MPI: start with mpirun -np N; --batch-size is the global batch, "
      "split evenly over the N ranks (the same steps as one process); rank 0 tests, prints "
      "and writes the files");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    epochs = 1;
    train_limit = std::min<std::size_t>(train_limit, 20000);
  }
  weights = examples::out_path(out, weights);
  filters_plot = examples::out_path(out, filters_plot);
  accuracy_plot = examples::out_path(out, accuracy_plot);
  checkpointing.file = examples::out_path(out, checkpointing.file);

  if (!data::fashion_mnist_available(folder)) {
    std::fprintf(stderr,
                 "Fashion-MNIST is not in %s.\nInstall Debian's package: apt-get install "
                 "dataset-fashion-mnist (or pass --data FOLDER with the four IDX files).\n",
                 folder.c_str());
    return 3;
  }
  if (!weights.empty() || !filters_plot.empty() || !accuracy_plot.empty() ||
      checkpointing.every != 0) {
    examples::make_out_folder(out);
  }
  const auto fashion = data::load_fashion_mnist<float>(folder);
  const std::size_t n_train = std::min(train_limit, fashion.train_labels.size());
  xt::xarray<float> train_labels = xt::xarray<float>::from_shape({n_train});
  for (std::size_t i = 0; i < n_train; ++i)
    train_labels(i) = static_cast<float>(fashion.train_labels[i]);
  const data::Dataset<float> train(as_images(fashion.train_images, n_train), train_labels);
  const std::size_t n_test = std::min(test_limit, fashion.test_labels.size());
  const auto test_images = as_images(fashion.test_images, n_test);
  const std::vector<std::size_t> test_labels(
      fashion.test_labels.begin(),
      fashion.test_labels.begin() + static_cast<std::ptrdiff_t>(n_test));
  data::DataLoader<float> loader(train, batch_size, data::LoaderOptions().seed(seed));

  Generator random(seed);
  const auto model = examples::fashion_cnn_network(random);
  optim::Adam<float> adam(model->parameters(), learning_rate);
  examples::DataParallelRun<float> parallel(distributed, *model, batch_size);
  // The dropout layer draws from `random`: other ranks get streams of their own, or every rank
  // would drop the same units of its rows.
  if (parallel.rank() > 0) random = Generator(seed + parallel.rank());
  if (parallel.leader())
    std::printf(
        "Fashion-MNIST: %zu training and %zu test images, float32, Adam lr %g, batch %zu\n%s\n",
        n_train, n_test, learning_rate, batch_size, nn::to_string(*model).c_str());

  std::vector<double> epoch_axis, accuracies;
  // --resume: the epoch in progress is drawn again (the same order) and its first steps skipped.
  io::Checkpoint<float> checkpoint(*model);
  // With --distributed: one file for all ranks (rank 0 writes it), holding each rank's
  // dropout stream and the sampler's place; every rank resumes from it.
  checkpoint.add_optimizer(adam);
  parallel.add_rank_generator(checkpoint, "weights_and_dropout", random);
  parallel.add_data_order(checkpoint, loader);
  const io::TrainingPosition resumed =
      examples::resume_if_asked(checkpoint, checkpointing, parallel.on());
  for (int epoch = static_cast<int>(resumed.epoch) + 1; epoch <= epochs; ++epoch) {
    model->train();
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0;
    std::size_t seen = 0, images = 0;  // images: all ranks'
    const auto batches = parallel.epoch(loader);
    std::size_t step = epoch == static_cast<int>(resumed.epoch) + 1 ? resumed.step : 0;
    while (step < batches.size()) {
      const auto& batch = batches[step];
      std::vector<std::size_t> labels(batch.targets.size());
      for (std::size_t i = 0; i < labels.size(); ++i)
        labels[i] = static_cast<std::size_t>(batch.targets(i));
      if (!labels.empty()) {  // --distributed: this rank's share of a short last batch can be empty
        Tape tape;
        const auto loss = nn::cross_entropy((*model)(Tensor<float>(batch.features)), labels);
        loss.backward();
        loss_sum += loss.item() * static_cast<double>(labels.size());
      }
      parallel.average_gradients(labels.size());
      adam.step();
      adam.zero_grad();
      seen += labels.size();
      images = std::min(n_train, images + batch_size);
      ++step;
      examples::checkpoint_if_due(checkpoint, checkpointing, epoch, step, batches.size(),
                                  parallel.on());
      if ((step % 20 == 0 || step == batches.size()) && parallel.leader()) {
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::fprintf(stderr, "\repoch %d %s %6zu/%zu  loss %.4f  %.0f images/s ", epoch,
                     progress_bar(images, n_train).c_str(), images, n_train,
                     loss_sum / static_cast<double>(seen), static_cast<double>(images) / seconds);
      }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!parallel.leader()) continue;  // rank 0 tests and prints; the others go on training
    std::fprintf(stderr, "\n");
    model->eval();
    const double test_accuracy = accuracy(predict(*model, test_images), test_labels);
    epoch_axis.push_back(epoch);
    accuracies.push_back(test_accuracy);
    seen = std::max<std::size_t>(seen, 1);  // (an epoch resumed after its last step)
    std::printf("epoch %d: train loss %.4f, %.1f s (%.0f images/s), test accuracy %.4f\n", epoch,
                loss_sum / static_cast<double>(seen), seconds,
                static_cast<double>(images) / seconds, test_accuracy);
  }
  if (!parallel.leader()) return 0;

  model->eval();
  const auto predicted = predict(*model, test_images);
  examples::print_confusion_matrix(test_labels, predicted);
  if (!filters_plot.empty() && examples::gnuplot_available()) {
    const auto& first = dynamic_cast<const nn::Conv2d<float>&>(*model->named_modules()[1].second);
    if (save_filters(first.weight().value(), filters_plot))
      std::printf("filters: %s\n", filters_plot.c_str());
  }
  if (!accuracy_plot.empty() && examples::gnuplot_available()) {
    examples::Plot plot;
    plot.title("Test accuracy after each epoch (" + std::to_string(n_test) +
               " test images, dropout off)")
        .labels("epoch", "test accuracy")
        .command("set xtics 1")
        .command("set grid")
        .command("set key bottom right")
        .add({"CNN, Adam 1e-3, batch 64", epoch_axis, accuracies, "linespoints pt 7"});
    if (plot.save(accuracy_plot)) std::printf("accuracy curve: %s\n", accuracy_plot.c_str());
  }
  if (!weights.empty()) {
    io::save_torch_state(*model, weights);
    std::printf(
        "weights: %s (PyTorch's state_dict names: torch.nn.Sequential(...).load_state_dict("
        "{k: torch.tensor(v) for k, v in numpy.load(\"%s\").items()}))\n",
        weights.c_str(), weights.c_str());
  }
  std::printf("test accuracy %.4f (%zu of %zu)\n", accuracy(predicted, test_labels),
              static_cast<std::size_t>(std::lround(accuracy(predicted, test_labels) *
                                                   static_cast<double>(predicted.size()))),
              predicted.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main_distributed(argc, argv, run); }
