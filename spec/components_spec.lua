-- Component-Model entries: the type mapping of SPEC §3 (docs/types.md) through a real component,
-- tests/guests/types (wit/types.wit), built by scripts/guests.sh into build/guests/.
local H = dofile("spec/helper.lua")
local wippy, funcs, registry = H.wippy, H.funcs, H.registry
local null = wippy.null

local GUEST = "build/guests/types_guest.wasm"

-- LuaJIT numbers are doubles: 64-bit values beyond 2^53 travel as int64_t/uint64_t cdata (SPEC §3).
local LUAJIT_64 = "LuaJIT: s64/u64 beyond 2^53 need int64_t/uint64_t cdata, not supported by this build yet"

-- The entry ID of an export: `types:<export>`, with the `#` of `interface#function` written as
-- `.` because entry names allow only letters, digits, "_", "." and "-"
-- (`types:users.find-user` calls the method `users#find-user`).
local function id_of(export)
  return "types:" .. export:gsub("#", ".")
end

-- Registers `types:<export>` for each export name (`echo-u8`, `users#find-user`).
local function add_exports(names)
  local f = io.open(GUEST, "rb")
  assert(f, GUEST .. " is missing: build the guests first (bash scripts/guests.sh build/guests)")
  f:close()
  for _, name in ipairs(names) do
    -- `log` prints through wasi:cli/stdout; the others use no WASI.
    local imports = name == "log" and { "wasi:cli" } or nil
    local ok, err = registry:add({ id = id_of(name), kind = "function.wasm", path = GUEST, method = name, imports = imports })
    assert(ok, tostring(err))
  end
end

local EXPORTS = {
  "echo-bool", "echo-s8", "echo-u8", "echo-s16", "echo-u16", "echo-s32", "echo-u32", "echo-s64",
  "echo-u64", "echo-f32", "echo-f64", "echo-char", "echo-string", "echo-bytes", "echo-byte-list", "echo-list",
  "echo-strings", "echo-point", "echo-tuple", "echo-option", "echo-nested-option", "echo-options",
  "echo-result", "echo-results", "echo-shape", "echo-shapes", "echo-color", "echo-perms",
  "echo-kitchen", "echo-kitchens", "echo-maybe-kitchen", "echo-holder", "echo-kitchen-result",
  "check-positive", "unit-result", "maybe-fail", "add", "nothing", "log",
  "users#transform-users", "users#find-user",
}

local function call(export, ...)
  return funcs.call(id_of(export), ...)
end

-- On LuaJIT: the ffi module and `lit("5LL")`, which evaluates a 64-bit literal (LuaJIT syntax,
-- compiled at run time so that Lua 5.4 parses this file). Marks the test pending where this
-- build does not take int64_t cdata yet.
local function luajit_int64()
  local ffi = require("ffi")
  local ok, v = pcall(call, "echo-s64", ffi.new("int64_t", 5))
  if not (ok and v == 5) then pending(LUAJIT_64) end
  return ffi, function(src) return assert(load("return " .. src))() end
end

-- Asserts that `v` is a cdata of `ctype` equal to `want`.
local function is_cdata(ffi, ctype, want, v)
  assert.is_true(ffi.istype(ctype, v), ("expected %s cdata, got %s %s"):format(ctype, type(v), tostring(v)))
  assert.is_true(v == want, ("expected %s, got %s"):format(tostring(want), tostring(v)))
end

-- Calls, asserts an INVALID failure and returns its message.
local function invalid(export, ...)
  local err = H.call_err(id_of(export), ...)
  assert.equals("INVALID", err:kind())
  return err:message()
end

-- The message of a bad argument 1 (named `v` in every echo).
local function arg1(export, rest)
  return ("%s: argument 1 (v): %s"):format(id_of(export), rest)
end

-- Asserts that `export` returns exactly `v` (and no error).
local function echoes(export, v)
  local out, err = call(export, v)
  assert.is_nil(err)
  assert.same(v, out)
end

-- A kitchen with every field set, kebab keys as WIT names them. Exact on Lua 5.4 and LuaJIT.
local function kitchen()
  return {
    ["a-bool"] = true,
    ["a-s8"] = -128, ["a-u8"] = 255, ["a-s16"] = -32768, ["a-u16"] = 65535,
    ["a-s32"] = -2147483648, ["a-u32"] = 4294967295,
    ["a-s64"] = -9007199254740992, ["a-u64"] = 9007199254740992,
    ["a-f32"] = 0.5, ["a-f64"] = 0.1,
    ["a-char"] = "é",
    ["a-string"] = "héllo\0wörld",
    ["some-bytes"] = "\0\1\255",
    ["a-list"] = { 1, -2, 3 },
    ["a-point"] = { x = 1, y = -2 },
    ["a-tuple"] = { 7, "seven" },
    ["an-option"] = 42,
    ["a-nested-option"] = null, -- some(none)
    ["a-result"] = { err = "bad" },
    ["a-shape"] = { rect = { x = 3, y = 4 } },
    ["a-color"] = "green",
    ["some-perms"] = { read = true, exec = true },
  }
end

-- A second kitchen with the other cases: empty values, none options, ok results, unit case.
local function kitchen2()
  return {
    ["a-bool"] = false,
    ["a-s8"] = 127, ["a-u8"] = 0, ["a-s16"] = 32767, ["a-u16"] = 0,
    ["a-s32"] = 2147483647, ["a-u32"] = 0,
    ["a-s64"] = 9007199254740992, ["a-u64"] = 0,
    ["a-f32"] = -1.25, ["a-f64"] = 1e308,
    ["a-char"] = "😀",
    ["a-string"] = "",
    ["some-bytes"] = "",
    ["a-list"] = {},
    ["a-point"] = { x = 0, y = 0 },
    ["a-tuple"] = { -1, "" },
    -- an-option absent: none
    ["a-nested-option"] = 5, -- some(some(5))
    ["a-result"] = { ok = -7 },
    ["a-shape"] = "empty",
    ["a-color"] = "blue",
    ["some-perms"] = {},
  }
end

-- A third one: circle payload, all flags, nested option none (absent).
local function kitchen3()
  local k = kitchen()
  k["a-shape"] = { circle = -2.5 }
  k["a-nested-option"] = nil
  k["an-option"] = nil
  k["a-result"] = { ok = 0 }
  k["some-perms"] = { read = true, write = true, exec = true }
  k["a-color"] = "red"
  return k
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

describe("component entries", function()
  setup(function()
    add_exports(EXPORTS)
  end)

  describe("registering", function()
    it("is a function.wasm entry whose method names a world export or interface#function", function()
      local e = registry:get(id_of("users#transform-users"))
      assert.equals("function.wasm", e.kind)
      assert.equals("users#transform-users", e.method)
      assert.matches("types_guest.wasm", e.path, 1, true)
    end)

    it("rejects `wit` on a component (components carry their own types)", function()
      local ok, err = registry:add({ id = "types:with-wit", kind = "function.wasm", path = GUEST,
        method = "add", wit = "add: func(a: s32, b: s32) -> s32;" })
      assert.is_nil(ok)
      assert.is_not_nil(err)
      assert.is_nil(registry:get("types:with-wit"))
    end)

    it("rejects a method the component does not export", function()
      local ok, err = registry:add({ id = "types:no-such", kind = "function.wasm", path = GUEST, method = "no-such-export" })
      assert.is_nil(ok)
      assert.matches("no-such-export", tostring(err), 1, true)
    end)
  end)

  describe("integers", function()
    local widths = {
      { "s8", -128, 127 }, { "u8", 0, 255 }, { "s16", -32768, 32767 }, { "u16", 0, 65535 },
      { "s32", -2147483648, 2147483647 }, { "u32", 0, 4294967295 },
    }
    for _, w in ipairs(widths) do
      local ty, lo, hi = w[1], w[2], w[3]
      local export = "echo-" .. ty
      it(("round-trips %s at both ends and range-checks one beyond each"):format(ty), function()
        assert.equals(lo, call(export, lo))
        assert.equals(hi, call(export, hi))
        assert.equals(1, call(export, 1))
        assert.equals(arg1(export, ("expected %s, got %d (out of range %d..=%d)"):format(ty, hi + 1, lo, hi)),
          invalid(export, hi + 1))
        assert.equals(arg1(export, ("expected %s, got %d (out of range %d..=%d)"):format(ty, lo - 1, lo, hi)),
          invalid(export, lo - 1))
      end)

      it(("accepts integral floats for %s and rejects others"):format(ty), function()
        local v = call(export, 3.0)
        assert.equals(3, v)
        if math.type then assert.equals("integer", math.type(v)) end
        assert.equals(arg1(export, ("expected %s, got 1.5 (not an integer)"):format(ty)), invalid(export, 1.5))
        assert.equals(arg1(export, ("expected %s, got string"):format(ty)), invalid(export, "1"))
        assert.equals(arg1(export, ("expected %s, got boolean"):format(ty)), invalid(export, true))
        assert.equals(arg1(export, ("expected %s, got table"):format(ty)), invalid(export, {}))
      end)
    end

    it("round-trips s64 values exact in a double (both VMs)", function()
      assert.equals(0, call("echo-s64", 0))
      assert.equals(-1, call("echo-s64", -1))
      assert.equals(2 ^ 53, call("echo-s64", 2 ^ 53))
      assert.equals(-2 ^ 53, call("echo-s64", -2 ^ 53))
      assert.equals(-2 ^ 63, call("echo-s64", -2 ^ 63)) -- exact as a double, in range
      assert.equals(arg1("echo-s64", "expected s64, got 1.5 (not an integer)"), invalid("echo-s64", 1.5))
      assert.equals(arg1("echo-s64", "expected s64, got string"), invalid("echo-s64", "1"))
    end)

    it("round-trips s64 min/max and 2^53+1", function()
      if H.is_luajit then
        local ffi, lit = luajit_int64()
        for _, src in ipairs({ "9223372036854775807LL", "-9223372036854775807LL - 1", "9007199254740993LL",
                               "-9007199254740993LL" }) do
          is_cdata(ffi, "int64_t", lit(src), call("echo-s64", lit(src)))
        end
        -- a value a double holds exactly comes back as a number, whatever the input was
        local v = call("echo-s64", lit("-9007199254740992LL"))
        assert.equals("number", type(v))
        assert.equals(-2 ^ 53, v)
        assert.equals("number", type(call("echo-s64", lit("5LL"))))
        return
      end
      if H.doubles then
        -- Lua 5.1/5.2: s64 max cannot be written (2^63 - 1 is no double); the literal 2^53 + 1
        -- is the double 2^53, and the result is a number.
        assert.equals(-2 ^ 63, call("echo-s64", -2 ^ 63))
        local v = call("echo-s64", 9007199254740993)
        assert.equals(2 ^ 53, v)
        assert.equals("number", type(v))
        return
      end
      assert.equals(math.maxinteger, call("echo-s64", math.maxinteger))
      assert.equals(math.mininteger, call("echo-s64", math.mininteger))
      local v = call("echo-s64", 2 ^ 53 + 1) -- float 2^53 on 5.4 (2^53+1 is not a double)
      assert.equals(2 ^ 53, v)
      local big = 9007199254740993 -- 2^53 + 1, an integer on 5.4
      v = call("echo-s64", big)
      assert.equals(big, v)
      assert.equals("integer", math.type(v))
      assert.equals(math.mininteger, call("echo-s64", -2 ^ 63))
    end)

    it("rejects floats beyond the s64 range", function()
      -- 2^63 and -2^64 are integral floats outside [-2^63, 2^63)
      assert.matches("^types:echo%-s64: argument 1 %(v%): expected s64, got ", invalid("echo-s64", 2 ^ 63))
      assert.matches("^types:echo%-s64: argument 1 %(v%): expected s64, got ", invalid("echo-s64", -2 ^ 64))
    end)

    it("round-trips u64 small values (both VMs)", function()
      assert.equals(0, call("echo-u64", 0))
      assert.equals(2 ^ 53, call("echo-u64", 2 ^ 53))
      -- floats outside [0, 2^64)
      assert.matches("^types:echo%-u64: argument 1 %(v%): expected u64, got ", invalid("echo-u64", 2 ^ 64))
      assert.matches("^types:echo%-u64: argument 1 %(v%): expected u64, got ", invalid("echo-u64", -1.5))
      assert.equals(arg1("echo-u64", "expected u64, got 1.5 (not an integer)"), invalid("echo-u64", 1.5))
      assert.equals(arg1("echo-u64", "expected u64, got string"), invalid("echo-u64", "1"))
    end)

    it("gives u64 values >= 2^63 the bit pattern of a negative integer (u64 max is -1)", function()
      if H.is_luajit then
        local ffi, lit = luajit_int64()
        local max = lit("18446744073709551615ULL")
        is_cdata(ffi, "uint64_t", max, call("echo-u64", max))
        is_cdata(ffi, "uint64_t", max, call("echo-u64", -1)) -- a negative number is the bit pattern
        is_cdata(ffi, "uint64_t", lit("9007199254740993ULL"), call("echo-u64", lit("9007199254740993ULL")))
        assert.is_true(lit("9223372036854775808ULL") == call("echo-u64", lit("9223372036854775808ULL")))
        assert.is_true(lit("9223372036854775808ULL") == call("echo-u64", 2 ^ 63))
        local v = call("echo-u64", lit("9007199254740992ULL"))
        assert.equals("number", type(v))
        assert.equals(2 ^ 53, v)
        return
      end
      if H.doubles then
        -- Lua 5.1/5.2: the 5.3+ integer (the bit pattern) as a double.
        assert.equals(-1, call("echo-u64", -1))
        assert.equals(-2 ^ 63, call("echo-u64", 2 ^ 63))
        assert.equals(2 ^ 53, call("echo-u64", 2 ^ 53))
        return
      end
      assert.equals(-1, call("echo-u64", -1))
      assert.equals(math.maxinteger, call("echo-u64", math.maxinteger))
      assert.equals(math.mininteger, call("echo-u64", math.mininteger))
      assert.equals(("J"):unpack(("J"):pack(-1)), call("echo-u64", -1))
      -- an integral float in [2^63, 2^64) is the same value
      assert.equals(math.mininteger, call("echo-u64", 2 ^ 63))
      local v = call("echo-u64", 2 ^ 53 + 1.0)
      assert.equals("integer", math.type(v))
    end)
  end)

  describe("floats", function()
    it("round-trips f64 edge values: NaN, ±inf, -0.0, extremes", function()
      local nan = call("echo-f64", 0 / 0)
      assert.is_true(nan ~= nan)
      assert.equals(math.huge, call("echo-f64", math.huge))
      assert.equals(-math.huge, call("echo-f64", -math.huge))
      -- -0.0 made at run time: Lua 5.1 folds the constant -0.0 into an earlier 0.
      local z = call("echo-f64", -1 / math.huge)
      assert.equals(0, z)
      assert.equals(-math.huge, 1 / z) -- the sign of zero survives
      assert.equals(1e308, call("echo-f64", 1e308))
      assert.equals(5e-324, call("echo-f64", 5e-324))
      assert.equals(0.1, call("echo-f64", 0.1))
      assert.equals(3, call("echo-f64", 3))
      assert.equals(arg1("echo-f64", "expected f64, got string"), invalid("echo-f64", "1"))
      assert.equals(arg1("echo-f64", "expected f64, got boolean"), invalid("echo-f64", true))
    end)

    it("rounds f32 to single precision and widens it back", function()
      -- 0.10000000149011612 is the double nearest the f32 nearest 0.1
      assert.equals(0.10000000149011612, call("echo-f32", 0.1))
      assert.are_not.equals(0.1, call("echo-f32", 0.1))
      assert.equals(0.5, call("echo-f32", 0.5))
      assert.equals(16777216, call("echo-f32", 16777217)) -- 2^24 + 1 is not an f32
      assert.equals(3.4028234663852886e38, call("echo-f32", 3.4028234663852886e38))
      local nan = call("echo-f32", 0 / 0)
      assert.is_true(nan ~= nan)
      assert.equals(math.huge, call("echo-f32", math.huge))
      assert.equals(-math.huge, call("echo-f32", -math.huge))
      local z = call("echo-f32", -1 / math.huge)
      assert.equals(-math.huge, 1 / z)
      assert.equals(arg1("echo-f32", "expected f32, got string"), invalid("echo-f32", "x"))
    end)
  end)

  describe("bool and char", function()
    it("round-trips bool and rejects other types", function()
      assert.is_true(call("echo-bool", true))
      assert.is_false(call("echo-bool", false))
      assert.equals(arg1("echo-bool", "expected bool, got number"), invalid("echo-bool", 1))
      assert.equals(arg1("echo-bool", "expected bool, got string"), invalid("echo-bool", "true"))
    end)

    it("round-trips chars of 1 to 4 UTF-8 bytes and rejects other strings", function()
      for _, c in ipairs({ "a", "\0", "é", "€", "😀" }) do
        assert.equals(c, call("echo-char", c))
      end
      assert.equals(arg1("echo-char", "expected char (a string of one code point), got a string of 2 code points"),
        invalid("echo-char", "ab"))
      assert.equals(arg1("echo-char", "expected char (a string of one code point), got a string of 0 code points"),
        invalid("echo-char", ""))
      assert.equals(arg1("echo-char", "expected char, got invalid UTF-8"), invalid("echo-char", "\255"))
      assert.equals(arg1("echo-char", "expected char, got number"), invalid("echo-char", 65))
    end)
  end)

  describe("strings and bytes", function()
    it("round-trips strings: empty, unicode, NUL bytes, long", function()
      assert.equals("", call("echo-string", ""))
      assert.equals("héllo wörld ✓ 😀 日本語", call("echo-string", "héllo wörld ✓ 😀 日本語"))
      assert.equals("a\0b\0", call("echo-string", "a\0b\0"))
      local long = ("abcdefghij"):rep(100000)
      assert.equals(long, call("echo-string", long))
    end)

    it("rejects invalid UTF-8 and non-strings for string", function()
      assert.equals(arg1("echo-string", "expected string, got invalid UTF-8 at byte 3 (use list<u8> for binary data)"),
        invalid("echo-string", "ab\255"))
      assert.equals(arg1("echo-string", "expected string, got invalid UTF-8 at byte 1 (use list<u8> for binary data)"),
        invalid("echo-string", "\192\128")) -- overlong NUL
      assert.equals(arg1("echo-string", "expected string, got number"), invalid("echo-string", 5))
      assert.equals(arg1("echo-string", "expected string, got nil"), invalid("echo-string", nil))
    end)

    it("passes list<u8> as a Lua string, NUL and high bytes included", function()
      local all = {}
      for i = 0, 255 do all[#all + 1] = string.char(i) end
      all = table.concat(all)
      assert.equals(all, call("echo-bytes", all))
      assert.equals("a\0b\255\0", call("echo-bytes", "a\0b\255\0"))
      assert.equals("", call("echo-bytes", ""))
      assert.equals("\1\2\255", call("echo-bytes", { 1, 2, 255 }))
      assert.equals("", call("echo-bytes", {}))
      assert.equals(arg1("echo-bytes", "[3]: expected u8, got 256 (out of range 0..=255)"), invalid("echo-bytes", { 1, 2, 256 }))
      assert.equals(arg1("echo-bytes", "expected list<u8> (a string or an array of bytes), got number"), invalid("echo-bytes", 5))
    end)
  end)

  describe("lists", function()
    it("round-trips lists, the empty one included", function()
      echoes("echo-list", { 1, -2, 3 })
      echoes("echo-list", {})
      echoes("echo-list", { -2147483648, 0, 2147483647 })
      local big = {}
      for i = 1, 10000 do big[i] = i * 3 - 15000 end
      echoes("echo-list", big)
      echoes("echo-strings", { "a", "", "ü", "x\0y" })
      echoes("echo-strings", {})
    end)

    it("names the element that does not fit", function()
      assert.equals(arg1("echo-list", "[2]: expected s32, got string"), invalid("echo-list", { 1, "x" }))
      assert.equals(arg1("echo-list", "[3]: expected s32, got 2147483648 (out of range -2147483648..=2147483647)"),
        invalid("echo-list", { 1, 2, 2147483648 }))
      assert.equals(arg1("echo-strings", "[2]: expected string, got invalid UTF-8 at byte 1 (use list<u8> for binary data)"),
        invalid("echo-strings", { "ok", "\255" }))
      assert.equals(arg1("echo-list", "expected list<s32> (an array table), got a table with key string"),
        invalid("echo-list", { a = 1 }))
      assert.equals(arg1("echo-list", "expected list<s32>, got string"), invalid("echo-list", "1,2"))
    end)
  end)

  describe("records and tuples", function()
    it("round-trips a record; snake_case and extra keys on input", function()
      echoes("echo-point", { x = 1, y = -2 })
      assert.same({ x = 2147483647, y = -2147483648 }, call("echo-point", { x = 2147483647, y = -2147483648, z = 3, extra = "x" }))
    end)

    it("names the missing or bad field", function()
      assert.equals(arg1("echo-point", "y: missing field (expected s32)"), invalid("echo-point", { x = 1 }))
      assert.equals(arg1("echo-point", "x: expected s32, got string"), invalid("echo-point", { x = "1", y = 2 }))
      assert.equals(arg1("echo-point", "expected point (a record: a table), got string"), invalid("echo-point", "1,2"))
    end)

    it("round-trips tuples of exact length only", function()
      echoes("echo-tuple", { 1, "a", true })
      echoes("echo-tuple", { -1, "", false })
      assert.equals(arg1("echo-tuple", "expected tuple<s32, string, bool> (an array of 3 values), got an array of 2"),
        invalid("echo-tuple", { 1, "a" }))
      assert.equals(arg1("echo-tuple", "expected tuple<s32, string, bool> (an array of 3 values), got an array of 4"),
        invalid("echo-tuple", { 1, "a", true, 4 }))
      assert.equals(arg1("echo-tuple", "[2]: expected string, got number"), invalid("echo-tuple", { 1, 2, true }))
    end)
  end)

  describe("options", function()
    it("maps option<s32>: nil is none, a value is some", function()
      local v, err = call("echo-option", nil)
      assert.is_nil(v)
      assert.is_nil(err)
      assert.equals(5, call("echo-option", 5))
      assert.equals(0, call("echo-option", 0))
      v, err = call("echo-option", null) -- wippy.null is none too
      assert.is_nil(v)
      assert.is_nil(err)
      assert.equals(arg1("echo-option", "expected s32, got string"), invalid("echo-option", "x"))
    end)

    it("allows a missing trailing option argument", function()
      local v, err = call("echo-option")
      assert.is_nil(v)
      assert.is_nil(err)
    end)

    it("keeps the inner none of option<option<s32>>: nil, wippy.null, value", function()
      local v, err = call("echo-nested-option", nil)
      assert.is_nil(v)
      assert.is_nil(err)
      assert.equals(null, call("echo-nested-option", null))
      assert.equals(5, call("echo-nested-option", 5))
      assert.equals(arg1("echo-nested-option", "expected s32, got 1.5 (not an integer)"), invalid("echo-nested-option", 1.5))
    end)

    it("uses wippy.null for none elements of a list", function()
      echoes("echo-options", { "a", null, "c" })
      echoes("echo-options", { null })
      echoes("echo-options", { null, null, "" })
      echoes("echo-options", {})
      assert.equals(arg1("echo-options", "[2]: expected string, got number"), invalid("echo-options", { "a", 5 }))
    end)
  end)

  describe("results, variants, enums, flags", function()
    it("takes a result parameter as {ok = v} / {err = e}", function()
      local v, err = call("echo-result", { ok = 5 })
      assert.equals(5, v)
      assert.is_nil(err)
      v, err = call("echo-result", { err = "bad" })
      assert.is_nil(v)
      assert.equals("bad", err)
      assert.equals(arg1("echo-result", 'expected result key "ok" or "err", got "value"'), invalid("echo-result", { value = 1 }))
      assert.equals(arg1("echo-result", "expected result<s32, string> ({ok = value} or {err = value}, a table with exactly one key), got several keys"),
        invalid("echo-result", { ok = 1, err = "x" }))
      assert.equals(arg1("echo-result", "ok: expected s32, got string"), invalid("echo-result", { ok = "x" }))
      assert.equals(arg1("echo-result", "err: expected string, got number"), invalid("echo-result", { err = 1 }))
      assert.equals(arg1("echo-result", "expected result<s32, string> ({ok = value} or {err = value}), got number"), invalid("echo-result", 5))
    end)

    it("maps results nested in a list", function()
      echoes("echo-results", { { ok = 1 }, { err = "bad" }, { ok = -1 }, { err = "" } })
      echoes("echo-results", {})
      assert.equals(arg1("echo-results", "[2].err: expected string, got number"), invalid("echo-results", { { ok = 1 }, { err = 2 } }))
    end)

    it("maps variants with payloads and a unit case", function()
      echoes("echo-shape", { circle = 1.5 })
      echoes("echo-shape", { rect = { x = 1, y = 2 } })
      assert.equals("empty", call("echo-shape", "empty"))
      assert.equals("empty", call("echo-shape", { empty = true }))
      assert.same({ { circle = 1 }, "empty", "empty", { rect = { x = 0, y = -1 } } },
        call("echo-shapes", { { circle = 1 }, "empty", { empty = true }, { rect = { x = 0, y = -1 } } }))
    end)

    it("names bad variant values", function()
      assert.equals(arg1("echo-shape", 'unknown variant case "triangle" of shape, expected one of: circle, rect, empty'),
        invalid("echo-shape", "triangle"))
      assert.equals(arg1("echo-shape", 'unknown variant case "square" of shape, expected one of: circle, rect, empty'),
        invalid("echo-shape", { square = 1 }))
      assert.equals(arg1("echo-shape", "expected shape (a variant {case = payload}, a table with exactly one key), got several keys"),
        invalid("echo-shape", { circle = 1, empty = true }))
      assert.equals(arg1("echo-shape", "empty: case has no payload, got number"), invalid("echo-shape", { empty = 5 }))
      assert.equals(arg1("echo-shape", "circle: missing payload (expected f64)"), invalid("echo-shape", "circle"))
      assert.equals(arg1("echo-shape", "circle: expected f64, got string"), invalid("echo-shape", { circle = "1" }))
      assert.equals(arg1("echo-shape", "rect.y: missing field (expected s32)"), invalid("echo-shape", { rect = { x = 1 } }))
      assert.equals(arg1("echo-shapes", '[2]: unknown variant case "dot" of shape, expected one of: circle, rect, empty'),
        invalid("echo-shapes", { "empty", "dot" }))
    end)

    it("maps enums to case names", function()
      for _, c in ipairs({ "red", "green", "blue" }) do
        assert.equals(c, call("echo-color", c))
      end
      assert.equals(arg1("echo-color", 'unknown enum case "pink" of color, expected one of: red, green, blue'), invalid("echo-color", "pink"))
      assert.equals(arg1("echo-color", "expected color (an enum case: red|green|blue), got number"), invalid("echo-color", 1))
    end)

    it("maps flags to set tables, accepting arrays of names", function()
      echoes("echo-perms", { read = true, exec = true })
      echoes("echo-perms", { read = true, write = true, exec = true })
      echoes("echo-perms", {})
      assert.same({ read = true }, call("echo-perms", { read = true, write = false }))
      assert.same({ write = true, read = true }, call("echo-perms", { "write", "read" }))
      assert.equals(arg1("echo-perms", 'unknown flag "fly" of perms, expected any of: read, write, exec'), invalid("echo-perms", { fly = true }))
      assert.equals(arg1("echo-perms", 'unknown flag "fly" of perms, expected any of: read, write, exec'), invalid("echo-perms", { "fly" }))
      assert.equals(arg1("echo-perms", "expected perms (flags: a set table or an array of names), got string"), invalid("echo-perms", "read"))
    end)
  end)

  describe("one behaviour on both call paths", function()
    -- `funcs.call` reads arguments straight off the stack onto a value tape and lowers it into
    -- guest memory (the raw path); an executor's `call` converts through the general path. The
    -- two must agree on every value and every message.
    local pack = table.pack or function(...) return { n = select("#", ...), ... } end
    local exec = funcs.new()
    local function both(export, ...)
      local raw = pack(call(export, ...))
      local general = pack(exec:call(id_of(export), ...))
      return raw, general
    end

    local function agree(export, ...)
      local raw, general = both(export, ...)
      assert.equals(general.n, raw.n)
      if raw[2] ~= nil or general[2] ~= nil then
        -- Failures: the same kind and message (results of `result` types compare as values).
        if wippy.errors.is(raw[2]) or wippy.errors.is(general[2]) then
          assert.is_true(wippy.errors.is(raw[2]) and wippy.errors.is(general[2]))
          assert.equals(general[2]:kind(), raw[2]:kind())
          assert.equals(general[2]:message(), raw[2]:message())
          return raw[2]:message()
        end
      end
      assert.same(general, raw)
      return raw[1], raw[2]
    end

    it("agrees on kitchens in every position, twice in a row (interned keys)", function()
      for _ = 1, 2 do
        for _, k in ipairs({ kitchen(), kitchen2(), kitchen3() }) do
          assert.same(k, agree("echo-kitchen", k))
          assert.same({ k, k }, agree("echo-kitchens", { k, k }))
          assert.same(k, agree("echo-maybe-kitchen", k))
          assert.same({ full = k }, agree("echo-holder", { full = k }))
          -- A top-level result: `nil, err` (§2.1).
          local v, e = agree("echo-kitchen-result", { err = k })
          assert.is_nil(v)
          assert.same(k, e)
          assert.same(k, (agree("echo-kitchen-result", { ok = k })))
        end
      end
      assert.is_nil(agree("echo-maybe-kitchen", nil))
      assert.equals("nothing", agree("echo-holder", "nothing"))
    end)

    it("agrees on a transform of records and on top-level results", function()
      local users = {}
      for i = 1, 10 do
        users[i] = { id = i, name = "user" .. i, tags = { "a" }, active = true, email = (i % 2 == 0) and "e" or nil }
      end
      local out = agree("users#transform-users", users)
      assert.equals("USER10", out[10].name)
      assert.same({ "a", "seen" }, out[1].tags)
      assert.is_nil(out[1].email)
      agree("users#find-user", users, 3)
      agree("users#find-user", users, 99)
      agree("check-positive", 5)
      agree("check-positive", -5)
      agree("unit-result", false)
      agree("unit-result", true)
      agree("maybe-fail", true)
    end)

    it("agrees on every message about a bad argument", function()
      local k = kitchen()
      k["a-point"] = { x = 1 }
      assert.equals(arg1("echo-kitchens", "[2].a-point.y: missing field (expected s32)"),
        agree("echo-kitchens", { kitchen(), k }))
      k = kitchen()
      k["a-string"] = "\255"
      assert.equals(arg1("echo-kitchen",
        "a-string: expected string, got invalid UTF-8 at byte 1 (use list<u8> for binary data)"),
        agree("echo-kitchen", k))
      k = kitchen()
      k["a-shape"] = { rect = { x = 1, y = "2" } }
      assert.equals(arg1("echo-kitchen", "a-shape.rect.y: expected s32, got string"), agree("echo-kitchen", k))
      k = kitchen()
      k["a-result"] = { ok = 1, err = "x" }
      agree("echo-kitchen", k)
      agree("echo-strings", { "a", 2 })
      agree("echo-tuple", { 1, "x" })
      agree("echo-perms", { "read", "nope" })
      agree("echo-color", "purple")
      agree("echo-list", { 1, 2.5 })
      agree("echo-bytes", { 1, 256 })
      agree("echo-kitchen", nil)
      agree("echo-string", "a", "extra")
    end)

    it("gives a list of an alias of u8 as an array of numbers (only list<u8> is a string)", function()
      assert.same({ 0, 1, 255 }, agree("echo-byte-list", { 0, 1, 255 }))
      assert.same({}, agree("echo-byte-list", {}))
      assert.equals(arg1("echo-byte-list", "[2]: expected byte (u8), got 256 (out of range 0..=255)"),
        agree("echo-byte-list", { 1, 256 }))
    end)

    it("copies a large list<u8> and string both ways", function()
      local big = string.rep("\0\1\255x", 2 * 1024 * 1024) -- 8 MiB
      assert.equals(big, agree("echo-bytes", big))
      local text = string.rep("héllo ", 1024 * 1024)
      assert.equals(text, agree("echo-string", text))
    end)

    it("reports several keys of a variant or result before looking at them", function()
      assert.equals(arg1("echo-shape",
        "expected shape (a variant {case = payload}, a table with exactly one key), got several keys"),
        agree("echo-shape", { nope = 1, circle = 2 }))
      assert.equals(arg1("echo-result",
        "expected result<s32, string> ({ok = value} or {err = value}, a table with exactly one key), got several keys"),
        agree("echo-result", { ok = 1, err = "x" }))
    end)

    it("names WIT types by their names, as registry:describe does", function()
      -- record, variant, enum, flags
      assert.equals(arg1("echo-point", "expected point (a record: a table), got string"), agree("echo-point", "1,2"))
      assert.equals(arg1("echo-shape", "expected shape (a variant: {case = payload} or a case name), got number"),
        agree("echo-shape", 5))
      assert.equals(arg1("echo-shape",
        "expected shape (a variant {case = payload}, a table with one key), got an empty or non-string-keyed table"),
        agree("echo-shape", {}))
      assert.equals(arg1("echo-color", "expected color (an enum case: red|green|blue), got boolean"),
        agree("echo-color", true))
      assert.equals(arg1("echo-color", 'unknown enum case "pink" of color, expected one of: red, green, blue'),
        agree("echo-color", "pink"))
      assert.equals(arg1("echo-perms", "expected perms (flags: a set table or an array of names), got number"),
        agree("echo-perms", 7))
      assert.equals(arg1("echo-perms", 'unknown flag "fly" of perms, expected any of: read, write, exec'),
        agree("echo-perms", { "fly" }))
      -- list<named>, option<named>, a named payload and field, result<…>
      assert.equals(arg1("echo-shapes", "expected list<shape>, got string"), agree("echo-shapes", "circle"))
      assert.equals(arg1("echo-shapes", "[2]: expected shape (a variant: {case = payload} or a case name), got boolean"),
        agree("echo-shapes", { "empty", true }))
      assert.equals(arg1("echo-shapes", '[1]: unknown variant case "dot" of shape, expected one of: circle, rect, empty'),
        agree("echo-shapes", { "dot" }))
      assert.equals(arg1("echo-kitchens", "expected list<kitchen> (an array table), got a table with key string"),
        agree("echo-kitchens", { x = 1 }))
      assert.equals(arg1("echo-maybe-kitchen", "expected kitchen (a record: a table), got number"),
        agree("echo-maybe-kitchen", 5))
      assert.equals(arg1("echo-holder", "full: missing payload (expected kitchen)"), agree("echo-holder", "full"))
      assert.equals(arg1("echo-holder", "full: expected kitchen (a record: a table), got string"),
        agree("echo-holder", { full = "x" }))
      local k = kitchen()
      k["a-shape"] = nil
      assert.equals(arg1("echo-kitchen", "a-shape: missing field (expected shape)"), agree("echo-kitchen", k))
      assert.equals(arg1("echo-result", "expected result<s32, string> ({ok = value} or {err = value}), got number"),
        agree("echo-result", 5))
      assert.equals(id_of("users#transform-users") .. ": argument 1 (users): expected list<user>, got number",
        agree("users#transform-users", 5))
      assert.equals(id_of("users#transform-users") .. ": argument 1 (users): [1]: expected user (a record: a table), got string",
        agree("users#transform-users", { "ann" }))
      assert.equals(id_of("users#find-user") .. ": argument 1 (users): expected list<user>, got nil",
        agree("users#find-user", nil, 1))
    end)

    it("takes flags by integer positions only", function()
      assert.equals(arg1("echo-perms",
        'expected flags as {name = true} or {"name"}, got key number with value string'),
        agree("echo-perms", { [1.5] = "read" }))
    end)

    it("agrees on 64-bit values beyond 2^53 (LuaJIT: numbers or cdata in, cdata out)", function()
      local big_u, big_s = -1, -9007199254740993
      if H.is_luajit then
        local _, lit = luajit_int64()
        big_u, big_s = lit("18446744073709551615ULL"), lit("-9007199254740993LL")
      end
      local k = kitchen()
      k["a-u64"], k["a-s64"] = big_u, big_s
      local out = agree("echo-kitchen", k)
      assert.is_true(out["a-u64"] == big_u)
      assert.is_true(out["a-s64"] == big_s)
      -- A number argument takes the raw path on both VMs; the result needs a cdata on LuaJIT.
      local v = agree("echo-u64", 2 ^ 63)
      if H.is_luajit then
        assert.equals("cdata", type(v))
      elseif H.doubles then
        assert.equals(-2 ^ 63, v)
      else
        assert.equals(math.mininteger, v)
      end
    end)

    it("agrees on missing and trailing arguments", function()
      assert.is_nil(agree("echo-option"))
      assert.equals(4, agree("echo-option", 4, nil, nil))
      assert.same({ "a", null }, agree("echo-options", { "a", null }))
      agree("add", 1)
      agree("nothing", 1)
    end)

    it("takes a table with non-string keys and metatables as the raw values they hold", function()
      local p = setmetatable({ x = 1 }, { __index = function() return 2 end })
      local raw, general = both("echo-point", p)
      assert.same(general, raw)
    end)
  end)

  describe("every type in every position (kitchen)", function()
    it("round-trips a kitchen as a record field of each type", function()
      echoes("echo-kitchen", kitchen())
      echoes("echo-kitchen", kitchen2())
      echoes("echo-kitchen", kitchen3())
    end)

    it("round-trips kitchens as list elements", function()
      echoes("echo-kitchens", { kitchen(), kitchen2(), kitchen3() })
      echoes("echo-kitchens", {})
    end)

    it("round-trips a kitchen as an option payload", function()
      echoes("echo-maybe-kitchen", kitchen())
      echoes("echo-maybe-kitchen", kitchen2())
      local v, err = call("echo-maybe-kitchen", nil)
      assert.is_nil(v)
      assert.is_nil(err)
    end)

    it("round-trips a kitchen as a variant payload", function()
      echoes("echo-holder", { full = kitchen() })
      echoes("echo-holder", { full = kitchen2() })
      assert.equals("nothing", call("echo-holder", "nothing"))
      assert.equals("nothing", call("echo-holder", { nothing = true }))
    end)

    it("round-trips a kitchen as a result payload (top level: value, nil / nil, e)", function()
      local v, err = call("echo-kitchen-result", { ok = kitchen() })
      assert.is_nil(err)
      assert.same(kitchen(), v)
      v, err = call("echo-kitchen-result", { err = kitchen2() })
      assert.is_nil(v)
      assert.same(kitchen2(), err)
      assert.is_false(wippy.errors.is(err))
    end)

    it("round-trips 64-bit extremes in a kitchen", function()
      local k = kitchen()
      if H.is_luajit then
        local _, lit = luajit_int64()
        k["a-s64"], k["a-u64"] = lit("-9223372036854775807LL - 1"), lit("18446744073709551615ULL")
        echoes("echo-kitchen", k)
        k["a-s64"], k["a-u64"] = lit("9223372036854775807LL"), lit("9223372036854775808ULL")
        echoes("echo-kitchens", { k, k })
        echoes("echo-holder", { full = k })
        return
      end
      if H.doubles then
        -- Lua 5.1/5.2: the extremes a double holds.
        k["a-s64"], k["a-u64"] = -2 ^ 63, -1
        echoes("echo-kitchen", k)
        k["a-s64"], k["a-u64"] = 2 ^ 62, -2 ^ 63
        echoes("echo-kitchens", { k, k })
        return
      end
      k["a-s64"], k["a-u64"] = math.mininteger, -1
      echoes("echo-kitchen", k)
      k["a-s64"], k["a-u64"] = math.maxinteger, math.mininteger
      echoes("echo-kitchens", { k, k })
    end)

    it("accepts snake_case keys and returns kebab ones", function()
      local snake = {}
      for key, v in pairs(kitchen()) do snake[(key:gsub("%-", "_"))] = v end
      assert.is_nil(snake["a-bool"])
      assert.same(kitchen(), call("echo-kitchen", snake))
      assert.same({ kitchen(), kitchen() }, call("echo-kitchens", { snake, snake }))
      assert.same({ full = kitchen() }, call("echo-holder", { full = snake }))
    end)

    it("leaves none option fields absent, from nil or wippy.null", function()
      local k = kitchen()
      k["an-option"], k["a-nested-option"] = nil, nil
      local out = call("echo-kitchen", k)
      assert.is_nil(out["an-option"])
      assert.is_nil(out["a-nested-option"])
      assert.same(k, out)
      local with_null = kitchen()
      with_null["an-option"] = null -- none
      out = call("echo-kitchen", with_null)
      assert.is_nil(out["an-option"])
      assert.equals(null, out["a-nested-option"]) -- some(none) stays visible
    end)

    it("rounds an f32 field like a top-level f32", function()
      local k = kitchen()
      k["a-f32"] = 0.1
      assert.equals(0.10000000149011612, call("echo-kitchen", k)["a-f32"])
    end)

    it("names the path of a missing required field in each position", function()
      local bad = kitchen()
      bad["a-string"] = nil
      assert.equals(arg1("echo-kitchens", "[2].a-string: missing field (expected string)"),
        invalid("echo-kitchens", { kitchen(), bad }))
      assert.equals(arg1("echo-kitchen", "a-string: missing field (expected string)"), invalid("echo-kitchen", bad))
      assert.equals(arg1("echo-maybe-kitchen", "a-string: missing field (expected string)"), invalid("echo-maybe-kitchen", bad))
      assert.equals(arg1("echo-holder", "full.a-string: missing field (expected string)"), invalid("echo-holder", { full = bad }))
      assert.equals(arg1("echo-kitchen-result", "err.a-string: missing field (expected string)"),
        invalid("echo-kitchen-result", { err = bad }))
      bad = kitchen()
      bad["a-u64"] = nil
      assert.equals(arg1("echo-kitchen", "a-u64: missing field (expected u64)"), invalid("echo-kitchen", bad))
      bad = kitchen()
      bad["some-perms"] = nil
      assert.matches("^types:echo%-kitchen: argument 1 %(v%): some%-perms: missing field %(expected ", invalid("echo-kitchen", bad))
    end)

    -- One bad value per field: { field, value, path below the field, message }.
    local BAD = {
      { "a-bool", 1, "", "expected bool, got number" },
      { "a-s8", 128, "", "expected s8, got 128 (out of range -128..=127)" },
      { "a-u8", -1, "", "expected u8, got -1 (out of range 0..=255)" },
      { "a-s16", -32769, "", "expected s16, got -32769 (out of range -32768..=32767)" },
      { "a-u16", 65536, "", "expected u16, got 65536 (out of range 0..=65535)" },
      { "a-s32", 2147483648, "", "expected s32, got 2147483648 (out of range -2147483648..=2147483647)" },
      { "a-u32", 4294967296, "", "expected u32, got 4294967296 (out of range 0..=4294967295)" },
      { "a-s64", 1.5, "", "expected s64, got 1.5 (not an integer)" },
      { "a-u64", "1", "", "expected u64, got string" },
      { "a-f32", "x", "", "expected f32, got string" },
      { "a-f64", true, "", "expected f64, got boolean" },
      { "a-char", "ab", "", "expected char (a string of one code point), got a string of 2 code points" },
      { "a-string", "\255", "", "expected string, got invalid UTF-8 at byte 1 (use list<u8> for binary data)" },
      { "some-bytes", 5, "", "expected list<u8> (a string or an array of bytes), got number" },
      { "a-list", { 1, "x" }, "[2]", "expected s32, got string" },
      { "a-point", { x = 1 }, ".y", "missing field (expected s32)" },
      { "a-tuple", { 1 }, "", "expected tuple<s32, string> (an array of 2 values), got an array of 1" },
      { "a-tuple", { 1, 2 }, "[2]", "expected string, got number" },
      { "an-option", "x", "", "expected s32, got string" },
      { "a-nested-option", 1.5, "", "expected s32, got 1.5 (not an integer)" },
      { "a-result", { ok = "x" }, ".ok", "expected s32, got string" },
      { "a-result", { value = 1 }, "", 'expected result key "ok" or "err", got "value"' },
      { "a-shape", "square", "", 'unknown variant case "square" of shape, expected one of: circle, rect, empty' },
      { "a-shape", { rect = { x = 1, y = "2" } }, ".rect.y", "expected s32, got string" },
      { "a-color", "pink", "", 'unknown enum case "pink" of color, expected one of: red, green, blue' },
      { "some-perms", { "fly" }, "", 'unknown flag "fly" of perms, expected any of: read, write, exec' },
    }
    -- Each position: export, how to wrap the kitchen, the path prefix before the field name.
    local POSITIONS = {
      { "echo-kitchen", function(k) return k end, "" },
      { "echo-kitchens", function(k) return { kitchen(), k } end, "[2]." },
      { "echo-maybe-kitchen", function(k) return k end, "" },
      { "echo-holder", function(k) return { full = k } end, "full." },
      { "echo-kitchen-result", function(k) return { ok = k } end, "ok." },
      { "echo-kitchen-result", function(k) return { err = k } end, "err." },
    }
    for _, pos in ipairs(POSITIONS) do
      local export, wrap, prefix = pos[1], pos[2], pos[3]
      it(("names the path and both types of every bad field through %s (%s)"):format(export, prefix), function()
        for _, b in ipairs(BAD) do
          local k = kitchen()
          k[b[1]] = b[2]
          assert.equals(arg1(export, prefix .. b[1] .. b[3] .. ": " .. b[4]), invalid(export, wrap(k)))
        end
      end)
    end
  end)

  describe("top-level results", function()
    it("returns value, nil for ok and nil, payload for err", function()
      local v, err = call("check-positive", 5)
      assert.equals(5, v)
      assert.is_nil(err)
      v, err = call("check-positive", -1)
      assert.is_nil(v)
      assert.equals("not positive: -1", err)
      assert.is_false(wippy.errors.is(err))
      v, err = call("check-positive", 0)
      assert.is_nil(v)
      assert.equals("not positive: 0", err)
    end)

    it("returns true for a unit ok and nil, true for a unit err", function()
      local v, err = call("unit-result", false)
      assert.is_true(v)
      assert.is_nil(err)
      v, err = call("unit-result", true)
      assert.is_nil(v)
      assert.is_true(err)
    end)

    it("returns true, nil for ok of result<_, string> and nil, e for its err", function()
      local v, err = call("maybe-fail", false)
      assert.is_true(v)
      assert.is_nil(err)
      v, err = call("maybe-fail", true)
      assert.is_nil(v)
      assert.equals("failed", err)
      assert.is_false(wippy.errors.is(err))
    end)

    it("still reports conversion failures as error objects", function()
      assert.equals("types:check-positive: argument 1 (v): expected s32, got string", invalid("check-positive", "5"))
    end)
  end)

  describe("interface functions (users)", function()
    local function users(n)
      local list = {}
      for i = 1, n do
        list[i] = {
          id = i,
          name = "user" .. i,
          tags = (i % 3 == 0) and {} or { "t" .. i, "x" },
          active = true,
          email = (i % 2 == 0) and ("u" .. i .. "@example.com") or nil,
        }
      end
      return list
    end

    it("transforms 10 users", function()
      local out, err = call("users#transform-users", users(10))
      assert.is_nil(err)
      assert.equals(10, #out)
      local expected = {}
      for i, u in ipairs(users(10)) do
        local tags = {}
        for _, t in ipairs(u.tags) do tags[#tags + 1] = t end
        tags[#tags + 1] = "seen"
        expected[i] = { id = u.id, name = "USER" .. i, tags = tags, active = #u.tags > 0, email = u.email }
      end
      assert.same(expected, out)
      assert.is_nil(out[1].email)
      assert.equals("u2@example.com", out[2].email)
      assert.is_false(out[3].active)
      assert.same({ "seen" }, out[3].tags)
      assert.same({}, call("users#transform-users", {}))
    end)

    it("names the bad field of a user", function()
      local list = users(3)
      list[2].name = 7
      assert.equals(id_of("users#transform-users") .. ": argument 1 (users): [2].name: expected string, got number",
        invalid("users#transform-users", list))
      list = users(3)
      list[3].tags = nil
      assert.equals(id_of("users#transform-users") .. ": argument 1 (users): [3].tags: missing field (expected list<string>)",
        invalid("users#transform-users", list))
    end)

    it("finds a user: ok(user) as value, nil; err(lookup-error) as nil, table", function()
      local u, err = call("users#find-user", users(5), 4)
      assert.is_nil(err)
      assert.same({ id = 4, name = "user4", tags = { "t4", "x" }, active = true, email = "u4@example.com" }, u)
      u, err = call("users#find-user", users(3), 7)
      assert.is_nil(u)
      assert.same({ code = 404, message = "no user 7" }, err)
      assert.is_false(wippy.errors.is(err))
    end)

    it("names the second argument", function()
      assert.equals(id_of("users#find-user") .. ": argument 2 (id): expected u32, got -1 (out of range 0..=4294967295)",
        invalid("users#find-user", users(1), -1))
    end)
  end)

  describe("argument counts and no results", function()
    it("adds, wrapping on overflow", function()
      assert.equals(5, call("add", 2, 3))
      assert.equals(-2147483648, call("add", 2147483647, 1))
    end)

    it("checks the argument count, ignoring trailing nils", function()
      assert.equals("types:add: expected 2 arguments, got 3", invalid("add", 1, 2, 3))
      assert.equals("types:add: expected 2 arguments, got 1", invalid("add", 1))
      assert.equals("types:add: expected 2 arguments, got 0", invalid("add"))
      assert.equals(3, call("add", 1, 2, nil, nil))
      assert.equals("types:add: argument 2 (b): expected s32, got string", invalid("add", 1, "2"))
      assert.equals("types:nothing: expected 0 arguments, got 1", invalid("nothing", 1))
    end)

    it("returns no values from a function without results", function()
      assert.equals(0, select("#", call("nothing")))
      assert.equals(0, select("#", call("nothing", nil)))
    end)

    it("runs a function that writes to stdout through WASI", function()
      assert.equals(0, select("#", call("log", "components_spec: a line from the types guest")))
    end)
  end)

  describe("registry:describe", function()
    it("describes an interface function", function()
      local d = assert(registry:describe(id_of("users#transform-users")))
      assert.same({ { name = "users", type = "list<user>" } }, d.params)
      assert.equals(1, #d.results)
      assert.equals("list<user>", d.results[1].type)
      assert.equals("func(users: list<user>) -> list<user>", d.wit)
      d = assert(registry:describe(id_of("users#find-user")))
      assert.same({ { name = "users", type = "list<user>" }, { name = "id", type = "u32" } }, d.params)
      assert.equals("func(users: list<user>, id: u32) -> result<user, lookup-error>", d.wit)
    end)

    it("describes world exports with named and anonymous types", function()
      local d = assert(registry:describe("types:echo-kitchen"))
      assert.same({ { name = "v", type = "kitchen" } }, d.params)
      assert.equals("kitchen", d.results[1].type)
      assert.equals("func(v: kitchen) -> kitchen", d.wit)
      local sigs = {
        ["add"] = "func(a: s32, b: s32) -> s32",
        ["nothing"] = "func()",
        ["echo-bytes"] = "func(v: list<u8>) -> list<u8>",
        ["echo-tuple"] = "func(v: tuple<s32, string, bool>) -> tuple<s32, string, bool>",
        ["echo-nested-option"] = "func(v: option<option<s32>>) -> option<option<s32>>",
        ["echo-kitchen-result"] = "func(v: result<kitchen, kitchen>) -> result<kitchen, kitchen>",
        ["check-positive"] = "func(v: s32) -> result<s32, string>",
        ["unit-result"] = "func(fail: bool) -> result",
        ["maybe-fail"] = "func(fail: bool) -> result<_, string>",
      }
      for export, sig in pairs(sigs) do
        assert.equals(sig, assert(registry:describe(id_of(export))).wit)
      end
      assert.same({}, assert(registry:describe("types:nothing")).results)
    end)
  end)
end)

describe("component resources", function()
  setup(function()
    add_exports({ "counters#make-counter", "counters#total", "counters#make-cell" })
  end)

  -- A method call on a dropped resource fails: it raises, or returns nil, err.
  local function fails(fn)
    local ok, r, e = pcall(fn)
    if ok then
      assert.is_nil(r)
      assert.is_not_nil(e)
      return tostring(e)
    end
    return tostring(r)
  end

  it("names the resource type in argument errors", function()
    local c = assert(call("counters#make-counter", 1))
    local cell = assert(call("counters#make-cell", 2))
    local _, err = call("counters#total", c, 5)
    assert.equals(id_of("counters#total") .. ": argument 2 (b): expected borrow<counter> (a resource handle), got number",
      err:message())
    _, err = call("counters#total", cell, c)
    assert.equals(id_of("counters#total") .. ": argument 1 (a): expected borrow<counter>, got a cell resource",
      err:message())
  end)

  it("returns a userdata with the resource's methods, keeping its state", function()
    local c, err = call("counters#make-counter", 10)
    assert.is_nil(err)
    assert.equals("userdata", type(c))
    assert.equals(10, c:value())
    assert.equals(12, c:increment(2))
    assert.equals(12, c:value())
    assert.equals(15, c:increment(3))
    assert.equals(5, c:increment(-10))
    assert.equals(5, c:value())
  end)

  it("gives a finished future from funcs.async, in and outside a task", function()
    local f = assert(wippy.funcs.async(id_of("counters#make-counter"), 4))
    assert.is_true(f:is_complete())
    local c = assert(f:result())
    assert.equals(5, c:increment(1))
    local d = wippy.run(function()
      local c2 = assert(wippy.funcs.async(id_of("counters#make-counter"), 7)):result()
      return c2:value()
    end)
    assert.equals(7, d)
  end)

  it("calls a WIT method named drop; wippy.drop releases any handle", function()
    local c = call("counters#make-cell", 5)
    assert.equals(5, c:drop()) -- the guest's own `drop` method
    assert.equals(0, c:get())
    assert.is_true(wippy.drop(c))
    assert.matches("dropped", fails(function() return c:get() end))
    local k = call("counters#make-counter", 2)
    assert.is_true(wippy.drop(k))
    assert.matches("dropped", fails(function() return k:value() end))
    assert.error_matches(function() wippy.drop({}) end, "bad argument #1 to 'wippy.drop' (resource expected, got table)", 1, true)
  end)

  it("keeps separate state per resource", function()
    local a = call("counters#make-counter", 1)
    local b = call("counters#make-counter", 100)
    a:increment(1)
    b:increment(5)
    assert.equals(2, a:value())
    assert.equals(105, b:value())
  end)

  it("converts method arguments by their WIT types", function()
    local c = call("counters#make-counter", 0)
    assert.matches("expected s64, got string", fails(function() return c:increment("x") end), 1, true)
    assert.equals(0, c:value())
  end)

  it("fails a method call after r:drop()", function()
    local c = call("counters#make-counter", 3)
    assert.equals(3, c:value())
    c:drop()
    fails(function() return c:value() end)
    fails(function() return c:increment(1) end)
  end)

  it("drops a resource with __close (Lua 5.4; before it, :drop() does)", function()
    local chunk, err = (loadstring or load)([[
      local call = ...
      local kept
      do
        local c <close> = call("counters#make-counter", 1)
        kept = c
        assert(c:increment(1) == 2)
      end
      return kept
    ]])
    if H.is_luajit or _VERSION < "Lua 5.4" then
      -- No to-be-closed variables before 5.4 (docs/lua-api.md, "Lua versions"): such a chunk
      -- does not compile there; the test above frees a resource with :drop().
      assert.is_nil(chunk)
      assert.matches("<", err, 1, true)
      return
    end
    assert(chunk, err)
    local kept = chunk(call)
    fails(function() return kept:value() end)
  end)

  it("survives many resources collected by __gc", function()
    for i = 1, 500 do
      local c = call("counters#make-counter", i)
      assert.equals(i + 1, c:increment(1))
    end
    collectgarbage()
    collectgarbage()
    local c = call("counters#make-counter", 7)
    assert.equals(7, c:value())
  end)

  it("passes borrowed resources to another function of the component", function()
    local a = call("counters#make-counter", 2)
    local b = call("counters#make-counter", 40)
    local v, err = call("counters#total", a, b)
    assert.is_nil(err)
    assert.equals(42, v)
    a:increment(8)
    assert.equals(50, call("counters#total", a, b))
    -- borrowing does not take them
    assert.equals(10, a:value())
    assert.equals(40, b:value())
    -- the same resource borrowed twice
    assert.equals(20, call("counters#total", a, a))
  end)

  it("rejects a dropped resource as an argument", function()
    local a = call("counters#make-counter", 1)
    local b = call("counters#make-counter", 2)
    a:drop()
    local err = H.call_err(id_of("counters#total"), a, b)
    assert.equals("INVALID", err:kind())
    assert.equals(id_of("counters#total") .. ": argument 1 (a): ", err:message():sub(1, #id_of("counters#total") + 18))
    assert.equals(2, b:value())
  end)

  it("rejects a non-resource where a resource is expected", function()
    local a = call("counters#make-counter", 2)
    local err = H.call_err(id_of("counters#total"), a, 5)
    assert.equals("INVALID", err:kind())
    assert.equals(id_of("counters#total") .. ": argument 2 (b): ", err:message():sub(1, #id_of("counters#total") + 18))
  end)

  it("describes resource types in WIT syntax", function()
    local d = assert(registry:describe(id_of("counters#make-counter")))
    assert.equals("func(start: s64) -> counter", d.wit)
    d = assert(registry:describe(id_of("counters#total")))
    assert.equals("func(a: borrow<counter>, b: borrow<counter>) -> s64", d.wit)
  end)
end)
