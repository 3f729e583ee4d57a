#!/usr/bin/env bash
# Components: wippy vs wasmtime-py vs jco, side by side in one invocation.
# Calls the types guest (tests/guests/types, build/guests/types_guest.wasm): `add` (s32, s32) -> s32
# and `users#transform-users` on 10 users, from
#   wippy on lua5.4 and LuaJIT (bench/peers/wippy_bench.lua),
#   wasmtime-py 50 with its dynamic component API (bench/peers/py_bench.py),
#   jco (transpiled to JS, WASI from preview2-shim) on Node (bench/peers/jco/jco_bench.mjs),
# then prints µs per call (best and median of 5 runs) and the ratios peer / wippy.
# Installs what is missing: a venv in build/peers-venv (wasmtime), npm packages in bench/peers/jco (npm install).
# Usage: bash bench/peers/run.sh   (from anywhere; runs in the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
GUEST=build/guests/types_guest.wasm
VENV=build/peers-venv
PY_WASMTIME=${PY_WASMTIME:-50.0.1}
JCO=bench/peers/jco
LUA54=${LUA54:-lua5.4}
LUAJIT=${LUAJIT:-luajit}

log() { printf '== %s\n' "$*" >&2; }

# --- what the benchmarks need -------------------------------------------------------------
if [ ! -f "$GUEST" ]; then
  log "building the guests ($GUEST is missing)"
  bash scripts/guests.sh build/guests
fi
for vm in lua54 luajit; do
  if [ ! -f "build/$vm/wippy.so" ]; then
    log "building build/$vm/wippy.so (missing)"
    make "build-$vm"
  fi
done

if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('wasmtime') != '$PY_WASMTIME')" 2>/dev/null; then
  log "installing wasmtime==$PY_WASMTIME into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "wasmtime==$PY_WASMTIME"
fi

if [ ! -x "$JCO/node_modules/.bin/jco" ] || [ "$JCO/package-lock.json" -nt "$JCO/node_modules/.package-lock.json" ]; then
  # `npm install`, not `npm ci`: jco's optional per-platform packages without versions leave
  # any lock file "out of sync" for `npm ci` (npm 10); the versions are pinned in package.json.
  log "installing jco and preview2-shim (npm install in $JCO)"
  (cd "$JCO" && npm install --no-audit --no-fund --loglevel=error)
fi
if [ ! -f "$JCO/out/types_guest.js" ] || [ "$GUEST" -nt "$JCO/out/types_guest.js" ]; then
  log "jco transpile $GUEST -o $JCO/out"
  (cd "$JCO" && npx --no-install jco transpile "$ROOT/$GUEST" -o out --quiet)
fi

# --- the runs, one after another (2 cores: nothing in parallel) ----------------------------
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
RESULTS=$TMP/results
# Private copies of the modules: a rebuild that rewrites build/*/wippy.so in place while a
# benchmark has it mapped would crash it (SIGBUS).
for vm in lua54 luajit; do
  mkdir -p "$TMP/$vm" && cp "build/$vm/wippy.so" "$TMP/$vm/wippy.so"
done
run() { # label, command...
  local label=$1; shift
  log "$label"
  if ! "$@" "$label" >>"$RESULTS"; then
    log "$label FAILED (left out of the table)"
  fi
}
export WIPPY_BENCH_GUEST=$GUEST
run wippy-lua54 env LUA_CPATH="$TMP/lua54/?.so" "$LUA54" bench/peers/wippy_bench.lua
run wippy-luajit env LUA_CPATH="$TMP/luajit/?.so" "$LUAJIT" bench/peers/wippy_bench.lua
run wasmtime-py "$VENV/bin/python" bench/peers/py_bench.py
run jco node "$JCO/jco_bench.mjs"
# The floor: the same calls from Rust with wasmtime's typed and dynamic (`Val`) APIs, no Lua
# (examples/floor.rs, the same wasmtime build and engine settings as wippy).
log "building examples/floor (cargo, release)"
if cargo build --quiet --release --features lua54,vendored --example floor; then
  cp target/release/examples/floor "$TMP/floor"
  run wasmtime-rust "$TMP/floor" "$GUEST"
else
  log "examples/floor did not build (left out of the table)"
fi

# --- the table -----------------------------------------------------------------------------
echo
echo "raw (label case best_us median_us N):"
cat "$RESULTS"
echo
awk '
  { best[$1, $2] = $3; med[$1, $2] = $4; n[$1, $2] = $5; seen[$1] = 1 }
  END {
    split("wippy-lua54 wippy-luajit wasmtime-py jco rust-typed rust-val", labels, " ")
    split("add transform", cases, " ")
    goal["add"] = 8; goal["transform"] = 4; abs_goal["add"] = 0.35; abs_goal["transform"] = 5
    printf "%-14s %-10s %12s %12s %10s\n", "runtime", "case", "best µs", "median µs", "N/run"
    for (c = 1; c <= 2; c++) for (l = 1; l <= 6; l++) {
      k = labels[l] SUBSEP cases[c]
      if (k in best) printf "%-14s %-10s %12.3f %12.3f %10d\n", labels[l], cases[c], best[k], med[k], n[k]
      else printf "%-14s %-10s %12s %12s %10s\n", labels[l], cases[c], "n/a", "n/a", "-"
    }
    print ""
    printf "%-10s %-26s %10s %10s\n", "case", "ratio", "best", "median"
    for (c = 1; c <= 2; c++) for (w = 1; w <= 2; w++) for (p = 3; p <= 6; p++) {
      kw = labels[w] SUBSEP cases[c]; kp = labels[p] SUBSEP cases[c]
      r = labels[p] "/" labels[w]
      if ((kw in best) && (kp in best) && best[kw] > 0 && med[kw] > 0)
        printf "%-10s %-26s %9.1fx %9.1fx\n", cases[c], r, best[kp] / best[kw], med[kp] / med[kw]
      else printf "%-10s %-26s %10s %10s\n", cases[c], r, "n/a", "n/a"
    }
    print ""
    for (c = 1; c <= 2; c++) {
      kw = "wippy-lua54" SUBSEP cases[c]; kp = "jco" SUBSEP cases[c]
      if ((kw in med) && (kp in med) && med[kw] > 0) {
        r = med[kp] / med[kw]
        printf "goal %-10s jco/wippy-lua54 >= %dx (median): %.1fx, %s; wippy-lua54 <= %.2f µs: %.3f µs, %s\n", cases[c], goal[cases[c]], r, (r >= goal[cases[c]] ? "met" : "NOT met"), abs_goal[cases[c]], med[kw], (med[kw] <= abs_goal[cases[c]] ? "met" : "NOT met")
      } else printf "goal %-10s jco/wippy-lua54 >= %dx: n/a\n", cases[c], goal[cases[c]]
    }
  }' "$RESULTS"
