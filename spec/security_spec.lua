-- Security (SPEC §5.4): actors, scopes and policies, executors carrying them, the funcs.call
-- check on every call (fast path included), the context riding into Lua functions and tasks,
-- strict mode.
local H = dofile("spec/helper.lua")
local wippy, funcs, registry = H.wippy, H.funcs, H.registry
local security = wippy.security

local ADD = [[(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))]]

local function allow(id, resources, actions)
  return { id = id, actions = actions or { "funcs.call" }, resources = resources, effect = "allow" }
end

local function deny(id, resources)
  return { id = id, actions = { "funcs.call" }, resources = resources, effect = "deny" }
end

describe("security", function()
  setup(function()
    H.add_wat("sec:add", ADD, { wit = "add: func(a: s32, b: s32) -> s32;", pool = { type = "inline" } })
    H.add_wat("sec:secret", ADD, { wit = "add: func(a: s32, b: s32) -> s32;" })
    assert(registry:add({ id = "sec:whoami", kind = "function.lua", handler = function()
      local a = security.actor()
      return { actor = a and a:id(), context = funcs.context(), can = security.can("funcs.call", "sec:secret") }
    end }))
    assert(registry:add({ id = "sec:nested", kind = "function.lua", handler = function()
      local inner = funcs.call("sec:whoami")
      local r, err = funcs.call("sec:secret", 1, 2)
      return { inner = inner, secret = r, err = err and err:kind() }
    end }))
    assert(registry:add({ id = "sec:spawner", kind = "function.lua", handler = function()
      return wippy.spawn(function()
        local a = security.actor()
        return a and a:id()
      end)
    end }))
  end)

  teardown(function() wippy.configure({ strict = false }) end)

  it("is the same table as require('security')", function()
    assert.equals(security, require("security"))
  end)

  describe("actors and scopes", function()
    it("keep their id, meta and policies, and evaluate allow, deny and undefined", function()
      local actor = security.new_actor("user:42", { role = "admin", level = 3 })
      assert.equals("user:42", actor:id())
      assert.same({ role = "admin", level = 3 }, actor:meta())
      local scope = security.new_scope({ allow("p1", { "app:*" }), deny("p2", { "app:secret" }) })
      assert.is_true(scope:contains("p1"))
      assert.equals(2, #scope:policies())
      assert.equals("allow", scope:evaluate(actor, "funcs.call", "app:compute"))
      assert.equals("deny", scope:evaluate(actor, "funcs.call", "app:secret"))
      assert.equals("undefined", scope:evaluate(actor, "funcs.call", "other:x"))
      assert.equals("undefined", scope:evaluate(nil, "fs.get", "app:compute"))
      local fewer = scope:without("p2")
      assert.is_false(fewer:contains("p2"))
      assert.is_true(scope:contains("p2"), "scopes are immutable")
      assert.equals("allow", fewer:evaluate(actor, "funcs.call", "app:secret"))
      assert.equals("deny", fewer:with(deny("p3", { "app:*" })):evaluate(actor, "funcs.call", "app:compute"))
    end)

    it("apply conditions on the actor's meta", function()
      local scope = security.new_scope({ {
        id = "admins", actions = { "*" }, resources = { "*" }, effect = "allow",
        conditions = { { field = "role", operator = "eq", value = "admin" }, { field = "level", operator = "gte", value = 2 } },
      } })
      assert.equals("allow", scope:evaluate(security.new_actor("a", { role = "admin", level = 3 }), "funcs.call", "x:y"))
      assert.equals("undefined", scope:evaluate(security.new_actor("b", { role = "admin", level = 1 }), "funcs.call", "x:y"))
      assert.equals("undefined", scope:evaluate(security.new_actor("c", { role = "guest", level = 9 }), "funcs.call", "x:y"))
      assert.equals("undefined", scope:evaluate(nil, "funcs.call", "x:y"))
    end)

    it("reject malformed policies", function()
      assert.has_error(function() security.new_scope({ { id = "x", actions = { "*" }, resources = { "*" } } }) end)
      assert.has_error(function() security.new_scope({ { id = "x", effect = "maybe" } }) end)
      assert.has_error(function() security.new_scope({ { id = "x", effect = "allow", action = { "*" } } }) end)
      assert.has_error(function()
        security.new_scope({ { id = "x", effect = "allow", conditions = { { field = "a", operator = "sometimes" } } } })
      end)
    end)
  end)

  describe("executors", function()
    it("carry the actor, scope and context values into a Lua function", function()
      local ex = funcs.new():with_actor(security.new_actor("user:42")):with_context({ request = "r-1", tenant = "t" })
      local r = ex:call("sec:whoami")
      assert.equals("user:42", r.actor)
      assert.same({ request = "r-1", tenant = "t" }, r.context)
      -- Later values win; the rest are kept.
      r = ex:with_context({ tenant = "other" }):call("sec:whoami")
      assert.same({ request = "r-1", tenant = "other" }, r.context)
      -- Outside the executor, nothing.
      r = funcs.call("sec:whoami")
      assert.is_nil(r.actor)
      assert.same({}, r.context)
      assert.is_nil(security.actor())
    end)

    it("deny a call the scope denies, on the fast path too", function()
      local ex = funcs.new():with_scope(security.new_scope({ allow("p1", { "sec:*" }), deny("p2", { "sec:secret" }) }))
      assert.equals(5, ex:call("sec:add", 2, 3))
      local r, err = ex:call("sec:secret", 2, 3)
      assert.is_nil(r)
      assert.equals("PERMISSION_DENIED", err:kind())
      assert.equals("sec:secret: funcs.call is not allowed", err:message())
      local fut, ferr = ex:async("sec:secret", 1, 1)
      assert.is_nil(fut)
      assert.equals("PERMISSION_DENIED", ferr:kind())
      r, err = wippy.run(function() return ex:call("sec:secret", 1, 1) end)
      assert.equals("PERMISSION_DENIED", err:kind())
    end)

    it("keep the outermost context at every depth, the innermost call checked", function()
      local actor = security.new_actor("user:7", { role = "ops" })
      local scope = security.new_scope({ allow("all", { "*" }), deny("no-secret", { "sec:secret" }) })
      local ex = funcs.new():with_actor(actor):with_scope(scope):with_context({ trace = "abc" })
      local r = ex:call("sec:nested")
      assert.equals("user:7", r.inner.actor)
      assert.same({ trace = "abc" }, r.inner.context)
      assert.is_false(r.inner.can)
      assert.is_nil(r.secret)
      assert.equals("PERMISSION_DENIED", r.err)
      -- The fast path inside a Lua function is checked too, and the context is back afterwards.
      assert.equals(3, funcs.call("sec:secret", 1, 2))
    end)

    it("pass the context on to tasks spawned inside a call", function()
      local ex = funcs.new():with_actor(security.new_actor("user:9"))
      local id = wippy.run(function()
        local task = ex:call("sec:spawner")
        return task:result()
      end)
      assert.equals("user:9", id)
    end)

    it("are immutable and reject unknown options", function()
      local ex = funcs.new()
      assert.has_error(function() ex.timeout = 5 end)
      assert.equals("wippy.executor", getmetatable(ex))
      assert.is_nil(rawget(ex, "timeout"))
      assert.has_error(function() ex:with_options({ timout = 5 }) end,
        'bad argument #1 to \'with_options\' (unknown option "timout"; known: record_keys, timeout)')
      assert.has_error(function() ex:with_actor("user:1") end)
      assert.has_error(function() ex:with_scope({}) end)
    end)
  end)

  describe("nesting", function()
    it("stops a function calling itself through the registry at the depth limit, naming the first entry", function()
      local depth = 0
      assert(registry:add({ id = "sec:recurse", kind = "function.lua", handler = function(n)
        depth = math.max(depth, n)
        local r, err = funcs.call("sec:recurse", n + 1)
        if err then return { err = err:kind(), message = err:message(), depth = n } end
        return r
      end }))
      local r = funcs.call("sec:recurse", 1)
      assert.equals("INVALID", r.err)
      assert.equals("sec:recurse: registry calls nested more than 64 deep (a function calling itself through the registry?)", r.message)
      assert.equals(64, r.depth)
      -- The state is fine afterwards.
      assert.equals(3, funcs.call("sec:add", 1, 2))
    end)
  end)

  describe("strict mode", function()
    it("denies what no policy allows", function()
      wippy.configure({ strict = true })
      local r, err = funcs.call("sec:add", 1, 2)
      assert.is_nil(r)
      assert.equals("PERMISSION_DENIED", err:kind())
      local ex = funcs.new():with_scope(security.new_scope({ allow("p", { "sec:add" }) }))
      assert.equals(3, ex:call("sec:add", 1, 2))
      assert.is_false(security.can("funcs.call", "sec:add"))
      wippy.configure({ strict = false })
      assert.equals(3, funcs.call("sec:add", 1, 2))
      assert.has_error(function() wippy.configure({ strict = "yes" }) end)
    end)
  end)
end)
