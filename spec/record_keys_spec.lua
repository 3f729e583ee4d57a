-- Record keys of results (SPEC §3): WIT names by default (`r["a-list"]`), snake_case with
-- `wippy.configure{ record_keys = "snake" }` or an executor's `with_options{ record_keys = }`
-- (which wins over the default, both ways) — blocking, in a task, through futures, and in
-- records nested in lists and variants.
local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs
local GUEST = H.CWD .. "/build/guests/types_guest.wasm"

local KITCHEN = {
  a_bool = true, a_s8 = -1, a_u8 = 1, a_s16 = -2, a_u16 = 2, a_s32 = -3, a_u32 = 3, a_s64 = -4, a_u64 = 4,
  a_f32 = 0.5, a_f64 = 1.5, a_char = "x", a_string = "s", some_bytes = "b", a_list = { 1, 2 },
  a_point = { x = 1, y = 2 }, a_tuple = { 7, "t" }, an_option = 5, a_nested_option = 6,
  a_result = { ok = 1 }, a_shape = { rect = { x = 3, y = 4 } }, a_color = "red", some_perms = { "read" },
}

local function keys_of(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return table.concat(ks, " ")
end

local SNAKE = keys_of(KITCHEN)
local WIT = SNAKE:gsub("_", "-")

describe("record keys of results", function()
  setup(function()
    H.add({ id = "rk:kitchen", kind = "function.wasm", path = GUEST, method = "echo-kitchen" })
    H.add({ id = "rk:kitchens", kind = "function.wasm", path = GUEST, method = "echo-kitchens" })
    H.add({ id = "rk:holder", kind = "function.wasm", path = GUEST, method = "echo-holder" })
  end)
  after_each(function() wippy.configure({ record_keys = "wit" }) end)

  it("are the WIT names by default, and snake_case input is accepted", function()
    local r = assert(funcs.call("rk:kitchen", KITCHEN))
    assert.equals(WIT, keys_of(r))
    assert.same({ 1, 2 }, r["a-list"])
  end)

  it("are snake_case everywhere with configure{ record_keys = 'snake' }", function()
    assert.is_true(wippy.configure({ record_keys = "snake" }))
    local r = assert(funcs.call("rk:kitchen", KITCHEN))
    assert.equals(SNAKE, keys_of(r))
    assert.same(KITCHEN.a_point, r.a_point)
    -- Nested in a list and in a variant payload; in a task; through a future.
    local list = assert(funcs.call("rk:kitchens", { KITCHEN, KITCHEN }))
    assert.equals(SNAKE, keys_of(list[2]))
    assert.equals(SNAKE, keys_of(assert(funcs.call("rk:holder", { full = KITCHEN })).full))
    assert.equals(SNAKE, keys_of(wippy.run(function() return funcs.call("rk:kitchen", KITCHEN) end)))
    assert.equals(SNAKE, keys_of(assert(funcs.async("rk:kitchen", KITCHEN):result())))
    -- Back to the WIT names.
    wippy.configure({ record_keys = "wit" })
    assert.equals(WIT, keys_of(assert(funcs.call("rk:kitchen", KITCHEN))))
  end)

  it("follow an executor's record_keys, which wins over the default both ways", function()
    local exec = wippy.funcs.new():with_options({ record_keys = "snake" })
    assert.equals(SNAKE, keys_of(assert(exec:call("rk:kitchen", KITCHEN))))
    assert.equals(SNAKE, keys_of(wippy.run(function() return exec:call("rk:kitchen", KITCHEN) end)))
    assert.equals(SNAKE, keys_of(assert(exec:async("rk:kitchen", KITCHEN):result())))
    -- Kept by the executors derived from it; plain calls keep the default.
    assert.equals(SNAKE, keys_of(assert(exec:with_options({ timeout = 1000 }):call("rk:kitchen", KITCHEN))))
    assert.equals(WIT, keys_of(assert(funcs.call("rk:kitchen", KITCHEN))))
    wippy.configure({ record_keys = "snake" })
    local wit = wippy.funcs.new():with_options({ record_keys = "wit" })
    assert.equals(WIT, keys_of(assert(wit:call("rk:kitchen", KITCHEN))))
    assert.equals(WIT, keys_of(assert(wit:async("rk:kitchen", KITCHEN):result())))
  end)

  it("reject other values", function()
    assert.error_matches(function() wippy.configure({ record_keys = "camel" }) end,
      [[record_keys must be "wit" or "snake"]], 1, true)
    assert.error_matches(function() wippy.funcs.new():with_options({ record_keys = true }) end,
      [[bad argument #1 to 'with_options' (record_keys must be "wit" or "snake", got true)]], 1, true)
  end)
end)
