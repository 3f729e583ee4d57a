-- The task scheduler (SPEC §4): wippy.spawn / wippy.run / wippy.sleep, task handles, and how
-- funcs.call, funcs.async and executors behave inside and outside tasks, with tiny WAT entries.
-- The WebAssembly side (WASI sleeps, HTTP, sockets, limits) is in async_spec.lua.
local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs
local system = require("system") -- luasystem: a dependency of busted itself

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

-- Milliseconds on a monotonic clock.
local function now() return system.monotime() * 1000 end

-- Runs a Lua chunk in a new process of the same VM with this module, killed after
-- `seconds` (default 60); returns its stdout and stderr.
local function run_child(code, seconds)
  local dir = H.tmpdir()
  H.write(dir .. "/child.lua", ("package.cpath = %q\n"):format(package.cpath) .. code)
  local p = assert(io.popen(("timeout -s KILL %d %s '%s/child.lua' 2>&1; echo \"exit $?\""):format(
    seconds or 60, H.VM, dir)))
  local out = p:read("*a")
  p:close()
  os.remove(dir .. "/child.lua")
  os.remove(dir)
  return out
end

-- Tight loop: n = 0 loops until stopped; otherwise returns n at once.
local SPIN_WAT = [[
(module
  (func (export "spin") (param $n i32) (result i32)
    (block $done
      (loop $again
        (br_if $done (local.get $n))
        (br $again)))
    (local.get $n)))]]

local ADD_WAT = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'

-- Entries on the default pool (worker threads) and inline twins of some of them.
setup(function()
  H.add_wat("sched:add", ADD_WAT, { wit = "add: func(a: s32, b: s32) -> s32;" })
  H.add_wat("sched:add_inline", ADD_WAT, { wit = "add: func(a: s32, b: s32) -> s32;", pool = { type = "inline" } })
  H.add_wat("sched:div", '(module (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s))',
    { wit = "div: func(a: s32, b: s32) -> s32;" })
  H.add_wat("sched:spin", SPIN_WAT, { wit = "spin: func(n: s32) -> s32;", limits = { max_execution_ms = 300 } })
  H.add_wat("sched:spin_inline", SPIN_WAT,
    { wit = "spin: func(n: s32) -> s32;", limits = { max_execution_ms = 300 }, pool = { type = "inline" } })
  H.add_wat("sched:spin_long", SPIN_WAT, { wit = "spin: func(n: s32) -> s32;", limits = { max_execution_ms = 5000 } })
  assert(wippy.registry:add({ id = "sched:twice", kind = "function.lua", handler = function(x) return 2 * x end }))
end)

describe("wippy.run", function()
  it("returns every result of fn, nils included, and passes the arguments", function()
    local r = pack(wippy.run(function(...) return select("#", ...), ... end, 1, nil, "x", nil))
    assert.equals(5, r.n)
    assert.same({ 4, 1, nil, "x", nil }, { unpack(r, 1, 5) })
    assert.equals(0, select("#", wippy.run(function() end)))
  end)

  it("runs fn as a task: it may sleep and call, and the results come back", function()
    local r1, r2 = wippy.run(function()
      wippy.sleep(1)
      return funcs.call("sched:add", 2, 3), funcs.call("sched:add_inline", 4, 5)
    end)
    assert.equals(5, r1)
    assert.equals(9, r2)
  end)

  it("re-raises fn's error value unchanged", function()
    local ok, err = pcall(wippy.run, function() error("run failed here") end)
    assert.is_false(ok)
    assert.matches("sched_spec%.lua:%d+: run failed here$", err)
    local obj = { code = 7 }
    local ok2, err2 = pcall(wippy.run, function() error(obj) end)
    assert.is_false(ok2)
    assert.equals(obj, err2)
  end)

  it("waits for every task spawned, also those nobody waits for", function()
    local done = {}
    wippy.run(function()
      for i = 1, 5 do
        wippy.spawn(function() wippy.sleep(10 * i); done[#done + 1] = i end)
      end
    end)
    assert.same({ 1, 2, 3, 4, 5 }, done)
  end)

  it("does not fail because another task failed", function()
    local r, e1, e2 = wippy.run(function()
      local h = wippy.spawn(function() error("inner task failed") end)
      return "main", h:result()
    end)
    assert.equals("main", r)
    assert.is_nil(e1)
    assert.matches("inner task failed$", e2)
  end)

  it("raises inside a task", function()
    local inner_ok, inner_err = wippy.run(function()
      return pcall(wippy.run, function() end)
    end)
    assert.is_false(inner_ok)
    assert.matches("wippy.run cannot be called inside a task (use wippy.spawn)", inner_err, 1, true)
  end)

  it("reports a deadlock and stays usable afterwards", function()
    -- In a child process: a scheduler left stuck would fail every later spec of this process.
    local out = run_child([[
local wippy = require("wippy")
local ok, err = pcall(wippy.run, function()
  local a, b
  a = wippy.spawn(function() wippy.sleep(5); return b:result() end)
  b = wippy.spawn(function() wippy.sleep(5); return a:result() end)
  return a:result()
end)
print(ok, err)
print(pcall(wippy.run, function() return 42 end))
]])
    local first, second = out:match("^([^\n]*)\n([^\n]*)\nexit 0\n$")
    assert.equals("false\twippy: no task can make progress (every live task waits for another task)", first)
    -- The deadlocked tasks must not make every later wippy.run fail.
    assert.equals("true\t42", second)
  end)

  it("reports a deadlock met inside a task's own coroutine to that task only", function()
    -- A plain coroutine in a task waits for a task that waits for the first: the inner loop
    -- raises there, the outer task goes on, and the scheduler stays whole.
    local out = run_child([[
local wippy = require("wippy")
local outer
outer = wippy.spawn(function()
  local t2 = wippy.spawn(function() return outer:result() end)
  local ok, err = pcall(coroutine.wrap(function() return t2:result() end))
  return tostring(ok) .. " " .. tostring(err), t2
end)
print(pcall(wippy.run, function()
  local msg, t2 = outer:result()
  return msg, (t2:result())
end))
print(pcall(wippy.run, function() return 42 end))
]])
    local first, second = out:match("^([^\n]*)\n([^\n]*)\nexit 0\n$")
    assert.equals("true\tfalse wippy: no task can make progress (every live task waits for another task)\t"
      .. "false wippy: no task can make progress (every live task waits for another task)", first)
    assert.equals("true\t42", second)
  end)
end)

describe("limits.max_execution_ms", function()
  it("stops every one of many tight loops in a row, blocking and in tasks", function()
    -- In a child process with a time limit, so that a call that is never stopped fails this
    -- test instead of hanging the suite.
    local out = run_child([[
local wippy = require("wippy")
local funcs = wippy.funcs
local SPIN = ']] .. SPIN_WAT:gsub("\n", " ") .. [['
for _, pool in ipairs({ "lazy", "inline" }) do
  assert(wippy.registry:add({ id = "c:" .. pool, kind = "function.wat", source = SPIN,
    wit = "spin: func(n: s32) -> s32;", limits = { max_execution_ms = 20 }, pool = { type = pool } }))
end
local counts = {}
local function one(id)
  local r, err = funcs.call(id, 0)
  local k = err and err:kind() or tostring(r)
  counts[k] = (counts[k] or 0) + 1
end
for i = 1, 60 do one(i % 2 == 0 and "c:lazy" or "c:inline") end
wippy.run(function()
  for i = 1, 40 do one(i % 2 == 0 and "c:lazy" or "c:inline") end
end)
for k, v in pairs(counts) do io.write(k, "=", v, "\n") end
]], 15)
    assert.equals("TIMEOUT=100\nexit 0\n", out)
  end)
end)

describe("task handles", function()
  it("give the task's results from :result() outside a task, driving the scheduler", function()
    local h = wippy.spawn(function(a, b) wippy.sleep(20); return a + b, "two", nil end, 40, 2)
    assert.is_false(h:is_done())
    local r = pack(h:result())
    assert.is_true(h:is_done())
    assert.equals(3, r.n)
    assert.same({ 42, "two" }, { r[1], r[2] })
    -- Again: the same values.
    assert.same({ 42, "two" }, { h:result() })
  end)

  it("keep a task's error for :result() as nil, err, every time", function()
    local h = wippy.spawn(function(x) error("task failed " .. x) end, 7)
    local r, err = h:result()
    assert.is_nil(r)
    assert.matches("sched_spec%.lua:%d+: task failed 7$", err)
    assert.is_true(h:is_done())
    local r2, err2 = h:result()
    assert.is_nil(r2)
    assert.equals(err, err2)
    local obj = {}
    local _, e = wippy.spawn(function() error(obj) end):result()
    assert.equals(obj, e)
  end)

  it("make :result() inside a task wait for the other task while the others run", function()
    local log = {}
    wippy.run(function()
      local slow = wippy.spawn(function() wippy.sleep(60); log[#log + 1] = "slow"; return "S" end)
      wippy.spawn(function() wippy.sleep(20); log[#log + 1] = "fast" end)
      log[#log + 1] = "waiting"
      local r = slow:result()
      log[#log + 1] = "got " .. r
    end)
    assert.same({ "waiting", "fast", "slow", "got S" }, log)
  end)

  it("run in the order spawned; coroutine.yield in a task lets the others go first", function()
    local log = {}
    wippy.run(function()
      for i = 1, 3 do
        wippy.spawn(function()
          log[#log + 1] = "a" .. i
          coroutine.yield()
          log[#log + 1] = "b" .. i
        end)
      end
      log[#log + 1] = "main"
    end)
    assert.same({ "main", "a1", "a2", "a3", "b1", "b2", "b3" }, log)
  end)
end)

describe("wippy.sleep", function()
  it("blocks outside a task for at least the time asked", function()
    local t0 = now()
    wippy.sleep(60)
    local took = now() - t0
    assert.is_true(took >= 59, ("slept %.1f ms"):format(took))
    assert.is_true(took < 1000, ("slept %.1f ms"):format(took))
  end)

  it("yields in a task: sleeping tasks overlap and wake in deadline order", function()
    local t0 = now()
    local woke = {}
    wippy.run(function()
      for _, ms in ipairs({ 300, 100, 200 }) do
        wippy.spawn(function()
          wippy.sleep(ms)
          woke[#woke + 1] = { ms = ms, at = now() - t0 }
        end)
      end
    end)
    local total = now() - t0
    assert.same({ 100, 200, 300 }, { woke[1].ms, woke[2].ms, woke[3].ms })
    for _, w in ipairs(woke) do
      assert.is_true(w.at >= w.ms - 1, ("woke at %.1f ms for a %d ms sleep"):format(w.at, w.ms))
    end
    -- Run one after another, they would take 600 ms.
    assert.is_true(total < 500, ("took %.1f ms"):format(total))
  end)

  it("lets 200 tasks sleep 100 ms at the same time", function()
    local t0 = now()
    local n = 0
    wippy.run(function()
      for _ = 1, 200 do
        wippy.spawn(function() wippy.sleep(100); n = n + 1 end)
      end
    end)
    local total = now() - t0
    assert.equals(200, n)
    assert.is_true(total >= 99 and total < 1000, ("took %.1f ms"):format(total))
  end)
end)

describe("calls inside and outside tasks", function()
  local function outcome(...)
    local r = pack(...)
    local out = { n = r.n }
    for i = 1, r.n do
      local v = r[i]
      out[i] = wippy.errors.is(v) and { kind = v:kind(), message = v:message(), details = v:details() } or v
    end
    return out
  end

  local cases = {
    { "sched:add", 2, 3 },
    { "sched:add_inline", 2, 3 },
    { "sched:add", 1, "x" },
    { "sched:add", 1 },
    { "sched:div", 7, 0 },
    { "sched:div", -9, 3 },
    { "sched:nothing", 1 },
    { "sched", 1 },
    { "sched:twice", 21 },
  }

  it("give the same results and errors", function()
    for _, c in ipairs(cases) do
      local outside = outcome(funcs.call(unpack(c)))
      local inside = outcome(wippy.run(function() return funcs.call(unpack(c)) end))
      assert.same(outside, inside)
      local via_async = outcome(wippy.run(function()
        local f, err = funcs.async(unpack(c))
        if not f then return nil, err end
        return f:result()
      end))
      assert.same(outside, via_async)
      local via_executor = outcome(wippy.run(function() return funcs.new():call(unpack(c)) end))
      assert.same(outside, via_executor)
    end
    assert.same({ n = 1, 5 }, outcome(funcs.call("sched:add", 2, 3)))
    assert.equals("INTERNAL", outcome(funcs.call("sched:div", 7, 0))[2].kind)
  end)

  it("let other tasks run while a task's call computes on a worker", function()
    local t0 = now()
    local ticks, call_done_at = {}, nil
    local r, err = wippy.run(function()
      wippy.spawn(function()
        for _ = 1, 5 do
          wippy.sleep(20)
          ticks[#ticks + 1] = now() - t0
        end
      end)
      local r, err = funcs.call("sched:spin", 0) -- loops until limits.max_execution_ms (300)
      call_done_at = now() - t0
      return r, err
    end)
    assert.is_nil(r)
    assert.equals("TIMEOUT", err:kind())
    assert.equals(5, #ticks)
    assert.is_true(ticks[5] < call_done_at, ("last tick %.0f ms, call done %.0f ms"):format(ticks[5], call_done_at))
  end)

  it("yield across pcall in a task (Lua 5.1: block there, docs/lua-api.md \"Lua versions\")", function()
    local log = {}
    wippy.run(function()
      wippy.spawn(function() wippy.sleep(10); log[#log + 1] = "other" end)
      local ok, r = pcall(function()
        wippy.sleep(30)
        return funcs.call("sched:add", 20, 22)
      end)
      log[#log + 1] = tostring(ok) .. " " .. tostring(r)
    end)
    if _VERSION == "Lua 5.1" and not H.is_luajit then
      -- Lua 5.1 cannot yield across pcall: the sleep and the call block, the other task runs after.
      assert.same({ "true 42", "other" }, log)
    else
      assert.same({ "other", "true 42" }, log)
    end
  end)
end)

describe("a foreign coroutine inside a task", function()
  it("blocks instead of yielding, and gets the same results", function()
    local ticked = false
    local res = pack(wippy.run(function()
      local other = wippy.spawn(function() wippy.sleep(30); return "other" end)
      wippy.spawn(function() wippy.sleep(1); ticked = true end)
      local co = coroutine.wrap(function()
        local t0 = now()
        wippy.sleep(50) -- blocks: the scheduler does not run while it sleeps
        local slept = now() - t0
        local tick_seen = ticked
        local call = funcs.call("sched:add", 2, 3)
        local inline = funcs.call("sched:add_inline", 4, 5)
        local f = funcs.async("sched:add", 6, 7)
        local fut = f:result()
        local joined = other:result()
        return slept, tick_seen, call, inline, fut, joined
      end)
      -- coroutine.wrap returns what the coroutine returned: had anything in it yielded to the
      -- scheduler, co() would return that yield's values instead.
      return co()
    end))
    assert.equals(6, res.n)
    assert.is_true(res[1] >= 49, ("slept %.1f ms"):format(res[1]))
    assert.is_false(res[2])
    assert.same({ 5, 9, 13, "other" }, { res[3], res[4], res[5], res[6] })
  end)

  it("can use coroutines of its own that yield normally", function()
    local r = wippy.run(function()
      local gen = coroutine.wrap(function()
        for i = 1, 3 do coroutine.yield(funcs.call("sched:add", i, 10)) end
      end)
      return gen() + gen() + gen()
    end)
    assert.equals(36, r)
  end)
end)

describe("a call in a non-yieldable place inside a task", function()
  it("is the exception: on every VM built here calls in tasks yield (stats say so)", function()
    -- On 5.1/5.2 this is the lua_State layout check at load (docs/lua-api.md, "Lua versions").
    assert.is_true(wippy.stats().engine.task_calls_yield)
  end)

  it("blocks and gets the same result", function()
    local r = wippy.run(function()
      local out = {}
      -- string.gsub calls back through C: the task cannot yield there.
      local s = string.gsub("1 2 3", "%d", function(d)
        wippy.sleep(5)
        out[#out + 1] = funcs.call("sched:add", tonumber(d), 100)
        local f = funcs.async("sched:add", tonumber(d), 200)
        return tostring(f:result())
      end)
      return s, out
    end)
    assert.equals("201 202 203", r)
  end)
end)

describe("futures", function()
  it("give the result outside a task and inside one, the same every time", function()
    local f = assert(funcs.async("sched:add", 20, 22))
    assert.equals(42, f:result())
    assert.is_true(f:is_complete())
    assert.is_false(f:is_canceled())
    assert.is_nil(f:error())
    assert.equals(42, f:result())
    local g
    local r1, r2 = wippy.run(function()
      g = assert(funcs.async("sched:add_inline", 1, 2))
      return g:result(), g:result()
    end)
    assert.same({ 3, 3 }, { r1, r2 })
    assert.equals(3, g:result())
  end)

  it("keep an error for :result() and :error()", function()
    local f = assert(funcs.async("sched:div", 1, 0))
    local r, err = f:result()
    assert.is_nil(r)
    assert.equals("INTERNAL", err:kind())
    assert.equals("trap", err:details().reason)
    assert.equals(err, f:error())
    assert.is_false(f:is_canceled())
  end)

  it("are nil, err for a target that cannot be called", function()
    local f, err = funcs.async("sched:nothing")
    assert.is_nil(f)
    assert.equals("NOT_FOUND", err:kind())
    assert.equals("function not found: sched:nothing", err:message())
    f, err = funcs.async("nonamespace")
    assert.is_nil(f)
    assert.equals("INVALID", err:kind())
  end)

  it("of a Lua function entry are complete at once", function()
    local f = assert(funcs.async("sched:twice", 21))
    assert.is_true(f:is_complete())
    assert.equals(42, f:result())
  end)

  it("run while the caller goes on, several at once", function()
    local t0 = now()
    local fs = {}
    for i = 1, 2 do fs[i] = assert(funcs.async("sched:spin", 0)) end
    local started = now() - t0
    assert.is_true(started < 100, ("funcs.async took %.0f ms to return"):format(started))
    for i = 1, 2 do
      local _, err = fs[i]:result()
      assert.equals("TIMEOUT", err:kind())
    end
  end)

  it("can be canceled while a task waits on them", function()
    local t0 = now()
    local r, err, canceled = wippy.run(function()
      local f = assert(funcs.async("sched:spin_long", 0))
      wippy.spawn(function() wippy.sleep(50); f:cancel() end)
      local r, err = f:result()
      return r, err, f:is_canceled()
    end)
    local took = now() - t0
    assert.is_nil(r)
    assert.equals("CANCELED", err:kind())
    assert.is_true(canceled)
    assert.is_true(took < 1500, ("took %.0f ms"):format(took))
  end)
end)

describe("executors", function()
  it("are immutable: with_* return new executors", function()
    local base = funcs.new()
    local timed = base:with_options({ timeout = 100 })
    assert.are_not.equal(base, timed)
    assert.are_not.equal(base, base:with_context({ a = 1 }))
    local actor, scope = wippy.security.new_actor("user:1"), wippy.security.new_scope()
    assert.are_not.equal(base, base:with_actor(actor))
    assert.are_not.equal(base, base:with_scope(scope))
    assert.equals(5, base:with_context({ a = 1 }):with_actor(actor):with_scope(scope):call("sched:add", 2, 3))
    -- The timeout belongs to the derived executor only.
    local t0 = now()
    local r, err = timed:call("sched:spin_long", 0)
    local took = now() - t0
    assert.is_nil(r)
    assert.equals("TIMEOUT", err:kind())
    assert.matches("the executor's timeout", err:message(), 1, true)
    assert.is_true(took >= 95 and took < 1000, ("took %.0f ms"):format(took))
    assert.equals(7, base:call("sched:spin_long", 7))
    assert.equals(7, timed:call("sched:spin_long", 7))
  end)

  it("time out the same way inside a task, with :call and :async", function()
    local e = funcs.new():with_options({ timeout = 100 })
    local k1, k2 = wippy.run(function()
      local _, e1 = e:call("sched:spin_long", 0)
      local f = assert(e:async("sched:spin_long", 0))
      local _, e2 = f:result()
      return e1:kind(), e2:kind()
    end)
    assert.same({ "TIMEOUT", "TIMEOUT" }, { k1, k2 })
  end)
end)

describe("argument errors", function()
  it("raise for wippy.spawn without a function", function()
    assert.error_matches(function() wippy.spawn() end, "bad argument #1 to 'spawn' (function expected, got nil)", 1, true)
    assert.error_matches(function() wippy.spawn(42) end, "bad argument #1 to 'spawn' (function expected, got number)", 1, true)
  end)

  it("raise for wippy.run without a function, naming run", function()
    local ok, err = pcall(wippy.run, "x")
    assert.is_false(ok)
    assert.equals("string", type(err))
    assert.matches("bad argument #1 to 'run' (function expected, got string)", err, 1, true)
    assert.is_nil(err:find("wippy.sched", 1, true), "the message points into the module's own chunk: " .. err)
  end)

  it("raise for wippy.sleep without a number", function()
    assert.error_matches(function() wippy.sleep() end, "bad argument #1 to 'sleep' (number expected, got nil)", 1, true)
    assert.error_matches(function() wippy.sleep("10") end, "bad argument #1 to 'sleep' (number expected, got string)", 1, true)
    wippy.run(function()
      assert.error_matches(function() wippy.sleep({}) end, "bad argument #1 to 'sleep' (number expected, got table)", 1, true)
    end)
  end)

  it("raise for funcs.async and executor:call with a non-string target, like funcs.call", function()
    local function message(f)
      local ok, err = pcall(f)
      assert.is_false(ok)
      return type(err), tostring(err)
    end
    local t, m = message(function() funcs.call(42) end)
    assert.equals("string", t)
    assert.matches("bad argument #1 to 'call' (string expected, got number)", m, 1, true)
    t, m = message(function() funcs.async(42) end)
    assert.equals("string", t)
    assert.matches("bad argument #1 to 'async' (string expected, got number)", m, 1, true)
    assert.is_nil(m:find("runtime error", 1, true), m)
    t, m = message(function() funcs.new():call(42) end)
    assert.equals("string", t)
    assert.matches("bad argument #1 to 'call' (string expected, got number)", m, 1, true)
    t, m = message(function() funcs.new():async() end)
    assert.equals("string", t)
    assert.matches("bad argument #1 to 'async' (string expected, got no value)", m, 1, true)
  end)

  it("raise for bad executor options", function()
    local e = funcs.new()
    assert.error_matches(function() e:with_options("x") end, "bad argument #1 to 'with_options' (table expected, got string)", 1, true)
    assert.error_matches(function() e:with_options({ timeout = -1 }) end, "timeout must be a number of milliseconds >= 0", 1, true)
    assert.error_matches(function() e:with_options({ timeout = "1" }) end, "timeout must be a number of milliseconds >= 0", 1, true)
    assert.error_matches(function() e:with_context(1) end, "bad argument #1 to 'with_context' (table expected, got number)", 1, true)
  end)
end)
