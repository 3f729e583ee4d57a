-- Raised errors read as Lua's own (issue 13): a string naming the function and the argument,
-- with the caller's position, without mlua's "runtime error: " prefix or a stack traceback;
-- error values of the caller's own pass through unchanged.
local H = dofile("spec/helper.lua")
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack
local wippy = H.wippy

-- The error a call raises (called from a Lua function, not a tail call: it gets a position).
local function raised(f, ...)
  local args = pack(...)
  local ok, err = pcall(function()
    local r = f(unpack(args, 1, args.n))
    return r
  end)
  assert.is_false(ok)
  return err
end

describe("raised errors", function()
  it("are strings naming the function, with the caller's position and no traceback", function()
    for _, case in ipairs({
      { wippy.load, { {} }, "bad argument #1 to 'wippy.load' (string expected, got table)" },
      { wippy.load, { "x", { cache = 1 } }, [[bad argument #2 to 'wippy.load' (unknown option "cache"; known: cache_dir)]] },
      { wippy.configure, { { workers = "x" } }, "bad argument #1 to 'wippy.configure' (workers must be an integer from 1 to 1024, got string)" },
      { wippy.hash, { {} }, "bad argument #1 to 'wippy.hash' (string expected, got table)" },
      { wippy.command, { 42 }, "bad argument #1 to 'wippy.command' (string expected, got number)" },
      { wippy.security.new_actor, { 5 }, "bad argument #1 to 'wippy.security.new_actor' (string expected, got number)" },
      { wippy.process.send, { "pid:1", "t", print }, "bad argument #3 to 'wippy.process.send' (a function has no JSON form)" },
    }) do
      local err = raised(case[1], unpack(case[2]))
      assert.equals("string", type(err))
      assert.equals("spec/raised_errors_spec.lua:13: " .. case[3], err)
    end
  end)

  it("name registry methods, counting arguments after self", function()
    local err = raised(function(v) return wippy.registry:add(v) end, 5)
    assert.matches("bad argument #1 to 'registry:add' (table expected, got number)", err, 1, true)
    assert.is_nil(err:find("stack traceback", 1, true))
    assert.equals("wippy.registry", tostring(wippy.registry))
    assert.has_error(function() wippy.registry.get = nil end)
    -- The methods work as before.
    assert.is_true(wippy.registry:add({ id = "raised:f", kind = "function.wat", source = '(module (func (export "f")))' }))
    assert.equals("raised:f", wippy.registry:get("raised:f").id)
    assert.is_true(wippy.registry:remove("raised:f"))
  end)

  it("leave the caller's own error values alone", function()
    local value = { code = 7 }
    local ok, err = pcall(wippy.run, function() error(value) end)
    assert.is_false(ok)
    assert.equals(value, err)
    ok, err = pcall(wippy.run, function() error("plain", 0) end)
    assert.equals("plain", err)
  end)
end)
