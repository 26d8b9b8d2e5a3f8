#!/usr/bin/env bash
# Run every fuzz target in BUILD_DIR for SECONDS each, seeded from
# tests/fuzz/corpus/<target>/ (copied, so the checked-in seeds stay as they are).
# FUZZ_JOBS targets run at a time (default 2: CI has two cores), so the
# wall time is about ceil(targets / FUZZ_JOBS) * SECONDS; .ci/run picks
# SECONDS so that the whole `make fuzz` stays within its budget.
# A crash, leak or sanitizer report fails the run and leaves the input in
# BUILD_DIR/fuzz-findings/.
set -euo pipefail
build=${1:?build dir}
secs=${2:-60}
jobs=${FUZZ_JOBS:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build/fuzz-findings"

run_one() { # target path; exit status 0 when it found nothing
  local t=$1 name work
  name=$(basename "$t")
  work="$build/fuzz-corpus/$name"
  mkdir -p "$work"
  if [ -d "$root/tests/fuzz/corpus/$name" ]; then
    cp -n "$root/tests/fuzz/corpus/$name"/* "$work"/ 2>/dev/null || true
  fi
  # tests/fuzz/<target>.options: the target's own flags (later ones win)
  local opts=()
  if [ -f "$root/tests/fuzz/$name.options" ]; then
    read -r -a opts <"$root/tests/fuzz/$name.options"
  fi
  if ! "$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$build/fuzz-findings/$name-" -print_final_stats=1 "${opts[@]}" "$work" \
       >"$build/fuzz-$name.log" 2>&1; then
    echo "fuzz: $name FOUND A PROBLEM:"; tail -n 60 "$build/fuzz-$name.log"
    return 1
  fi
  grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec|^stat::peak_rss_mb' \
    "$build/fuzz-$name.log" | sed "s/^/fuzz: $name /"
}

targets=()
for t in "$build"/fuzz_*; do
  [ -x "$t" ] && [ -f "$t" ] && targets+=("$t")
done
echo "fuzz: ${#targets[@]} targets, ${secs}s each, $jobs at a time"
status=0
pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do
  wait "$p" || status=1
done
exit $status
