-- The scheduler of one Lua state (SPEC §4), loaded by the wippy module with its Rust core.
--
-- Tasks are coroutines the module runs. A task that has to wait yields a marker with what it
-- waits for: a call (a future from the Rust side), a timer, or another task. When every task
-- waits, the scheduler blocks in `core.wait` until a call finishes (the worker threads and
-- WASI wake-ups report to the state's inbox) or the next timer is due: no busy polling.
local core = ...
local MARK = core.marker

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

local S = {
  bythread = {},                                  -- coroutine -> task, until it ends
  ready = {}, rhead = 1, rtail = 0,               -- FIFO of { task, args }
  timers = {},                                    -- sorted by `at`
  waiting = {},                                   -- future id -> { future, task, task, ... }
  nwaiting = 0,
  live = 0,
}

-- Whether the running coroutine may yield (Lua 5.1 and 5.2 have no coroutine.isyieldable:
-- there the Rust core reads what their coroutine.yield checks; see src/lua_api/fast.rs).
local isyieldable = coroutine.isyieldable or core.yieldable

-- The running task, if the caller is one and may yield.
local function current()
  local co = coroutine.running()
  local t = co and S.bythread[co]
  if t and isyieldable() then return t end
  return nil
end

-- OpenResty (docs/openresty.md): inside nginx, a coroutine nginx runs in a phase where
-- cosockets work (rewrite, access, content, timers, ...) waits for a call by reading a byte for
-- its ticket from this worker's wake socket through a cosocket: nginx runs other requests
-- meanwhile. Elsewhere (init_worker, set, filters, log: the main coroutine) calls block.
local ngx = rawget(_G, "ngx")
local NGX = type(ngx) == "table" and type(ngx.get_phase) == "function" and type(ngx.socket) == "table"
  and type(ngx.socket.tcp) == "function"
local ngx_yieldable = function() return false end
local ngx_wait, ngx_await
if NGX then
  core.set_ngx(true)
  local PHASES = { rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
                   ssl_session_fetch = true, ssl_client_hello = true }
  ngx_yieldable = function() return core.isyieldable() and PHASES[ngx.get_phase()] == true end
  local FOREVER = 2 ^ 31 - 1
  local tcp, fmt, ceil = ngx.socket.tcp, string.format, math.ceil
  -- Waits up to `ms` (nil: no limit) for the bell of `ticket`: true when it rang, false when
  -- the time is up, or nil, err.
  ngx_wait = function(ticket, path, ms)
    local sock = tcp()
    sock:settimeout(ms and math.max(1, ceil(ms)) or FOREVER)
    local ok, err = sock:connect("unix:" .. path)
    if ok then
      ok, err = sock:send(fmt("%016x", ticket))
      if ok then
        ok, err = sock:receive(1)
        if ok then
          sock:setkeepalive(60000, 256)
          return true
        end
      end
    end
    sock:close()
    core.unbell(ticket)
    if err == "timeout" then return false end
    return nil, core.error("INTERNAL", "wippy: waiting through nginx failed (wake socket " .. path .. "): " .. tostring(err))
  end
  -- Waits until one of `futs` is complete, or `ms` passed (nil: no limit), running the Lua
  -- function entries guests call meanwhile: true, false (time is up), or nil, err.
  ngx_await = function(futs, ms)
    local deadline = ms and core.now() + ms
    while true do
      core.serve_jobs()
      for i = 1, #futs do
        if futs[i]:is_complete() then return true end
      end
      local left = deadline and deadline - core.now()
      if left and left <= 0 then return false end
      local ticket, path = core.bell(futs, false)
      if ticket == nil then return nil, path end
      if ticket then
        local ok, err = ngx_wait(ticket, path, left)
        if ok == nil then return nil, err end
      end
    end
  end
end

local function push(t, args)
  S.rtail = S.rtail + 1
  S.ready[S.rtail] = { t, args or { n = 0 } }
end

local Task = {}
Task.__index = Task

-- A new task running fn(...) under the security context ctx.
local function new_task(fn, ctx, ...)
  local co = coroutine.create(fn)
  local t = setmetatable({ co = co, joiners = {}, done = false, ctx = ctx }, Task)
  S.bythread[co] = t
  core.task_begin(co)
  S.live = S.live + 1
  push(t, pack(...))
  return t
end

-- A timer resumes task t at `at`; with `token`, only if t still waits in that any-wait.
local function add_timer(at, t, token)
  local timers = S.timers
  local lo, hi = 1, #timers
  while lo <= hi do
    local mid = math.floor((lo + hi) / 2)
    if timers[mid].at <= at then lo = mid + 1 else hi = mid - 1 end
  end
  table.insert(timers, lo, { at = at, task = t, token = token })
end

-- Resumes a task waiting in the any-wait `token` (once: later wake-ups of it are stale).
local function wake_any(t, token)
  if t.any == token then
    t.any = nil
    push(t)
  end
end

local function finish(t, ok, ...)
  if t.done then return end
  t.done, t.ok = true, ok
  if ok then t.res = pack(...) else t.err = (...) end
  S.bythread[t.co] = nil
  core.task_end(t.co)
  S.live = S.live - 1
  for _, j in ipairs(t.joiners) do push(j) end
  t.joiners = {}
  -- A Lua function entry a guest called (wippy:runtime/funcs): the guest gets its results.
  if t.job then
    if ok then core.reply(t.job, true, unpack(t.res, 1, t.res.n)) else core.reply(t.job, false, t.err) end
  end
  -- A Lua function entry run for a waiting task: that task gets its results.
  local w = t.caller
  if w then
    if ok then push(w, t.res) else push(w, pack(core.lua_failed(t.entry, t.err))) end
  end
end

local function wait_on(t, fut)
  fut:watch()
  local res = pack(fut:poll())
  if res[1] then
    push(t, pack(unpack(res, 2, res.n)))
  else
    -- Several tasks may wait for one future: all are resumed with its values.
    local id = fut:id()
    local w = S.waiting[id]
    if not w then
      w = { fut }
      S.waiting[id] = w
    end
    w[#w + 1] = t
    S.nwaiting = S.nwaiting + 1
  end
end

local function step(t, args)
  -- A task runs under the security context it was spawned in.
  local outer = core.enter(t.ctx)
  local r = pack(coroutine.resume(t.co, unpack(args, 1, args.n)))
  core.enter(outer)
  if coroutine.status(t.co) == "dead" then
    return finish(t, unpack(r, 1, r.n))
  end
  if r[1] and r[2] == MARK then
    local what = r[3]
    if what == "sleep" then
      add_timer(core.now() + r[4], t)
    elseif what == "join" then
      local other = r[4]
      if other.done then push(t) else other.joiners[#other.joiners + 1] = t end
    elseif what == "any" then
      -- Waits until one of the futures r[4] is complete, or r[5] ms passed (process.wait,
      -- process.events).
      local futs, ms = r[4], r[5]
      local ready = false
      for i = 1, #futs do
        futs[i]:watch()
        if futs[i]:is_complete() then ready = true end
      end
      if ready then
        push(t)
      else
        local token = {}
        t.any = token
        for i = 1, #futs do
          local id = futs[i]:id()
          local w = S.waiting[id]
          if not w then
            w = { futs[i] }
            S.waiting[id] = w
          end
          w[#w + 1] = { any = t, token = token }
          S.nwaiting = S.nwaiting + 1
        end
        if ms then add_timer(core.now() + ms, t, token) end
      end
    elseif what == "lua" then
      -- funcs.call of a Lua function entry from a task: run it as a task under the call's
      -- context (r[5]); this task waits for its results.
      local fn, args = r[4], pack(unpack(r, 7, r.n))
      local child = new_task(function() return fn(unpack(args, 1, args.n)) end, r[5])
      child.caller, child.entry = t, r[6]
    else
      wait_on(t, what)
    end
  else
    -- A plain coroutine.yield in a task: let the others run, then go on.
    push(t)
  end
end

-- Lua function entries guests called while they wait: each runs as a task under the guest's
-- context; its results go back to the guest (core.reply in finish).
local function start_jobs()
  local list = core.jobs()
  for i = 1, #list do
    local j = list[i]
    local fn, input = j[1], j[4]
    local child = new_task(function() return fn(input) end, j[2])
    child.job = j[5]
  end
end

-- Waits on the state's inbox; through nginx when the scheduler runs in a coroutine nginx runs.
local function inbox_wait(timeout)
  if timeout ~= 0 and ngx_yieldable() then
    local ids, jobs = core.wait(0)
    if #ids > 0 or jobs then return ids, jobs end
    local ticket, path = core.bell(nil, true)
    if ticket == nil then error(path, 0) end
    if ticket then
      local ok, err = ngx_wait(ticket, path, timeout)
      if ok == nil then error(err, 0) end
    end
    return core.wait(0)
  end
  return core.wait(timeout)
end

local function collect(timeout)
  local ids, jobs = inbox_wait(timeout)
  if jobs then start_jobs() end
  for i = 1, #ids do
    local w = S.waiting[ids[i]]
    if w then
      local res = pack(w[1]:poll())
      if res[1] then
        S.waiting[ids[i]] = nil
        for j = 2, #w do
          S.nwaiting = S.nwaiting - 1
          local e = w[j]
          if e.token then wake_any(e.any, e.token) else push(e, pack(unpack(res, 2, res.n))) end
        end
      end
    end
  end
end

local function expire()
  local timers = S.timers
  if #timers == 0 then return end
  local now = core.now()
  local n = 0
  while n < #timers and timers[n + 1].at <= now do n = n + 1 end
  if n == 0 then return end
  for i = 1, n do
    local e = timers[i]
    if e.token then wake_any(e.task, e.token) else push(e.task) end
  end
  local len = #timers
  for i = 1, len - n do timers[i] = timers[i + n] end
  for i = len - n + 1, len do timers[i] = nil end
end

-- How many drive loops are running (one inside a task's plain coroutine nests).
local depth = 0

-- Runs tasks until `done()` holds.
local function drive(done)
  depth = depth + 1
  local ok, err = pcall(function()
  while not done() do
    if S.rhead <= S.rtail then
      local last = S.rtail
      while S.rhead <= last do
        local e = S.ready[S.rhead]
        if e == nil then break end -- a nested loop took it
        S.ready[S.rhead] = nil
        S.rhead = S.rhead + 1
        step(e[1], e[2])
      end
      if S.nwaiting > 0 then collect(0) end
    else
      local timeout
      if #S.timers > 0 then timeout = math.max(0, S.timers[1].at - core.now()) end
      if timeout == nil and S.nwaiting == 0 then
        if done() then return end
        local msg = "wippy: no task can make progress (every live task waits for another task)"
        -- The stuck tasks can never run again: end them, so the scheduler stays usable. Not
        -- in a nested loop: the tasks that run it are still active and end as usual.
        if depth == 1 then
          local stuck = {}
          for _, t in pairs(S.bythread) do stuck[#stuck + 1] = t end
          for _, t in ipairs(stuck) do
            local status = coroutine.status(t.co)
            if status == "suspended" then finish(t, false, msg) end
          end
          S.ready, S.rhead, S.rtail = {}, 1, 0
        end
        error(msg, 0)
      end
      collect(timeout)
    end
    expire()
  end
  end)
  depth = depth - 1
  if not ok then error(err, 0) end
end

local M = {}

function Task:result()
  if not self.done then
    if current() then
      coroutine.yield(MARK, "join", self)
    else
      drive(function() return self.done end)
    end
  end
  if self.ok then return unpack(self.res, 1, self.res.n) end
  return nil, self.err
end

function Task:is_done() return self.done end

function M.spawn(fn, ...)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ")", 2)
  end
  return new_task(fn, core.current(), ...)
end

function M.run(fn, ...)
  -- A task's coroutine, yieldable or not (Lua 5.1 cannot yield inside pcall).
  local co = coroutine.running()
  if co and S.bythread[co] then error("wippy.run cannot be called inside a task (use wippy.spawn)", 2) end
  if type(fn) ~= "function" then
    error("bad argument #1 to 'run' (function expected, got " .. type(fn) .. ")", 2)
  end
  local main = M.spawn(fn, ...)
  drive(function() return S.live == 0 end)
  if main.ok then return unpack(main.res, 1, main.res.n) end
  error(main.err, 0)
end

function M.sleep(ms)
  if type(ms) ~= "number" then
    error("bad argument #1 to 'sleep' (number expected, got " .. type(ms) .. ")", 2)
  end
  if current() then
    coroutine.yield(MARK, "sleep", ms)
  elseif ngx_yieldable() then
    ngx.sleep(ms / 1000)
  else
    core.block_sleep(ms)
  end
end

-- Futures: the Rust object does the work; waiting is done here.
local Future = {}
Future.__index = Future

local function wrap(op, err)
  if op == nil then return nil, err end
  return setmetatable({ op = op }, Future)
end

function Future:result()
  local op = self.op
  if not op:is_complete() then
    if current() then return coroutine.yield(MARK, op) end
    if ngx_yieldable() then
      local ok, err = ngx_await({ op })
      if not ok then return nil, err end
    else
      return op:wait()
    end
  end
  return select(2, op:poll())
end
function Future:is_complete() return self.op:is_complete() end
function Future:is_canceled() return self.op:is_canceled() end
function Future:cancel() return self.op:cancel() end
function Future:error() return self.op:error() end

-- Raises like funcs.call for a target that is not a string.
local function check_target(name, n, target)
  if type(target) ~= "string" then
    local got = n == 0 and "no value" or type(target)
    error("bad argument #1 to '" .. name .. "' (string expected, got " .. got .. ")", 3)
  end
end

function M.async(...)
  check_target("async", select("#", ...), (...))
  return wrap(core.async(0, nil, nil, ...))
end

-- Results of a call that may have to wait: the marker and a future mean "yield for it".
local function settle(first, ...)
  if first == MARK then
    if current() then return coroutine.yield(MARK, ...) end
    -- A coroutine nginx runs: wait for the future through nginx (or block, in a coroutine of
    -- a phase without cosockets, e.g. one made in log_by_lua).
    local fut = ...
    if not ngx_yieldable() then return fut:wait() end
    local ok, err = ngx_await({ fut })
    if not ok then return nil, err end
    return select(2, fut:poll())
  end
  return first, ...
end

-- How the caller of a call waits: as a task (true), through nginx ("ngx"), or blocking (false).
local function caller_mode()
  if current() then return true end
  if ngx_yieldable() then return "ngx" end
  return false
end

-- Executors: immutable option sets (SPEC §2). An executor is an empty proxy: its settings live
-- in a private table keyed by it, so no caller can change or see them.
local settings = setmetatable({}, { __mode = "k" })
local Executor = {}
local executor_mt = {
  __index = Executor,
  __newindex = function() error("executors are immutable: use with_context, with_actor, with_scope or with_options", 2) end,
  __metatable = "wippy.executor",
  __tostring = function() return "wippy executor" end,
}

local function executor(timeout, over, keys)
  local e = setmetatable({}, executor_mt)
  settings[e] = { timeout = timeout, over = over, keys = keys }
  return e
end

local function self_of(e, name)
  local s = settings[e]
  if not s then error("bad self to '" .. name .. "' (call it as executor:" .. name .. "(...))", 3) end
  return s
end

function M.new() return executor(0, nil) end

function Executor:with_context(tbl)
  local s = self_of(self, "with_context")
  if type(tbl) ~= "table" then error("bad argument #1 to 'with_context' (table expected, got " .. type(tbl) .. ")", 2) end
  return executor(s.timeout, core.overrides(s.over, "context", tbl), s.keys)
end
function Executor:with_actor(actor)
  local s = self_of(self, "with_actor")
  return executor(s.timeout, core.overrides(s.over, "actor", actor), s.keys)
end
function Executor:with_scope(scope)
  local s = self_of(self, "with_scope")
  return executor(s.timeout, core.overrides(s.over, "scope", scope), s.keys)
end
function Executor:with_options(opts)
  local s = self_of(self, "with_options")
  if type(opts) ~= "table" then error("bad argument #1 to 'with_options' (table expected, got " .. type(opts) .. ")", 2) end
  for k in pairs(opts) do
    if k ~= "timeout" and k ~= "record_keys" then
      error("bad argument #1 to 'with_options' (unknown option \"" .. tostring(k) .. "\"; known: record_keys, timeout)", 2)
    end
  end
  local t = opts.timeout
  if t ~= nil and (type(t) ~= "number" or t < 0) then
    error("bad argument #1 to 'with_options' (timeout must be a number of milliseconds >= 0)", 2)
  end
  local keys = opts.record_keys
  if keys ~= nil and keys ~= "wit" and keys ~= "snake" then
    error("bad argument #1 to 'with_options' (record_keys must be \"wit\" or \"snake\", got " .. tostring(keys) .. ")", 2)
  end
  return executor(t or s.timeout, s.over, keys or s.keys)
end
function Executor:call(...)
  local s = self_of(self, "call")
  check_target("call", select("#", ...), (...))
  return settle(core.call(s.timeout, caller_mode(), s.over, s.keys, ...))
end
function Executor:async(...)
  local s = self_of(self, "async")
  check_target("async", select("#", ...), (...))
  return wrap(core.async(s.timeout, s.over, s.keys, ...))
end

-- Processes (SPEC §7.1): runs of process.wasm entries in new instances on the workers, by pid.
-- A run's result is delivered once, by process.wait or by process.events().
local procs = {} -- pid -> { fut =, id = }

local function await_any(futs, ms)
  if current() then
    coroutine.yield(MARK, "any", futs, ms)
  elseif ngx_yieldable() then
    local ok, err = ngx_await(futs, ms)
    if ok == nil then error(err, 0) end
  else
    core.wait_any(futs, ms)
  end
end

local process = {}

function process.spawn(id, ...)
  if type(id) ~= "string" then
    error("bad argument #1 to 'spawn' (string expected, got " .. type(id) .. ")", 2)
  end
  local fut, pid = core.spawn(id, ...)
  if not fut then return nil, pid end
  procs[pid] = { fut = fut, id = id }
  return pid
end

-- The run's result (`value, nil` or `nil, err`) once it ends; waits up to timeout_ms (TIMEOUT
-- error after it, the process keeps running). Yields in a task, blocks elsewhere.
function process.wait(pid, timeout_ms)
  if timeout_ms ~= nil and (type(timeout_ms) ~= "number" or timeout_ms < 0) then
    error("bad argument #2 to 'wait' (timeout must be a number of milliseconds >= 0)", 2)
  end
  local p = procs[pid]
  if not p then return nil, core.error("NOT_FOUND", "no process " .. tostring(pid) .. " (unknown, or its result was delivered)") end
  if not p.fut:is_complete() then
    await_any({ p.fut }, timeout_ms)
    if not p.fut:is_complete() then
      return nil, core.error("TIMEOUT", pid .. " (" .. p.id .. ") is still running after " .. timeout_ms .. " ms")
    end
  end
  procs[pid] = nil
  return select(2, p.fut:poll())
end

-- Stops a process: its result is a CANCELED error.
function process.terminate(pid)
  local p = procs[pid]
  if not p then return false end
  return p.fut:cancel()
end

-- An iterator of exit events { kind = "EXIT", from = pid, result = { value =, error = } } in the
-- order the processes ended; it waits for running ones (yielding in a task) and ends when none
-- is left.
function process.events()
  return function()
    while true do
      local best, bseq
      local pending = {}
      for pid, p in pairs(procs) do
        if p.fut:is_complete() then
          local s = p.fut:seq()
          if not bseq or s < bseq then best, bseq = pid, s end
        else
          pending[#pending + 1] = p.fut
        end
      end
      if best then
        local p = procs[best]
        procs[best] = nil
        local res = pack(p.fut:poll())
        return { kind = "EXIT", from = best, result = { value = res[2], error = res[3] } }
      end
      if #pending == 0 then return nil end
      await_any(pending)
    end
  end
end

-- Actors (SPEC §7.3): this Lua state's pid and mailbox.
function process.self() return core.self_pid() end

-- Sends a message (strings as text, other values as JSON) → true, or nil, err ("overloaded",
-- "no process ...").
function process.send(pid, topic, ...)
  if type(pid) ~= "string" then error("bad argument #1 to 'send' (string expected, got " .. type(pid) .. ")", 2) end
  if type(topic) ~= "string" then error("bad argument #2 to 'send' (string expected, got " .. type(topic) .. ")", 2) end
  return core.send(pid, topic, ...)
end

-- The next message sent to this Lua state ({ from =, topic =, payloads = }), or nil after
-- timeout_ms; yields in a task, blocks elsewhere.
function process.receive(timeout_ms)
  if timeout_ms ~= nil and (type(timeout_ms) ~= "number" or timeout_ms < 0) then
    error("bad argument #1 to 'receive' (timeout must be a number of milliseconds >= 0)", 2)
  end
  local msg = core.try_receive()
  if msg ~= nil or timeout_ms == 0 then return msg end
  await_any({ core.mail_future() }, timeout_ms)
  return core.try_receive()
end

M.process = process

-- In nginx, `funcs.call` is wrapped: the raw call returns the marker and a future when a
-- coroutine nginx runs has to wait, and the wrapper waits for it through nginx.
if NGX then
  M.wrap_call = function(raw)
    return function(...) return settle(raw(...)) end
  end
end

return M
