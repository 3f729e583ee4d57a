-- Actors (SPEC §7.3) with the test actor (build/guests/actor_guest.wasm): the message round
-- trip Lua → actor → Lua (`get`, answered with `count`), outside a task (blocking) and in a
-- task (yielding), median of 7 rounds in µs, also with waiting threads that never spin
-- (`spin_us = 0`); then 1000 actors alive at once, the RSS they add.
-- Usage: LUA_CPATH='build/lua54/?.so;;' lua5.4 bench/actors.lua [N]
local wippy = require("wippy")
local process = wippy.process
local N = tonumber(arg and arg[1]) or 2000
local ok, err = wippy.registry:add({ id = "b:actor", kind = "process.wasm", path = "build/guests/actor_guest.wasm",
  imports = { "wippy:actor", "wasi:clocks", "wasi:io", "wasi:poll", "wasi:cli" } })
assert(ok, tostring(err))
-- The reference: one call through a worker thread from a task (two thread hand-offs, as a round
-- trip to an actor), measured in the same rounds.
assert(wippy.registry:add({ id = "b:add", kind = "function.wasm", path = "build/guests/async_guest.wasm", method = "add" }))

local clock = dofile("bench/clock.lua")
local function now() return clock() * 1000 end

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) or 0
end

local function round_trips(pid, n)
  for _ = 1, n do
    assert(process.send(pid, "get"))
    assert(process.receive(5000))
  end
end

local function median(xs)
  table.sort(xs)
  return xs[math.floor(#xs / 2) + 1]
end

local pid = process.spawn("b:actor")
round_trips(pid, 100)
local blocking, task, ref, asleep = {}, {}, {}, {}
for r = 1, 7 do
  -- Waiting threads that sleep at once (spin_us = 0), then the default spin.
  wippy.configure({ spin_us = 0 })
  local t0 = now()
  round_trips(pid, N)
  asleep[r] = (now() - t0) / N * 1000
  wippy.configure({ spin_us = 50 })
  t0 = now()
  wippy.run(function() for i = 1, N do assert(wippy.funcs.call("b:add", i, 1) == i + 1) end end)
  ref[r] = (now() - t0) / N * 1000
  t0 = now()
  round_trips(pid, N)
  blocking[r] = (now() - t0) / N * 1000
  t0 = now()
  wippy.run(function() round_trips(pid, N) end)
  task[r] = (now() - t0) / N * 1000
end
print(string.format("%-52s %8.1f µs", "reference: funcs.call through a worker, in a task", median(ref)))
print(string.format("%-52s %8.1f µs", "round trip Lua -> actor -> Lua, blocking, spin_us=0", median(asleep)))
print(string.format("%-52s %8.1f µs", "round trip Lua -> actor -> Lua, blocking", median(blocking)))
print(string.format("%-52s %8.1f µs", "round trip Lua -> actor -> Lua, in a task", median(task)))
process.send(pid, "stop")

local before = rss_kb()
local pids = {}
local t0 = now()
for i = 1, 1000 do pids[i] = assert(process.spawn("b:actor")) end
-- In batches of 100: this state's mailbox holds 128 messages (more replies would be refused).
for b = 0, 900, 100 do
  for i = b + 1, b + 100 do assert(process.send(pids[i], "get")) end
  for _ = 1, 100 do assert(process.receive(10000)) end
end
local started = now() - t0
local during = rss_kb()
print(string.format("1000 actors alive: %.0f ms to start and answer, RSS +%.1f MB (%.1f KB each)",
  started, (during - before) / 1024, (during - before) / 1000))
for i = 1, 1000 do process.send(pids[i], "stop") end
for _ in process.events() do end
