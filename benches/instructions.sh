#!/usr/bin/env bash
# Instructions per request for every case, counted by callgrind inside `measured_loop` only
# (setup such as key generation is excluded), then the target ratios computed from them.
# Usage: benches/instructions.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
cargo bench -p portcullis-benches --bench instructions --no-run 2>/dev/null
bin=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | sed -n 1p)
count() {
  local out
  out=$(mktemp)
  valgrind --tool=callgrind --toggle-collect='*measured_loop*' --callgrind-out-file="$out" "$bin" "$1" "$2" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
  rm -f "$out"
}
results=$(mktemp)
trap 'rm -f "$results"' EXIT
printf '%-45s %12s\n' case instructions/request
"$bin" | while read -r case; do
  total=$(count "$case" "$n")
  printf '%-45s %12d\n' "$case" $(( total / n )) | tee -a "$results"
done
echo
awk -f benches/ratios.awk "$results"
