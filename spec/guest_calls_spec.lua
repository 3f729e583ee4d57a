-- WebAssembly calling the registry (SPEC §5.2, §4 re-entrancy, §5.4): wippy:runtime/funcs with
-- the relay test guest (tests/guests/relay, build/guests/relay_guest.wasm) calling WebAssembly
-- and Lua entries, the caller's context riding through every level, the permission check at
-- each, the depth limit, re-entrant calls that must not deadlock, and tasks that overlap.
local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs
local security = wippy.security
local system = require("system")

local function now() return system.monotime() * 1000 end

local RELAY = H.CWD .. "/build/guests/relay_guest.wasm"
local ASYNC = H.CWD .. "/build/guests/async_guest.wasm"

local add = H.add

-- gc:NAME as an export of the relay guest.
local function relay(name, method, fields)
  local e = { id = "gc:" .. name, kind = "function.wasm", path = RELAY, method = method }
  for k, v in pairs(fields or {}) do e[k] = v end
  add(e)
end

local function lua(name, fn) add({ id = "gc:" .. name, kind = "function.lua", handler = fn }) end

local FUNCS = { imports = { "funcs" } }

describe("registry calls from WebAssembly", function()
  -- What the Lua functions saw, in call order.
  local seen

  setup(function()
    relay("relay", "relay", FUNCS)
    relay("relay2", "relay", { imports = { "funcs" }, pool = { type = "inline" } })
    relay("relay_wide", "relay", { imports = { "funcs" }, pool = { type = "lazy", max_size = 128 } })
    relay("relay_inline", "relay", { imports = { "funcs" }, pool = { type = "inline" } })
    relay("relay_bytes", "relay-bytes", FUNCS)
    relay("hop", "hop", FUNCS)
    relay("hop_inline", "hop", { imports = { "funcs" }, pool = { type = "inline" } })
    relay("recurse", "recurse", FUNCS)
    relay("recurse_inline", "recurse", { imports = { "funcs" }, pool = { type = "inline" } })
    relay("no_funcs", "relay")
    relay("echo", "echo")
    relay("upper", "upper")
    relay("size", "size")
    relay("describe", "describe")
    relay("counter", "[constructor]counter", FUNCS)
    relay("bump", "counters#bump", FUNCS)
    add({ id = "gc:sleep", kind = "function.wasm", path = ASYNC, method = "sleep-ms", imports = { "wasi:clocks", "wasi:cli" },
          pool = { type = "lazy", max_size = 128 } })
    H.add_wat("gc:add", [[(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))]])

    lua("text", function(input) return "lua:" .. input end)
    lua("table", function(input) return { input = input, list = { 1, 2.5, true }, none = wippy.null, nested = { a = { b = "c" } } } end)
    lua("nothing", function() end)
    lua("fails", function(input) return nil, "refused " .. input end)
    lua("raises", function() error("boom", 0) end)
    lua("binary", function() return "\255\0\1" end)
    lua("who", function(input)
      local a, scope = security.actor(), security.scope()
      seen[#seen + 1] = { at = input, actor = a and a:id(), req = funcs.context().req, scoped = scope ~= nil }
      return a and a:id() or "nobody"
    end)
    -- The middle of the chain: reports, then calls the next component.
    lua("mid", function(input)
      local a = security.actor()
      seen[#seen + 1] = { at = "mid", actor = a and a:id(), req = funcs.context().req, scoped = security.scope() ~= nil }
      local r, err = funcs.call("gc:relay2", "gc:who", "leaf")
      if r == nil then return nil, err end
      return "mid(" .. r .. ")"
    end)
    -- Calls back into an inline pool whose only instance is busy with the call that led here.
    lua("again_inline", function(input) return funcs.call("gc:relay_inline", "gc:text", input) end)
    lua("nap", function(ms) return tostring(funcs.call("gc:sleep", tonumber(ms))) end)
  end)

  before_each(function() seen = {} end)
  after_each(function() wippy.configure({ strict = false }) end)

  describe("a WebAssembly target", function()
    it("gets the input as its one argument; strings come back as they are, other values as JSON", function()
      assert.equals("hi there", funcs.call("gc:relay", "gc:echo", "hi there"))
      assert.equals("SHOUT", funcs.call("gc:relay", "gc:upper", "shout"))
      assert.equals('{"text":"a b","length":3,"words":["a","b"]}', funcs.call("gc:relay", "gc:describe", "a b"))
      assert.equals("5", funcs.call("gc:relay", "gc:size", "12345"))
    end)

    it("passes its err payload up as the error", function()
      local r, err = funcs.call("gc:relay", "gc:upper", "")
      assert.is_nil(r)
      assert.equals("empty input", err)
    end)

    it("takes bytes through call-bytes", function()
      assert.equals("3", funcs.call("gc:relay_bytes", "gc:size", "\0\1\255"))
      assert.equals("\255\0\1", funcs.call("gc:relay_bytes", "gc:binary", ""))
    end)

    it("must take one string (or list<u8>) argument", function()
      local r, err = funcs.call("gc:relay", "gc:add", "1")
      assert.is_nil(r)
      assert.matches("gc:add: a registry call from WebAssembly passes one string argument; this function takes", err, 1, true)
    end)
  end)

  describe("a Lua target", function()
    it("gets the input as a string and returns a string, JSON for a table, nothing for nil", function()
      assert.equals("lua:x", funcs.call("gc:relay", "gc:text", "x"))
      assert.equals('{"input":"y","list":[1,2.5,true],"nested":{"a":{"b":"c"}},"none":null}',
        funcs.call("gc:relay", "gc:table", "y"))
      assert.equals("", funcs.call("gc:relay", "gc:nothing", "z"))
    end)

    it("fails the guest's call with nil, err and with a raised error", function()
      assert.same({ nil, "refused q" }, { funcs.call("gc:relay", "gc:fails", "q") })
      assert.same({ nil, "gc:raises: boom" }, { funcs.call("gc:relay", "gc:raises", "q") })
    end)

    it("must return text to call-string", function()
      local r, err = funcs.call("gc:relay", "gc:binary", "")
      assert.is_nil(r)
      assert.equals("gc:binary: the result is not valid UTF-8 text (use call-bytes for bytes)", err)
    end)

    it("runs the same from a task, a future and an inline pool", function()
      local ex = funcs.new():with_actor(security.new_actor("user:7"))
      assert.equals("user:7", wippy.run(function() return ex:call("gc:relay", "gc:who", "task") end))
      assert.equals("user:7", wippy.run(function() return ex:call("gc:relay_inline", "gc:who", "inline") end))
      assert.equals("user:7", ex:async("gc:relay", "gc:who", "future"):result())
      assert.equals("user:7", ex:call("gc:relay_inline", "gc:who", "blocking"))
      assert.equals(4, #seen)
    end)
  end)

  describe("targets", function()
    it("are checked like funcs.call's", function()
      assert.same({ nil, "function not found: gc:nope" }, { funcs.call("gc:relay", "gc:nope", "") })
      assert.same({ nil, 'namespace required in function ID "nope"' }, { funcs.call("gc:relay", "nope", "") })
      assert.same({ nil, "function ID required" }, { funcs.call("gc:relay", "", "") })
    end)

    it("need the funcs profile", function()
      local err = H.call_err("gc:no_funcs", "gc:echo", "x")
      assert.equals("PERMISSION_DENIED", err:kind())
      assert.equals('gc:no_funcs: wippy:runtime/funcs is not granted: add "funcs" to imports', err:message())
    end)
  end)

  describe("the caller's context", function()
    local function chain_scope()
      return security.new_scope({
        { id = "all", actions = { "funcs.call" }, resources = { "gc:*" }, effect = "allow" },
        -- Decides at the innermost call only: the leaf is for admins.
        { id = "leaf", actions = { "funcs.call" }, resources = { "gc:who" }, effect = "deny",
          conditions = { { field = "role", operator = "ne", value = "admin" } } },
      })
    end

    it("rides a task → component → Lua → component → Lua chain; the policy decides at the innermost call", function()
      local ex = funcs.new():with_actor(security.new_actor("user:A", { role = "admin" }))
        :with_scope(chain_scope()):with_context({ req = "r-1" })
      local r, err = wippy.run(function() return ex:call("gc:relay", "gc:mid", "top") end)
      assert.is_nil(err)
      assert.equals("mid(user:A)", r)
      assert.same({
        { at = "mid", actor = "user:A", req = "r-1", scoped = true },
        { at = "leaf", actor = "user:A", req = "r-1", scoped = true },
      }, seen)

      seen = {}
      local guest = funcs.new():with_actor(security.new_actor("user:B", { role = "guest" }))
        :with_scope(chain_scope()):with_context({ req = "r-2" })
      r, err = wippy.run(function() return guest:call("gc:relay", "gc:mid", "top") end)
      assert.is_nil(r)
      assert.equals("gc:who: funcs.call is not allowed for actor user:B", err)
      assert.same({ { at = "mid", actor = "user:B", req = "r-2", scoped = true } }, seen)
    end)

    it("is the same outside tasks (every level blocks)", function()
      local ex = funcs.new():with_actor(security.new_actor("user:A", { role = "admin" }))
        :with_scope(chain_scope()):with_context({ req = "r-3" })
      assert.equals("mid(user:A)", ex:call("gc:relay", "gc:mid", "top"))
      assert.same({ "user:A", "user:A" }, { seen[1].actor, seen[2].actor })
    end)

    it("checks funcs.call on a WebAssembly target too, allowing and denying", function()
      local scope = security.new_scope({
        { id = "p", actions = { "funcs.call" }, resources = { "gc:relay", "gc:echo" }, effect = "allow" },
        { id = "d", actions = { "funcs.call" }, resources = { "gc:upper" }, effect = "deny" },
      })
      local ex = funcs.new():with_actor(security.new_actor("user:C")):with_scope(scope)
      assert.equals("ok", ex:call("gc:relay", "gc:echo", "ok"))
      assert.same({ nil, "gc:upper: funcs.call is not allowed for actor user:C" }, { ex:call("gc:relay", "gc:upper", "x") })
    end)

    it("denies what the scope does not allow in strict mode", function()
      wippy.configure({ strict = true })
      local scope = security.new_scope({ { id = "p", actions = { "funcs.call" }, resources = { "gc:relay" }, effect = "allow" } })
      local ex = funcs.new():with_scope(scope)
      assert.same({ nil, "gc:echo: funcs.call is not allowed" }, { ex:call("gc:relay", "gc:echo", "x") })
      wippy.configure({ strict = false })
      assert.equals("x", ex:call("gc:relay", "gc:echo", "x"))
    end)
  end)

  describe("nesting", function()
    it("stops a guest calling itself at the depth limit, with a clear error", function()
      for _, id in ipairs({ "gc:recurse", "gc:recurse_inline" }) do
        local r, err = funcs.call(id, id)
        assert.is_nil(r)
        local plus, rest = err:match("^(%+*)(.*)$")
        assert.equals(64, #plus, id)
        assert.equals(id .. ": registry calls nested more than 64 deep (a function calling itself through the registry?)", rest)
        local tr, terr = wippy.run(function() return funcs.call(id, id) end)
        assert.is_nil(tr)
        assert.equals(err, terr)
      end
    end)

    it("does not deadlock on the caller's own component, inline pool or busy instance", function()
      -- An entry of its own component, then its own inline pool: guest → guest → guest.
      assert.equals("hop(hop(deep))", funcs.call("gc:hop", "gc:hop|gc:echo|deep"))
      assert.equals("hop(hop(deep))", funcs.call("gc:hop_inline", "gc:hop_inline|gc:echo|deep"))
      -- guest (inline) → Lua → the same inline pool, blocking and from a task.
      assert.equals("lua:x", funcs.call("gc:relay_inline", "gc:again_inline", "x"))
      assert.equals("lua:y", wippy.run(function() return funcs.call("gc:relay_inline", "gc:again_inline", "y") end))
      -- A resource's instance is busy with the call that leads back to it: a clear error.
      local c = assert(funcs.call("gc:counter"))
      lua("use_counter", function() local n, err = c:incr(); return n and tostring(n) or nil, err end)
      local r, err = funcs.call("gc:bump", c, "gc:use_counter")
      assert.is_nil(r)
      assert.matches("busy with the call that led here", err, 1, true)
      assert.equals(2, c:incr(), "the instance still works")
      -- The busy instance's component is still callable for functions without its resources.
      lua("use_echo", function() return funcs.call("gc:echo", "free") end)
      assert.equals("3:free", funcs.call("gc:bump", c, "gc:use_echo"))
    end)
  end)

  describe("tasks", function()
    it("overlap: 100 tasks each making a guest → Lua → guest call take about the time of one", function()
      local t0 = now()
      assert.is_true(tonumber(funcs.call("gc:relay_wide", "gc:nap", "100")) >= 100)
      local one = now() - t0
      local results = {}
      t0 = now()
      wippy.run(function()
        local ts = {}
        for i = 1, 100 do ts[i] = wippy.spawn(function() return funcs.call("gc:relay_wide", "gc:nap", "300") end) end
        for i = 1, 100 do results[i] = ts[i]:result() end
      end)
      local all = now() - t0
      for i = 1, 100 do assert.is_true(tonumber(results[i]) >= 300) end
      assert.is_true(one >= 100)
      assert.is_true(all >= 300 and all < 1500, ("100 tasks took %.0f ms (one 300 ms call)"):format(all))
    end)
  end)
end)
