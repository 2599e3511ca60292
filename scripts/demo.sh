#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo tour (every demo, one line each).
source "$(dirname "$0")/setup.sh"
bash "$repo/scripts/tour.sh" "$build_dir"
