-- Actors (SPEC §7.3): the test actor (tests/guests/actor, wippy:actor/process) keeps its state
-- across 1000 messages and replies, refuses overload with `overloaded`, waits on its pollable,
-- stops at its lifetime limit, and its EXIT reaches process.events(); Lua's own pid, send and
-- receive (yielding in a task, a timeout).
local H = dofile("spec/helper.lua")
local wippy, registry = H.wippy, H.registry
local process = wippy.process

local ACTOR = H.CWD .. "/build/guests/actor_guest.wasm"
local IMPORTS = { "wippy:actor", "wasi:clocks", "wasi:io", "wasi:poll", "wasi:cli" }

local function add(id, options)
  local ok, err = registry:add({ id = id, kind = "process.wasm", path = ACTOR, imports = IMPORTS, options = options })
  assert(ok, tostring(err))
end

-- Sends, retrying while the mailbox is full.
local function send(pid, topic, ...)
  for _ = 1, 1000 do
    local ok, err = process.send(pid, topic, ...)
    if ok then return end
    assert.equals("overloaded", err)
    wippy.sleep(1)
  end
  error("the actor never took the message")
end

-- The EXIT event of `pid` (other exits are ignored).
local function exit_of(pid)
  for ev in process.events() do
    if ev.from == pid then return ev end
  end
end

describe("actors", function()
  setup(function()
    add("act:counter")
    add("act:small", { mailbox = { capacity = 4 } })
    add("act:short", { limits = { max_execution_ms = 200 } })
  end)

  it("keep their state across 1000 messages and reply to the sender", function()
    local pid = process.spawn("act:counter")
    assert.matches("^pid:%d+$", pid)
    local reply = wippy.run(function()
      for _ = 1, 1000 do send(pid, "count") end
      send(pid, "get")
      return process.receive(5000)
    end)
    assert.same({ from = pid, topic = "count", payloads = { "1000" } }, reply)
    -- Payloads: strings travel as text, tables as JSON.
    send(pid, "echo", "plain", { a = 1, list = { true, "x" } })
    local echo = process.receive(5000)
    assert.same({ "plain", { a = 1, list = { true, "x" } } }, echo.payloads)
    send(pid, "stop")
    local ev = exit_of(pid)
    assert.same({ kind = "EXIT", from = pid, result = { value = true } }, ev)
  end)

  it("refuse messages past their mailbox's capacity with `overloaded`", function()
    local pid = process.spawn("act:small")
    assert.is_true(process.send(pid, "hold", "300"))
    wippy.sleep(50) -- the actor holds; its mailbox (capacity 4) fills
    local answers = {}
    for i = 1, 6 do
      local ok, err = process.send(pid, "count")
      answers[i] = ok and "ok" or err
    end
    assert.same({ "ok", "ok", "ok", "ok", "overloaded", "overloaded" }, answers)
    send(pid, "get")
    assert.equals("4", process.receive(5000).payloads[1])
    send(pid, "fail")
    local ev = exit_of(pid)
    assert.is_nil(ev.result.value)
    assert.equals("asked to fail after 4 messages", ev.result.error)
  end)

  it("wait on their subscribe pollable without a thread, and overlap", function()
    local pids = {}
    for i = 1, 8 do pids[i] = process.spawn("act:counter") end
    -- Eight actors waiting in receive or on their pollable hold no worker thread: all answer.
    for i = 1, 8 do send(pids[i], "poll") end
    wippy.sleep(30)
    for i = 1, 8 do send(pids[i], "ping" .. i) end
    local got = {}
    for _ = 1, 8 do
      local m = process.receive(5000)
      got[m.from] = m.payloads[1]
    end
    for i = 1, 8 do assert.equals("ping" .. i, got[pids[i]]) end
    for i = 1, 8 do send(pids[i], "stop") end
    for _ in process.events() do end
  end)

  it("stop at options.limits.max_execution_ms, with an EXIT carrying the error", function()
    local pid = process.spawn("act:short")
    local ev = exit_of(pid)
    assert.is_nil(ev.result.value)
    assert.equals("TIMEOUT", ev.result.error:kind())
    local ok, err = process.send(pid, "count")
    assert.is_nil(ok)
    assert.equals("no process " .. pid .. " (unknown, or it has ended)", err)
  end)

  it("check options.mailbox when they load", function()
    local ok, err = registry:add({ id = "act:bad", kind = "process.wasm", path = ACTOR, imports = IMPORTS,
                                   options = { mailbox = { capacity = 0, size = 3 } } })
    assert.is_nil(ok)
    assert.equals('act:bad: unknown field "options.mailbox.size" in entry act:bad\n'
      .. 'act:bad: field "options.mailbox.capacity": must be at least 1', tostring(err))
    ok, err = registry:add({ id = "act:bad", kind = "process.wasm", path = ACTOR, imports = IMPORTS,
                             options = { mailbox = { bytes = "lots" } } })
    assert.is_nil(ok)
    assert.equals('act:bad: field "options.mailbox.bytes": expected a non-negative integer, got string', tostring(err))
  end)

  it("give Lua a pid to receive at: a timeout gives nil, a task yields", function()
    local me = process.self()
    assert.equals(me, process.self())
    local t0 = os.clock()
    assert.is_nil(process.receive(30))
    assert.is_nil(process.receive(0))
    local got = wippy.run(function()
      local waiter = wippy.spawn(function() return process.receive(2000) end)
      wippy.spawn(function() wippy.sleep(20); assert(process.send(me, "hello", "world")) end)
      return waiter:result()
    end)
    assert.same({ from = me, topic = "hello", payloads = { "world" } }, got)
    assert.has_error(function() process.send(42, "x") end)
  end)

  it("converse with waiting threads spinning or sleeping (configure spin_us)", function()
    local pid = process.spawn("act:counter")
    local function converse(from, to)
      for i = from, to do
        send(pid, "count")
        send(pid, "get")
        assert.same({ tostring(i) }, process.receive(5000).payloads)
      end
    end
    finally(function()
      wippy.configure({ spin_us = 50 })
      -- A live actor would hold every later process.events() of this state.
      if process.send(pid, "stop") then exit_of(pid) end
    end)
    for _, us in ipairs({ 0, 50 }) do
      assert.is_true(wippy.configure({ spin_us = us }))
      assert.equals(us, wippy.stats().engine.spin_us)
    end
    wippy.configure({ spin_us = 0 })
    converse(1, 100)
    wippy.configure({ spin_us = 50 })
    -- The counter goes on from 100: one actor, one state, both ways of waiting.
    converse(101, 300)
    wippy.run(function()
      send(pid, "get")
      assert.same({ "300" }, process.receive(5000).payloads)
    end)
    for _, bad in ipairs({ -1, 1.5, 20000, "50" }) do
      assert.error_matches(function() wippy.configure({ spin_us = bad }) end,
        "bad argument #1 to 'wippy.configure' (spin_us must be an integer from 0 to 10000, got", 1, true)
    end
  end)
end)
