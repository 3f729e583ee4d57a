-- Development rockspec: `luarocks make` builds the Rust module with cargo from this checkout.
-- Nothing is fetched from a LuaRocks server; cargo needs its crates (cached or online).
--
--   Lua 5.4:  luarocks --lua-version=5.4 --tree TREE make wippy-dev-1.rockspec
--             (5.3, 5.2, 5.1 alike with --lua-version=5.3, 5.2, 5.1)
--   LuaJIT:   luarocks --lua-version=5.1 --tree TREE make wippy-dev-1.rockspec \
--               LUA=/usr/bin/luajit LUA_INCDIR=/usr/include/luajit-2.1
rockspec_format = "3.0"
package = "wippy"
version = "dev-1"

source = {
   -- `luarocks make` builds the directory it runs in and does not fetch this.
   url = "git+file://.",
}

description = {
   summary = "Run WebAssembly modules as registry entries from Lua",
   detailed = [[
wippy is a native Lua module written in Rust (mlua + wasmtime). Lua 5.1 to 5.4 and LuaJIT load it
with require("wippy"); it loads WebAssembly functions declared in _index.yaml files and calls
them with funcs.call("namespace:name", ...), converting arguments and results by their WIT types.
]],
   license = "MIT OR Apache-2.0",
}

dependencies = {
   "lua >= 5.1",
}

build = {
   type = "command",
   -- One shared library per Lua ABI: the cargo feature follows the interpreter LuaRocks
   -- builds for ($(LUA)). LuaRocks substitutes $(NAME), so the shell parts use backticks.
   -- install.lib keeps the file name, so the library is copied to wippy.so first.
   build_command = [[
feature=`'$(LUA)' -e 'io.write(jit and "luajit" or "lua" .. _VERSION:sub(5):gsub("%.", ""))'` &&
echo "wippy: cargo build --release --features $feature,module" &&
cargo build --release --features "$feature,module" &&
mkdir -p build/rock &&
cp "${CARGO_TARGET_DIR:-target}/release/libwippy.so" build/rock/wippy.so
]],
   install = {
      lib = {
         wippy = "build/rock/wippy.so",
      },
      lua = {
         funcs = "lua/funcs.lua",
      },
      -- The launcher (SPEC §7.4): LuaRocks wraps it to run on the interpreter it built for.
      bin = {
         wippy = "bin/wippy.lua",
      },
   },
   copy_directories = { "docs" },
}
