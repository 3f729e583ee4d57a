#!/usr/bin/env bash
# Installs what building and testing wippy needs, when it is missing. Idempotent and quiet
# when everything is there.
set -euo pipefail

# python3 runs the HTTP and TCP echo servers the async specs start (spec/fixtures/servers.py).
# clang, lld, wasi-libc and the wasm32 compiler-rt build the C guests (tests/guests/*/*.c) as
# WASI preview 1 reactor modules (scripts/guests.sh).
packages=(lua5.4 liblua5.4-dev lua5.3 lua5.2 lua5.1 luajit libluajit-5.1-dev lua-busted luarocks python3
  clang lld wasi-libc libclang-rt-14-dev-wasm32)
# `deps.sh --openresty DIR` (make test-openresty, bench-openresty): Debian's nginx and wrk,
# installed; nginx's Lua module with what it needs (OpenResty's LuaJIT, lua-resty-core)
# unpacked into DIR instead: libnginx-mod-http-lua pulls libluajit2-5.1-2, which conflicts with
# the `luajit` package the specs run on (docs/openresty.md).
openresty=""
if [ "${1:-}" = "--openresty" ]; then
  openresty="${2:?deps.sh --openresty DIR}"
  shift 2
  packages+=(nginx wrk)
fi
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

if [ -n "$openresty" ] && [ ! -f "$openresty/usr/lib/nginx/modules/ngx_http_lua_module.so" ]; then
  echo "deps: unpacking nginx's Lua module and OpenResty's LuaJIT into $openresty"
  debs="$(mktemp -d)"
  # apt's download sandbox user must be able to write there.
  chmod 777 "$debs"
  (cd "$debs" && apt-get download -qq libnginx-mod-http-lua libnginx-mod-http-ndk lua-resty-core \
    lua-resty-lrucache libluajit2-5.1-2 >/dev/null)
  mkdir -p "$openresty"
  for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$openresty"; done
  rm -rf "$debs"
fi
