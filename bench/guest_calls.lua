-- Registry calls from WebAssembly (wippy:runtime/funcs, SPEC §5.2) with the relay test guest
-- (build/guests/relay_guest.wasm): the cost of a round trip through the registry, side by side
-- in one run. Prints the median of 7 rounds in µs per call.
--   guest → guest        funcs.call("relay", "echo", s): Lua → relay → echo
--   guest → Lua → guest  Lua → relay → a function.lua entry → echo (the Lua function runs at
--                        once on the blocked Lua thread)
--   the same in a task   each call yields; the guest's Lua call goes through the scheduler
--   references           funcs.call("echo", s) alone, blocking and in a task (one round trip
--                        through a worker thread: the machine's thread wake-up cost)
-- Usage: LUA_CPATH='build/lua54/?.so;;' lua5.4 bench/guest_calls.lua [N]
local wippy = require("wippy")
local funcs = wippy.funcs
local N = tonumber(arg and arg[1]) or 20000
local RELAY = "build/guests/relay_guest.wasm"

local function add(e) assert(wippy.registry:add(e)) end
add({ id = "b:relay", kind = "function.wasm", path = RELAY, method = "relay", imports = { "funcs" } })
add({ id = "b:echo", kind = "function.wasm", path = RELAY, method = "echo" })
add({ id = "b:lua", kind = "function.lua", handler = function(s) return funcs.call("b:echo", s) end })

local clock = dofile("bench/clock.lua")
local function now() return clock() * 1000 end

local function timed(n, fn)
  local t0 = now()
  fn(n)
  return (now() - t0) / n * 1000
end

local cases = {
  { "funcs.call of echo (reference)", function(n) for _ = 1, n do assert(funcs.call("b:echo", "x") == "x") end end },
  { "funcs.call of echo in a task (reference)", function(n)
    wippy.run(function() for _ = 1, n do assert(funcs.call("b:echo", "x") == "x") end end)
  end },
  { "guest -> guest (relay -> echo)", function(n) for _ = 1, n do assert(funcs.call("b:relay", "b:echo", "x") == "x") end end },
  { "guest -> Lua -> guest, blocking", function(n) for _ = 1, n do assert(funcs.call("b:relay", "b:lua", "x") == "x") end end },
  { "guest -> Lua -> guest, in a task", function(n)
    wippy.run(function() for _ = 1, n do assert(funcs.call("b:relay", "b:lua", "x") == "x") end end)
  end },
}

local function median(xs)
  table.sort(xs)
  return xs[math.floor(#xs / 2) + 1]
end

local results = {}
for _, c in ipairs(cases) do c[2](100); results[c[1]] = {} end
for _ = 1, 7 do
  for _, c in ipairs(cases) do
    local n = c[1]:find("task") and math.max(1, math.floor(N / 4)) or N
    table.insert(results[c[1]], timed(n, c[2]))
  end
end
for _, c in ipairs(cases) do
  print(string.format("%-40s %8.2f µs/call", c[1], median(results[c[1]])))
end
