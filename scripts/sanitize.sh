#!/usr/bin/env bash
# Builds the library and the test suite with AddressSanitizer + UndefinedBehaviorSanitizer
# (LeakSanitizer on) in build-asan/ and runs them. Any finding fails the run.
source "$(dirname "$0")/setup.sh"
asan_dir="${TAPEGRAD_ASAN_DIR:-$repo/build-asan}"
if [ ! -f "$asan_dir/CMakeCache.txt" ]; then
  cmake -S "$repo" -B "$asan_dir" -DCMAKE_BUILD_TYPE=Debug -DTAPEGRAD_BUILD_BENCHMARKS=OFF \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
fi
cmake --build "$asan_dir" -j "$(nproc)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$asan_dir" --output-on-failure -E "consumer_project|docs_"
# (the consumer and documentation tests build programs of their own without the sanitizers,
# against the sanitized library: they are packaging checks, run by the normal test command)
