// XOR learned by a 2-10-1 sigmoid network with full-batch gradient descent, as in the
// BP-network article ("BP神经网络").
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "common/cli.hpp"
#include "common/output.hpp"
#include "common/plot.hpp"
#include "common/xor_network.hpp"

namespace {

int run(int argc, char** argv) {
  CLI::App app{"Learn XOR with a 2-10-1 sigmoid network; every gradient comes from the tape."};
  long epochs = 100001;
  double learning_rate = 0.1;
  std::uint64_t seed = 1;
  long every = 5000;
  bool quick = false;
  bool compiled = false;
  std::string plot = "xor_loss.png", out = ".";
  app.add_option("--epochs", epochs, "full-batch epochs")
      ->capture_default_str()
      ->transform(examples::whole(1, 1000000000));
  app.add_option("--lr", learning_rate, "learning rate")
      ->capture_default_str()
      ->check(examples::positive());
  app.add_option("--seed", seed, "seed of the initial weights")
      ->transform(examples::seed_number())
      ->capture_default_str();
  app.add_option("--every", every, "print the loss every this many epochs")
      ->capture_default_str()
      ->transform(examples::whole(1, 1000000000));
  app.add_flag("--quick", quick, "a short run (20001 epochs) for smoke tests");
  app.add_flag("--compiled", compiled,
               "record the training step once and replay it (tapegrad::compile) instead of "
               "recording every epoch; the same numbers, faster");
  app.add_option("--plot", plot, "PNG of the loss against epochs ('' for none)")
      ->capture_default_str();
  examples::add_out_option(app, out, "--plot");
  CLI11_PARSE(app, argc, argv);
  plot = examples::out_path(out, plot);
  if (!plot.empty()) examples::make_out_folder(out);
  if (quick) epochs = std::min(epochs, 20001L);

  std::printf("XOR, 2-10-1 sigmoid network: lr %g, %ld full-batch epochs, seed %llu\n",
              learning_rate, epochs, static_cast<unsigned long long>(seed));
  examples::XorNetwork<double> net(seed, learning_rate);
  // The step recorded once: forward, loss and the backward pass, replayed on the current
  // weights by run() (see docs/compile.md).
  std::optional<tapegrad::Compiled<double>> step;
  if (compiled)
    step = tapegrad::compile(net.model.parameters(), [&] { return net.loss(net.forward()); });
  std::vector<double> loss_epochs, losses;
  double training_seconds = 0;
  for (long epoch = 0; epoch < epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    if (step) {
      step->run();
      net.optimizer.step();
      net.optimizer.zero_grad();
    } else {
      net.train_epoch();
    }
    training_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (epoch % every == 0) {  // the loss after this epoch's update, as the article prints it
      tapegrad::NoGradGuard no_grad;
      const double loss = net.loss(net.forward()).item();
      std::printf("epochs: %6ld loss: %.10g\n", epoch, loss);
      loss_epochs.push_back(static_cast<double>(epoch));
      losses.push_back(loss);
    }
  }

  std::printf("training time: %.3f s for %ld epochs (%s)\n", training_seconds, epochs,
              compiled ? "compiled step, replayed" : "eager: recorded every epoch");
  tapegrad::NoGradGuard no_grad;
  const auto outputs = net.forward();
  const double final_loss = net.loss(outputs).item();
  std::printf("output:\n");
  std::string predictions;
  bool learned = true;
  for (std::size_t i = 0; i < 4; ++i) {
    const double y = outputs.value()(i, 0);
    const int predicted = y >= 0.5 ? 1 : 0;  // the article's threshold
    learned = learned && predicted == static_cast<int>(net.targets.value()(i, 0));
    predictions += " " + std::to_string(predicted);
    std::printf("  %g xor %g -> %.8f\n", net.inputs.value()(i, 0), net.inputs.value()(i, 1), y);
  }
  std::printf("predictions:%s\n", predictions.c_str());
  std::printf("final loss %.6g: %s\n", final_loss,
              learned ? "the network learned XOR"
                      : "the network did NOT learn XOR (stuck, e.g. in a local minimum "
                        "for this seed; try another --seed or more --epochs)");
  if (!plot.empty() &&
      examples::Plot()
          .title("XOR, 2-10-1 sigmoid network: loss E = sum((T - Y)^{2}) / 2N")
          .labels("epoch", "loss")
          .log_y()
          .add({"loss", loss_epochs, losses, "linespoints pt 7 ps 0.6 lc rgb '#1060d0'"})
          .save(plot)) {
    std::printf("plot: %s\n", plot.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
