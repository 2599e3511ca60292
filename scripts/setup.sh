# Sourced by scripts/demo.sh and scripts/test.sh: installs the Debian packages that are
# missing (only those, so a second run installs nothing) and builds incrementally in build/.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${TAPEGRAD_BUILD_DIR:-$repo/build}"

packages=(cmake g++ make libxtensor-dev libxtensor-blas-dev libopenblas-dev doctest-dev
          libxsimd-dev libcli11-dev libzip-dev zlib1g-dev pkg-config
          gnuplot-nox python3-numpy dataset-fashion-mnist doxygen
          libopenmpi-dev openmpi-bin clang-format git)

install_missing_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build_project() {
  if [ ! -f "$build_dir/CMakeCache.txt" ]; then
    cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
  fi
  cmake --build "$build_dir" -j "$(nproc)"
}

install_missing_packages
build_project
