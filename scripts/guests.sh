#!/usr/bin/env bash
# Builds every guest under tests/guests/ and examples/*/guest from source and copies the
# .wasm files to the directory given ($1). Cargo skips work that is up to date; the C guests
# are skipped by hand when their output is newer than their sources.
set -euo pipefail
out=${1:-build/guests}
mkdir -p "$out"
export CARGO_TARGET_DIR="$PWD/target/guests"
for dir in examples/*/guest tests/guests/*/; do
  [ -f "$dir/Cargo.toml" ] || continue
  target=$(cat "$dir/.target" 2>/dev/null || echo wasm32-unknown-unknown)
  cargo build --quiet --release --manifest-path "$dir/Cargo.toml" --target "$target"
done
cp "$CARGO_TARGET_DIR"/*/release/*.wasm "$out"/

# C guests (tests/guests/<name>/*.c): WASI preview 1 core modules built with clang + wasi-libc
# (scripts/deps.sh), so the preview 1 path is tested with a program not written through Rust's
# std. They are reactors — exporting _initialize instead of _start: the host calls their
# exports one by one, the way it calls a component's — except in directories whose name ends
# in -cmd, which are commands (`main`, exported as _start). The output is named like cargo's
# (- becomes _), so c-caps gives c_caps.wasm.
for dir in tests/guests/*/; do
  dir=${dir%/}
  srcs=("$dir"/*.c)
  [ -f "${srcs[0]}" ] || continue
  name=$(basename "$dir")
  wasm="$out/${name//-/_}.wasm"
  # Rebuilt when a source (or this script, which holds the flags) is newer than the output;
  # -nt is also true when the output does not exist.
  stale=0
  for src in "${srcs[@]}" "$0"; do
    if [ "$src" -nt "$wasm" ]; then stale=1; fi
  done
  if ((!stale)); then continue; fi
  model=reactor
  if [[ $name == *-cmd ]]; then model=command; fi
  clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=$model -o "$wasm" "${srcs[@]}"
done
