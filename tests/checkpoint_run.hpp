// A small float64 training run holding everything a checkpoint saves: parameters and
// BatchNorm buffers, an optimizer with moments and step counts, a learning-rate schedule, a
// dropout generator and a shuffling data loader. Shared by test_checkpoint.cpp (in one
// process) and checkpoint_trainer.cpp (killed and resumed by checkpoint/kill_resume.py).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "tapegrad/tapegrad.hpp"

namespace test {

/// The run's setups: "sgd" (SGD with momentum 0.9 and weight decay, StepLR every 3 epochs)
/// and "adam" (Adam with amsgrad, CosineAnnealingLR over 20 epochs); both train
/// Linear(6, 12) - BatchNorm1d - ReLU - Dropout(0.2) - Linear(12, 3) with softmax
/// cross-entropy on 64 samples in batches of 10 (7 per epoch, the last of 4).
class CheckpointRun {
 public:
  explicit CheckpointRun(const std::string& setup)
      : init_random_(11),
        dropout_random_(12),
        loader_(tapegrad::data::make_classification(tapegrad::data::ClassificationOptions()
                                                        .samples(64)
                                                        .features(6)
                                                        .informative(3)
                                                        .classes(3)
                                                        .seed(5)),
                10, tapegrad::data::LoaderOptions().seed(13)),
        checkpoint_(model_) {
    using namespace tapegrad;
    const auto linear = nn::LinearOptions().generator(init_random_);
    model_.push_back(std::make_shared<nn::Linear<double>>(6, 12, linear));
    model_.push_back(std::make_shared<nn::BatchNorm1d<double>>(12));
    model_.push_back(std::make_shared<nn::ReLU<double>>());
    model_.push_back(std::make_shared<nn::Dropout<double>>(0.2, dropout_random_));
    model_.push_back(std::make_shared<nn::Linear<double>>(12, 3, linear));
    if (setup == "adam") {
      auto adam = std::make_unique<optim::Adam<double>>(
          model_.parameters(), 0.02, optim::AdamOptions().amsgrad(true).weight_decay(1e-3));
      schedule_ = std::make_unique<optim::CosineAnnealingLR>(*adam, 20, 1e-4);
      optimizer_ = std::move(adam);
    } else if (setup == "sgd") {
      auto sgd = std::make_unique<optim::SGD<double>>(
          model_.parameters(), 0.05, optim::SGDOptions().momentum(0.9).weight_decay(1e-4));
      schedule_ = std::make_unique<optim::StepLR>(*sgd, 3, 0.5);
      optimizer_ = std::move(sgd);
    } else {
      throw ValueError("CheckpointRun: unknown setup '" + setup + "'; expected sgd or adam");
    }
    checkpoint_.add_optimizer(*optimizer_)
        .add_scheduler(*schedule_)
        .add_generator("init", init_random_)
        .add_generator("dropout", dropout_random_)
        .add_loader(loader_);
  }

  /// Called with the number of the step about to update the parameters (from 1), after its
  /// backward pass and before optimizer.step(); the trainer pauses there to be killed.
  std::function<void(std::size_t)> before_update;
  /// Called with the number of steps done after each checkpoint is written.
  std::function<void(std::size_t)> after_save;

  /// Restores the run from a checkpoint file; train() then continues from its position.
  void resume(const std::string& path) { start_ = checkpoint_.load(path); }
  /// The number of steps the run has done (after resume(): those the checkpoint had done).
  std::size_t steps_done() const {
    return start_.epoch * loader_.batches_per_epoch() + start_.step;
  }

  /// Trains until `steps` steps in all, saving a checkpoint to `path` after every `every`-th
  /// step (every 0: never). The schedule steps at the end of each whole epoch.
  void train(std::size_t steps, std::size_t every = 0, const std::string& path = "") {
    using namespace tapegrad;
    std::size_t done = steps_done();
    for (std::size_t epoch = start_.epoch; done < steps; ++epoch) {
      const auto batches = loader_.epoch();
      std::size_t s = epoch == start_.epoch ? start_.step : 0;
      for (; s < batches.size() && done < steps; ++s) {
        std::vector<std::size_t> labels(batches[s].targets.size());
        for (std::size_t i = 0; i < labels.size(); ++i) {
          labels[i] = static_cast<std::size_t>(batches[s].targets(i));
        }
        {
          Tape tape;
          nn::cross_entropy(model_(Tensor<double>(batches[s].features)), labels).backward();
        }
        if (before_update) before_update(done + 1);
        optimizer_->step();
        optimizer_->zero_grad();
        ++done;
        if (every != 0 && done % every == 0) {
          checkpoint_.save(path, {epoch, s + 1});
          if (after_save) after_save(done);
        }
      }
      if (s == batches.size()) step_schedule();
    }
    start_ = {0, 0};
  }

  /// The model: its parameters are the run's result.
  tapegrad::nn::Sequential<double>& model() { return model_; }
  /// The optimizer.
  tapegrad::optim::Optimizer<double>& optimizer() { return *optimizer_; }
  /// The checkpoint over all of the run's parts.
  tapegrad::io::Checkpoint<double>& checkpoint() { return checkpoint_; }

 private:
  void step_schedule() {
    if (auto* step = dynamic_cast<tapegrad::optim::StepLR*>(schedule_.get())) step->step();
    if (auto* cosine = dynamic_cast<tapegrad::optim::CosineAnnealingLR*>(schedule_.get()))
      cosine->step();
  }

  tapegrad::Generator init_random_, dropout_random_;
  tapegrad::data::DataLoader<double> loader_;
  tapegrad::nn::Sequential<double> model_;
  std::unique_ptr<tapegrad::optim::Optimizer<double>> optimizer_;
  std::unique_ptr<tapegrad::optim::LRScheduler> schedule_;
  tapegrad::io::Checkpoint<double> checkpoint_;
  tapegrad::io::TrainingPosition start_;
};

}  // namespace test
