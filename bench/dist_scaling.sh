#!/usr/bin/env bash
# Data-parallel scaling on this machine: bench_dist at -np 1 and -np 2 (one OpenBLAS thread per
# rank), the same global batch, and the throughput ratio (goal: >= 1.7x).
#   bash bench/dist_scaling.sh [BUILD_DIR] [bench_dist options, e.g. --model cnn --images 6400]
set -euo pipefail
build_dir="${1:-$(cd "$(dirname "$0")/.." && pwd)/build}"
shift || true
program="$build_dir/bench/bench_dist"
[ -x "$program" ] || { echo "dist_scaling.sh: $program not built (TAPEGRAD_BUILD_BENCHMARKS=ON, MPI)" >&2; exit 2; }
mpirun_sh="$(cd "$(dirname "$0")/.." && pwd)/tests/mpi/mpirun.sh"
declare -A rate
for np in 1 2; do
  echo "== mpirun -np $np"
  output="$(OPENBLAS_NUM_THREADS=1 sh "$mpirun_sh" mpirun "$np" "$program" "$@")"
  echo "$output"
  rate[$np]="$(echo "$output" | sed -n 's/^RESULT .*images_per_s=\([0-9.]*\).*/\1/p')"
done
awk -v one="${rate[1]}" -v two="${rate[2]}" \
  'BEGIN { printf "throughput -np 2 / -np 1: %.2fx (best epochs: %.0f and %.0f images/s)\n", two / one, two, one }'
