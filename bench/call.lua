-- funcs.call of an inline WAT add(i32, i32), side by side with a plain Lua call, in one run.
-- Prints the median of 7 rounds in ns per call. Run by `make bench`.
local wippy = require("wippy")
local funcs = wippy.funcs
local clock = os.clock

local ok, err = wippy.registry:add({
  id = "bench:add",
  kind = "function.wat",
  source = [[(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))]],
  wit = "add: func(a: s32, b: s32) -> s32;",
  pool = { type = "inline" },
})
assert(ok, tostring(err))
assert(funcs.call("bench:add", 2, 3) == 5)

local function median(xs)
  table.sort(xs)
  return xs[math.floor(#xs / 2) + 1]
end

local function measure(label, n, body)
  local rounds = {}
  for r = 1, 7 do
    local t0 = clock()
    body(n)
    rounds[r] = (clock() - t0) / n * 1e9
  end
  local m = median(rounds)
  print(string.format("%-34s %9.1f ns/call  (median of 7 x %d)", label, m, n))
  return m
end

local function lua_add(a, b) return a + b end
local call = funcs.call
local N = tonumber(arg and arg[1]) or 1000000

local base = measure("plain Lua function add(a, b)", N, function(n)
  local s = 0
  for i = 1, n do s = lua_add(s, 1) end
  assert(s == n)
end)
local wasm = measure("funcs.call(\"bench:add\", i, 1)", N, function(n)
  local s = 0
  for i = 1, n do s = call("bench:add", s, 1) end
  assert(s == n)
end)
print(string.format("ratio funcs.call / plain Lua call: %.1fx", wasm / base))
