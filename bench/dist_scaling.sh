#!/usr/bin/env bash
# Data-parallel scaling on this machine: bench_dist at -np 1 and -np 2 (one OpenBLAS thread per
# rank), alternating for ROUNDS rounds (default 3; the machine's speed drifts), and the median
# throughput ratio (the issue's goal: >= 1.7x).
#   bash bench/dist_scaling.sh [BUILD_DIR] [bench_dist options, e.g. --model cnn --images 6400]
# --batch B is the global batch at both sizes (strong scaling); add --per-rank for B per rank
# (weak scaling). MPI_OPTIONS is passed to mpirun, e.g.
#   MPI_OPTIONS="--mca btl_vader_single_copy_mechanism none" bash bench/dist_scaling.sh
# (Open MPI's copy through shared memory instead of its default single copy, CMA; see
# docs/distributed.md for when that pays).
set -euo pipefail
build_dir="${1:-$(cd "$(dirname "$0")/.." && pwd)/build}"
shift || true
program="$build_dir/bench/bench_dist"
[ -x "$program" ] || { echo "dist_scaling.sh: $program not built (TAPEGRAD_BUILD_BENCHMARKS=ON, MPI)" >&2; exit 2; }
mpirun_sh="$(cd "$(dirname "$0")/.." && pwd)/tests/mpi/mpirun.sh"
rounds="${ROUNDS:-3}"
read -r -a mpi_options <<< "${MPI_OPTIONS:-}"
ones=() twos=() ratios=()
for round in $(seq "$rounds"); do
  for np in 1 2; do
    output="$(OPENBLAS_NUM_THREADS=1 sh "$mpirun_sh" mpirun "$np" "${mpi_options[@]}" "$program" "$@")"
    [ "$round" = 1 ] && echo "$output" | head -1
    result="$(echo "$output" | grep '^RESULT')"
    echo "round $round: $result"
    rate="$(echo "$result" | sed -n 's/.*images_per_s=\([0-9.]*\).*/\1/p')"
    if [ "$np" = 1 ]; then ones+=("$rate"); else twos+=("$rate"); fi
  done
  ratios+=("$(awk -v a="${ones[-1]}" -v b="${twos[-1]}" 'BEGIN { print b / a }')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
awk -v r="$(median "${ratios[@]}")" -v one="$(median "${ones[@]}")" -v two="$(median "${twos[@]}")" -v n="$rounds" \
  'BEGIN { printf "throughput -np 2 / -np 1: %.2fx, median of %d rounds (medians %.0f and %.0f images/s)\n", r, n, two, one }'
