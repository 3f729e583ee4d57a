-- The cost of a grant per call: the same component function (`add` of the caps guest) called
-- through an entry with no `wasi` settings and through one with two mounts and three `wasi.env`
-- variables (read from the host's environment on every call), side by side in one run.
-- Prints the median of 7 rounds in ns per call and the difference. Run by `make bench`.
-- Usage: LUA_CPATH='build/lua54/?.so' lua5.4 bench/grant.lua [N]
local wippy = require("wippy")
local funcs = wippy.funcs
local clock = os.clock
local GUEST = "build/guests/caps_guest.wasm"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "/a' '" .. dir .. "/b'"))
local function add(e) assert(wippy.registry:add(e)) end
add({ id = "bench:a", kind = "fs.directory", directory = dir .. "/a" })
add({ id = "bench:b", kind = "fs.directory", directory = dir .. "/b" })
add({ id = "bench:home", kind = "env.variable", variable = "HOME" })
add({ id = "bench:path", kind = "env.variable", variable = "PATH" })
add({ id = "bench:key", kind = "env.variable", variable = "WIPPY_BENCH_UNSET", default = "fallback" })
add({ id = "bench:plain", kind = "function.wasm", path = GUEST, method = "add" })
add({ id = "bench:granted", kind = "function.wasm", path = GUEST, method = "add",
  imports = { "wasi:filesystem", "wasi:cli" },
  wasi = {
    mounts = { { fs = "bench:a", guest = "/a" }, { fs = "bench:b", guest = "/b", read_only = true } },
    env = { { id = "bench:home" }, { id = "bench:path" }, { id = "bench:key", name = "KEY" } },
  } })
assert(funcs.call("bench:plain", 2, 3) == 5 and funcs.call("bench:granted", 2, 3) == 5)

local function median(xs)
  table.sort(xs)
  return xs[math.floor(#xs / 2) + 1]
end

local N = tonumber(arg and arg[1]) or 300000
local call = funcs.call
local function measure(id)
  local t0 = clock()
  local s = 0
  for _ = 1, N do s = call(id, s, 1) end
  assert(s == N)
  return (clock() - t0) / N * 1e9
end

local plain, granted = {}, {}
for r = 1, 7 do
  plain[r] = measure("bench:plain")
  granted[r] = measure("bench:granted")
end
local p, g = median(plain), median(granted)
print(string.format("%-44s %9.1f ns/call", "component add, no wasi settings", p))
print(string.format("%-44s %9.1f ns/call", "component add, 2 mounts + 3 env variables", g))
print(string.format("grant cost per call: %+.1f ns", g - p))
os.execute("rm -rf '" .. dir .. "'")
