"""A demo's --checkpoint-every and --resume: a run of E + 1 epochs, against a run of E epochs
that writes checkpoints every K steps followed by a run resumed from its last checkpoint (in
the middle of epoch E) to the end of epoch E + 1. The final weights must be equal bit for bit.
E is 1, or given by --epochs-before E (2: the resume is in the second epoch, whose order
differs from a fresh loader's first).

    resume_demo.py [--epochs-before E] PROGRAM WORK_DIR K ARGS...
    resume_demo.py [--epochs-before E] --mpirun MPIRUN_SH MPIEXEC NP PROGRAM WORK_DIR K ARGS...

With --mpirun each run is a job of NP ranks (tests/mpi/mpirun.sh MPIEXEC NP PROGRAM ...), and
ARGS holds --distributed: rank 0 writes the checkpoint and the weights, every rank resumes.
"""
import os
import shutil
import subprocess
import sys

import numpy


def run(program, args):
    done = subprocess.run(program + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=1200)
    if done.returncode != 0:
        print("FAIL: %s %s exited with %d:\n%s%s" % (" ".join(program), " ".join(args), done.returncode,
                                                     done.stdout, done.stderr))
        sys.exit(1)
    return done.stdout


def main():
    arguments = sys.argv[1:]
    before = 1
    if arguments[0] == "--epochs-before":
        before = int(arguments[1])
        arguments = arguments[2:]
    launcher = []
    if arguments[0] == "--mpirun":
        launcher = ["sh"] + arguments[1:4]
        arguments = arguments[4:]
    program, work, every, args = launcher + [arguments[0]], arguments[1], arguments[2], arguments[3:]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    common = args + ["--out", work]
    total = str(before + 1)
    run(program, common + ["--epochs", total, "--weights", "uninterrupted.npz"])
    run(program, common + ["--epochs", str(before), "--weights", "first_epochs.npz",
                           "--checkpoint-every", every, "--checkpoint", "run.ckpt"])
    output = run(program, common + ["--epochs", total, "--weights", "resumed.npz",
                                    "--resume", os.path.join(work, "run.ckpt")])
    if launcher:
        # One file for all ranks: the sampler's place and the world size in it.
        with numpy.load(os.path.join(work, "run.ckpt")) as checkpoint:
            ranks = int(launcher[3])
            if int(checkpoint["checkpoint/world_size"]) != ranks or \
                    "sampler0/epochs_drawn" not in checkpoint.files:
                print("FAIL: the checkpoint is not of a %d-rank run: %s" % (ranks, checkpoint.files))
                sys.exit(1)
            print("the checkpoint holds world size %d, the sampler's place and %d per-rank members"
                  % (ranks, len([name for name in checkpoint.files if name.startswith("rank")])))
    resumed_line = [line for line in output.splitlines() if line.startswith("resumed from")]
    print(resumed_line[0] if resumed_line else "FAIL: no 'resumed from' line")
    if not resumed_line or ("epoch %d, after its step" % before) not in resumed_line[0] or \
            ("epoch %d, after its step 0" % before) in resumed_line[0]:
        sys.exit(1)
    with numpy.load(os.path.join(work, "uninterrupted.npz")) as a, \
            numpy.load(os.path.join(work, "resumed.npz")) as b:
        if sorted(a.files) != sorted(b.files):
            print("FAIL: different members %s and %s" % (a.files, b.files))
            sys.exit(1)
        for name in a.files:
            if a[name].tobytes() != b[name].tobytes():
                print("FAIL: %s differs (largest difference %g)" %
                      (name, numpy.max(numpy.abs(a[name] - b[name]))))
                sys.exit(1)
        print("the resumed run's %d weight arrays are bit-for-bit those of the uninterrupted run"
              % len(a.files))
    print("PASS")


if __name__ == "__main__":
    main()
