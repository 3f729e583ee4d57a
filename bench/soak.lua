-- Soak (issue 12): many mixed calls in one process, with the resident set size measured after a
-- warm-up and at the end.
--
--   lua5.4 bench/soak.lua mixed [calls=1000000] [max_growth_mb=5]
--   lua5.4 bench/soak.lua tasks [tasks=10000] [ms=100] [rounds=10] [warm=5] [slots=1000] [max_growth_mb=5]
--   lua5.4 bench/soak.lua gc    [calls=100000]  [max_growth_mb=5]
--
-- (or luajit), with the module on LUA_CPATH and the guests in build/guests (make guests). Run
-- from the repository root. Each mode prints its figures and exits 1 when a call gave a wrong
-- result or the RSS grew by more than max_growth_mb between the warm-up and the end. `make
-- soak` runs the three modes at full size on lua5.4 and LuaJIT; spec/soak_spec.lua runs them
-- in `make test` (docs/reliability.md, "Soak", says at which sizes).
--
-- dofile("bench/soak.lua") returns the modes as functions instead of running one.
local wippy = require("wippy")
local funcs = wippy.funcs
local call, async = funcs.call, funcs.async

local ROOT = os.getenv("WIPPY_ROOT") or "."
local TYPES = ROOT .. "/build/guests/types_guest.wasm"
local ASYNC = ROOT .. "/build/guests/async_guest.wasm"
local CORE = ROOT .. "/build/guests/core_math.wasm"
local VM = jit and jit.version or _VERSION

local now = dofile(ROOT .. "/bench/clock.lua")

------------------------------------------------------------------------------------------
-- Helpers

-- VmRSS of /proc/self/status in MiB.
local function rss_mib()
  local f = assert(io.open("/proc/self/status", "r"))
  for line in f:lines() do
    local kb = line:match("^VmRSS:%s+(%d+)%s+kB")
    if kb then
      f:close()
      return tonumber(kb) / 1024
    end
  end
  f:close()
  error("no VmRSS in /proc/self/status")
end

-- On LuaJIT, glibc's malloc_trim(0) through the FFI: it gives free pages of every malloc arena
-- back to the system. Worker threads free what other threads allocated (instances, results),
-- which leaves free pages scattered over their arenas: up to 10 MiB that come and go between
-- samples of LuaJIT's RSS (Lua 5.4's stays within 1 MiB). Without the FFI, nothing.
local trim = function() end
if jit then
  local ok, ffi = pcall(require, "ffi")
  if ok and pcall(ffi.cdef, "int malloc_trim(size_t pad);") then
    trim = function() ffi.C.malloc_trim(0) end
  end
end

-- Collects until the heap stops shrinking, gives free pages back (LuaJIT), returns the RSS.
local function settled_rss()
  collectgarbage("collect")
  collectgarbage("collect")
  trim()
  return rss_mib()
end

local added = false
local function setup()
  if added then return end
  added = true
  local function add(entry)
    local ok, err = wippy.registry:add(entry)
    assert(ok, tostring(err))
  end
  for _, path in ipairs({ TYPES, ASYNC, CORE }) do
    local f = io.open(path, "rb")
    assert(f, path .. " is missing: build the guests first (bash scripts/guests.sh build/guests)")
    f:close()
  end
  -- Core modules: an inline WAT multiply, a WAT divide that traps on 0, core_math's add_i64.
  add({ id = "soak:mul", kind = "function.wat", wit = "mul: func(a: s32, b: s32) -> s32;",
        source = '(module (func (export "mul") (param i32 i32) (result i32) local.get 0 local.get 1 i32.mul))' })
  add({ id = "soak:div", kind = "function.wat", wit = "div: func(a: s32, b: s32) -> s32;",
        source = '(module (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s))' })
  add({ id = "soak:add_i64", kind = "function.wasm", path = CORE, method = "add_i64" })
  -- The types guest: records, a result with an error record, resources.
  for name, method in pairs({ add = "add", transform = "users#transform-users", find = "users#find-user",
                              make = "counters#make-counter", total = "counters#total" }) do
    add({ id = "soak:" .. name, kind = "function.wasm", path = TYPES, method = method })
  end
  -- The async guest: futures on worker threads, sleeps to cancel, a component trap.
  local imports = { "wasi:clocks", "wasi:cli" }
  add({ id = "soak:aadd", kind = "function.wasm", path = ASYNC, method = "add", imports = imports })
  add({ id = "soak:sleep", kind = "function.wasm", path = ASYNC, method = "sleep-ms", imports = imports })
  add({ id = "soak:boom", kind = "function.wasm", path = ASYNC, method = "boom", imports = imports })
end

-- The entry of the tasks mode: sleep-ms on a pool of `slots` instances.
local function add_many(slots)
  wippy.registry:remove("soak:many")
  local ok, err = wippy.registry:add({ id = "soak:many", kind = "function.wasm", path = ASYNC, method = "sleep-ms",
                                       imports = { "wasi:clocks", "wasi:cli" }, pool = { type = "lazy", max_size = slots } })
  assert(ok, tostring(err))
end

-- The result checks: a wrong value counts as a failure and the first few are printed.
local failures = 0
local function fail(what, ...)
  failures = failures + 1
  if failures <= 5 then
    local parts = { what }
    for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
    io.stderr:write("soak: wrong result: ", table.concat(parts, " "), "\n")
  end
end

local function expect(what, want, got, err)
  if got ~= want then fail(what, "want", want, "got", got, err) end
end

-- A failure of kind `kind` whose message contains `text`.
local function expect_err(what, kind, text, ok, v, err)
  if not ok then return fail(what, "raised", v) end
  if v ~= nil or not wippy.errors.is(err) or err:kind() ~= kind or not tostring(err):find(text, 1, true) then
    fail(what, "want", kind, text, "got", v, err)
  end
end

local USERS = {
  { id = 1, name = "ada", tags = { "admin" }, active = true, email = "ada@example.com" },
  { id = 2, name = "bob", tags = {}, active = true },
}

------------------------------------------------------------------------------------------
-- One cycle of the mix: 31 calls, each result checked (with `gc`, r:drop() is left out and a
-- future that nobody collects is added). `i` varies the arguments; `gc` adds a
-- collector step between the calls and leaves every resource to the finalizers.

local CYCLE = 31

local function cycle(i, gc)
  local step = gc and function() collectgarbage("step") end or function() end
  local a = i % 1000
  -- 6 core-module calls
  for k = 1, 4 do
    expect("mul", a * k, call("soak:mul", a, k)); step()
  end
  expect("add_i64", a + 7, call("soak:add_i64", a, 7)); step()
  expect("div", 6, call("soak:div", 6 * (a + 1), a + 1)); step()
  -- 2 traps: a core module and a component, caught with pcall
  expect_err("div by 0", "INTERNAL", "integer divide by zero", pcall(call, "soak:div", a, 0)); step()
  expect_err("boom", "INTERNAL", "wasm trap", pcall(call, "soak:boom")); step()
  -- 6 component calls with records and results
  for k = 1, 2 do
    expect("add", a + k, call("soak:add", a, k)); step()
  end
  for _ = 1, 2 do
    local us = call("soak:transform", USERS)
    if type(us) ~= "table" or us[1].name ~= "ADA" or us[2].active ~= false or us[1].tags[2] ~= "seen" then
      fail("transform", us)
    end
    step()
  end
  local u = call("soak:find", USERS, 2)
  if type(u) ~= "table" or u.name ~= "bob" then fail("find", u) end
  step()
  local none, lookup = call("soak:find", USERS, 9)
  if none ~= nil or type(lookup) ~= "table" or lookup.code ~= 404 then fail("find 9", none, lookup) end
  step()
  -- 8 resource calls: a counter dropped by hand (or by the collector), one left to the collector
  local c = call("soak:make", a)
  expect("increment", a + 2, c:increment(2)); step()
  expect("value", a + 2, c:value()); step()
  local d = call("soak:make", 1)
  expect("total", a + 3, call("soak:total", c, d)); step()
  expect("increment d", 2, d:increment(1)); step()
  if not gc then c:drop() end
  c, d = nil, nil
  step()
  local e = call("soak:make", 5)
  expect("value e", 5, e:value())
  e = nil
  step()
  -- 8 futures: 6 finish, 2 are canceled while the guest sleeps
  local fs = {}
  for k = 1, 6 do fs[k] = async("soak:aadd", a, k) end
  local s1, s2 = async("soak:sleep", 10000), async("soak:sleep", 10000)
  step()
  s1:cancel()
  for k = 1, 6 do expect("future", a + k, fs[k]:result()); step() end
  s2:cancel()
  expect_err("cancel 1", "CANCELED", "canceled", pcall(s1.result, s1)); step()
  expect_err("cancel 2", "CANCELED", "canceled", pcall(s2.result, s2)); step()
  if gc then
    -- a future nobody collects: the collector takes it while its worker thread computes
    async("soak:aadd", a, 100)
    step()
  end
  return CYCLE
end

------------------------------------------------------------------------------------------
-- Modes

local M = {}

local function report(name, o, fields)
  local parts = {}
  for _, kv in ipairs(fields) do parts[#parts + 1] = kv[1] .. " " .. tostring(kv[2]) end
  print(("soak %s (%s, wippy %s): %s"):format(name, VM, wippy.version, table.concat(parts, "; ")))
  io.stdout:flush()
end

-- Runs `calls` calls of the mix in batches of 40 cycles: 30 outside any task, then 10 in a
-- wippy.run of 10 tasks, one cycle each (their calls on worker threads). The RSS is taken
-- after the first tenth (the warm-up: every pool, instance and cache at its working size) and
-- at the end.
local function run_mix(name, o, gc)
  setup()
  failures = 0
  local calls = o.calls
  local cycles = math.max(1, math.floor(calls / CYCLE))
  local warm = math.max(1, math.floor(cycles / 10))
  local t0 = now()
  local rss_warm, t_warm
  local done, total = 0, 0
  local BATCH = 40 -- cycles per batch: 30 outside tasks, 10 in tasks
  while done < cycles do
    local n = math.min(BATCH, cycles - done)
    local outside = math.max(1, n - math.floor(n / 4))
    for k = 1, outside do total = total + cycle(done + k, gc) end
    if n > outside then
      wippy.run(function()
        local hs = {}
        for t = outside + 1, n do
          hs[#hs + 1] = wippy.spawn(cycle, done + t, gc)
        end
        for _, h in ipairs(hs) do
          local n_calls, err = h:result()
          if n_calls == nil then fail("task", err) else total = total + n_calls end
        end
      end)
    end
    done = done + n
    -- Lua 5.4's `collectgarbage("step")` after every call lets objects whose finalizer ran pile
    -- up unswept (pure Lua does it too: docs/reliability.md, "Soak"); a full collection now and
    -- then frees them, so the RSS shows what wippy keeps, not that heap.
    if gc and done % 200 == 0 then collectgarbage("collect") end
    if not rss_warm and done >= warm then
      rss_warm, t_warm = settled_rss(), now()
    end
  end
  local rss_end = settled_rss()
  local t1 = now()
  local growth = rss_end - rss_warm
  local st = wippy.stats()
  report(name, o, {
    { "calls", total }, { "cycles", done }, { "time", ("%.1f s"):format(t1 - t0) },
    { "µs/call", ("%.2f"):format((t1 - t0) / total * 1e6) },
    { "RSS after warm-up", ("%.1f MiB"):format(rss_warm) }, { "RSS at end", ("%.1f MiB"):format(rss_end) },
    { "growth", ("%+.2f MiB (limit %g)"):format(growth, o.max_growth_mb) },
    { "instances", ("types %d, async %d"):format(st["soak:add"].instances, st["soak:aadd"].instances) },
    { "wrong results", failures },
  })
  return { calls = total, growth = growth, rss_warm = rss_warm, rss_end = rss_end, failures = failures,
           seconds = t1 - t0, warm_seconds = t_warm - t0 }
end

function M.mixed(o)
  o.calls = o.calls or 1000000
  o.max_growth_mb = o.max_growth_mb or 5
  return run_mix("mixed", o, false)
end

function M.gc(o)
  o.calls = o.calls or 100000
  o.max_growth_mb = o.max_growth_mb or 5
  return run_mix("gc", o, true)
end

-- `tasks` tasks at once, each in a call of the guest's sleep-ms(`ms`): all of them have their
-- call outstanding before the first returns (counted: "in flight at once"); `slots` of them
-- run in the guest at a time (the pool's max_size), the others wait for an instance, so the
-- number of instances (kept warm from round to round) is the same every round. The first
-- `warm` rounds are the warm-up: LuaJIT's RSS climbs for about 5 rounds of 10,000 tasks
-- (malloc arenas and LuaJIT's allocator reaching their working size; it then stays within
-- 0.6 MiB over 25 more rounds), Lua 5.4's for 2. The RSS after round `warm` and after the last
-- round are compared. The entry and its instances are removed at the end.
function M.tasks(o)
  setup()
  failures = 0
  local tasks, ms, slots = o.tasks or 10000, o.ms or 100, o.slots or 1000
  local rounds, warm = o.rounds or 10, o.warm or 5
  assert(warm < rounds, "warm must be less than rounds")
  o.max_growth_mb = o.max_growth_mb or 5
  local rss_start = settled_rss()
  local peak_in_flight, rss_warm = 0, nil
  local times, rss_rounds = {}, {}
  add_many(slots)
  for r = 1, rounds do
    local t0 = now()
    local started, finished = 0, 0
    wippy.run(function()
      local hs = {}
      for i = 1, tasks do
        hs[i] = wippy.spawn(function()
          started = started + 1
          if started - finished > peak_in_flight then peak_in_flight = started - finished end
          local v, err = call("soak:many", ms)
          finished = finished + 1
          if v == nil or tonumber(v) < ms then fail("sleep", v, err) end
          return true
        end)
      end
      for i = 1, tasks do hs[i]:result() end
    end)
    times[r] = now() - t0
    rss_rounds[r] = ("%.1f"):format(settled_rss())
    if os.getenv("SOAK_TRACE") then
      io.stderr:write(("round %d: rss %s MiB, Lua heap %.0f KiB\n"):format(r, rss_rounds[r], collectgarbage("count")))
    end
    if r == warm then rss_warm = settled_rss() end
  end
  local rss_end = settled_rss()
  local growth = rss_end - rss_warm
  local tt = {}
  for r = 1, rounds do tt[r] = ("%.2f"):format(times[r]) end
  report("tasks", o, {
    { "tasks", tasks }, { "in flight at once", peak_in_flight }, { "sleep", ms .. " ms" },
    { "rounds (s)", table.concat(tt, " / ") },
    { "RSS before", ("%.1f MiB"):format(rss_start) }, { "RSS after warm-up (round " .. warm .. ")", ("%.1f MiB"):format(rss_warm) },
    { "RSS at end", ("%.1f MiB"):format(rss_end) }, { "RSS after each round (MiB)", table.concat(rss_rounds, " / ") },
    { "growth", ("%+.2f MiB (limit %g)"):format(growth, o.max_growth_mb) },
    { "instances", wippy.stats("soak:many").instances .. " (pool max_size " .. slots .. ")" },
    { "wrong results", failures },
  })
  -- A Lua state's lookup cache keeps a removed entry (and its instances) until its next call:
  -- the call of an unknown ID lets them go.
  wippy.registry:remove("soak:many")
  call("soak:none")
  return { tasks = tasks, peak_in_flight = peak_in_flight, growth = growth, rss_warm = rss_warm,
           rss_end = rss_end, failures = failures, seconds = times }
end

------------------------------------------------------------------------------------------
-- Command line

local script = arg and arg[0] and arg[0]:match("soak%.lua$")
if not script then return M end

local mode = arg[1] or "mixed"
local o = {}
for i = 2, #arg do
  local k, v = arg[i]:match("^([%w_]+)=(.*)$")
  assert(k, "bad argument " .. arg[i] .. " (key=value expected)")
  o[k] = tonumber(v) or v
end
local fn = M[mode]
if not fn then
  io.stderr:write("usage: bench/soak.lua mixed|tasks|gc [key=value ...]\n")
  os.exit(2)
end
local r = fn(o)
if r.failures > 0 then
  io.stderr:write(("soak %s: %d wrong results\n"):format(mode, r.failures))
  os.exit(1)
end
if r.growth > o.max_growth_mb then
  io.stderr:write(("soak %s: RSS grew by %.2f MiB, more than %g\n"):format(mode, r.growth, o.max_growth_mb))
  os.exit(1)
end
if mode == "tasks" and r.peak_in_flight < r.tasks then
  io.stderr:write(("soak tasks: only %d of %d tasks were in flight at once\n"):format(r.peak_in_flight, r.tasks))
  os.exit(1)
end
