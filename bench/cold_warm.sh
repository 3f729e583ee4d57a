#!/usr/bin/env bash
# Cold vs warm compiled-code cache (SPEC §8), each load in a fresh process:
#   bash bench/cold_warm.sh            # both VMs, 5 rounds
#   ROUNDS=3 VMS="lua54" BIG_MIB=20 SO_DIR=build bash bench/cold_warm.sh
# Targets: examples/hello (its wasm/fib.wasm is copied from build/guests if missing) and a
# generated ~25 MB component (bench/bigcomp, written to build/bench/big/). Cold: an empty
# cache directory per round. Warm: a cache filled by one unmeasured load first. Prints a
# Markdown table of medians, with wippy.stats().engine compiled/cache_hits of the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-5}
VMS=${VMS:-"lua54 luajit"}
BIG_MIB=${BIG_MIB:-20}
SO_DIR=${SO_DIR:-$ROOT/build}   # where lua54/wippy.so and luajit/wippy.so are
OUT=$ROOT/build/bench
mkdir -p "$OUT"

# examples/hello needs its Rust guest in wasm/ (as `make demo` does).
if [ ! -f examples/hello/wasm/fib.wasm ]; then
  mkdir -p examples/hello/wasm
  cp build/guests/hello_guest.wasm examples/hello/wasm/fib.wasm
fi

# The large component: generated once per size (reproducible: same size, same bytes).
BIG=$OUT/big
if [ ! -f "$BIG/big-$BIG_MIB.wasm" ]; then
  mkdir -p "$BIG"
  echo "generating a component with $BIG_MIB MiB of code (bench/bigcomp)..." >&2
  t0=$(date +%s.%N)
  CARGO_TARGET_DIR=$ROOT/target/bench cargo run --quiet --release --manifest-path bench/bigcomp/Cargo.toml -- \
    "$BIG/big-$BIG_MIB.wasm" "$BIG_MIB"
  echo "generated in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s (including building the generator)" >&2
fi
hash=$(sha256sum "$BIG/big-$BIG_MIB.wasm" | cut -d' ' -f1)
cat > "$BIG/_index.yaml" <<YAML
version: "1.0"
namespace: big
entries:
  - name: add
    kind: function.wasm
    path: big-$BIG_MIB.wasm
    hash: sha256:$hash
    method: add
  - name: work
    kind: function.wasm
    path: big-$BIG_MIB.wasm
    hash: sha256:$hash
    method: work
YAML

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
fmt_ms() { awk -v x="$1" 'BEGIN { if (x >= 1000) printf "%.2f s", x/1000; else printf "%.1f ms", x }'; }

# run VM DIR CACHE TARGET ARGS... -> "load_ms call_ms compiled hits result require_ms cpu_ms process_ms"
run() {
  local vm=$1 dir=$2 cache=$3; shift 3
  local lua cpath
  case $vm in
    lua54) lua=${LUA54:-lua5.4}; cpath="$SO_DIR/lua54/?.so;;" ;;
    luajit) lua=${LUAJIT:-luajit}; cpath="$SO_DIR/luajit/?.so;;" ;;
  esac
  local t0 t1 line
  t0=$(date +%s%N)
  line=$(LUA_CPATH="$cpath" "$lua" "$ROOT/bench/load_once.lua" "$dir" "$cache" "$@")
  t1=$(date +%s%N)
  echo "$line $(( (t1 - t0) / 1000 ))" | awk '{ $8 = sprintf("%.1f", $8 / 1000); print }'
}

echo
echo "### 5. Cold vs warm compiled-code cache: \`wippy.load\` in a fresh process (median of $ROUNDS), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| VM | directory | WebAssembly | cache | \`wippy.load\` | first call | whole process | compiled | cache_hits |"
echo "|---|---|---:|---|---:|---:|---:|---:|---:|"
for vm in $VMS; do
  for t in hello big; do
    case $t in
      hello) dir=$ROOT/examples/hello; target="hello:fib"; args=(30); label="examples/hello"
             size="2 WAT + $(stat -c %s examples/hello/wasm/fib.wasm) B core" ;;
      big)   dir=$BIG; target="big:work"; args=(12345 7); label="big component, 2 entries"
             size="$(stat -c %s "$BIG/big-$BIG_MIB.wasm" | awk '{ printf "%.1f MB", $1 / 1e6 }')" ;;
    esac
    cold=$OUT/cold.txt warm=$OUT/warm.txt
    : > "$cold"; : > "$warm"
    for r in $(seq "$ROUNDS"); do
      c=$(mktemp -d "$OUT/cache-cold.XXXXXX")
      run "$vm" "$dir" "$c" "$target" "${args[@]}" >> "$cold"
      rm -rf "$c"
    done
    w=$(mktemp -d "$OUT/cache-warm.XXXXXX")
    run "$vm" "$dir" "$w" "$target" "${args[@]}" > /dev/null
    for r in $(seq "$ROUNDS"); do
      run "$vm" "$dir" "$w" "$target" "${args[@]}" >> "$warm"
    done
    rm -rf "$w"
    for kind in cold warm; do
      f=$OUT/$kind.txt
      results=$(cut -d' ' -f5 "$f" | sort -u | tr '\n' ' ')
      if [ "$(cut -d' ' -f5 "$f" | sort -u | wc -l)" != 1 ]; then echo "inconsistent results: $results" >&2; exit 1; fi
      load=$(cut -d' ' -f1 "$f" | median)
      call=$(cut -d' ' -f2 "$f" | median)
      proc=$(cut -d' ' -f8 "$f" | median)
      compiled=$(cut -d' ' -f3 "$f" | sort -u | tr '\n' '/' | sed 's:/$::')
      hits=$(cut -d' ' -f4 "$f" | sort -u | tr '\n' '/' | sed 's:/$::')
      echo "| $vm | $label | $size | $kind | $(fmt_ms "$load") | $(fmt_ms "$call") | $(fmt_ms "$proc") | $compiled | $hits |"
      eval "${kind}_load=$load"
    done
    echo "| $vm | $label | | warm speed-up | $(awk -v a="$cold_load" -v b="$warm_load" 'BEGIN { printf "%.0f×", a/b }') | | | | |"
  done
done
echo
echo "(\`compiled\`/\`cache_hits\`: the distinct values of \`wippy.stats().engine\` over the rounds, after the load and one call.)"
