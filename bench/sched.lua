-- Scheduler, pools and isolation benchmarks (issue 4). One section per run, so that each
-- measures in a fresh process (peak RSS, instance counts):
--
--   lua5.4 bench/sched.lua sleep     [tasks=1000 ms=50 rounds=5 blocking=40]
--   lua5.4 bench/sched.lua cpu       [max_tasks=4 calls=3 rounds=5 ms=100]
--   lua5.4 bench/sched.lua latency   [rounds=7]
--   lua5.4 bench/sched.lua isolate   [rounds=7]
--
-- (or luajit), with the module on LUA_CPATH. Each prints a Markdown table of medians;
-- bench/issue4.sh runs them all on both VMs. Wall time: bench/clock.lua.
local wippy = require("wippy")
local funcs = wippy.funcs
local call = funcs.call

local ROOT = (arg and arg[0] or ""):match("^(.*)/bench/[^/]*$") or "."
local ASYNC = os.getenv("ASYNC_GUEST") or (ROOT .. "/build/guests/async_guest.wasm")
local VM = jit and jit.version or _VERSION

------------------------------------------------------------------------------------------
-- Helpers

local now = dofile(ROOT .. "/bench/clock.lua")

local function median(xs)
  local s = {}
  for i = 1, #xs do s[i] = xs[i] end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

local function max(xs)
  local m = -math.huge
  for i = 1, #xs do if xs[i] > m then m = xs[i] end end
  return m
end

local function min(xs)
  local m = math.huge
  for i = 1, #xs do if xs[i] < m then m = xs[i] end end
  return m
end

-- A field of /proc/self/status in MiB (VmHWM = peak resident set, VmRSS = current).
local function status_mib(field)
  local f = io.open("/proc/self/status", "r")
  if not f then return 0 / 0 end
  for line in f:lines() do
    local kb = line:match("^" .. field .. ":%s+(%d+)%s+kB")
    if kb then
      f:close()
      return tonumber(kb) / 1024
    end
  end
  f:close()
  return 0 / 0
end

local function sha256(path)
  local p = assert(io.popen("sha256sum '" .. path .. "'"))
  local out = p:read("*l") or ""
  p:close()
  return assert(out:match("^(%x+)"), "sha256sum failed for " .. path)
end

local function sh(cmd)
  local p = io.popen(cmd)
  if not p then return "?" end
  local out = p:read("*l") or "?"
  p:close()
  return out
end

local async_hash
local function add_component(id, method, pool)
  async_hash = async_hash or sha256(ASYNC)
  local ok, err = wippy.registry:add({
    id = id, kind = "function.wasm", path = ASYNC, hash = "sha256:" .. async_hash, method = method, pool = pool,
    imports = { "wasi:clocks", "wasi:cli" }, -- sleep-ms waits on the monotonic clock
  })
  assert(ok, tostring(err))
end

local function add_wat(id, pool)
  local ok, err = wippy.registry:add({
    id = id,
    kind = "function.wat",
    source = [[(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))]],
    wit = "add: func(a: u32, b: u32) -> u32;",
    pool = pool,
  })
  assert(ok, tostring(err))
end

-- A component written in WAT: no memory, no WASI, one lifted function (the smallest component).
local function add_wat_component(id, pool)
  local ok, err = wippy.registry:add({
    id = id,
    kind = "function.wat",
    source = [[(component
  (core module $m (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
  (core instance $i (instantiate $m))
  (func (export "add") (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $i "add"))))]],
    pool = pool,
  })
  assert(ok, tostring(err))
end

local function opts_from_args()
  local o = {}
  for i = 2, #arg do
    local k, v = arg[i]:match("^([%w_]+)=(.*)$")
    if k then o[k] = tonumber(v) or v end
  end
  return o
end

local function fmt(x, digits)
  return string.format("%." .. (digits or 1) .. "f", x)
end

local function header(title)
  print("")
  print("### " .. title .. " — " .. VM .. ", wippy " .. wippy.version .. ", nproc " .. sh("nproc")
    .. ", workers " .. wippy.stats().engine.workers .. ", load " .. sh("cut -d' ' -f1-3 /proc/loadavg"))
  print("")
end

------------------------------------------------------------------------------------------
-- 1. Many tasks waiting in a component (sleep-ms through wasi:clocks)

local function section_sleep(o)
  local tasks, ms, rounds, nblock = o.tasks or 1000, o.ms or 50, o.rounds or 5, o.blocking or 40
  add_component("b:sleep", "sleep-ms", { type = "lazy", max_size = math.max(tasks, 1000) })
  local rss_before = status_mib("VmRSS")

  add_component("b:sleep16", "sleep-ms", { type = "lazy" })

  local function one_round(body)
    local t0 = now()
    local bad = wippy.run(function()
      local hs = {}
      for i = 1, tasks do hs[i] = wippy.spawn(body) end
      local bad = 0
      for i = 1, tasks do
        local v, e = hs[i]:result()
        if v == nil or tonumber(v) < ms then
          bad = bad + 1
          if bad == 1 then io.stderr:write("bad result: ", tostring(v), " ", tostring(e), "\n") end
        end
      end
      return bad
    end)
    local dt = now() - t0
    assert(bad == 0, bad .. " tasks failed")
    return dt
  end

  local wasm = {}
  for r = 1, rounds do
    wasm[r] = one_round(function() return call("b:sleep", ms) end)
  end
  local hwm_after_wasm = status_mib("VmHWM")
  local st = wippy.stats("b:sleep")

  -- The scheduler alone: the same tasks sleeping with wippy.sleep (no WebAssembly).
  local plain = {}
  for r = 1, rounds do
    plain[r] = one_round(function() wippy.sleep(ms); return ms end)
  end

  -- The same tasks on a pool of the default size (16): the other calls wait for a slot.
  local small = one_round(function() return call("b:sleep16", ms) end)

  -- The same call from a caller outside any task: each blocks the Lua thread.
  local per = {}
  local t0 = now()
  for i = 1, nblock do
    local c0 = now()
    local v, e = call("b:sleep", ms)
    assert(v, tostring(e))
    per[i] = now() - c0
  end
  local block_total = now() - t0

  header(string.format("1. %d tasks, each `funcs.call` of `sleep-ms(%d)` (component, pool lazy max_size %d)",
    tasks, ms, math.max(tasks, 1000)))
  print("| case | round 1 | median of " .. rounds .. " | best | goal |")
  print("|---|---:|---:|---:|---|")
  print(string.format("| %d tasks × `sleep-ms(%d)` in WebAssembly | %s s | **%s s** | %s s | ≤ 0.3 s: %s |",
    tasks, ms, fmt(wasm[1], 3), fmt(median(wasm), 3), fmt(min(wasm), 3),
    median(wasm) <= 0.3 and "met" or "NOT met"))
  print(string.format("| %d tasks × `wippy.sleep(%d)` (scheduler only) | %s s | %s s | %s s | |",
    tasks, ms, fmt(plain[1], 3), fmt(median(plain), 3), fmt(min(plain), 3)))
  print(string.format("| the same on a pool of the default `max_size` 16 (one round; ≈ %d/16 × %d ms expected) | %s s | | | |",
    tasks, ms, fmt(small, 3)))
  print(string.format("| %d blocking calls outside a task (measured) | | %s s total, %s ms/call median | | |",
    nblock, fmt(block_total, 2), fmt(median(per) * 1000, 1)))
  print(string.format("| %d blocking calls outside a task (extrapolated: %d × median) | | ≈ %s s | | |",
    tasks, tasks, fmt(median(per) * tasks, 1)))
  print("")
  print(string.format("Peak RSS (VmHWM) after the WebAssembly rounds: **%s MiB** (goal ≤ 300 MB: %s); RSS before "
    .. "the first round %s MiB. Entry stats: %d calls, %d live instances, p50 %s ms, p99 %s ms.",
    fmt(hwm_after_wasm), hwm_after_wasm * 1048576 <= 300e6 and "met" or "NOT met", fmt(rss_before),
    st.calls, st.instances, fmt(st.p50_us / 1000, 1), fmt(st.p99_us / 1000, 1)))
  print(string.format("Speed-up of %d tasks over %d blocking calls: %s×.", tasks, tasks,
    fmt(median(per) * tasks / median(wasm), 0)))
end

------------------------------------------------------------------------------------------
-- 2. CPU-bound calls from 1..N tasks on worker pools

local function section_cpu(o)
  local nproc = tonumber(sh("nproc")) or 1
  local max_tasks = o.max_tasks or math.max(4, 2 * nproc)
  local calls, rounds, target_ms = o.calls or 3, o.rounds or 5, o.ms or 100
  add_component("b:burn_lazy", "burn", { type = "lazy" })
  add_component("b:burn_static", "burn", { type = "static" })
  add_component("b:burn_inline", "burn", { type = "inline" })

  -- Calibrate: iterations for `target_ms` of one call, from blocking calls on the Lua thread.
  local probe = 20000000
  assert(call("b:burn_lazy", probe))
  local ts = {}
  for i = 1, 3 do
    local t0 = now()
    assert(call("b:burn_lazy", probe))
    ts[i] = now() - t0
  end
  local iters = math.floor(probe * (target_ms / 1000) / median(ts))
  local ts1 = {}
  for i = 1, 3 do
    local t0 = now()
    assert(call("b:burn_lazy", iters))
    ts1[i] = now() - t0
  end
  local one_ms = median(ts1) * 1000

  -- What the machine gives at the moment: the same plain Lua busy loop in 1 and in 2
  -- processes at once (no wippy). On a shared machine a second core may not be free.
  local lua = arg[-1] or "lua5.4"
  local loop = string.format("%s -e 'local x = 0; for i = 1, %d do x = x + i end'", lua, jit and 400000000 or 40000000)
  local function machine()
    local t0 = now()
    os.execute(loop)
    local one = now() - t0
    t0 = now()
    os.execute("(" .. loop .. ") & (" .. loop .. ") & wait")
    local two = now() - t0
    return 2 * one / two
  end
  local control_before = machine()

  local function round(id, k)
    local t0 = now()
    wippy.run(function()
      local hs = {}
      for t = 1, k do
        hs[t] = wippy.spawn(function()
          for _ = 1, calls do assert(call(id, iters)) end
        end)
      end
      for t = 1, k do
        local ok, e = hs[t]:result()
        if ok == nil and e ~= nil then error(e) end
      end
    end)
    return k * calls / (now() - t0)
  end

  header(string.format("2. CPU-bound `burn(%d)` (≈ %s ms per call, blocking on the Lua thread), %d calls per task",
    iters, fmt(one_ms, 0), calls))
  print("| pool | tasks | calls/s (median of " .. rounds .. ") | best | speed-up vs 1 task |")
  print("|---|---:|---:|---:|---:|")
  local base2
  for _, pool in ipairs({ "lazy", "static", "inline" }) do
    local id = "b:burn_" .. pool
    local base
    local ks = {}
    for k = 1, max_tasks do ks[#ks + 1] = k end
    if pool == "inline" then ks = { 1, 2 } end
    for _, k in ipairs(ks) do
      local tp = {}
      for r = 1, (pool == "inline" and 3 or rounds) do tp[r] = round(id, k) end
      local m = median(tp)
      base = base or m
      if pool == "lazy" and k == 2 then base2 = m / base end
      print(string.format("| %s | %d | %s | %s | %s× |", pool, k, fmt(m, 2), fmt(max(tp), 2), fmt(m / base, 2)))
    end
  end
  local control_after = machine()
  print("")
  print(string.format("Goal ≥ 1.8× at 2 tasks on 2 cores (pool lazy): %s× — %s (nproc %d, %d worker threads).",
    fmt(base2 or 0, 2), (base2 or 0) >= 1.8 and "met" or "NOT met", nproc, wippy.stats().engine.workers))
  print(string.format("Machine check, a plain Lua loop in 2 processes vs 1 (no wippy): %s× before, %s× after "
    .. "(2.0× = two free cores; below, another load took a core and the speed-ups above are capped alike).",
    fmt(control_before, 2), fmt(control_after, 2)))
end

------------------------------------------------------------------------------------------
-- 3. Round-trip latency of a trivial call, 4. pool.isolate

-- Median time per call of `body(n)` over `rounds` rounds, n calibrated to ≈ 0.1 s a round.
-- `body` may return how many calls it made, when not exactly n.
local function per_call(body, rounds)
  local n = 16
  while true do
    local t0 = now()
    body(n)
    local dt = now() - t0
    if dt >= 0.02 then
      n = math.max(1, math.floor(n * 0.1 / dt))
      break
    end
    n = n * 4
  end
  local xs = {}
  for r = 1, rounds do
    local t0 = now()
    local made = body(n) or n
    xs[r] = (now() - t0) / made
  end
  return median(xs), min(xs), n
end

local function loop_outside(id)
  return function(n)
    local s = 0
    for _ = 1, n do s = call(id, s, 1) end
    assert(s == n, id .. ": wrong sum " .. tostring(s))
  end
end

local function loop_in_task(id)
  return function(n)
    wippy.run(function()
      local s = 0
      for _ = 1, n do s = call(id, s, 1) end
      assert(s == n, id .. ": wrong sum " .. tostring(s))
    end)
  end
end

-- `k` tasks at once, n calls in all: the time per call is the inverse of the throughput.
local function loop_tasks(id, k)
  return function(n)
    local each = math.max(1, math.floor(n / k))
    wippy.run(function()
      local hs = {}
      for t = 1, k do
        hs[t] = wippy.spawn(function()
          for _ = 1, each do assert(call(id, 1, 2) == 3) end
        end)
      end
      for t = 1, k do hs[t]:result() end
    end)
    return each * k
  end
end

local function us(x) return fmt(x * 1e6, 2) end

local function section_latency(o)
  local rounds = o.rounds or 7
  add_component("c:add_inline", "add", { type = "inline" })
  add_component("c:add_lazy", "add", { type = "lazy" })
  add_wat("w:add_inline", { type = "inline" })
  add_wat("w:add_lazy", { type = "lazy" })

  header("3. Round-trip latency of a trivial `add` (µs per call, median of " .. rounds .. " rounds)")
  print("| how | component `add` (async guest) | core WAT `add` |")
  print("|---|---:|---:|")
  local rows = {
    { "pool inline, outside a task (Lua thread)", function(p) return loop_outside(p .. ":add_inline") end },
    { "pool inline, inside a task (Lua thread)", function(p) return loop_in_task(p .. ":add_inline") end },
    { "pool lazy, outside a task (blocking caller)", function(p) return loop_outside(p .. ":add_lazy") end },
    { "pool lazy, inside a task (worker thread, task yields)", function(p) return loop_in_task(p .. ":add_lazy") end },
    { "pool lazy, 64 tasks at once (time per call = 1 / throughput)", function(p) return loop_tasks(p .. ":add_lazy", 64) end },
  }
  local res = {}
  for i, row in ipairs(rows) do
    local c = per_call(row[2]("c"), rounds)
    local w = per_call(row[2]("w"), rounds)
    res[i] = { c, w }
    print(string.format("| %s | %s | %s |", row[1], us(c), us(w)))
  end
  print("")
  local function verdict(a, b) return fmt(a / b, 2) .. "× " .. (a / b <= 2 and "(met)" or "(NOT met)") end
  print(string.format("Goal: blocking call to a `lazy` entry ≤ 2× inline. Component: %s of inline outside a task, "
    .. "%s of inline in a task. Core WAT: %s of inline outside a task, %s of inline in a task.",
    verdict(res[3][1], res[1][1]), verdict(res[3][1], res[2][1]), verdict(res[3][2], res[1][2]),
    verdict(res[3][2], res[2][2])))
  print(string.format("Worker round trip (lazy in a task) vs inline in a task: component %s×, core %s×.",
    fmt(res[4][1] / res[2][1], 1), fmt(res[4][2] / res[2][2], 1)))
end

local function section_isolate(o)
  local rounds = o.rounds or 7
  add_component("c:add_iso", "add", { type = "lazy", isolate = true })
  add_component("c:add_warm", "add", { type = "lazy" })
  add_wat("w:add_iso", { type = "lazy", isolate = true })
  add_wat("w:add_warm", { type = "lazy" })
  add_component("c:add_iso_inline", "add", { type = "inline", isolate = true })
  add_wat("w:add_iso_inline", { type = "inline", isolate = true })
  add_component("c:add_warm_inline", "add", { type = "inline" })
  add_wat("w:add_warm_inline", { type = "inline" })
  add_wat_component("m:add_iso", { type = "lazy", isolate = true })
  add_wat_component("m:add_warm", { type = "lazy" })

  header("4. `pool.isolate: true`: a fresh instance per call (µs per call, median of " .. rounds .. " rounds)")
  print("| entry | how | isolate | warm | instantiate (difference) | goal ≤ 10 µs |")
  print("|---|---|---:|---:|---:|---|")
  local cases = {
    { "core WAT `add`", "w", "pool lazy, outside a task (blocking)", loop_outside, "" },
    { "component `add`", "c", "pool lazy, outside a task (blocking)", loop_outside, "" },
    { "WAT component `add` (no memory, no WASI)", "m", "pool lazy, outside a task (blocking)", loop_outside, "" },
    { "core WAT `add`", "w", "pool inline, in a task", loop_in_task, "_inline" },
    { "component `add`", "c", "pool inline, in a task", loop_in_task, "_inline" },
  }
  for _, c in ipairs(cases) do
    local iso = per_call(c[4](c[2] .. ":add_iso" .. c[5]), rounds)
    local warm = per_call(c[4](c[2] .. ":add_warm" .. c[5]), rounds)
    print(string.format("| %s | %s | %s | %s | %s | %s |", c[1], c[3], us(iso), us(warm), us(iso - warm),
      iso <= 10e-6 and "met" or "NOT met"))
  end
  local si, sw = wippy.stats("c:add_iso"), wippy.stats("w:add_iso")
  print("")
  print(string.format("Fresh instances: `c:add_iso` %d calls, %d recycled; `w:add_iso` %d calls, %d recycled "
    .. "(every call discarded its instance).",
    si.calls, si.recycled, sw.calls, sw.recycled))
end

------------------------------------------------------------------------------------------

local sections = { sleep = section_sleep, cpu = section_cpu, latency = section_latency, isolate = section_isolate }
local which = arg and arg[1]
local f = sections[which or ""]
if not f then
  io.stderr:write("usage: bench/sched.lua sleep|cpu|latency|isolate [key=value ...]\n")
  os.exit(2)
end
f(opts_from_args())
