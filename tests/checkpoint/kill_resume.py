"""Kills checkpoint_trainer with SIGKILL and resumes it: the final parameters must be
bit-for-bit those of an uninterrupted run.

    kill_resume.py TRAINER WORK_DIR

For each setup (sgd: SGD with momentum and StepLR; adam: Adam with amsgrad and
CosineAnnealingLR; both with dropout and a shuffling loader), 200 steps, a checkpoint every
25 steps:
1. the uninterrupted run;
2. a run killed with SIGKILL in a random step k after the first checkpoint (paused after its
   backward pass, before the optimizer's update), then resumed from the file: it must resume
   after the last checkpoint before k and end with the same parameters, bit for bit;
3. (sgd) a run killed inside a save, after the new checkpoint is complete in its temporary
   file and before the rename: the previous checkpoint must still be in place, byte for byte,
   and resuming from it must end with the same parameters.
The random step comes from TAPEGRAD_KILL_SEED if set, else from the clock; it is printed.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy

STEPS, EVERY = 200, 25


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def run_to_end(trainer, args):
    done = subprocess.run([trainer] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=240)
    if done.returncode != 0 or not done.stdout.rstrip().endswith("done"):
        fail("%s exited with %d:\n%s%s" % (" ".join(args), done.returncode, done.stdout, done.stderr))
    return done.stdout


def run_and_kill(trainer, args, until, on_line=None):
    """Starts the trainer, reads its lines until one starts with `until`, then sends SIGKILL.
    Returns that line. on_line(line) sees every line before it."""
    process = subprocess.Popen([trainer] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
    try:
        for line in process.stdout:
            line = line.rstrip("\n")
            if line.startswith(until):
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=60)
                if process.returncode != -signal.SIGKILL:
                    fail("the trainer ended with %d, not by SIGKILL" % process.returncode)
                return line
            if on_line:
                on_line(line)
        process.wait(timeout=60)
        fail("the trainer ended (status %d) before '%s':\n%s" %
             (process.returncode, until, process.stderr.read()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def parameters(path):
    with numpy.load(path) as archive:
        return {name: archive[name].copy() for name in archive.files}


def check_same(reference_path, resumed_path, what):
    reference, resumed = parameters(reference_path), parameters(resumed_path)
    if sorted(reference) != sorted(resumed):
        fail("%s: different members %s and %s" % (what, sorted(reference), sorted(resumed)))
    for name in sorted(reference):
        a, b = reference[name], resumed[name]
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            difference = numpy.max(numpy.abs(a.astype(float) - b.astype(float)))
            fail("%s: %s differs from the uninterrupted run (largest difference %g)" %
                 (what, name, difference))
    print("%s: all %d arrays bit-for-bit equal to the uninterrupted run (%d elements)" %
          (what, len(reference), sum(a.size for a in reference.values())))


def resumed_after(output):
    first = output.splitlines()[0]
    if not first.startswith("resumed after "):
        fail("the resumed run did not say where it resumed: %r" % first)
    return int(first.split()[-1])


def main():
    trainer, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    seed = int(os.environ.get("TAPEGRAD_KILL_SEED", int(time.time() * 1000) % 1000000))
    print("kill seed %d (TAPEGRAD_KILL_SEED=%d repeats this run)" % (seed, seed))
    choose = random.Random(seed)

    for setup in ("sgd", "adam"):
        full_out = os.path.join(work, setup + "_full.npz")
        run_to_end(trainer, [setup, str(STEPS), str(EVERY), os.path.join(work, setup + "_full.ckpt"),
                             full_out])

        # Killed in a random step after the first checkpoint, then resumed.
        checkpoint = os.path.join(work, setup + ".ckpt")
        kill_step = choose.randint(EVERY + 1, STEPS)
        line = run_and_kill(trainer, [setup, str(STEPS), str(EVERY), checkpoint,
                                      os.path.join(work, "unused.npz"),
                                      "--pause-before-update", str(kill_step)],
                            "paused before update")
        print("%s: killed with SIGKILL at '%s'" % (setup, line))
        resumed_out = os.path.join(work, setup + "_resumed.npz")
        output = run_to_end(trainer, [setup, str(STEPS), str(EVERY), checkpoint, resumed_out, "--resume"])
        expected = (kill_step - 1) // EVERY * EVERY
        if resumed_after(output) != expected:
            fail("%s: resumed after %d steps, expected the checkpoint of step %d" %
                 (setup, resumed_after(output), expected))
        check_same(full_out, resumed_out, "%s, killed in step %d, resumed after %d" %
                   (setup, kill_step, expected))

    # Killed inside the save of step 75: the checkpoint of step 50 must survive, whole.
    setup, checkpoint = "sgd", os.path.join(work, "save_kill.ckpt")
    copy_of_50 = os.path.join(work, "save_kill_50.ckpt")

    def keep_the_checkpoint_of_50(line):
        if line == "checkpoint 50":
            shutil.copyfile(checkpoint, copy_of_50)  # no rename happens before the kill

    line = run_and_kill(trainer, [setup, str(STEPS), str(EVERY), checkpoint,
                                  os.path.join(work, "unused.npz"), "--pause-in-save", "75"],
                        "paused in save", keep_the_checkpoint_of_50)
    temporary = line.split(" ", 4)[4]
    if not os.path.exists(temporary):
        fail("the temporary file %s of the interrupted save is gone" % temporary)
    with open(checkpoint, "rb") as a, open(copy_of_50, "rb") as b:
        if a.read() != b.read():
            fail("the checkpoint file changed during the interrupted save")
    with numpy.load(checkpoint) as archive:
        epoch, step = int(archive["checkpoint/epoch"]), int(archive["checkpoint/step"])
    print("killed inside the save of step 75 (temporary file %s left): the checkpoint file is "
          "unchanged, epoch %d step %d" % (os.path.basename(temporary), epoch, step))
    resumed_out = os.path.join(work, "save_kill_resumed.npz")
    output = run_to_end(trainer, [setup, str(STEPS), str(EVERY), checkpoint, resumed_out, "--resume"])
    if resumed_after(output) != 50:
        fail("resumed after %d steps, expected 50" % resumed_after(output))
    check_same(os.path.join(work, "sgd_full.npz"), resumed_out, "sgd, killed inside a save")
    print("PASS")


if __name__ == "__main__":
    main()
