#!/usr/bin/env bash
# Installs what building and testing wippy needs, when it is missing. Idempotent and quiet
# when everything is there.
set -euo pipefail

# python3 runs the HTTP and TCP echo servers the async specs start (spec/fixtures/servers.py).
# clang, lld, wasi-libc and the wasm32 compiler-rt build the C guests (tests/guests/*/*.c) as
# WASI preview 1 reactor modules (scripts/guests.sh).
packages=(lua5.4 liblua5.4-dev lua5.3 lua5.2 lua5.1 luajit libluajit-5.1-dev lua-busted luarocks python3
  clang lld wasi-libc libclang-rt-14-dev-wasm32)
# Packages only some targets need come as arguments (`make memcheck`: valgrind).
packages+=("$@")
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Guests: core modules for wasm32-unknown-unknown; components (next stages) for wasm32-wasip2.
for target in wasm32-unknown-unknown wasm32-wasip2; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "deps: rustup target add $target"
    rustup target add "$target" >/dev/null
  fi
done
