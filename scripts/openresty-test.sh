#!/usr/bin/env bash
# make test-openresty: wippy (build/luajit/wippy.so) inside Debian's nginx with its Lua module
# (unpacked by scripts/deps.sh --openresty into build/openresty/root). See scripts/openresty_test.py.
# `openresty-test.sh bench`: the benchmark instead (bench/openresty.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD/build/openresty/root"
bash scripts/deps.sh --openresty "$root"
libdir="$(dirname "$(find "$root/usr/lib" -name 'libluajit-5.1.so.2' | head -1)")"
exec python3 scripts/openresty_test.py "$PWD" "$root/usr/lib/nginx/modules" "$libdir" "$root/usr/share/lua/5.1" "$@"
