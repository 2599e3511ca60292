#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main demo (XOR learned from the tape).
source "$(dirname "$0")/setup.sh"
"$build_dir/examples/xor" "$@"
