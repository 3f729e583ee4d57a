#!/usr/bin/env bash
# Installs the dev rock into empty temporary trees for lua5.4, lua5.3, lua5.2, lua5.1 and LuaJIT
# and loads it from there: the check of the issue's "luarocks make" promise, run by `make test`.
# ROCK_VMS="lua5.4 luajit" checks only those (each is a cargo build for its ABI).
set -euo pipefail
cd "$(dirname "$0")/.."
check() { # VM LUA_VERSION TREE_SUBDIR [luarocks extra args...]
  local vm=$1 version=$2 sub=$3
  shift 3
  local tree
  tree=$(mktemp -d)
  luarocks --lua-version="$version" --tree "$tree" make wippy-dev-1.rockspec "$@" >"$tree.log" 2>&1 ||
    { cat "$tree.log"; return 1; }
  local out
  out=$("$vm" -e "package.cpath='$tree/lib/lua/$sub/?.so;'..package.cpath
    package.path='$tree/share/lua/$sub/?.lua;'..package.path
    local w = require('wippy')
    assert(require('funcs') == w.funcs, 'funcs shim')
    io.write(w.version)")
  echo "rock: $vm loads wippy $out from $tree"
  # The launcher the rock installs runs a WASI program file. LuaRocks wraps it for the
  # interpreter of its Lua version (lua5.1 for the LuaJIT tree, which cannot load a LuaJIT
  # build): there the script itself runs on the VM.
  local launcher=("$tree/bin/wippy")
  if [ "$vm" = luajit ]; then
    launcher=(env "LUA_CPATH=$tree/lib/lua/$sub/?.so;;" luajit "$tree/lib/luarocks/rocks-$sub/wippy/dev-1/bin/wippy")
  fi
  local hello
  hello=$("${launcher[@]}" run build/guests/c_cmd.wasm echo launcher works)
  [ "$hello" = "launcher works" ] || { echo "rock: ${launcher[*]} printed '$hello'"; return 1; }
  echo "rock: the installed launcher runs a program on $vm"
  rm -rf "$tree" "$tree.log"
}
for vm in ${ROCK_VMS:-lua5.4 lua5.3 lua5.2 lua5.1 luajit}; do
  case $vm in
    luajit) check luajit 5.1 5.1 LUA=/usr/bin/luajit LUA_INCDIR=/usr/include/luajit-2.1 ;;
    lua5.[1-4]) check "$vm" "${vm#lua}" "${vm#lua}" ;;
    *) echo "rock: unknown VM $vm (lua5.1 .. lua5.4, luajit)"; exit 2 ;;
  esac
done
