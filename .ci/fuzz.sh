#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, nightly) for SECONDS each, one after the other,
# and prints each target's executions; fails on the first crash (the input is left in
# fuzz/artifacts/<target>/). Installs cargo-fuzz if missing.
#
#   bash .ci/fuzz.sh [SECONDS] [TARGET...]     # CI's smoke run: 20 s per target
#
# A long run (docs/reliability.md): bash .ci/fuzz.sh 900, or one target in the background,
# `cd fuzz && cargo +nightly fuzz run lara -- -max_total_time=3600`.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-20}
shift || true
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build
# The saved findings first: each must now pass (fuzz/regressions/<target>/<input>).
for input in regressions/*/*; do
  [ -f "$input" ] || continue
  target=$(basename "$(dirname "$input")")
  cargo +nightly fuzz run "$target" "$input" >/dev/null 2>&1 ||
    { echo "fuzz regression $input fails again" >&2; cargo +nightly fuzz run "$target" "$input" 2>&1 | grep -A 4 'panicked at' >&2; exit 1; }
  echo "fuzz regression $input: passes"
done
total=0
for target in "${targets[@]}"; do
  log=$(mktemp)
  # -rss_limit_mb: the default 2 GiB is plenty (small shapes); -timeout: one input in 10 s.
  if ! cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -print_final_stats=1 \
      -timeout=10 >"$log" 2>&1; then
    # The contract violation (the panic message with its input) comes before libFuzzer's
    # and cargo-fuzz's reports, which a plain tail would show alone.
    grep -A 6 'panicked at' "$log" | grep -v '^ *[0-9]*: \|^ *at ' >&2 || true
    tail -n 25 "$log" >&2
    echo "fuzz target $target: crash (input in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz target $target: $runs executions in $seconds s, no crash"
  total=$((total + runs))
  rm -f "$log"
done
echo "fuzz: ${#targets[@]} targets, $total executions, no crash"
