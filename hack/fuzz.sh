#!/usr/bin/env bash
# Runs every fuzz target (func FuzzXxx) in every module for a short time.
# The seed corpora under testdata/fuzz run in plain `go test` too.
set -euo pipefail
fuzztime=${1:-10s}
root=$(cd "$(dirname "$0")/.." && pwd)
for mod in "$root" "$root/functions/metrics"; do
  cd "$mod"
  # A module without fuzz targets is fine (grep finds nothing).
  { grep -rl --include='*_test.go' '^func Fuzz' . || true; } | { grep -v '/\.cache/' || true; } | while read -r f; do
    pkg=./$(dirname "${f#./}")
    for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$f" | sed 's/^func //'); do
      echo ">> fuzz $pkg $target ($fuzztime)"
      go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
    done
  done
done
