-- The funcs.call permission check (SPEC §5.4) on the fast path: a loop of `funcs.call` of a WAT
-- `add` run by a `function.lua` entry, called plainly (no scope: the check is one pointer test)
-- and through an executor whose scope has 10 policies (the check evaluates them on every call),
-- side by side in one run. Prints the median of 7 rounds in ns per call.
-- Usage: LUA_CPATH='build/lua54/?.so' lua5.4 bench/security.lua [N]
local wippy = require("wippy")
local funcs, security = wippy.funcs, wippy.security
local clock = os.clock
local N = tonumber(arg and arg[1]) or 1000000

assert(wippy.registry:add({ id = "bench:add", kind = "function.wat", wit = "add: func(a: s32, b: s32) -> s32;",
  source = [[(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))]],
  pool = { type = "inline" } }))
assert(wippy.registry:add({ id = "bench:loop", kind = "function.lua", handler = function(n)
  local call, s = funcs.call, 0
  local t0 = clock()
  for _ = 1, n do s = call("bench:add", s, 1) end
  assert(s == n)
  return (clock() - t0) / n * 1e9
end }))

local policies = {}
for i = 1, 9 do
  policies[i] = { id = "p" .. i, actions = { "funcs.call" }, resources = { "other" .. i .. ":*" }, effect = "allow" }
end
policies[10] = { id = "p10", actions = { "funcs.call" }, resources = { "bench:*" }, effect = "allow" }
local scoped = funcs.new():with_actor(security.new_actor("user:1")):with_scope(security.new_scope(policies))

local function median(xs)
  table.sort(xs)
  return xs[math.floor(#xs / 2) + 1]
end

local plain, with_scope = {}, {}
for r = 1, 7 do
  plain[r] = funcs.call("bench:loop", N)
  with_scope[r] = scoped:call("bench:loop", N)
end
local p, s = median(plain), median(with_scope)
print(string.format("%-52s %8.1f ns/call", "funcs.call of WAT add, no scope", p))
print(string.format("%-52s %8.1f ns/call", "funcs.call of WAT add, a 10-policy scope", s))
print(string.format("check with a 10-policy scope: %+.1f ns", s - p))
