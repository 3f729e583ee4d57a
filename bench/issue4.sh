#!/usr/bin/env bash
# Issue 4 benchmarks — scheduler, worker pools, isolation, compiled-code cache — on lua5.4
# and LuaJIT, each section in a fresh process; prints Markdown tables of medians.
#   bash bench/issue4.sh
#   VMS=lua54 SECTIONS="sleep latency" bash bench/issue4.sh
# Sections: sleep (1000 tasks in a sleeping component), cpu (CPU-bound calls from 1..N tasks),
# latency (trivial call round trips), isolate (pool.isolate), cache (bench/cold_warm.sh).
# Needs build/{lua54,luajit}/wippy.so (make build) and build/guests (built here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VMS=${VMS:-"lua54 luajit"}
SECTIONS=${SECTIONS:-"sleep cpu latency isolate cache"}

if [ ! -f build/guests/async_guest.wasm ] || [ ! -f build/guests/hello_guest.wasm ]; then
  echo "== building the guests (build/guests is incomplete)" >&2
  bash scripts/guests.sh build/guests
fi
# Private copies of the modules: a rebuild meanwhile must not change them under a run.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for vm in $VMS; do
  if [ ! -f "build/$vm/wippy.so" ]; then
    echo "build/$vm/wippy.so is missing: run make build-$vm" >&2
    exit 1
  fi
  mkdir -p "$TMP/$vm" && cp "build/$vm/wippy.so" "$TMP/$vm/wippy.so"
done

echo "## issue 4 benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet -- src lua 2>/dev/null || echo ' + uncommitted src/lua changes'), modules of $(for vm in $VMS; do date -u -r "build/$vm/wippy.so" '+%H:%M'; done | tr '\n' ' ')"
echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load $(cut -d' ' -f1-3 /proc/loadavg)"

for section in $SECTIONS; do
  [ "$section" = cache ] && continue
  for vm in $VMS; do
    case $vm in
      lua54) lua=${LUA54:-lua5.4} ;;
      luajit) lua=${LUAJIT:-luajit} ;;
    esac
    LUA_CPATH="$TMP/$vm/?.so;;" "$lua" bench/sched.lua "$section"
  done
done
case " $SECTIONS " in
  *" cache "*) SO_DIR=$TMP VMS=$VMS bash bench/cold_warm.sh ;;
esac
