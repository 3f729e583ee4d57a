local H = dofile("spec/helper.lua")
local wippy, funcs, registry = H.wippy, H.funcs, H.registry

describe("wippy.registry", function()
  setup(function()
    assert(wippy.load("spec/fixtures/app"))
  end)

  describe(":get", function()
    it("returns the entry with id, kind, meta and its fields", function()
      local e = registry:get("app:compute")
      assert.equals("app:compute", e.id)
      assert.equals("function.wat", e.kind)
      assert.equals("multiplies two numbers", e.meta.comment)
      assert.equals("compute: func(a: s32, b: s32) -> s32;", e.wit)
      assert.matches("i32.mul", e.source, 1, true)
    end)

    it("shows file:// fields with the file's contents", function()
      assert.matches("i32.const 42", registry:get("app:answer_wat").source, 1, true)
    end)

    it("gives an empty meta table when there is none, and nil for unknown IDs", function()
      assert.same({}, registry:get("app:answer_wat").meta)
      assert.is_nil(registry:get("app:nope"))
    end)
  end)

  describe(":entries", function()
    it("lists entries filtered by kind and namespace prefix", function()
      local lua_fns = registry:entries({ kind = "function.lua", namespace = "app" })
      local ids = {}
      for _, e in ipairs(lua_fns) do ids[#ids + 1] = e.id end
      table.sort(ids)
      assert.same({ "app:explode", "app:greet" }, ids)
      for _, e in ipairs(registry:entries()) do assert.is_string(e.id) end
      assert.same({}, registry:entries({ namespace = "no.such.namespace" }))
    end)

    it("matches namespace prefixes by segment", function()
      assert(registry:add({ id = "shop.orders:list", kind = "function.wat", source = '(module (func (export "f")))' }))
      assert(registry:add({ id = "shopping:list", kind = "function.wat", source = '(module (func (export "f")))' }))
      local ids = {}
      for _, e in ipairs(registry:entries({ namespace = "shop" })) do ids[#ids + 1] = e.id end
      assert.same({ "shop.orders:list" }, ids)
    end)
  end)

  describe(":add", function()
    it("adds a WAT function by id", function()
      assert.is_true(registry:add({
        id = "added:triple",
        kind = "function.wat",
        source = '(module (func (export "t") (param i32) (result i32) local.get 0 i32.const 3 i32.mul))',
        wit = "t: func(x: s32) -> s32;",
      }))
      assert.equals(21, funcs.call("added:triple", 7))
    end)

    it("accepts namespace + name", function()
      assert.is_true(registry:add({ namespace = "added", name = "one", kind = "function.wat",
        source = '(module (func (export "f") (result i32) i32.const 1))' }))
      assert.equals(1, funcs.call("added:one"))
    end)

    it("adds a Lua handler function", function()
      assert.is_true(registry:add({ id = "added:sum", kind = "function.lua", handler = function(a, b) return a + b end }))
      assert.equals(5, funcs.call("added:sum", 2, 3))
    end)

    it("replaces an entry with the same id", function()
      registry:add({ id = "added:v", kind = "function.lua", handler = function() return "old" end })
      assert.equals("old", funcs.call("added:v"))
      registry:add({ id = "added:v", kind = "function.lua", handler = function() return "new" end })
      assert.equals("new", funcs.call("added:v"))
    end)

    it("returns nil, err for invalid entries and changes nothing", function()
      local ok, err = registry:add({ id = "added:bad", kind = "function.wat", source = "(module", colour = 1 })
      assert.is_nil(ok)
      assert.equals("INVALID", err:kind())
      assert.matches('unknown field "colour" in entry added:bad', tostring(err), 1, true)
      assert.is_nil(registry:get("added:bad"))

      ok, err = registry:add({ id = "added:bad", kind = "function.wat", source = "(module" })
      assert.is_nil(ok)
      assert.matches("added:bad: invalid WAT at line 1", tostring(err), 1, true)
      assert.is_nil(registry:get("added:bad"))

      ok, err = registry:add({ id = "no-colon", kind = "function.wat", source = "(module)" })
      assert.is_nil(ok)
      assert.equals("INVALID", err:kind())
    end)

    it("rejects functions other than handler", function()
      local ok, err = registry:add({ id = "added:f", kind = "my.kind", callback = print })
      assert.is_nil(ok)
      assert.matches('field "callback": function values cannot be stored', tostring(err), 1, true)
    end)
  end)

  describe(":remove", function()
    it("removes an entry; later calls are NOT_FOUND", function()
      registry:add({ id = "gone:x", kind = "function.lua", handler = function() return 1 end })
      assert.equals(1, funcs.call("gone:x"))
      assert.is_true(registry:remove("gone:x"))
      assert.is_nil(registry:get("gone:x"))
      assert.equals("NOT_FOUND", H.call_err("gone:x"):kind())
    end)

    -- Found by the soak (docs/reliability.md): the state's lookup cache kept a removed entry,
    -- its pool and warm instances, until that state's next call. An instance is seen to go
    -- by the last line its guest wrote without a newline, which the host writes then.
    it("lets the entry's warm instances go at once, and on a replacing add", function()
      local dir = H.tmpdir()
      local script = dir .. "/remove.lua"
      H.write(script, ([==[
package.cpath = %q
local wippy = require("wippy")
local WAT = [[
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "no newline")
  (func (export "run") (result i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 10))
    (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))]]
local entry = { id = "rm:tail", kind = "function.wat", source = WAT, method = "run", imports = { "wasi1" } }
assert(wippy.registry:add(entry))
assert(wippy.funcs.call("rm:tail") == 0)
io.stderr:write("removing\n")
assert(wippy.registry:remove("rm:tail"))
io.stderr:write("removed\n")
assert(wippy.registry:add(entry))
assert(wippy.funcs.call("rm:tail") == 0)
entry.meta = { changed = true }
io.stderr:write("replacing\n")
assert(wippy.registry:add(entry))
io.stderr:write("replaced\n")
]==]):format(package.cpath))
      local out = H.shell(H.VM .. " '" .. script .. "' 2>&1")
      os.execute("rm -rf '" .. dir .. "'")
      assert.equals("removing\nrm:tail: no newline\nremoved\nreplacing\nrm:tail: no newline\nreplaced\n", out)
    end)

    it("returns nil, err NOT_FOUND for unknown entries", function()
      local ok, err = registry:remove("gone:never")
      assert.is_nil(ok)
      assert.equals("NOT_FOUND", err:kind())
    end)
  end)

  describe(":describe", function()
    it("gives parameters, results and the WIT signature", function()
      local d = assert(registry:describe("app:compute"))
      assert.same({ { name = "a", type = "s32" }, { name = "b", type = "s32" } }, d.params)
      assert.same({ { name = "result", type = "s32" } }, d.results)
      assert.equals("func(a: s32, b: s32) -> s32", d.wit)
    end)

    it("names the core types of a module without WIT", function()
      local d = assert(registry:describe("app:mul_f64"))
      assert.same({ { name = "p0", type = "f64" }, { name = "p1", type = "f64" } }, d.params)
      assert.equals("func(p0: f64, p1: f64) -> f64", d.wit)
    end)

    it("uses the names of named WIT types", function()
      H.add_echo("described:users", [[
interface users {
  record user { id: u32, display-name: string }
  echo: func(all: list<user>) -> list<user>;
}]])
      local d = assert(registry:describe("described:users"))
      assert.same({ { name = "all", type = "list<user>" } }, d.params)
      assert.equals("func(all: list<user>) -> list<user>", d.wit)
    end)

    it("returns nil, err for unknown or non-WebAssembly entries", function()
      local d, err = registry:describe("app:nothing")
      assert.is_nil(d)
      assert.equals("NOT_FOUND", err:kind())
      d, err = registry:describe("app:greet")
      assert.is_nil(d)
      assert.matches("Lua functions have no WIT signature", tostring(err), 1, true)
    end)
  end)
end)
