-- Pools bound their instances (SPEC §4, issue 12): 10,000 calls in flight at once against a
-- `max_size: 16` entry never hold more than 16 instances, and every one completes with its own
-- result.
local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs
local ASYNC = H.CWD .. "/build/guests/async_guest.wasm"

describe("pools", function()
  it("hold at most max_size instances with 10,000 calls in flight, and complete them all", function()
    H.add({ id = "pools:sleep", kind = "function.wasm", path = ASYNC, method = "sleep-ms",
      imports = { "wasi:clocks" }, pool = { type = "lazy", max_size = 16 } })
    H.add({ id = "pools:add", kind = "function.wasm", path = ASYNC, method = "add",
      pool = { type = "lazy", max_size = 16 } })
    local N, done, peak, wrong = 10000, 0, 0, 0
    wippy.run(function()
      for i = 1, N do
        wippy.spawn(function()
          -- A guest that waits holds its instance meanwhile; then one that computes.
          assert(funcs.call("pools:sleep", 1))
          if funcs.call("pools:add", i, 1) ~= i + 1 then wrong = wrong + 1 end
          done = done + 1
        end)
      end
      while done < N do
        for _, id in ipairs({ "pools:sleep", "pools:add" }) do
          peak = math.max(peak, wippy.stats(id).instances)
        end
        wippy.sleep(1)
      end
    end)
    assert.equals(N, done)
    assert.equals(0, wrong)
    assert.is_true(peak >= 1 and peak <= 16, "peak instances " .. peak)
    assert.is_true(wippy.stats("pools:sleep").instances <= 16)
    assert.equals(N, wippy.stats("pools:sleep").calls)
  end)
end)

-- A core module that counts to its argument (about a millisecond for 300,000): calls overlap.
local SPIN_WAT = [[(module (func (export "spin") (param i32) (result i32) (local i32)
  (block (loop (br_if 1 (i32.ge_s (local.get 1) (local.get 0)))
    (local.set 1 (i32.add (local.get 1) (i32.const 1))) (br 0)))
  (local.get 1)))]]
local RELAY = H.CWD .. "/build/guests/relay_guest.wasm"

-- Runs `body` in a task while another task samples the entries' stats every millisecond;
-- returns the largest value `pick(stats)` took for each entry.
local function sampled(ids, pick, body)
  local peak, running = {}, true
  for _, id in ipairs(ids) do peak[id] = 0 end
  wippy.run(function()
    local sampler = wippy.spawn(function()
      while running do
        for _, id in ipairs(ids) do peak[id] = math.max(peak[id], pick(wippy.stats(id))) end
        wippy.sleep(1)
      end
    end)
    body()
    running = false
    sampler:result()
  end)
  return peak
end

describe("pools bound every kind of caller", function()
  it("a core module's calls from tasks (a max_size 1 pool runs one at a time)", function()
    H.add_wat("pools:spin", SPIN_WAT, { wit = "spin: func(n: s32) -> s32;", pool = { type = "lazy", max_size = 1 } })
    local N, done, wrong = 64, 0, 0
    local peak = sampled({ "pools:spin" }, function(s) return math.max(s.instances, s.running) end, function()
      local tasks = {}
      for i = 1, N do
        tasks[i] = wippy.spawn(function()
          for _ = 1, 3 do
            if funcs.call("pools:spin", 300000 + i) ~= 300000 + i then wrong = wrong + 1 end
          end
          done = done + 1
        end)
      end
      for _, t in ipairs(tasks) do t:result() end
    end)
    assert.equals(N, done)
    assert.equals(0, wrong)
    assert.equals(1, peak["pools:spin"])
    assert.equals(1, wippy.stats("pools:spin").instances)
    assert.equals(3 * N, wippy.stats("pools:spin").calls)
  end)

  it("10,000 futures in flight from a caller outside a task, all completing", function()
    H.add({ id = "pools:fsleep", kind = "function.wasm", path = ASYNC, method = "sleep-ms",
      imports = { "wasi:clocks" }, pool = { type = "lazy", max_size = 16 } })
    local N, futs, peak = 10000, {}, 0
    for i = 1, N do futs[i] = funcs.async("pools:fsleep", 1) end
    local ok = 0
    for i = 1, N do
      if futs[i]:result() ~= nil then ok = ok + 1 end
      if i % 50 == 0 then
        local s = wippy.stats("pools:fsleep")
        peak = math.max(peak, s.instances, s.running)
      end
    end
    assert.equals(N, ok)
    assert.is_true(peak >= 1 and peak <= 16, "peak " .. peak)
    assert.is_true(wippy.stats("pools:fsleep").instances <= 16)
  end)

  it("a guest calling its own entry: nested calls past max_size get instances that go after", function()
    H.add({ id = "pools:recurse", kind = "function.wasm", path = RELAY, method = "recurse",
      imports = { "funcs" }, pool = { type = "lazy", max_size = 1 } })
    -- Each level waits for no slot (its caller holds the only one): no deadlock, the depth
    -- limit stops it, and the pool is back to one instance after.
    for _, run in ipairs({ function(f) return f() end, function(f) return wippy.run(f) end }) do
      local r, err = run(function() return funcs.call("pools:recurse", "pools:recurse") end)
      assert.is_nil(r)
      assert.is_truthy(tostring(err):find("registry calls nested more than 64 deep", 1, true), tostring(err))
      assert.equals(1, wippy.stats("pools:recurse").instances)
    end
  end)

  it("a caller blocked for a slot serves the Lua calls of the futures that hold it", function()
    -- The only slot is held by a future whose guest calls a Lua function of this state; the
    -- blocking call that waits for the slot runs that function meanwhile (else neither ends).
    H.add({ id = "pools:relay1", kind = "function.wasm", path = RELAY, method = "relay",
      imports = { "funcs" }, pool = { type = "lazy", max_size = 1 } })
    local ran = {}
    H.add({ id = "pools:lua_upper", kind = "function.lua", handler = function(s)
      ran[#ran + 1] = s
      return s:upper()
    end })
    local futs = {}
    for i = 1, 3 do futs[i] = assert(funcs.async("pools:relay1", "pools:lua_upper", "f" .. i)) end
    for _ = 1, 2000 do -- until a future's guest holds the slot (and waits for this thread)
      if wippy.stats("pools:relay1").running == 1 then break end
      wippy.sleep(1)
    end
    assert.equals(1, wippy.stats("pools:relay1").running)
    assert.equals("BLOCKING", funcs.call("pools:relay1", "pools:lua_upper", "blocking"))
    for i = 1, 3 do assert.equals("F" .. i, futs[i]:result()) end
    assert.equals(4, #ran)
    assert.equals(1, wippy.stats("pools:relay1").instances)
  end)
end)

describe("static pools", function()
  it("make their workers' instances at load, so the first call is warm", function()
    H.add_wat("pools:st_wat", SPIN_WAT, { wit = "spin: func(n: s32) -> s32;", pool = { type = "static", workers = 3 } })
    H.add({ id = "pools:st_cmp", kind = "function.wasm", path = ASYNC, method = "add",
      pool = { type = "static", workers = 2 } })
    for id, workers in pairs({ ["pools:st_wat"] = 3, ["pools:st_cmp"] = 2 }) do
      local s = wippy.stats(id)
      assert.same({ 0, workers, 0 }, { s.calls, s.instances, s.recycled }, id)
    end
    assert.equals(7, funcs.call("pools:st_wat", 7))
    assert.equals(5, funcs.call("pools:st_cmp", 2, 3))
    for id, workers in pairs({ ["pools:st_wat"] = 3, ["pools:st_cmp"] = 2 }) do
      local s = wippy.stats(id)
      assert.same({ 1, workers, 0 }, { s.calls, s.instances, s.recycled }, id)
    end
    -- Lazy pools start empty.
    H.add_wat("pools:lz_wat", SPIN_WAT, { wit = "spin: func(n: s32) -> s32;" })
    assert.equals(0, wippy.stats("pools:lz_wat").instances)
  end)

  it("admit workers + buffer calls at once; the rest wait, and all complete", function()
    H.add({ id = "pools:st_sleep", kind = "function.wasm", path = ASYNC, method = "sleep-ms",
      imports = { "wasi:clocks" }, pool = { type = "static", workers = 2, buffer = 3 } })
    local N, done = 100, 0
    local admitted, waiting, running = 0, 0, 0
    sampled({ "pools:st_sleep" }, function(s)
      admitted = math.max(admitted, s.running + s.queued)
      waiting = math.max(waiting, s.waiting)
      running = math.max(running, s.running)
      return 0
    end, function()
      local tasks = {}
      for i = 1, N do
        tasks[i] = wippy.spawn(function()
          assert(funcs.call("pools:st_sleep", 2))
          done = done + 1
        end)
      end
      for _, t in ipairs(tasks) do t:result() end
    end)
    assert.equals(N, done)
    assert.equals(N, wippy.stats("pools:st_sleep").calls)
    assert.is_true(running >= 1 and running <= 2, "running " .. running)
    assert.is_true(admitted >= 3 and admitted <= 5, "admitted " .. admitted)
    assert.is_true(waiting > 0, "no caller waited beyond the buffer")
    local s = wippy.stats("pools:st_sleep")
    assert.same({ 0, 0, 0, 2 }, { s.running, s.queued, s.waiting, s.instances })
  end)
end)

describe("adaptive pools", function()
  after_each(function() wippy.configure({ pool_idle_ms = 30000 }) end)

  it("grow under load up to max_size and shrink back when idle; lazy ones keep theirs", function()
    wippy.configure({ pool_idle_ms = 100 })
    H.add({ id = "pools:ad", kind = "function.wasm", path = ASYNC, method = "sleep-ms",
      imports = { "wasi:clocks" }, pool = { type = "adaptive", max_size = 8 } })
    H.add({ id = "pools:lz", kind = "function.wasm", path = ASYNC, method = "sleep-ms",
      imports = { "wasi:clocks" }, pool = { type = "lazy", max_size = 8 } })
    local peak = sampled({ "pools:ad", "pools:lz" }, function(s) return s.instances end, function()
      local tasks = {}
      for i = 1, 64 do
        tasks[i] = wippy.spawn(function()
          assert(funcs.call("pools:ad", 10))
          assert(funcs.call("pools:lz", 10))
        end)
      end
      for _, t in ipairs(tasks) do t:result() end
    end)
    assert.is_true(peak["pools:ad"] > 1 and peak["pools:ad"] <= 8, "adaptive peak " .. peak["pools:ad"])
    assert.is_true(peak["pools:lz"] > 1 and peak["pools:lz"] <= 8, "lazy peak " .. peak["pools:lz"])
    -- Idle: within a few idle periods the adaptive pool is down to one warm instance.
    local system = require("system")
    local deadline = system.monotime() + 5
    while wippy.stats("pools:ad").instances > 1 and system.monotime() < deadline do system.sleep(0.02) end
    assert.equals(1, wippy.stats("pools:ad").instances)
    assert.is_true(wippy.stats("pools:lz").instances > 1, "the lazy pool kept its instances")
    -- It still works.
    assert(funcs.call("pools:ad", 1))
  end)
end)
