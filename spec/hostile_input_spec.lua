-- Hostile Lua input (issue 12): sparse arrays, proxies, NaN and infinities for integers,
-- strings that are not UTF-8, 100 MB strings, tables nested deeper than any type, cycles in
-- payloads, calls from finalizers and from coroutines that are not tasks — each a clear error
-- or the right value, blocking and in a task alike, and the state keeps working.
local H = dofile("spec/helper.lua")
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack
local wippy, funcs = H.wippy, H.funcs
local GUEST = H.CWD .. "/build/guests/types_guest.wasm"
local ASYNC = H.CWD .. "/build/guests/async_guest.wasm"

-- Calls `id` blocking and in a task: both give the same (value or message); returns them.
local function both(id, ...)
  local args = pack(...)
  local r, err = funcs.call(id, unpack(args, 1, args.n))
  local tr, terr = wippy.run(function() return funcs.call(id, unpack(args, 1, args.n)) end)
  assert.same(r, tr)
  assert.equals(err and err:message(), terr and terr:message())
  if err then assert.equals("INVALID", err:kind()) end
  return r, err and err:message()
end

describe("hostile Lua input", function()
  setup(function()
    for _, m in ipairs({ "echo-list", "echo-options", "echo-s32", "echo-u64", "echo-string", "echo-bytes", "echo-point", "add" }) do
      H.add({ id = "hi:" .. m, kind = "function.wasm", path = GUEST, method = m })
    end
    H.add({ id = "hi:sleep", kind = "function.wasm", path = ASYNC, method = "sleep-ms", imports = { "wasi:clocks" } })
  end)

  it("refuses a sparse array, naming the index that would be lost", function()
    local _, msg = both("hi:echo-list", { [1] = 1, [3] = 3 })
    assert.matches("argument 1 %(v%): a sparse array: index 3 is past its length 1", msg)
    assert.matches("use wippy.null for a missing element", msg, 1, true)
    _, msg = both("hi:echo-options", { [1] = "a", [3] = "c" })
    assert.matches("a sparse array: index 3", msg, 1, true)
    -- With wippy.null the missing element is there.
    assert.same({ "a", wippy.null, "c" }, (both("hi:echo-options", { "a", wippy.null, "c" })))
    -- A hole inside the length names its index; other keys (`n`) are not elements.
    -- Its length is a border: 3 (Lua 5.4) or 1 (LuaJIT); either way, no element is lost.
    local holed = { 1, nil, 3 }
    _, msg = both("hi:echo-list", holed)
    if #holed == 3 then
      assert.matches("[2]: expected s32, got nil", msg, 1, true)
    else
      assert.matches("a sparse array: index 3 is past its length 1", msg, 1, true)
    end
    assert.same({ 1, 2, 3 }, (both("hi:echo-list", { 1, 2, 3, n = 3 })))
  end)

  it("reads tables raw: metamethods are not called, an empty proxy is refused", function()
    local proxy = setmetatable({}, { __index = function(_, i) return i end, __len = function() return 3 end })
    local _, msg = both("hi:echo-list", proxy)
    assert.matches("tables are read raw", msg, 1, true)
    assert.same({ 7 }, (both("hi:echo-list", setmetatable({ 7 }, { __len = function() return 3 end }))))
    -- A record's fields are its own: __index defaults are not seen.
    _, msg = both("hi:echo-point", setmetatable({ x = 1 }, { __index = { y = 2 } }))
    assert.matches("y", msg, 1, true)
  end)

  it("refuses NaN and infinities for integers, naming the value", function()
    for _, case in ipairs({ { 0 / 0, "NaN" }, { math.huge, "inf" }, { -math.huge, "-inf" } }) do
      local _, msg = both("hi:echo-s32", case[1])
      assert.matches("expected s32, got " .. case[2], msg, 1, true)
      _, msg = both("hi:echo-u64", case[1])
      assert.matches("got " .. case[2], msg, 1, true)
      _, msg = both("hi:echo-list", { 1, case[1] })
      assert.matches("[2]: expected s32, got " .. case[2], msg, 1, true)
    end
  end)

  it("refuses a string that is not UTF-8 for `string`, and keeps it for `list<u8>`", function()
    local _, msg = both("hi:echo-string", "ok\255")
    assert.matches("invalid UTF-8 at byte 3 (use list<u8> for binary data)", msg, 1, true)
    assert.equals("ok\255\0", (both("hi:echo-bytes", "ok\255\0")))
  end)

  it("takes a 100 MB string and gives it back", function()
    local big = string.rep("wippy!", math.floor(100 * 1024 * 1024 / 6))
    local r = funcs.call("hi:echo-bytes", big)
    assert.equals(#big, #r)
    assert.is_true(r == big)
    r, big = nil, nil
    collectgarbage()
    assert.equals(3, funcs.call("hi:add", 1, 2))
  end)

  it("stops at the type's depth: tables nested 10,000 deep are a type error, not a crash", function()
    local deep, cur = {}, nil
    cur = deep
    for _ = 1, 10000 do cur[1] = {} cur = cur[1] end
    local _, msg = both("hi:echo-list", deep)
    assert.matches("[1]: expected s32, got table", msg, 1, true)
    -- Payloads have no type: JSON stops at 100 levels and at cycles.
    local me = wippy.process.self()
    local ok, err = pcall(wippy.process.send, me, "t", deep)
    assert.is_false(ok)
    assert.matches("nested more than 100 deep", tostring(err), 1, true)
    local cycle = {}
    cycle.self = cycle
    ok, err = pcall(wippy.process.send, me, "t", cycle)
    assert.is_false(ok)
    assert.matches("a cycle?", tostring(err), 1, true)
    assert.is_nil(wippy.process.receive(0))
  end)

  it("serves calls from finalizers and from coroutines that are not tasks", function()
    local results = {}
    local function finalized(i)
      local function gc() results[#results + 1] = funcs.call("hi:add", i, 1) end
      if newproxy then -- Lua 5.1 and LuaJIT: tables have no __gc
        local p = newproxy(true)
        getmetatable(p).__gc = gc
        return p
      end
      return setmetatable({}, { __gc = gc })
    end
    for i = 1, 50 do finalized(i) end
    collectgarbage()
    collectgarbage()
    assert.equals(50, #results)
    table.sort(results)
    assert.equals(2, results[1])
    assert.equals(51, results[50])
    -- A coroutine of the user's own: the call blocks inside it (outside a task and in one),
    -- it never yields to the user's resume.
    assert.equals(7, coroutine.wrap(function() return funcs.call("hi:add", 3, 4) end)())
    local ok, v, after = wippy.run(function()
      local co = coroutine.create(function() return funcs.call("hi:sleep", 10), "after" end)
      return coroutine.resume(co)
    end)
    assert.is_true(ok)
    assert.is_true(v >= 10, "slept " .. tostring(v) .. " ms")
    assert.equals("after", after)
  end)
end)
