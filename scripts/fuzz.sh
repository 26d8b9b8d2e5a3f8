#!/usr/bin/env bash
# Run every fuzz target in BUILD_DIR for SECONDS each, seeded from
# tests/fuzz/corpus/<target>/ (copied, so the checked-in seeds stay as they are).
# A crash, leak or sanitizer report fails the run and leaves the input in
# BUILD_DIR/fuzz-findings/.
set -euo pipefail
build=${1:?build dir}
secs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build/fuzz-findings"
status=0
for t in "$build"/fuzz_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  work="$build/fuzz-corpus/$name"
  mkdir -p "$work"
  if [ -d "$root/tests/fuzz/corpus/$name" ]; then
    cp -n "$root/tests/fuzz/corpus/$name"/* "$work"/ 2>/dev/null || true
  fi
  echo "fuzz: $name for ${secs}s"
  if ! "$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$build/fuzz-findings/$name-" -print_final_stats=1 "$work" \
       >"$build/fuzz-$name.log" 2>&1; then
    echo "fuzz: $name FOUND A PROBLEM:"; tail -n 60 "$build/fuzz-$name.log"; status=1
  else
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$build/fuzz-$name.log" | sed "s/^/fuzz: $name /"
  fi
done
exit $status
