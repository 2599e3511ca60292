#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
source "$(dirname "$0")/setup.sh"
ctest --test-dir "$build_dir" --output-on-failure
