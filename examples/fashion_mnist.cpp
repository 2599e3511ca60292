// An MLP on Fashion-MNIST (Debian's dataset-fashion-mnist) with mini-batches and
// softmax cross-entropy; progress per epoch, test accuracy, a confusion matrix, and the
// trained weights saved to .npz (NumPy reads them).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "common/checkpointing.hpp"
#include "common/cli.hpp"
#include "common/confusion.hpp"
#include "common/distributed.hpp"
#include "common/output.hpp"
#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;

namespace {

// The predicted class of each row of scores.
std::vector<std::size_t> predictions(const xt::xarray<float>& scores) {
  std::vector<std::size_t> out(scores.shape()[0]);
  const std::size_t classes = scores.shape()[1];
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::size_t best = 0;
    for (std::size_t c = 1; c < classes; ++c) {
      if (scores(i, c) > scores(i, best)) best = c;
    }
    out[i] = best;
  }
  return out;
}

}  // namespace

namespace {

int run(int argc, char** argv) {
  CLI::App app{"An MLP on Fashion-MNIST with mini-batches and softmax cross-entropy."};
  std::string folder = data::kFashionMnistFolder, hidden_text = "100",
              weights = "fashion_mnist_weights.npz";
  std::string out = ".";
  std::string optimizer_name = "sgd";
  int epochs = 10;
  std::size_t batch_size = 64, train_limit = 60000;
  double learning_rate = 0.1;
  std::uint64_t seed = 1;
  bool quick = false;
  bool compiled = false;
  bool distributed = false;
  examples::CheckpointSettings checkpointing;
  app.add_option("--data", folder, "folder of the four IDX files")->capture_default_str();
  app.add_option("--hidden", hidden_text, "hidden layer sizes, e.g. 256,128,100")
      ->capture_default_str();
  app.add_option("--epochs", epochs, "passes over the training images")
      ->capture_default_str()
      ->transform(examples::whole(1, 1000));
  app.add_option("--batch-size", batch_size, "images per step")
      ->capture_default_str()
      ->transform(examples::whole(1, 60000));
  app.add_option("--lr", learning_rate, "learning rate")
      ->capture_default_str()
      ->check(examples::positive());
  app.add_option("--optimizer", optimizer_name, "sgd, momentum (0.9) or adam")
      ->capture_default_str()
      ->check(CLI::IsMember({"sgd", "momentum", "adam"}));
  app.add_option("--train-limit", train_limit, "use only this many training images")
      ->capture_default_str()
      ->transform(examples::whole(1, 60000));
  app.add_option("--seed", seed, "seed of the weights and the batch order")
      ->transform(examples::seed_number())
      ->capture_default_str();
  app.add_option("--weights", weights, ".npz file for the trained weights ('' for none)")
      ->capture_default_str();
  examples::add_checkpoint_options(app, checkpointing, "fashion_mnist_checkpoint.npz");
  examples::add_out_option(app, out, "--weights, --checkpoint");
  app.add_flag("--quick", quick, "one epoch (a few seconds with the data loading)");
  app.add_flag("--compiled", compiled,
               "record the training step once per batch size and replay it (tapegrad::compile); "
               "the same numbers");
  app.add_flag("--distributed", distributed,
               "data-parallel over MPI: start with mpirun -np N; --batch-size is the global batch, "
               "split evenly over the N ranks (the same steps as one process); rank 0 prints and "
               "writes the weights");
  CLI11_PARSE(app, argc, argv);
  weights = examples::out_path(out, weights);
  checkpointing.file = examples::out_path(out, checkpointing.file);
  if (quick) epochs = 1;
  // The hidden sizes are checked before the data is read (no hidden layer: softmax regression).
  const auto hidden = examples::parse_sizes(hidden_text, "--hidden", 100000, 0);

  if (!data::fashion_mnist_available(folder)) {
    std::fprintf(stderr,
                 "Fashion-MNIST is not in %s.\nInstall Debian's package: apt-get install "
                 "dataset-fashion-mnist (or pass --data FOLDER with the four IDX files).\n",
                 folder.c_str());
    return 3;
  }
  if (!weights.empty() || checkpointing.every != 0) examples::make_out_folder(out);
  const auto fashion = data::load_fashion_mnist<float>(folder);
  const std::size_t n_train = std::min(train_limit, fashion.train_labels.size());
  xt::xarray<float> train_labels = xt::xarray<float>::from_shape({n_train});
  for (std::size_t i = 0; i < n_train; ++i)
    train_labels(i) = static_cast<float>(fashion.train_labels[i]);
  xt::xarray<float> train_images = xt::xarray<float>::from_shape({n_train, std::size_t{784}});
  std::copy_n(fashion.train_images.data(), n_train * 784, train_images.data());
  const data::Dataset<float> train(std::move(train_images), train_labels);
  data::DataLoader<float> loader(train, batch_size, data::LoaderOptions().seed(seed));

  std::vector<std::size_t> sizes{784};
  for (auto h : hidden) sizes.push_back(h);
  sizes.push_back(10);
  Generator random(seed);
  nn::MLP<float> model(
      sizes, nn::Activation::ReLU,
      nn::MLPOptions()
          .output_activation(nn::Activation::Identity)
          .linear(nn::LinearOptions().weight_init(nn::Init::he_uniform()).generator(random)));
  std::unique_ptr<optim::Optimizer<float>> optimizer;
  if (optimizer_name == "adam") {
    optimizer = std::make_unique<optim::Adam<float>>(model.parameters(), learning_rate);
  } else {
    optimizer = std::make_unique<optim::SGD<float>>(
        model.parameters(), learning_rate,
        optim::SGDOptions().momentum(optimizer_name == "momentum" ? 0.9 : 0.0));
  }
  examples::DataParallelRun<float> parallel(distributed, model, batch_size);
  if (parallel.leader()) {
    std::printf("Fashion-MNIST: %zu training and %zu test images; MLP", n_train,
                fashion.test_labels.size());
    for (std::size_t s = 0; s < sizes.size(); ++s) std::printf("%s%zu", s ? "-" : " ", sizes[s]);
    std::printf(" (ReLU), float32, softmax cross-entropy, %s lr %g, batch %zu",
                optimizer_name.c_str(), learning_rate, batch_size);
    if (parallel.on())
      std::printf(" (%zu ranks x %zu)", parallel.world(), batch_size / parallel.world());
    std::printf("\n");
  }

  // With --compiled: one recorded step per batch size (the last batch of an epoch may be
  // smaller), each reading its own input tensors.
  struct CompiledStep {
    Tensor<float> features, targets;
    std::unique_ptr<Compiled<float>> run;
  };
  std::map<std::size_t, std::unique_ptr<CompiledStep>> compiled_steps;
  // --resume: the epoch in progress is drawn again (the same order) and its first steps skipped.
  io::Checkpoint<float> checkpoint(model);
  // With --distributed: one file for all ranks (rank 0 writes it) holding the sampler's
  // place; every rank resumes from it.
  checkpoint.add_optimizer(*optimizer).add_generator("init", random);
  parallel.add_data_order(checkpoint, loader);
  const io::TrainingPosition resumed =
      examples::resume_if_asked(checkpoint, checkpointing, parallel.on());
  for (int epoch = static_cast<int>(resumed.epoch) + 1; epoch <= epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0;
    const double communication_start = parallel.communication_seconds();
    std::size_t seen = 0, images = 0;  // images: all ranks'
    const auto batches = parallel.epoch(loader);
    std::size_t step = epoch == static_cast<int>(resumed.epoch) + 1 ? resumed.step : 0;
    while (step < batches.size()) {
      const auto& batch = batches[step];
      std::vector<std::size_t> labels(batch.targets.size());
      for (std::size_t i = 0; i < labels.size(); ++i)
        labels[i] = static_cast<std::size_t>(batch.targets(i));
      if (labels.empty()) {
        // --distributed: this rank's share of a short last batch can be empty.
      } else if (compiled) {
        // The batch goes into the step's own input tensors; the labels as a one-hot tensor,
        // which a compiled step reads anew (a label list would be a constant of the step).
        xt::xarray<float> one_hot = xt::zeros<float>({labels.size(), std::size_t{10}});
        for (std::size_t i = 0; i < labels.size(); ++i) one_hot(i, labels[i]) = 1.0f;
        auto& step = compiled_steps[labels.size()];
        if (!step) {
          step = std::make_unique<CompiledStep>();
          step->features = Tensor<float>(batch.features);
          step->targets = Tensor<float>(one_hot);
          CompiledStep& s = *step;
          s.run = std::make_unique<Compiled<float>>(compile(model.parameters(), [&model, &s] {
            return nn::cross_entropy_with_probabilities(model(s.features), s.targets);
          }));
        } else {
          step->features.set_value(batch.features);
          step->targets.set_value(std::move(one_hot));
        }
        loss_sum += static_cast<double>(step->run->run()) * static_cast<double>(labels.size());
      } else {
        Tape tape;
        const auto loss = nn::cross_entropy(model(Tensor<float>(batch.features)), labels);
        loss.backward();
        loss_sum += loss.item() * static_cast<double>(labels.size());
      }
      parallel.average_gradients(labels.size());
      optimizer->step();
      optimizer->zero_grad();
      seen += labels.size();
      images = std::min(n_train, images + batch_size);
      ++step;
      examples::checkpoint_if_due(checkpoint, checkpointing, epoch, step, batches.size(),
                                  parallel.on());
      if ((step % 50 == 0 || step == batches.size()) && parallel.leader()) {
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::fprintf(stderr, "\repoch %d: %6zu/%zu images  loss %.4f  %.0f images/s ", epoch,
                     images, n_train, loss_sum / static_cast<double>(seen),
                     static_cast<double>(images) / seconds);
      }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!parallel.leader()) continue;  // rank 0 tests and prints; the others go on training
    std::fprintf(stderr, "\n");
    NoGradGuard no_grad;
    const auto predicted = predictions(model(Tensor<float>(fashion.test_images)).value());
    std::size_t correct = 0;
    for (std::size_t i = 0; i < predicted.size(); ++i)
      correct += predicted[i] == fashion.test_labels[i];
    seen = std::max<std::size_t>(seen, 1);  // (an epoch resumed after its last step)
    std::printf("epoch %d: train loss %.4f, %.1f s (%.0f images/s), test accuracy %.4f\n", epoch,
                loss_sum / static_cast<double>(seen), seconds,
                static_cast<double>(images) / seconds,
                static_cast<double>(correct) / static_cast<double>(predicted.size()));
    if (parallel.on()) {
      std::printf(
          "  rank 0: %.2f s of the epoch's steps in MPI_Allreduce (train loss: rank 0's share)\n",
          parallel.communication_seconds() - communication_start);
    }
  }
  if (!parallel.leader()) return 0;

  NoGradGuard no_grad;
  const auto predicted = predictions(model(Tensor<float>(fashion.test_images)).value());
  std::size_t correct = 0;
  for (std::size_t i = 0; i < predicted.size(); ++i)
    correct += predicted[i] == fashion.test_labels[i];
  examples::print_confusion_matrix(fashion.test_labels, predicted);
  std::printf("test accuracy %.4f (%zu of %zu)\n",
              static_cast<double>(correct) / static_cast<double>(predicted.size()), correct,
              predicted.size());
  if (!weights.empty()) {
    io::save_state(model, weights);
    std::printf("weights: %s (numpy.load(\"%s\")[\"0.weight\"] is the first layer)\n",
                weights.c_str(), weights.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main_distributed(argc, argv, run); }
