#!/usr/bin/env bash
# `make memcheck`: valgrind's memcheck over the Rust unit tests and the lua5.4 specs that can
# run under it, with the module the Makefile built (build/lua54/wippy.so, build/guests). Fails
# when memcheck reports an error or a test fails. scripts/valgrind.supp holds the reports
# known to be false, none of them in wippy's own code. What runs, what is left out and why,
# and the last result: docs/reliability.md.
set -uo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
LUA=${LUA54:-lua5.4}
# Each process valgrind runs, children too (the launcher, a spec's child lua5.4; not the
# Python test servers), writes its report to build/memcheck/PID.N.log; the counts are added up
# at the end. Leaks are not checked: Lua states and wasmtime engines live until exit by design.
# Paths are relative: cargo runs the test binary from the repository root too.
logs=build/memcheck
vg=(valgrind --error-exitcode=1 --leak-check=no --suppressions=scripts/valgrind.supp
  --trace-children=yes --trace-children-skip='*python*' --log-file="$logs/%p.%n.log")
rm -rf "$logs"
mkdir -p "$logs"
start=$SECONDS
failed=()

echo "== Rust unit tests (cargo test --lib, under valgrind)"
# Skipped: the 2,000-document YAML fuzz loop (safe Rust, no FFI; 9 minutes under valgrind),
# and the spin-wait test, which asserts wall-clock times valgrind cannot meet.
runner="CARGO_TARGET_$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')_RUNNER"
env "$runner=${vg[*]}" "$CARGO" test --release --features lua54,vendored --lib -- \
  --skip registry::yaml::tests::random_text_never_panics \
  --skip sched::tests::spin_turns_off_when_it_runs_out_and_on_after_a_short_sleep || failed+=(unit-tests)

busted=$(command -v busted)
# One valgrind process per run. --ignore-lua: busted would otherwise start the `.busted`
# profile's interpreter as a child, outside valgrind.
spec() {
  local name=$1
  shift
  echo "== $name"
  XDG_CACHE_HOME="$PWD/build/cache" timeout 600 "${vg[@]}" "$LUA" "$busted" --ignore-lua \
    --cpath="$PWD/build/lua54/?.so" --lpath="$PWD/lua/?.lua" "$@" || failed+=("$name")
}

# Valgrind 3.19 gives a process 128 GiB of address space, and each live wasmtime memory
# reserves 4 GiB: components_spec keeps more instances than that alive, so it runs in three
# parts (by `describe`).
parts=(--filter "one behaviour on both call paths" --filter "every type in every position"
  --filter "^component resources")
later=(--filter "top%-level results" --filter "interface functions" --filter "argument counts"
  --filter "registry:describe")
spec "components (1/3)" spec/components_spec.lua "${parts[@]/#--filter/--filter-out}" \
  "${later[@]/#--filter/--filter-out}"
spec "components (2/3)" spec/components_spec.lua "${parts[@]}"
spec "components (3/3)" spec/components_spec.lua "${later[@]}"
for s in hostile_input wit funcs registry load cache module output security security_checks actor \
  limits process; do
  spec "$s" "spec/${s}_spec.lua"
done
# capabilities_spec comes close to the 128 GiB too (how close depends on when Lua collects).
first=(--filter "wasi%.mounts" --filter "wasi%.env" --filter "undeclared interfaces")
spec "capabilities (1/2)" spec/capabilities_spec.lua "${first[@]}"
spec "capabilities (2/2)" spec/capabilities_spec.lua "${first[@]/#--filter/--filter-out}"
# Left out: the guest-recursion depth test (one live instance per level: past the 128 GiB) and
# the 100-task overlap test (a wall-clock bound).
spec guest_calls spec/guest_calls_spec.lua --filter-out "at the depth limit" --filter-out "overlap: 100 tasks"
# Not run at all: async_spec (servers and timers on wall-clock deadlines: under valgrind's
# one-thread-at-a-time scheduling a wait times out and the run hangs) and sched_spec (asserts
# wall-clock times).

# A log without a summary is the copy a forked child writes before it execs (the program it
# execs writes its own).
errors=0
checked=0
for log in "$logs"/*.log; do
  n=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -n 1)
  [ -n "$n" ] || continue
  checked=$((checked + 1))
  if ((n > 0)); then
    cat "$log"
    errors=$((errors + n))
  fi
done
echo "== memcheck: $checked processes checked, $errors errors, $((SECONDS - start)) s (reports in $logs)"
((errors == 0)) || failed+=(memcheck)
if ((${#failed[@]})); then
  echo "memcheck: failed: ${failed[*]}"
  exit 1
fi
echo "memcheck: ok"
