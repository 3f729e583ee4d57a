#!/usr/bin/env bash
# Builds every guest under tests/guests/ and examples/*/guest from source and copies the
# .wasm files to the directory given ($1). Cargo skips work that is up to date.
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
