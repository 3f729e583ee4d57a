-- Tasks, worker pools, async WASI, limits, cancel, pools and stats with the async test guest
-- (tests/guests/async, build/guests/async_guest.wasm) and a local HTTP + TCP echo server
-- (spec/fixtures/servers.py). SPEC §2, §4, §5.3, §6, §8, §9.
local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs
local system = require("system") -- luasystem: a dependency of busted itself

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

-- Milliseconds on a monotonic clock.
local function now() return system.monotime() * 1000 end

local shell = H.shell
local CWD = H.CWD
local GUEST = CWD .. "/build/guests/async_guest.wasm"
local NPROC = tonumber(shell("nproc 2>/dev/null"):match("%d+")) or 1
local VM = H.VM

-- Registers async:NAME as an export of the guest. It sleeps on the monotonic clock and panics
-- to stderr, so it imports wasi:clocks and wasi:cli unless `fields` say otherwise.
local function add(name, method, fields)
  local entry = { id = "async:" .. name, kind = "function.wasm", path = GUEST, hash = "sha256:" .. H.sha256(GUEST), method = method,
                  imports = { "wasi:clocks", "wasi:cli" } }
  for k, v in pairs(fields or {}) do entry[k] = v end
  local ok, err = wippy.registry:add(entry)
  assert(ok, tostring(err))
end

-- An error object as a plain table, so results can be compared with assert.same.
local function plain(...)
  local r = pack(...)
  local out = { n = r.n }
  for i = 1, r.n do
    local v = r[i]
    if wippy.errors.is(v) then
      out[i] = { kind = v:kind(), message = v:message(), details = v:details() }
    else
      out[i] = v
    end
  end
  return out
end

-- The value of header `name` in a response's list of { name, value }.
local function header(resp, name)
  for _, h in ipairs(resp.headers) do
    if h[1]:lower() == name then return h[2] end
  end
  return nil
end

-- A response without its `date` header (which may tick between two requests).
local function undated(resp)
  if type(resp) ~= "table" then return resp end
  local copy = { status = resp.status, body = resp.body, headers = {} }
  for _, h in ipairs(resp.headers) do
    if h[1]:lower() ~= "date" then copy.headers[#copy.headers + 1] = { h[1], h[2] } end
  end
  return copy
end

local function within(ms, lo, hi, what)
  assert.is_true(ms >= lo and ms < hi, ("%s took %.0f ms, expected [%d, %d)"):format(what or "it", ms, lo, hi))
end

-- A core module for pool behaviour that the guest's one-function exports cannot show in one
-- entry: probe(pages, trap) grows memory by `pages`, counts the call in a global, traps when
-- asked, and returns the count (the number of calls this instance has served).
local PROBE_WAT = [[
(module
  (memory 1)
  (global $n (mut i32) (i32.const 0))
  (func (export "probe") (param $pages i32) (param $trap i32) (result i32)
    (if (local.get $pages) (then (drop (memory.grow (local.get $pages)))))
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (if (local.get $trap) (then unreachable))
    (global.get $n)))]]
local PROBE_WIT = "probe: func(pages: u32, trap: bool) -> u32;"

describe("the async guest", function()
  local server, ports

  setup(function()
    local NET = { imports = { "wasi:http", "wasi:sockets", "wasi:clocks", "wasi:cli" }, wasi = { allowed_hosts = { "127.0.0.1:*" } } }
    add("sleep", "sleep-ms")
    add("sleep_wide", "sleep-ms", { pool = { type = "lazy", max_size = 64 } })
    add("sleep_inline", "sleep-ms", { pool = { type = "inline" } })
    add("sleep_limited", "sleep-ms", { limits = { max_execution_ms = 300 } })
    add("burn", "burn")
    add("burn_inline", "burn", { pool = { type = "inline" } })
    add("burn_fuel", "burn", { limits = { fuel = 1000000 } })
    add("spin", "spin-forever", { limits = { max_execution_ms = 300 } })
    add("spin_inline", "spin-forever", { limits = { max_execution_ms = 300 }, pool = { type = "inline" } })
    add("spin_free", "spin-forever")
    add("spin_free_inline", "spin-forever", { pool = { type = "inline" } })
    add("grow", "grow", { limits = { memory_bytes = 32 * 1024 * 1024 } })
    add("grow_retained", "grow", { limits = { max_retained_memory_bytes = 8 * 1024 * 1024 } })
    add("boom", "boom")
    add("add", "add")
    add("counter", "counter")
    add("counter_inline", "counter", { pool = { type = "inline" } })
    add("counter_isolated", "counter", { pool = { type = "lazy", isolate = true } })
    add("stats_add", "add")
    add("stats_boom", "boom")
    add("stats_sleep", "sleep-ms")
    add("stats_spin", "spin-forever", { limits = { max_execution_ms = 100 } })
    add("stats_burn", "burn")
    add("stats_timeouts", "sleep-ms", { limits = { max_execution_ms = 200 } })
    add("stats_cancel", "sleep-ms")
    add("http", "http-request", NET)
    add("http_inline", "http-request", { imports = NET.imports, wasi = NET.wasi, pool = { type = "inline" } })
    add("http_default_policy", "http-request", { imports = { "wasi:http", "wasi:clocks", "wasi:cli" } })
    add("http_no_imports", "http-request")
    add("tcp", "tcp-roundtrip", NET)
    add("tcp_default_policy", "tcp-roundtrip", { imports = { "wasi:sockets", "wasi:clocks", "wasi:cli" } })
    H.add_wat("async:probe", PROBE_WAT, { wit = PROBE_WIT })
    H.add_wat("async:probe_retained", PROBE_WAT, { wit = PROBE_WIT, limits = { max_retained_memory_bytes = 1024 * 1024 } })
    H.add_wat("async:probe_isolated", PROBE_WAT, { wit = PROBE_WIT, pool = { type = "lazy", isolate = true } })

    -- The servers exit by themselves if this process dies without the teardown.
    server = assert(io.popen("exec python3 spec/fixtures/servers.py --parent $PPID", "r"))
    ports = {}
    for _ = 1, 3 do
      local line = server:read("*l")
      assert(line, "spec/fixtures/servers.py did not start")
      local k, v = line:match("^(%a+) (%d+)$")
      ports[k] = tonumber(v)
    end
    assert(ports.http and ports.tcp and ports.pid, "spec/fixtures/servers.py printed no ports")
  end)

  teardown(function()
    if ports and ports.pid then os.execute("kill " .. ports.pid .. " 2>/dev/null") end
    if server then server:close() end
  end)

  local function url(path) return ("http://127.0.0.1:%d%s"):format(ports.http, path) end
  local function tcp_addr() return ("127.0.0.1:%d"):format(ports.tcp) end

  describe("sleeping calls in tasks", function()
    -- Starts n tasks that each call `id` with sleep-ms(ms); returns the total wall time, the
    -- per-call { start, finish } times and the guest's own elapsed times.
    local function sleepers(id, n, ms)
      local t0 = now()
      local spans, elapsed = {}, {}
      wippy.run(function()
        local hs = {}
        for i = 1, n do
          hs[i] = wippy.spawn(function()
            local s = now() - t0
            local r, err = funcs.call(id, ms)
            assert(r, tostring(err))
            spans[i] = { s, now() - t0 }
            elapsed[i] = r
          end)
        end
        for i = 1, n do
          local ok, err = hs[i]:result()
          assert(ok ~= nil or err == nil, "task " .. i .. ": " .. tostring(err))
        end
      end)
      return now() - t0, spans, elapsed
    end

    local function all_overlap(spans)
      local last_start, first_end = -math.huge, math.huge
      for _, s in ipairs(spans) do
        last_start = math.max(last_start, s[1])
        first_end = math.min(first_end, s[2])
      end
      return last_start < first_end, last_start, first_end
    end

    it("interleave: 50 tasks sleeping 100 ms in the guest take far less than 5 s", function()
      local total, spans, elapsed = sleepers("async:sleep", 50, 100)
      assert.equals(50, #spans)
      for i = 1, 50 do assert.is_true(elapsed[i] >= 100, "the guest slept " .. tostring(elapsed[i])) end
      within(total, 100, 1500, "50 sleeps of 100 ms")
    end)

    it("all run at once on a pool as large as the number of tasks", function()
      local total, spans = sleepers("async:sleep_wide", 50, 100)
      local overlap, last_start, first_end = all_overlap(spans)
      assert.is_true(overlap, ("the last call started at %.0f ms, the first ended at %.0f ms"):format(last_start, first_end))
      within(total, 100, 800, "50 sleeps of 100 ms")
    end)

    it("take turns on an inline pool (one instance) while other tasks keep running", function()
      -- SPEC §4: inline runs calls on the Lua thread with one instance; a sleeping guest yields
      -- its task, so the Lua thread stays free for the others.
      local ticks, total = 0, nil
      wippy.run(function()
        local done = false
        wippy.spawn(function()
          while not done do
            ticks = ticks + 1
            wippy.sleep(10)
          end
        end)
        local t0 = now()
        local hs = {}
        for i = 1, 4 do hs[i] = wippy.spawn(function() return funcs.call("async:sleep_inline", 100) end) end
        for i = 1, 4 do
          local slept = assert(hs[i]:result())
          assert.is_true(slept >= 100, "the guest slept " .. tostring(slept))
        end
        total = now() - t0
        done = true
      end)
      within(total, 400, 1500, "4 inline sleeps of 100 ms, one at a time")
      assert.is_true(ticks >= 20, "the other task ran only " .. ticks .. " times")
    end)

    it("on an inline pool let other tasks run while the guest sleeps", function()
      local t0 = now()
      local ticks, done_at = {}, nil
      wippy.run(function()
        wippy.spawn(function()
          for _ = 1, 5 do wippy.sleep(20); ticks[#ticks + 1] = now() - t0 end
        end)
        assert.is_true(funcs.call("async:sleep_inline", 300) >= 300)
        done_at = now() - t0
      end)
      assert.equals(5, #ticks)
      assert.is_true(ticks[5] < done_at, ("last tick at %.0f ms, the call returned at %.0f ms"):format(ticks[5], done_at))
    end)

    it("block outside a task for the time slept", function()
      local t0 = now()
      local r = funcs.call("async:sleep", 50)
      assert.is_true(r >= 50)
      within(now() - t0, 50, 1000, "a 50 ms sleep")
    end)
  end)

  describe("CPU-bound calls", function()
    it("run in parallel from two tasks", function()
      if NPROC < 2 then
        pending("needs 2 cores, nproc says " .. NPROC)
        return
      end
      -- One call of at least ~200 ms on this machine.
      local n = 50000000
      local t0 = now()
      local expected = funcs.call("async:burn", n)
      local single = now() - t0
      if single < 200 then
        n = math.floor(n * 250 / math.max(single, 1))
        t0 = now()
        expected = funcs.call("async:burn", n)
        single = now() - t0
      end
      assert.is_true(single >= 150, ("one call took %.0f ms"):format(single))
      -- Other processes may take the cores for a while: the best of three tries counts.
      local tries = {}
      for _ = 1, 3 do
        t0 = now()
        expected = funcs.call("async:burn", n)
        single = now() - t0
        t0 = now()
        local spans = {}
        local r1, r2 = wippy.run(function()
          local function job(i)
            return function()
              local s = now() - t0
              local r = funcs.call("async:burn", n)
              spans[i] = { s, now() - t0 }
              return r
            end
          end
          local a, b = wippy.spawn(job(1)), wippy.spawn(job(2))
          return a:result(), b:result()
        end)
        local both = now() - t0
        assert.equals(expected, r1)
        assert.equals(expected, r2)
        tries[#tries + 1] = ("two calls %.0f ms together (%.0f-%.0f, %.0f-%.0f), one alone %.0f ms"):format(
          both, spans[1][1], spans[1][2], spans[2][1], spans[2][2], single)
        if both < 1.6 * single then return end
      end
      -- A control: two busy processes of this VM. If the machine cannot run even those in
      -- parallel now (other work has the cores), this says nothing about the module.
      local loop = VM .. [[ -e "local x = 0 for i = 1, %d do x = x + i %% 7 end" ]]
      local k = 20000000
      t0 = now()
      shell(loop:format(k))
      local one = now() - t0
      k = math.floor(k * 250 / math.max(one, 1))
      t0 = now()
      shell(loop:format(k))
      one = now() - t0
      t0 = now()
      shell("(" .. loop:format(k) .. "& " .. loop:format(k) .. "& wait)")
      local two = now() - t0
      if two >= 1.5 * one then
        pending(("the machine has no two free cores now: two processes took %.0f ms, one %.0f ms (%s)"):format(
          two, one, table.concat(tries, "; ")))
      end
      error(("no parallelism (two processes took %.0f ms, one %.0f ms): %s"):format(two, one, table.concat(tries, "; ")))
    end)

    it("give the same checksum inline, on a worker, inside and outside tasks", function()
      local a = funcs.call("async:burn", 100000)
      local b = funcs.call("async:burn_inline", 100000)
      local c, d = wippy.run(function()
        return funcs.call("async:burn", 100000), funcs.call("async:burn_inline", 100000)
      end)
      assert.equals(a, b)
      assert.equals(a, c)
      assert.equals(a, d)
      assert.are_not.equal(a, funcs.call("async:burn", 100001))
    end)
  end)

  describe("blocking and yielding", function()
    it("give identical results and errors", function()
      local body = "bin\0ary " .. string.rep("x", 5000)
      local calls = {
        { "async:add", 40, 2 },
        { "async:add", 4294967295, 2 },
        { "async:add", -1, 2 },
        { "async:burn", 1000 },
        { "async:boom" },
        { "async:grow", 64 },
        { "async:grow", 1 },
        { "async:nothing" },
        { "async:http", "GET", url("/same?q=1"), { { "x-probe", "v1" } }, nil },
        { "async:http", "POST", url("/same?status=201"), { { "x-probe", "v2" } }, body },
        { "async:http_inline", "PUT", url("/inline"), {}, "put body" },
        { "async:http_default_policy", "GET", url("/denied"), {}, nil },
        { "async:http", "GET", "http://127.0.0.1:1/", {}, nil },
        { "async:http", "GET", "ftp://127.0.0.1/", {}, nil },
        { "async:tcp", tcp_addr(), body },
        { "async:tcp", "127.0.0.1:1", "x" },
      }
      local function run_all()
        local out = {}
        for i, c in ipairs(calls) do
          local r = plain(funcs.call(unpack(c)))
          r[1] = undated(r[1])
          out[i] = r
        end
        return out
      end
      local blocking = run_all()
      local yielding = wippy.run(run_all)
      local async = wippy.run(function()
        local out = {}
        for i, c in ipairs(calls) do
          local f, err = funcs.async(unpack(c))
          local r = f and plain(f:result()) or plain(nil, err)
          r[1] = undated(r[1])
          out[i] = r
        end
        return out
      end)
      for i = 1, #calls do
        assert.same(blocking[i], yielding[i], "call " .. i .. ": " .. calls[i][1])
        assert.same(blocking[i], async[i], "call " .. i .. ": " .. calls[i][1])
      end
      -- And they are what they should be.
      assert.same({ n = 1, 42 }, blocking[1])
      assert.same({ n = 1, 1 }, blocking[2])
      assert.equals("INVALID", blocking[3][2].kind)
      assert.equals("trap", blocking[5][2].details.reason)
      assert.equals("memory_limit", blocking[6][2].details.reason)
      assert.same({ n = 1, 1 }, blocking[7])
      assert.equals("NOT_FOUND", blocking[8][2].kind)
      assert.equals("GET /same?q=1\n", blocking[9][1].body)
      assert.equals("POST /same?status=201\n" .. body, blocking[10][1].body)
      assert.equals(201, blocking[10][1].status)
      assert.equals("PUT /inline\nput body", blocking[11][1].body)
      assert.is_nil(blocking[12][1])
      assert.equals("string", type(blocking[12][2]))
      assert.is_nil(blocking[13][1])
      assert.is_nil(blocking[14][1])
      assert.is_true(blocking[15][1] == body, "the TCP round trip failed: " .. tostring(blocking[15][2]))
      assert.is_nil(blocking[16][1])
    end)
  end)

  describe("wasi:http", function()
    it("makes a GET with headers", function()
      local r, err = funcs.call("async:http", "GET", url("/hello/world?a=1&b=two"), { { "x-test", "yes" }, { "X-Other", "two words" } }, nil)
      assert.is_nil(err)
      assert.equals(200, r.status)
      assert.equals("GET /hello/world?a=1&b=two\n", r.body)
      assert.equals("GET", header(r, "x-echo-method"))
      assert.equals("/hello/world?a=1&b=two", header(r, "x-echo-path"))
      assert.equals("yes", header(r, "x-echo-x-test"))
      assert.equals("two words", header(r, "x-echo-x-other"))
      assert.equals(tostring(#r.body), header(r, "content-length"))
    end)

    it("makes a POST with a binary body of 200 KB", function()
      local parts = {}
      for i = 0, 255 do parts[#parts + 1] = string.char(i) end
      local body = string.rep(table.concat(parts), 800)
      local r, err = funcs.call("async:http", "POST", url("/upload"), { { "x-kind", "bytes" } }, body)
      assert.is_nil(err)
      assert.equals(200, r.status)
      assert.equals("POST /upload\n" .. body, r.body)
      assert.equals("bytes", header(r, "x-echo-x-kind"))
    end)

    it("gives non-2xx statuses as responses", function()
      local r = assert(funcs.call("async:http", "DELETE", url("/gone?status=404"), {}, nil))
      assert.equals(404, r.status)
      assert.equals("DELETE /gone?status=404\n", r.body)
    end)

    it("overlaps requests of several tasks", function()
      local t0 = now()
      local statuses = wippy.run(function()
        local hs = {}
        for i = 1, 8 do
          hs[i] = wippy.spawn(function()
            local r, err = funcs.call("async:http", "GET", url("/slow?delay_ms=300&i=" .. i), {}, nil)
            assert(r, tostring(err))
            return r.status, r.body
          end)
        end
        local out = {}
        for i = 1, 8 do
          local status, body = hs[i]:result()
          assert.equals("GET /slow?delay_ms=300&i=" .. i .. "\n", body)
          out[i] = status
        end
        return out
      end)
      assert.same({ 200, 200, 200, 200, 200, 200, 200, 200 }, statuses)
      within(now() - t0, 300, 1500, "8 requests of 300 ms")
    end)

    it("denies loopback without wasi.allowed_hosts, as an error inside the guest", function()
      local r, err = funcs.call("async:http_default_policy", "GET", url("/x"), {}, nil)
      assert.is_nil(r)
      assert.equals("string", type(err))
      assert.matches("HttpRequestDenied", err, 1, true)
    end)

    it("gives no network to a component that does not import wasi:http", function()
      local r, err = funcs.call("async:http_no_imports", "GET", url("/x"), {}, nil)
      assert.is_nil(r)
      assert.equals("PERMISSION_DENIED", err:kind())
      assert.matches('^async:http_no_imports: wasi:http/[%w-]+ is not granted: add "wasi:http" to imports$', tostring(err))
    end)

    it("returns a refused connection as the guest's error", function()
      local r, err = funcs.call("async:http", "GET", "http://127.0.0.1:1/", {}, nil)
      assert.is_nil(r)
      assert.equals("string", type(err))
      assert.matches("ConnectionRefused", err, 1, true)
    end)
  end)

  describe("wasi:sockets", function()
    it("makes a TCP round trip", function()
      local data = "hello\0world\n" .. string.rep("0123456789", 10000)
      local r, err = funcs.call("async:tcp", tcp_addr(), data)
      assert.is_nil(err)
      assert.equals(data, r)
      local r2, err2 = wippy.run(function() return funcs.call("async:tcp", tcp_addr(), "in a task") end)
      assert.is_nil(err2)
      assert.equals("in a task", r2)
    end)

    it("returns a refused connection as the guest's error", function()
      local r, err = funcs.call("async:tcp", "127.0.0.1:1", "x")
      assert.is_nil(r)
      assert.equals("string", type(err))
      assert.matches("^connect 127%.0%.0%.1:1: ", err)
      assert.matches("[Rr]efused", err)
    end)

    it("denies loopback without wasi.allowed_hosts", function()
      local r, err = funcs.call("async:tcp_default_policy", tcp_addr(), "x")
      assert.is_nil(r)
      assert.equals("string", type(err))
      assert.matches("^connect 127%.0%.0%.1:" .. ports.tcp .. ": ", err)
    end)
  end)

  describe("Lua functions called from tasks", function()
    it("yield while the entries they call wait: 5 tasks take the time of one", function()
      assert(wippy.registry:add({ id = "async:lua_sleeper", kind = "function.lua", handler = function(ms)
        local r, err = funcs.call("async:sleep_wide", ms)
        assert(err == nil, tostring(err))
        return r, "done"
      end }))
      local t0 = now()
      local results = wippy.run(function()
        local tasks = {}
        for i = 1, 5 do tasks[i] = wippy.spawn(function() return pack(funcs.call("async:lua_sleeper", 200)) end) end
        local out = {}
        for i = 1, 5 do out[i] = tasks[i]:result() end
        return out
      end)
      within(now() - t0, 195, 700, "5 tasks each calling a Lua function that sleeps 200 ms in a guest")
      for i = 1, 5 do
        assert.equals(2, results[i].n)
        assert.equals("done", results[i][2])
      end
    end)

    it("report a Lua error from a task's call as the entry's INTERNAL error", function()
      assert(wippy.registry:add({ id = "async:lua_raises", kind = "function.lua", handler = function() error("boom", 0) end }))
      local r, err = wippy.run(function() return funcs.call("async:lua_raises") end)
      assert.is_nil(r)
      assert.equals("INTERNAL", err:kind())
      assert.equals("async:lua_raises: boom", err:message())
    end)
  end)

  describe("limits", function()
    it("apply an executor's timeout to an inline core call from a task", function()
      H.add_wat("async:spin_core_inline", [[(module (func (export "spin") (loop (br 0))))]], { pool = { type = "inline" } })
      local ex = funcs.new():with_options({ timeout = 100 })
      local t0 = now()
      local r, err = wippy.run(function() return ex:call("async:spin_core_inline") end)
      assert.is_nil(r)
      assert.equals("TIMEOUT", err:kind())
      within(now() - t0, 90, 1500, "an inline spin with a 100 ms timeout")
    end)

    it("time out an infinite loop within 1.5x limits.max_execution_ms, inside and outside tasks", function()
      for _, id in ipairs({ "async:spin", "async:spin_inline" }) do
        local t0 = now()
        local r, err = funcs.call(id)
        local took = now() - t0
        assert.is_nil(r)
        assert.equals("TIMEOUT", err:kind())
        assert.equals(id .. ": the call ran out of time (limits.max_execution_ms)", err:message())
        assert.is_true(err:retryable())
        within(took, 295, 450, id)
        t0 = now()
        local _, err2 = wippy.run(function() return funcs.call(id) end)
        assert.equals("TIMEOUT", err2:kind())
        within(now() - t0, 295, 450, id .. " in a task")
      end
    end)

    it("time out a sleeping guest every time, and the next call succeeds", function()
      for round = 1, 2 do
        local t0 = now()
        local _, err = funcs.call("async:sleep_limited", 3000)
        assert.equals("TIMEOUT", err:kind())
        within(now() - t0, 295, 450, "round " .. round .. ": a sleep past the limit")
        assert.is_true(funcs.call("async:sleep_limited", 10) >= 10)
        t0 = now()
        local _, err2 = wippy.run(function() return funcs.call("async:sleep_limited", 3000) end)
        assert.equals("TIMEOUT", err2:kind())
        within(now() - t0, 295, 450, "round " .. round .. ": a sleep past the limit in a task")
      end
    end)

    it("stop the guest when its call times out or is canceled: nothing stays busy", function()
      local function settled(id)
        -- The stats may lag the returned error by a moment, not by the guest's whole sleep.
        local deadline = now() + 250
        repeat
          local s = wippy.stats(id)
          if s.busy == 0 then return s end
          wippy.sleep(10)
        until now() > deadline
        return wippy.stats(id)
      end
      local before = wippy.stats("async:stats_timeouts")
      assert.equals("TIMEOUT", select(2, funcs.call("async:stats_timeouts", 3000)):kind())
      local s = settled("async:stats_timeouts")
      assert.equals(0, s.busy)
      assert.equals(before.timeouts + 1, s.timeouts)
      assert.equals("TIMEOUT", select(2, wippy.run(function() return funcs.call("async:stats_timeouts", 3000) end)):kind())
      s = settled("async:stats_timeouts")
      assert.equals(0, s.busy)
      assert.equals(before.timeouts + 2, s.timeouts)
      local f = assert(funcs.async("async:stats_cancel", 10000))
      wippy.sleep(50)
      f:cancel()
      assert.equals("CANCELED", select(2, f:result()):kind())
      assert.equals(0, settled("async:stats_cancel").busy)
    end)

    it("apply the executor's timeout to a sleeping guest", function()
      local e = funcs.new():with_options({ timeout = 150 })
      for _, id in ipairs({ "async:sleep", "async:sleep_inline" }) do
        local t0 = now()
        local r, err = e:call(id, 3000)
        assert.is_nil(r)
        assert.equals("TIMEOUT", err:kind())
        assert.matches("the executor's timeout", err:message(), 1, true)
        within(now() - t0, 145, 225 + 300, id)
        t0 = now()
        local _, err2 = wippy.run(function() return e:call(id, 3000) end)
        assert.equals("TIMEOUT", err2:kind())
        within(now() - t0, 145, 225 + 300, id .. " in a task")
        -- Shorter calls are not affected, nor is the same entry without the executor.
        assert.is_true(e:call(id, 10) >= 10)
        assert.is_true(funcs.call(id, 200) >= 200)
      end
    end)

    it("report memory growth past limits.memory_bytes as memory_limit; the next call succeeds", function()
      assert.equals(8, funcs.call("async:grow", 8))
      local r, err = funcs.call("async:grow", 64)
      assert.is_nil(r)
      assert.equals("INTERNAL", err:kind())
      assert.equals("memory_limit", err:details().reason)
      assert.equals(8, funcs.call("async:grow", 8))
      local _, err2 = wippy.run(function() return funcs.call("async:grow", 64) end)
      assert.equals("memory_limit", err2:details().reason)
      assert.equals(16, funcs.call("async:grow", 16))
    end)

    it("stop a call out of fuel; fuel is per call, and the next call succeeds", function()
      local expected = funcs.call("async:burn", 10000)
      for _ = 1, 20 do assert.equals(expected, funcs.call("async:burn_fuel", 10000)) end
      local r, err = funcs.call("async:burn_fuel", 100000000)
      assert.is_nil(r)
      assert.equals("INTERNAL", err:kind())
      assert.equals("out_of_fuel", err:details().reason)
      assert.equals(expected, funcs.call("async:burn_fuel", 10000))
    end)

    it("recover from a trap: boom, then the next calls work", function()
      local _, err = funcs.call("async:boom")
      assert.equals("INTERNAL", err:kind())
      assert.equals("trap", err:details().reason)
      assert.matches("unreachable", err:details().trap)
      assert.equals(5, funcs.call("async:add", 2, 3))
      local _, err2 = wippy.run(function() return funcs.call("async:boom") end)
      assert.equals("trap", err2:details().reason)
      assert.equals(7, wippy.run(function() return funcs.call("async:add", 3, 4) end))
    end)

    it("discard an instance that trapped: the next call counts from 1", function()
      assert.equals(1, funcs.call("async:probe", 0, false))
      assert.equals(2, funcs.call("async:probe", 0, false))
      local _, err = funcs.call("async:probe", 0, true)
      assert.equals("trap", err:details().reason)
      assert.equals(1, funcs.call("async:probe", 0, false))
      assert.equals(2, funcs.call("async:probe", 0, false))
    end)
  end)

  describe("cancel", function()
    it("stops a sleeping call quickly with CANCELED", function()
      local f = assert(funcs.async("async:sleep", 5000))
      assert.is_false(f:is_complete())
      assert.is_false(f:is_canceled())
      wippy.sleep(50)
      local t0 = now()
      assert.is_true(f:cancel())
      assert.is_true(f:is_canceled())
      local r, err = f:result()
      within(now() - t0, 0, 500, "the canceled call")
      assert.is_nil(r)
      assert.equals("CANCELED", err:kind())
      assert.equals("async:sleep: the call was canceled", err:message())
      assert.is_true(f:is_complete())
      assert.equals(err, f:error())
      assert.is_true(funcs.call("async:sleep", 1) >= 1)
    end)

    it("interrupts running CPU-bound calls, on workers and inline", function()
      for _, c in ipairs({ { "async:burn", 4000000000 }, { "async:spin_free" }, { "async:spin_free_inline" } }) do
        local t0 = now()
        local r, err, canceled = wippy.run(function()
          local f = assert(funcs.async(unpack(c)))
          wippy.spawn(function() wippy.sleep(100); f:cancel() end)
          local r, err = f:result()
          return r, err, f:is_canceled()
        end)
        assert.is_nil(r, c[1])
        assert.equals("CANCELED", err:kind())
        assert.is_true(canceled)
        within(now() - t0, 95, 1000, c[1])
      end
      assert.equals(funcs.call("async:burn_inline", 1000), funcs.call("async:burn", 1000))
    end)

    it("resumes every task that waits for the same future", function()
      local r = wippy.run(function()
        local f = assert(funcs.async("async:sleep", 50))
        local a = wippy.spawn(function() return f:result() end)
        local b = wippy.spawn(function() return f:result() end)
        return { a:result(), b:result(), f:result() }
      end)
      assert.is_true(r[1] >= 50, tostring(r[1]))
      assert.equals(r[1], r[2])
      assert.equals(r[1], r[3])
    end)

    it("does nothing to a call that finished", function()
      local f = assert(funcs.async("async:add", 1, 2))
      assert.equals(3, f:result())
      assert.is_true(f:cancel())
      assert.equals(3, f:result())
      assert.is_nil(f:error())
    end)
  end)

  describe("pools", function()
    it("keep a warm instance: counter increments", function()
      assert.equals(1, funcs.call("async:counter"))
      assert.equals(2, funcs.call("async:counter"))
      assert.equals(3, funcs.call("async:counter"))
      -- Tasks may use other instances than blocking callers, but they stay warm too.
      local a, b = wippy.run(function() return funcs.call("async:counter"), funcs.call("async:counter") end)
      assert.equals(a + 1, b)
    end)

    it("keep one warm instance for an inline pool, whoever calls", function()
      -- SPEC §4: inline runs calls on the calling Lua thread with one instance.
      local seen = { funcs.call("async:counter_inline"), funcs.call("async:counter_inline") }
      wippy.run(function()
        seen[#seen + 1] = funcs.call("async:counter_inline")
        seen[#seen + 1] = assert(funcs.async("async:counter_inline")):result()
      end)
      seen[#seen + 1] = funcs.call("async:counter_inline")
      assert.same({ 1, 2, 3, 4, 5 }, seen)
    end)

    it("give every call a fresh instance with isolate", function()
      for _ = 1, 3 do assert.equals(1, funcs.call("async:counter_isolated")) end
      local rs = wippy.run(function()
        local hs = {}
        for i = 1, 6 do hs[i] = wippy.spawn(function() return funcs.call("async:counter_isolated") end) end
        local out = {}
        for i = 1, 6 do out[i] = hs[i]:result() end
        return out
      end)
      assert.same({ 1, 1, 1, 1, 1, 1 }, rs)
      assert.equals(1, funcs.call("async:probe_isolated", 0, false))
      assert.equals(1, funcs.call("async:probe_isolated", 0, false))
    end)

    it("recycle an instance that retains more than max_retained_memory_bytes", function()
      assert.equals(1, funcs.call("async:probe_retained", 0, false))
      assert.equals(2, funcs.call("async:probe_retained", 0, false))
      assert.equals(3, funcs.call("async:probe_retained", 32, false)) -- now 2 MiB + 64 KiB
      assert.equals(1, funcs.call("async:probe_retained", 0, false))
      assert.equals(2, funcs.call("async:probe_retained", 0, false))
      -- The guest: growing past 8 MiB gets its instance recycled.
      local before = wippy.stats("async:grow_retained").recycled
      assert.equals(1, funcs.call("async:grow_retained", 1))
      assert.equals(before, wippy.stats("async:grow_retained").recycled)
      assert.equals(16, funcs.call("async:grow_retained", 16))
      assert.equals(before + 1, wippy.stats("async:grow_retained").recycled)
    end)
  end)

  describe("wippy.stats", function()
    local function delta(id, f)
      local a = wippy.stats(id)
      f()
      local b = wippy.stats(id)
      local d = {}
      for _, k in ipairs({ "calls", "errors", "traps", "timeouts" }) do d[k] = b[k] - a[k] end
      return d, b
    end

    it("counts calls, errors, traps and timeouts", function()
      local d = delta("async:stats_add", function()
        funcs.call("async:stats_add", 1, 2)
        wippy.run(function() funcs.call("async:stats_add", 1, 2) end)
        funcs.async("async:stats_add", 1, 2):result()
      end)
      assert.same({ calls = 3, errors = 0, traps = 0, timeouts = 0 }, d)
      d = delta("async:stats_boom", function()
        funcs.call("async:stats_boom")
        wippy.run(function() funcs.call("async:stats_boom") end)
      end)
      assert.same({ calls = 2, errors = 2, traps = 2, timeouts = 0 }, d)
      d = delta("async:stats_spin", function()
        funcs.call("async:stats_spin")
        wippy.run(function() funcs.call("async:stats_spin") end)
      end)
      assert.same({ calls = 2, errors = 2, traps = 0, timeouts = 2 }, d)
      local s
      d, s = delta("async:stats_sleep", function()
        funcs.call("async:stats_sleep", 50)
        wippy.run(function() funcs.call("async:stats_sleep", 50) end)
      end)
      assert.same({ calls = 2, errors = 0, traps = 0, timeouts = 0 }, d)
      assert.is_true(s.p50_us >= 50000, "p50_us " .. tostring(s.p50_us))
      assert.is_true(s.p50_us < 5000000, "p50_us " .. tostring(s.p50_us))
      assert.is_true(s.p99_us >= s.p50_us, "p99_us " .. tostring(s.p99_us))
      assert.equals(0, s.busy)
    end)

    it("shows a running call as busy", function()
      local f = assert(funcs.async("async:stats_burn", 4000000000))
      wippy.sleep(100)
      assert.equals(1, wippy.stats("async:stats_burn").busy)
      f:cancel()
      f:result()
      assert.equals(0, wippy.stats("async:stats_burn").busy)
    end)

    it("lists every entry and the engine", function()
      local calls = wippy.stats("async:stats_add").calls
      funcs.call("async:stats_add", 1, 2)
      local all = wippy.stats()
      assert.equals("table", type(all["async:stats_add"]))
      assert.equals(calls + 1, all["async:stats_add"].calls)
      assert.equals("table", type(all["async:probe"]))
      assert.equals("table", type(all.engine))
      assert.is_true(all.engine.workers >= 1)
      assert.is_true(all.engine.compiled + all.engine.cache_hits >= 1)
    end)
  end)

  describe("the artifact cache", function()
    it("lets a second process load the guest without compiling", function()
      local dir = H.tmpdir()
      local script = dir .. "/load.lua"
      H.write(script, ([[
package.cpath = %q
local wippy = require("wippy")
wippy.configure({ cache_dir = %q })
assert(wippy.registry:add({ id = "c:add", kind = "function.wasm", path = %q, method = "add" }))
local s = wippy.stats().engine
io.write(s.compiled, " ", s.cache_hits, " ", wippy.funcs.call("c:add", 20, 22))
]]):format(package.cpath, dir .. "/cache", GUEST))
      assert.equals("1 0 42", shell(VM .. " '" .. script .. "' 2>&1"))
      local second = shell(VM .. " '" .. script .. "' 2>&1")
      os.execute("rm -rf '" .. dir .. "'")
      assert.equals("0 1 42", second)
    end)
  end)
end)
