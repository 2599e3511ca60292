// The training run of checkpoint_run.hpp as a program that checkpoints/kill_resume.py kills
// with SIGKILL and resumes. It prints one line per event, flushed at once, for the driver:
//   "checkpoint N"             a checkpoint after N steps is in the file
//   "paused before update N"   waiting (to be killed) in step N, before the optimizer's update
//   "paused in save N PATH"    waiting inside the save after step N, with the new checkpoint
//                              complete in the temporary file PATH but not yet renamed
//   "resumed after N"          restored from the file, N steps done
//   "done"                     the final parameters are written
//
//   checkpoint_trainer SETUP STEPS EVERY CHECKPOINT OUT [--resume] [--pause-before-update N]
//                      [--pause-in-save N]
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "checkpoint_run.hpp"
#include "tapegrad/io/atomic_file.hpp"

namespace {

std::size_t pause_in_save_after = 0;  // the step whose checkpoint's save pauses (0: none)
std::size_t current_step = 0;         // the step under way, or the last one done

void say(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

[[noreturn]] void wait_for_the_kill() {
  for (;;) ::pause();
}

void pause_before_rename(const std::string& temporary_path) {
  if (current_step == pause_in_save_after) {
    say("paused in save " + std::to_string(pause_in_save_after) + " " + temporary_path);
    wait_for_the_kill();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr,
                 "usage: %s SETUP STEPS EVERY CHECKPOINT OUT [--resume] "
                 "[--pause-before-update N] [--pause-in-save N]\n",
                 argv[0]);
    return 2;
  }
  const std::string setup = argv[1];
  const std::size_t steps = std::stoul(argv[2]), every = std::stoul(argv[3]);
  const std::string checkpoint = argv[4], out = argv[5];
  bool resume = false;
  std::size_t pause_before_update = 0;
  for (int i = 6; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--resume") {
      resume = true;
    } else if (flag == "--pause-before-update" && i + 1 < argc) {
      pause_before_update = std::stoul(argv[++i]);
    } else if (flag == "--pause-in-save" && i + 1 < argc) {
      pause_in_save_after = std::stoul(argv[++i]);
    } else {
      std::fprintf(stderr, "checkpoint_trainer: unknown argument '%s'\n", flag.c_str());
      return 2;
    }
  }
  try {
    test::CheckpointRun run(setup);
    if (resume) {
      run.resume(checkpoint);
      say("resumed after " + std::to_string(run.steps_done()));
    }
    run.before_update = [&](std::size_t step) {
      current_step = step;
      if (step == pause_before_update) {
        say("paused before update " + std::to_string(step));
        wait_for_the_kill();
      }
    };
    run.after_save = [](std::size_t done) { say("checkpoint " + std::to_string(done)); };
    tapegrad::io::detail::before_rename_hook = pause_before_rename;
    run.train(steps, every, checkpoint);
    tapegrad::io::save_state(run.model(), out);
    say("done");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "checkpoint_trainer: %s\n", error.what());
    return 1;
  }
  return 0;
}
