#!/usr/bin/env bash
# Runs every demo with its default settings, prints one line of result for each, and says
# where the pictures and the full outputs went. Usage: tour.sh BUILD_DIR [OUTPUT_DIR]
# (default BUILD_DIR/tour). Every demo that writes files (pictures, .dot, .npz) is given
# --out OUTPUT_DIR, so the tour writes nothing anywhere else.
set -euo pipefail
build_dir="$(cd "$1" && pwd)"
out="${2:-$build_dir/tour}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
writes_files=" xor manual_bp minimize_1d minimize_2d linear_regression gd_variants classify fashion_mnist fashion_cnn "

# name | program and arguments | the lines of its output that sum it up (grep patterns)
demos=(
  "XOR (BP-network article)|xor|^final loss|^training time"
  "XOR again, the step compiled once and replayed|xor --compiled --plot xor_loss_compiled.png|^final loss|^training time"
  "BP equations (BP-network and BP-derivation articles)|bp_equations|^agree|^DISAGREE"
  "one BP step worked by hand (worked-BP article)|manual_bp|^agree|^DISAGREE"
  "minimize (x+1)^2-1 (gradient-descent article)|minimize_1d|^minimum"
  "check a hand gradient, minimize a 2-d function (gradient-descent article)|minimize_2d|verdict:|^2\\. Gradient descent"
  "minimize_2d again, the descent's gradients compiled once and replayed|minimize_2d --compiled --plot minimize_2d_compiled.png|^2\\. Gradient descent|^descent time"
  "linear regression (gradient-descent article)|linear_regression|^least squares"
  "gradient-descent variants (BP-network article)|gd_variants|^summary"
  "gd_variants again, one compiled step per batch size|gd_variants --compiled --plot gd_variants_compiled.png|^summary|^descent time"
  "classification against a linear baseline (sklearn article)|classify|^best MLP"
  "Fashion-MNIST, MLP 784-100-10, 10 epochs|fashion_mnist|^test accuracy"
  "Fashion-MNIST again, one compiled step per batch size|fashion_mnist --compiled --weights fashion_mnist_compiled.npz|^test accuracy"
  "Fashion-MNIST, a CNN, 5 epochs (about 5 minutes)|fashion_cnn|^test accuracy"
)

echo "tapegrad demo tour: every gradient comes from the tape"
failed=0
for entry in "${demos[@]}"; do
  IFS='|' read -r title command pattern1 pattern2 <<< "$entry"
  read -r -a words <<< "$command"  # the program, then its arguments
  program="${words[0]}"
  log="$out/$program.txt"
  [ "${#words[@]}" -gt 1 ] && log="$out/$program-${words[1]#--}.txt"
  arguments=("${words[@]:1}")
  [[ "$writes_files" == *" $program "* ]] && arguments+=(--out "$out")
  if "$build_dir/examples/$program" "${arguments[@]}" > "$log" 2>&1; then
    summary=$(grep -E "$pattern1${pattern2:+|$pattern2}" "$log" | sed 's/^ *//; s/^[0-9]\. //' |
              paste -sd '\t' - | sed 's/\t/; /g; s/ *$//')
    printf '%-62s %s\n' "$title" "$summary"
  else
    printf '%-62s FAILED (see %s)\n' "$title" "$log"
    failed=1
  fi
done
pictures=$(ls "$out"/*.png 2>/dev/null | wc -l)
echo "pictures ($pictures) and full outputs: $out"
exit $failed
