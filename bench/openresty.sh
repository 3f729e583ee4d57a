#!/usr/bin/env bash
# make bench-openresty: wrk against examples/openresty on one nginx worker — a plain ngx.say
# handler, a core and a component call, and 100 concurrent requests whose guests sleep 50 ms
# (requests/s and p99, medians of BENCH_ROUNDS runs of BENCH_SECS seconds). BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/openresty-test.sh bench
