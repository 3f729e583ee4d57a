#!/usr/bin/env bash
# Wall time of `wippy run` of a C hello world (tests/guests/c-cmd, no arguments) with a warm
# artifact cache: 21 runs, the median and the fastest, in ms. The first run warms the cache.
# Usage: bash bench/launcher.sh [build/bin/wippy]
set -euo pipefail
wippy=${1:-build/bin/wippy}
prog=build/guests/c_cmd.wasm
"$wippy" run "$prog" >/dev/null
times=()
for _ in $(seq 21); do
  t0=$(date +%s%N)
  "$wippy" run "$prog" >/dev/null
  t1=$(date +%s%N)
  times+=($(((t1 - t0) / 1000)))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
awk -v p="$prog" -v m="${sorted[10]}" -v f="${sorted[0]}" \
  'BEGIN { printf "wippy run %s (warm cache): median %.1f ms, fastest %.1f ms (21 runs)\n", p, m / 1000, f / 1000 }'
