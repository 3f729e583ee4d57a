local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs

describe("limits.max_execution_ms", function()
  setup(function()
    H.add_wat("limits:spin", [[
      (module
        (func (export "spin") (param $n i32) (result i32)
          ;; n = 0 loops forever; otherwise returns n at once.
          (block $done
            (loop $again
              (br_if $done (local.get $n))
              (br $again)))
          (local.get $n)))]], { wit = "spin: func(n: s32) -> s32;", limits = { max_execution_ms = 100 } })
    H.add_wat("limits:free", [[(module (func (export "f") (result i32) i32.const 1))]])
  end)

  it("stops a tight loop with TIMEOUT", function()
    local err = H.call_err("limits:spin", 0)
    assert.equals("TIMEOUT", err:kind())
    assert.equals("limits:spin: the call ran out of time (limits.max_execution_ms)", err:message())
    assert.is_true(err:retryable())
  end)

  it("leaves the entry and other entries working", function()
    H.call_err("limits:spin", 0)
    assert.equals(5, funcs.call("limits:spin", 5))
    assert.equals(1, funcs.call("limits:free"))
  end)

  it("does not limit calls without it", function()
    assert.equals(1, funcs.call("limits:free"))
  end)
end)

describe("limits.fuel on a core module", function()
  setup(function()
    -- A start function that works a little: it runs under the entry's fuel when the instance
    -- is made, not with an empty tank.
    H.add_wat("limits:started", [[
      (module
        (global $g (mut i32) (i32.const 0))
        (func $init
          (local $i i32)
          (loop $l
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_s (local.get $i) (i32.const 1000))))
          (global.set $g (local.get $i)))
        (start $init)
        (func (export "get") (result i32) (global.get $g)))]], { limits = { fuel = 1000000 } })
    H.add_wat("limits:starved", [[
      (module
        (func $init (loop $l (br $l)))
        (start $init)
        (func (export "get") (result i32) (i32.const 1)))]], { limits = { fuel = 10000 } })
  end)

  it("runs a start function under the entry's fuel", function()
    assert.equals(1000, funcs.call("limits:started"))
  end)

  it("stops a start function that runs out of it", function()
    local err = H.call_err("limits:starved")
    assert.equals("INTERNAL", err:kind())
  end)
end)
