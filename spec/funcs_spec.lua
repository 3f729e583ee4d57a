local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs

describe("funcs.call", function()
  setup(function()
    assert(wippy.load("spec/fixtures/app"))
  end)

  describe("target checks", function()
    it("raises for a target that is not a string", function()
      assert.error_matches(function() funcs.call() end, "bad argument #1 to 'call' (string expected, got no value)", 1, true)
      assert.error_matches(function() funcs.call(nil) end, "bad argument #1 to 'call' (string expected, got nil)", 1, true)
      assert.error_matches(function() funcs.call(42) end, "bad argument #1 to 'call' (string expected, got number)", 1, true)
      assert.error_matches(function() funcs.call({}) end, "bad argument #1 to 'call' (string expected, got table)", 1, true)
    end)

    local cases = {
      { "", "INVALID", "function ID required" },
      { "compute", "INVALID", 'namespace required in function ID "compute"' },
      { "app:", "INVALID", 'name required in function ID "app:"' },
      { ":x", "INVALID", 'namespace required in function ID ":x"' },
      { "app:missing", "NOT_FOUND", "function not found: app:missing" },
    }
    for _, c in ipairs(cases) do
      it(("returns nil, %s for %q"):format(c[2], c[1]), function()
        local err = H.call_err(c[1], 1, 2)
        assert.equals(c[2], err:kind())
        assert.equals(c[3], err:message())
        assert.equals(c[3], tostring(err))
      end)
    end
  end)

  describe("WebAssembly functions", function()
    it("calls an inline WAT function with WIT", function()
      local r, err = funcs.call("app:compute", 6, 7)
      assert.is_nil(err)
      assert.equals(42, r)
      assert.equals(math.type and "integer" or "number", math.type and math.type(r) or type(r))
    end)

    it("calls a WAT function from a file:// source", function()
      assert.equals(42, funcs.call("app:answer_wat"))
    end)

    it("calls core wasm built from Rust with i64, f64 and f32", function()
      assert.equals(2 ^ 40 + 1, funcs.call("app:add_i64", 2 ^ 40, 1))
      assert.equals(7.5, funcs.call("app:mul_f64", 2.5, 3))
      assert.equals(1.25, funcs.call("app:half_f32", 2.5))
      assert.equals(-3, funcs.call("app:divide", 9, -3))
    end)

    it("keeps a warm instance between calls", function()
      local a = funcs.call("app:counter")
      local b = funcs.call("app:counter")
      assert.equals(a + 1, b)
    end)

    it("accepts floats with integral values for integer parameters", function()
      assert.equals(12, funcs.call("app:compute", 3.0, 4))
    end)

    it("ignores trailing nils beyond the parameter count", function()
      assert.equals(6, funcs.call("app:compute", 2, 3, nil, nil))
    end)

    it("rejects wrong argument counts", function()
      assert.equals("app:compute: expected 2 arguments, got 3", H.call_err("app:compute", 1, 2, 3):message())
      assert.equals("app:compute: expected 2 arguments, got 1", H.call_err("app:compute", 1):message())
      assert.equals("INVALID", H.call_err("app:compute"):kind())
    end)

    it("names the argument and both types on a type mismatch", function()
      local err = H.call_err("app:compute", 1, "two")
      assert.equals("INVALID", err:kind())
      assert.equals("app:compute: argument 2 (b): expected s32, got string", err:message())
      assert.equals("app:compute: argument 1 (a): expected s32, got 1.5 (not an integer)", H.call_err("app:compute", 1.5, 1):message())
      assert.equals("app:compute: argument 1 (a): expected s32, got 2147483648 (out of range -2147483648..=2147483647)",
        H.call_err("app:compute", 2 ^ 31, 1):message())
      assert.equals("app:compute: argument 2 (b): expected s32, got boolean", H.call_err("app:compute", 1, true):message())
    end)
  end)

  describe("traps", function()
    it("returns INTERNAL with reason trap and the trap message", function()
      local err = H.call_err("app:div", 1, 0)
      assert.equals("INTERNAL", err:kind())
      assert.equals("app:div: wasm trap: integer divide by zero", err:message())
      assert.same({ reason = "trap", trap = "integer divide by zero" }, err:details())
      assert.is_false(err:retryable())
      assert.matches("div", err:stack())
    end)

    it("keeps working after a trap on the same entry", function()
      H.call_err("app:div", 1, 0)
      assert.equals(4, funcs.call("app:div", 8, 2))
      H.call_err("app:divide", 1, 0)
      assert.equals(4, funcs.call("app:divide", 8, 2))
    end)

    it("reports a Rust panic as an unreachable trap with a backtrace", function()
      local err = H.call_err("app:divide", 1, 0)
      assert.equals("trap", err:details().reason)
      assert.matches("unreachable", err:details().trap)
      assert.matches("divide", err:stack())
    end)

    it("reports stack overflow", function()
      local err = H.call_err("app:recurse", 0)
      assert.equals("INTERNAL", err:kind())
      assert.equals("stack_overflow", err:details().reason)
      assert.equals(3, funcs.call("app:compute", 1, 3))
    end)

    it("reports linear memory beyond limits.memory_bytes as memory_limit", function()
      H.add_wat("limits:grow", [[
        (module (memory 1)
          (func (export "grow") (param i32) (result i32)
            (if (i32.eq (memory.grow (local.get 0)) (i32.const -1)) (then unreachable))
            (memory.size)))]], { limits = { memory_bytes = 4 * 65536 } })
      assert.equals(3, funcs.call("limits:grow", 2))
      local err = H.call_err("limits:grow", 10)
      assert.equals("memory_limit", err:details().reason)
      assert.equals(2, funcs.call("limits:grow", 1))
    end)
  end)

  describe("Lua functions", function()
    it("calls a function.lua entry the same way", function()
      assert.equals("Hello, Lua!", funcs.call("app:greet", "Lua"))
      assert.equals("Hello, Lua?", funcs.call("app:greet", "Lua", "?"))
    end)

    it("returns a raised Lua error as nil, INTERNAL error, without the traceback", function()
      local err = H.call_err("app:explode")
      assert.equals("INTERNAL", err:kind())
      assert.matches("^app:explode: .*greet%.lua:%d+: boom$", err:message())
    end)
  end)

  it("does not call fs.directory or env.variable entries", function()
    assert.equals("UNAVAILABLE", H.call_err("app:home"):kind())
    assert.is_false(H.call_err("app:home"):retryable())
    assert.equals("UNAVAILABLE", H.call_err("app:guests"):kind())
  end)
end)
