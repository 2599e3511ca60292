#!/usr/bin/env bash
# The test suite under sanitizers; any finding fails the run.
#   asan: the library and the suite with AddressSanitizer + UndefinedBehaviorSanitizer
#         (LeakSanitizer on) in build-asan/, all ctest entries but the packaging checks;
#   tsan: the library and tapegrad_tests with ThreadSanitizer in build-tsan/, running the
#         test cases that start threads (their names contain "thread").
# `bash scripts/sanitize.sh` runs both; `bash scripts/sanitize.sh tsan` (or asan) one.
source "$(dirname "$0")/setup.sh"
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(asan tsan)

run_asan() {
  local asan_dir="${TAPEGRAD_ASAN_DIR:-$repo/build-asan}"
  if [ ! -f "$asan_dir/CMakeCache.txt" ]; then
    cmake -S "$repo" -B "$asan_dir" -DCMAKE_BUILD_TYPE=Debug -DTAPEGRAD_BUILD_BENCHMARKS=OFF \
      -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
  fi
  cmake --build "$asan_dir" -j "$(nproc)"
  # (the consumer and documentation tests build programs of their own without the
  # sanitizers, against the sanitized library: they are packaging checks, run by the normal
  # test command)
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$asan_dir" --output-on-failure -E "consumer_project|docs_"
}

run_tsan() {
  local tsan_dir="${TAPEGRAD_TSAN_DIR:-$repo/build-tsan}"
  if [ ! -f "$tsan_dir/CMakeCache.txt" ]; then
    # -O1: TSan's advice, and much faster than -O0 over xtensor.
    cmake -S "$repo" -B "$tsan_dir" -DCMAKE_BUILD_TYPE=Debug -DTAPEGRAD_BUILD_EXAMPLES=OFF \
      -DTAPEGRAD_BUILD_BENCHMARKS=OFF -DCMAKE_CXX_FLAGS="-fsanitize=thread -O1 -fno-omit-frame-pointer"
  fi
  cmake --build "$tsan_dir" -j "$(nproc)" --target tapegrad_tests
  # OpenBLAS is not instrumented: one BLAS thread, so that it starts no pool of its own.
  OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    "$tsan_dir/tests/tapegrad_tests" --test-case='*thread*' --test-case-exclude='set_blas_threads*' \
    --test-suite-exclude=numpy,fashion
}

for stage in "${stages[@]}"; do
  case "$stage" in
    asan) run_asan ;;
    tsan) run_tsan ;;
    *) echo "sanitize.sh: unknown stage '$stage'; expected asan or tsan" >&2; exit 2 ;;
  esac
done
