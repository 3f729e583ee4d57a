local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs
local null = wippy.null

-- An identity function for any WIT type that lowers to one i32 or one i64.
local ID32 = '(module (func (export "id") (param i32) (result i32) local.get 0))'
local ID64 = '(module (func (export "id") (param i64) (result i64) local.get 0))'

describe("core modules with WIT", function()
  describe("scalars (called directly)", function()
    local widths = {
      { "s8", -128, 127 }, { "u8", 0, 255 }, { "s16", -32768, 32767 }, { "u16", 0, 65535 },
      { "s32", -2147483648, 2147483647 }, { "u32", 0, 4294967295 },
    }
    for _, w in ipairs(widths) do
      local ty, lo, hi = w[1], w[2], w[3]
      it(("round-trips %s at both ends and range-checks beyond them"):format(ty), function()
        H.add_wat("scalars:" .. ty, ID32, { wit = ("id: func(x: %s) -> %s;"):format(ty, ty) })
        assert.equals(lo, funcs.call("scalars:" .. ty, lo))
        assert.equals(hi, funcs.call("scalars:" .. ty, hi))
        assert.equals(("scalars:%s: argument 1 (x): expected %s, got %d (out of range %d..=%d)"):format(ty, ty, hi + 1, lo, hi),
          H.call_err("scalars:" .. ty, hi + 1):message())
        assert.equals(("scalars:%s: argument 1 (x): expected %s, got %d (out of range %d..=%d)"):format(ty, ty, lo - 1, lo, hi),
          H.call_err("scalars:" .. ty, lo - 1):message())
      end)
    end

    it("round-trips s64 and f64 edge values", function()
      H.add_wat("scalars:s64", ID64, { wit = "id: func(x: s64) -> s64;" })
      assert.equals(2 ^ 53, funcs.call("scalars:s64", 2 ^ 53))
      assert.equals(-2 ^ 53, funcs.call("scalars:s64", -2 ^ 53))
      if H.doubles then
        -- Lua 5.1/5.2: a result beyond 2^53 is the nearest double.
        H.add_wat("scalars:s64-big", '(module (func (export "id") (param i64) (result i64) i64.const 9007199254740993))',
          { wit = "id: func(x: s64) -> s64;" })
        assert.equals(2 ^ 53, funcs.call("scalars:s64-big", 0))
        assert.equals(-2 ^ 63, funcs.call("scalars:s64", -2 ^ 63))
      elseif not H.is_luajit then
        assert.equals(math.maxinteger, funcs.call("scalars:s64", math.maxinteger))
        assert.equals(math.mininteger, funcs.call("scalars:s64", math.mininteger))
        assert.equals(2 ^ 53 + 1, funcs.call("scalars:s64", 2 ^ 53 + 1))
      end
      H.add_wat("scalars:f64", '(module (func (export "id") (param f64) (result f64) local.get 0))', { wit = "id: func(x: f64) -> f64;" })
      assert.equals(1e308, funcs.call("scalars:f64", 1e308))
      assert.equals(-0.5, funcs.call("scalars:f64", -0.5))
      local nan = funcs.call("scalars:f64", 0 / 0)
      assert.is_true(nan ~= nan)
      assert.equals(math.huge, funcs.call("scalars:f64", math.huge))
    end)

    it("gives u64 values at and above 2^63 the bit pattern of a negative integer", function()
      if H.is_luajit then return end -- LuaJIT's 64-bit cdata come with the components stage
      H.add_wat("scalars:u64", ID64, { wit = "id: func(x: u64) -> u64;" })
      if H.doubles then
        -- Lua 5.1/5.2: the 5.3+ integer (the bit pattern) as a double.
        assert.equals(-1, funcs.call("scalars:u64", -1))
        assert.equals(-2 ^ 63, funcs.call("scalars:u64", 2 ^ 63))
        H.add_wat("scalars:u64-max", '(module (func (export "id") (param i64) (result i64) i64.const -1))',
          { wit = "id: func(x: u64) -> u64;" })
        assert.equals(-1, funcs.call("scalars:u64-max", 0))
        return
      end
      assert.equals(-1, funcs.call("scalars:u64", -1))
      assert.equals(math.mininteger, funcs.call("scalars:u64", math.mininteger))
      assert.equals(("J"):unpack(("J"):pack(-1)), funcs.call("scalars:u64", -1))
    end)

    it("lifts narrow results by truncation, as the canonical ABI does", function()
      H.add_wat("scalars:wide", '(module (func (export "id") (param i32) (result i32) i32.const 300))', { wit = "id: func(x: u8) -> u8;" })
      assert.equals(44, funcs.call("scalars:wide", 1))
    end)

    it("maps bool and char", function()
      H.add_wat("scalars:bool", ID32, { wit = "id: func(x: bool) -> bool;" })
      assert.is_true(funcs.call("scalars:bool", true))
      assert.is_false(funcs.call("scalars:bool", false))
      assert.equals("scalars:bool: argument 1 (x): expected bool, got number", H.call_err("scalars:bool", 1):message())
      H.add_wat("scalars:char", ID32, { wit = "id: func(x: char) -> char;" })
      assert.equals("a", funcs.call("scalars:char", "a"))
      assert.equals("€", funcs.call("scalars:char", "€"))
      assert.equals("😀", funcs.call("scalars:char", "😀"))
      assert.equals("scalars:char: argument 1 (x): expected char (a string of one code point), got a string of 2 code points",
        H.call_err("scalars:char", "ab"):message())
    end)

    it("maps an enum to its case names", function()
      H.add_wat("scalars:color", ID32, { wit = "interface colors { enum color { red, green, blue } id: func(c: color) -> color; }" })
      assert.equals("blue", funcs.call("scalars:color", "blue"))
      assert.equals('scalars:color: argument 1 (c): unknown enum case "pink" of color, expected one of: red, green, blue',
        H.call_err("scalars:color", "pink"):message())
    end)
  end)

  describe("strings and lists (through the canonical ABI)", function()
    setup(function()
      H.add_echo("wit:string", "echo: func(s: string) -> string;")
      H.add_echo("wit:bytes", "echo: func(b: list<u8>) -> list<u8>;")
      H.add_echo("wit:ints", "echo: func(xs: list<s32>) -> list<s32>;")
      H.add_echo("wit:strings", "echo: func(xs: list<string>) -> list<string>;")
    end)

    it("round-trips strings: empty, unicode and long", function()
      assert.equals("", funcs.call("wit:string", ""))
      assert.equals("héllo wörld ✓ 😀", funcs.call("wit:string", "héllo wörld ✓ 😀"))
      local long = ("abcdefghij"):rep(100000)
      assert.equals(long, funcs.call("wit:string", long))
    end)

    it("rejects invalid UTF-8 for string", function()
      assert.equals("wit:string: argument 1 (s): expected string, got invalid UTF-8 at byte 3 (use list<u8> for binary data)",
        H.call_err("wit:string", "ab\255"):message())
    end)

    it("passes list<u8> as a Lua string, NUL bytes included", function()
      local bytes = "a\0b\255\0"
      assert.equals(bytes, funcs.call("wit:bytes", bytes))
      assert.equals("\1\2\3", funcs.call("wit:bytes", { 1, 2, 3 }))
      assert.equals("", funcs.call("wit:bytes", ""))
    end)

    it("round-trips lists, the empty one included", function()
      assert.same({ 1, -2, 3 }, funcs.call("wit:ints", { 1, -2, 3 }))
      assert.same({}, funcs.call("wit:ints", {}))
      assert.same({ "a", "", "ü" }, funcs.call("wit:strings", { "a", "", "ü" }))
    end)

    it("names the element of a list that does not fit", function()
      assert.equals("wit:strings: argument 1 (xs): [2]: expected string, got number",
        H.call_err("wit:strings", { "a", 5 }):message())
      assert.equals("wit:ints: argument 1 (xs): expected list<s32> (an array table), got a table with key string",
        H.call_err("wit:ints", { a = 1 }):message())
    end)
  end)

  describe("records, variants, enums, flags, options, tuples, results in lists", function()
    setup(function()
      H.add_echo("wit:users", [[
interface users {
  record user {
    id: u32,
    display-name: string,
    tags: list<string>,
    active: bool,
    nickname: option<string>,
  }
  echo: func(users: list<user>) -> list<user>;
}]])
      H.add_echo("wit:shapes", [[
interface shapes {
  variant shape { circle(f64), square(u32), empty }
  echo: func(s: list<shape>) -> list<shape>;
}]])
      H.add_echo("wit:perms", [[
interface perms {
  flags perm { read, write, exec }
  echo: func(p: list<perm>) -> list<perm>;
}]])
      H.add_echo("wit:maybe", "echo: func(xs: list<option<s32>>) -> list<option<s32>>;")
      H.add_echo("wit:pairs", "echo: func(xs: list<tuple<s32, string>>) -> list<tuple<s32, string>>;")
      H.add_echo("wit:results", "echo: func(xs: list<result<s32, string>>) -> list<result<s32, string>>;")
      H.add_echo("wit:nested", "echo: func(xs: list<option<option<u8>>>) -> list<option<option<u8>>>;")
    end)

    it("maps records to tables with kebab keys, accepting snake_case on input", function()
      local out = funcs.call("wit:users", {
        { id = 1, ["display-name"] = "Alice", tags = { "admin" }, active = true, nickname = "al" },
        { id = 2, display_name = "Bob", tags = {}, active = false },
      })
      assert.same({
        { id = 1, ["display-name"] = "Alice", tags = { "admin" }, active = true, nickname = "al" },
        { id = 2, ["display-name"] = "Bob", tags = {}, active = false },
      }, out)
    end)

    it("names types by their WIT names: an alias of a named type by the alias, a list by its element", function()
      H.add_echo("wit:alias", [[
interface alias {
  record point { x: s32, y: s32 }
  type spot = point;
  echo: func(xs: list<spot>) -> list<spot>;
}]])
      H.add_echo("wit:pitches", [[
interface pitches {
  enum tone { low, high }
  type pitch = tone;
  echo: func(ts: list<pitch>) -> list<pitch>;
}]])
      assert.equals("func(xs: list<spot>) -> list<spot>", wippy.registry:describe("wit:alias").wit)
      assert.equals("wit:alias: argument 1 (xs): expected list<spot>, got string", H.call_err("wit:alias", "x"):message())
      assert.equals("wit:alias: argument 1 (xs): [1]: expected spot (a record: a table), got number",
        H.call_err("wit:alias", { 1 }):message())
      assert.equals("wit:alias: argument 1 (xs): [1].y: missing field (expected s32)",
        H.call_err("wit:alias", { { x = 1 } }):message())
      assert.equals("func(ts: list<pitch>) -> list<pitch>", wippy.registry:describe("wit:pitches").wit)
      assert.equals("wit:pitches: argument 1 (ts): [1]: expected pitch (an enum case: low|high), got number",
        H.call_err("wit:pitches", { 1 }):message())
      assert.equals('wit:pitches: argument 1 (ts): [2]: unknown enum case "mid" of pitch, expected one of: low, high',
        H.call_err("wit:pitches", { "low", "mid" }):message())
      assert.equals("wit:users: argument 1 (users): [1]: expected user (a record: a table), got boolean",
        H.call_err("wit:users", { true }):message())
    end)

    it("names the path of a bad record field", function()
      local err = H.call_err("wit:users", {
        { id = 1, display_name = "A", tags = {}, active = true },
        { id = 2, display_name = 7, tags = {}, active = true },
      })
      assert.equals("INVALID", err:kind())
      assert.equals("wit:users: argument 1 (users): [2].display-name: expected string, got number", err:message())
      err = H.call_err("wit:users", { { id = 1, tags = {}, active = true } })
      assert.equals("wit:users: argument 1 (users): [1].display-name: missing field (expected string)", err:message())
      err = H.call_err("wit:users", { { id = 1, display_name = "A", tags = { "x", false }, active = true } })
      assert.equals("wit:users: argument 1 (users): [1].tags[2]: expected string, got boolean", err:message())
    end)

    it("maps variants with and without payload", function()
      assert.same({ { circle = 1.5 }, { square = 3 }, "empty" },
        funcs.call("wit:shapes", { { circle = 1.5 }, { square = 3 }, "empty" }))
      assert.same({ "empty" }, funcs.call("wit:shapes", { { empty = true } }))
      assert.equals('wit:shapes: argument 1 (s): [1]: unknown variant case "triangle" of shape, expected one of: circle, square, empty',
        H.call_err("wit:shapes", { "triangle" }):message())
      assert.equals("wit:shapes: argument 1 (s): [1].square: expected u32, got -1 (out of range 0..=4294967295)",
        H.call_err("wit:shapes", { { square = -1 } }):message())
    end)

    it("maps flags to set tables, accepting arrays of names", function()
      assert.same({ { read = true, exec = true }, {} },
        funcs.call("wit:perms", { { read = true, exec = true, write = false }, {} }))
      assert.same({ { write = true } }, funcs.call("wit:perms", { { "write" } }))
      assert.equals('wit:perms: argument 1 (p): [1]: unknown flag "fly" of perm, expected any of: read, write, exec',
        H.call_err("wit:perms", { { fly = true } }):message())
    end)

    it("uses wippy.null for none elements of a list", function()
      assert.same({ 1, null, 3 }, funcs.call("wit:maybe", { 1, null, 3 }))
    end)

    it("keeps the inner none of option<option<T>> visible", function()
      assert.same({ 5, null }, funcs.call("wit:nested", { 5, null }))
    end)

    it("maps tuples to arrays of exact length", function()
      assert.same({ { 1, "a" }, { 2, "b" } }, funcs.call("wit:pairs", { { 1, "a" }, { 2, "b" } }))
      assert.equals("wit:pairs: argument 1 (xs): [1]: expected tuple<s32, string> (an array of 2 values), got an array of 3",
        H.call_err("wit:pairs", { { 1, "a", 3 } }):message())
    end)

    it("maps nested results to {ok = v} / {err = e}", function()
      assert.same({ { ok = 1 }, { err = "bad" } }, funcs.call("wit:results", { { ok = 1 }, { err = "bad" } }))
      assert.equals('wit:results: argument 1 (xs): [1]: expected result key "ok" or "err", got "value"',
        H.call_err("wit:results", { { value = 1 } }):message())
    end)
  end)

  -- check: func(x: s32) -> result<s32, string>: ok(x * 2) for x >= 0, else err("negative").
  local CHECK_WAT = [[
(module
  (memory (export "memory") 1)
  (data (i32.const 512) "negative")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
  (func (export "check") (param $x i32) (result i32)
    (if (i32.ge_s (local.get $x) (i32.const 0))
      (then
        (i32.store8 (i32.const 16) (i32.const 0))
        (i32.store offset=4 (i32.const 16) (i32.mul (local.get $x) (i32.const 2))))
      (else
        (i32.store8 (i32.const 16) (i32.const 1))
        (i32.store offset=4 (i32.const 16) (i32.const 512))
        (i32.store offset=8 (i32.const 16) (i32.const 8))))
    (i32.const 16)))]]

  describe("a top-level result", function()
    setup(function()
      H.add_wat("wit:check", CHECK_WAT, { wit = "check: func(x: s32) -> result<s32, string>;" })
    end)

    it("returns value, nil for ok", function()
      local v, err = funcs.call("wit:check", 21)
      assert.equals(42, v)
      assert.is_nil(err)
    end)

    it("returns nil, payload for err (the payload, not an error object)", function()
      local v, err = funcs.call("wit:check", -1)
      assert.is_nil(v)
      assert.equals("negative", err)
      assert.is_false(wippy.errors.is(err))
    end)
  end)

  describe("aliases of lists, options, results and primitives (type x = ...)", function()
    setup(function()
      H.add_echo("wit:conns", [[
interface conns {
  type port = u16;
  type maybe = option<s32>;
  type blob = list<u8>;
  record conn { port: port, tag: maybe, data: blob }
  echo: func(xs: list<conn>) -> list<conn>;
}]])
      H.add_echo("wit:ids", [[
interface ids {
  type ids = list<u32>;
  echo: func(xs: ids) -> ids;
}]])
      -- The scalar path of a core module: port is read as a u16 directly.
      H.add_wat("wit:double", [[
(module
  (func (export "double") (param $x i32) (result i32)
    (i32.mul (local.get $x) (i32.const 2))))]], { wit = "interface d {\n  type port = u16;\n  double: func(x: port) -> u32;\n}", method = "double" })
      H.add_wat("wit:check-alias", CHECK_WAT,
        { wit = "interface c {\n  type outcome = result<s32, string>;\n  check: func(x: s32) -> outcome;\n}", method = "check" })
    end)

    it("convert as the types they stand for", function()
      assert.same({ { port = 80, data = "hi" }, { port = 443, tag = 7, data = "" } },
        funcs.call("wit:conns", { { port = 80, data = "hi" }, { port = 443, tag = 7, data = {} } }))
      assert.same({ 1, 2 }, funcs.call("wit:ids", { 1, 2 }))
      assert.equals(42, funcs.call("wit:double", 21))
      -- A top-level alias of a result is a top-level result: value, nil or nil, payload.
      local v, err = funcs.call("wit:check-alias", 21)
      assert.equals(42, v)
      assert.is_nil(err)
      v, err = funcs.call("wit:check-alias", -1)
      assert.is_nil(v)
      assert.equals("negative", err)
    end)

    it("are named in messages as describe names them", function()
      assert.equals("func(xs: ids) -> ids", wippy.registry:describe("wit:ids").wit)
      assert.equals("wit:ids: argument 1 (xs): expected ids (list<u32>), got string", H.call_err("wit:ids", "x"):message())
      assert.equals("wit:ids: argument 1 (xs): expected ids (list<u32>: an array table), got a table with key string",
        H.call_err("wit:ids", { x = 1 }):message())
      assert.equals("wit:ids: argument 1 (xs): [2]: expected u32, got string", H.call_err("wit:ids", { 1, "x" }):message())
      assert.equals("wit:conns: argument 1 (xs): [1].port: expected port (u16), got 70000 (out of range 0..=65535)",
        H.call_err("wit:conns", { { port = 70000, data = "" } }):message())
      assert.equals("wit:conns: argument 1 (xs): [1].port: missing field (expected port)",
        H.call_err("wit:conns", { { data = "" } }):message())
      assert.equals("wit:conns: argument 1 (xs): [1].data: expected blob (list<u8>: a string or an array of bytes), got boolean",
        H.call_err("wit:conns", { { port = 1, data = true } }):message())
      assert.equals("wit:conns: argument 1 (xs): [1].tag: expected s32, got string",
        H.call_err("wit:conns", { { port = 1, tag = "x", data = "" } }):message())
      assert.equals("func(x: port) -> u32", wippy.registry:describe("wit:double").wit)
      assert.equals("wit:double: argument 1 (x): expected port (u16), got -1 (out of range 0..=65535)",
        H.call_err("wit:double", -1):message())
      assert.equals("wit:double: argument 1 (x): expected port (u16), got string", H.call_err("wit:double", "x"):message())
    end)

    it("are named in messages from tasks and futures too", function()
      local msg
      wippy.run(function()
        local _, e = wippy.spawn(function() return funcs.call("wit:double", "x") end):result()
        msg = e and e:message()
      end)
      assert.equals("wit:double: argument 1 (x): expected port (u16), got string", msg)
      -- funcs.async checks the arguments before it starts: nil, err.
      local f, e = funcs.async("wit:conns", { { port = -5, data = "" } })
      assert.is_nil(f)
      assert.equals("wit:conns: argument 1 (xs): [1].port: expected port (u16), got -5 (out of range 0..=65535)", e:message())
    end)
  end)
end)
