// --checkpoint-every K, --checkpoint FILE and --resume FILE for the long demos: a checkpoint
// (io::Checkpoint) every K steps, and a run that continues from one exactly where the
// interrupted run stopped. With --distributed every rank takes part (dist::save_checkpoint:
// rank 0 writes the one file; dist::load_checkpoint: every rank reads it).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "cli.hpp"
#include "tapegrad/io/checkpoint.hpp"
#ifdef TAPEGRAD_HAVE_MPI
#include "tapegrad/dist/checkpoint.hpp"
#endif

namespace examples {

/// What the three options asked for.
struct CheckpointSettings {
  std::size_t every = 0;  ///< steps between checkpoints; 0: none
  std::string file;       ///< where checkpoints go (inside --out when relative)
  std::string resume;     ///< the checkpoint to continue from; "": a fresh run
};

/// Adds --checkpoint-every, --checkpoint (default `default_file`) and --resume to `app`.
inline void add_checkpoint_options(CLI::App& app, CheckpointSettings& settings,
                                   const std::string& default_file) {
  settings.file = default_file;
  app.add_option("--checkpoint-every", settings.every,
                 "write a checkpoint every K steps (0: never)")
      ->capture_default_str()
      ->transform(whole(0, 1000000000));
  app.add_option("--checkpoint", settings.file, "the checkpoint file --checkpoint-every writes")
      ->capture_default_str();
  app.add_option(
         "--resume", settings.resume,
         "continue the run saved in this checkpoint (same options, same --seed): the weights, "
         "the optimizer's moments, the random generators and the place in the batch order")
      ->check(CLI::ExistingFile);
}

/// Restores the run from settings.resume when one was given and says where it continues
/// (rank 0 says it); returns the position to continue from ({0, 0} for a fresh run).
/// `distributed`: every rank of the --distributed run calls this and reads the file.
template <class T>
tapegrad::io::TrainingPosition resume_if_asked(tapegrad::io::Checkpoint<T>& checkpoint,
                                               const CheckpointSettings& settings,
                                               bool distributed = false) {
  if (settings.resume.empty()) return {};
  tapegrad::io::TrainingPosition position;
  if (distributed) {
#ifdef TAPEGRAD_HAVE_MPI
    position = tapegrad::dist::load_checkpoint(checkpoint, settings.resume);
#else
    throw std::invalid_argument("--distributed: this build has no MPI");
#endif
  } else {
    position = checkpoint.load(settings.resume);
  }
  if (checkpoint.rank() == 0) {
    std::printf("resumed from %s: epoch %zu, after its step %zu\n", settings.resume.c_str(),
                position.epoch + 1, position.step);
  }
  return position;
}

/// Writes a checkpoint when the steps done in all epochs together are a multiple of
/// settings.every: `step` batches of epoch `epoch` (from 1) done, `steps_per_epoch` in each.
/// `distributed`: every rank of the --distributed run calls this at every step, and rank 0
/// writes the file.
template <class T>
void checkpoint_if_due(const tapegrad::io::Checkpoint<T>& checkpoint,
                       const CheckpointSettings& settings, int epoch, std::size_t step,
                       std::size_t steps_per_epoch, bool distributed = false) {
  const auto epochs_done = static_cast<std::size_t>(epoch - 1);
  if (settings.every == 0 || (epochs_done * steps_per_epoch + step) % settings.every != 0) return;
  if (distributed) {
#ifdef TAPEGRAD_HAVE_MPI
    tapegrad::dist::save_checkpoint(checkpoint, settings.file, {epochs_done, step});
#else
    throw std::invalid_argument("--distributed: this build has no MPI");
#endif
  } else {
    checkpoint.save(settings.file, {epochs_done, step});
  }
}

}  // namespace examples
