local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs

-- Every run uses a fresh cache directory, so the first load there must compile.
local stamp = tostring(os.time()) .. tostring(math.random(1, 1e9))
local function write_app(dir, namespace)
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  H.write(dir .. "/_index.yaml", ([[
namespace: %s
entries:
  - name: stamp
    kind: function.wat
    source: '(module (; %s ;) (func (export "f") (result i32) i32.const 7))'
]]):format(namespace, stamp))
end

local function engine_stats()
  local s = wippy.stats().engine
  return s.compiled, s.cache_hits
end

local function count_files(dir)
  local p = io.popen("ls -A '" .. dir .. "' 2>/dev/null | grep -v '^\\.' | wc -l")
  local n = tonumber(p:read("*a"))
  p:close()
  return n
end

describe("the artifact cache", function()
  local root = H.tmpdir()
  local cache = root .. "/cache"
  local function app(namespace)
    local dir = root .. "/" .. namespace
    write_app(dir, namespace)
    return dir
  end

  it("compiles on a cold cache and writes the artifact", function()
    local compiled, hits = engine_stats()
    assert.is_true(wippy.load(app("cold"), { cache_dir = cache }))
    local compiled2, hits2 = engine_stats()
    assert.equals(compiled + 1, compiled2)
    assert.equals(hits, hits2)
    assert.equals(1, count_files(cache))
    assert.equals(7, funcs.call("cold:stamp"))
  end)

  it("loads the same code from the cache without compiling", function()
    local compiled, hits = engine_stats()
    assert.is_true(wippy.load(app("warm"), { cache_dir = cache }))
    local compiled2, hits2 = engine_stats()
    assert.equals(compiled, compiled2)
    assert.equals(hits + 1, hits2)
    assert.equals(7, funcs.call("warm:stamp"))
  end)

  it("compiles nothing in a second process that shares the directory", function()
    local vm = H.VM
    local script = root .. "/second.lua"
    H.write(script, ([[
package.cpath = %q
local wippy = require("wippy")
assert(wippy.load(%q, { cache_dir = %q }))
local s = wippy.stats().engine
io.write(s.compiled, " ", s.cache_hits, " ", wippy.funcs.call("cold:stamp"))
]]):format(package.cpath, root .. "/cold", cache))
    local p = assert(io.popen(vm .. " '" .. script .. "'"))
    local out = p:read("*a")
    p:close()
    assert.equals("0 1 7", out)
  end)

  it("is off with cache_dir = false", function()
    local compiled, hits = engine_stats()
    assert.is_true(wippy.load(app("nocache"), { cache_dir = false }))
    local compiled2, hits2 = engine_stats()
    assert.equals(compiled + 1, compiled2)
    assert.equals(hits, hits2)
  end)

  it("rejects a cache_dir of the wrong type", function()
    assert.error_matches(function() wippy.load(app("bad"), { cache_dir = 1 }) end,
      "a directory path or false expected, got number", 1, true)
  end)

  it("is configured process-wide with wippy.configure", function()
    assert.is_true(wippy.configure({ cache_dir = cache }))
    local compiled, hits = engine_stats()
    assert.is_true(wippy.load(app("configured")))
    local compiled2, hits2 = engine_stats()
    assert.equals(compiled, compiled2)
    assert.equals(hits + 1, hits2)
    assert.error_matches(function() wippy.configure({ strictly = true }) end, 'unknown option "strictly"; known: cache_dir, pool_idle_ms, record_keys, spin_us, strict, workers', 1, true)
    -- Back to the default directory for the specs that follow.
    local base = os.getenv("XDG_CACHE_HOME") or (os.getenv("HOME") .. "/.cache")
    wippy.configure({ cache_dir = base .. "/wippy" })
  end)

  it("shares a component between its entries, and frees it with the last one", function()
    local guest = "build/guests/types_guest.wasm"
    local function add(id)
      assert(wippy.registry:add({ id = id, kind = "function.wasm", path = guest, method = "add" }))
    end
    add("shared:one")
    local c0, h0 = engine_stats()
    add("shared:two")
    local c1, h1 = engine_stats()
    assert.equals(c0 + h0, c1 + h1, "a second entry of a loaded binary neither compiles nor reads the cache")
    assert.equals(5, funcs.call("shared:two", 2, 3))
    assert.is_true(wippy.registry:remove("shared:one"))
    assert.is_true(wippy.registry:remove("shared:two"))
    funcs.call("nowhere:else") -- the lookup cache lets go of the removed entries
    collectgarbage()
    add("shared:three")
    local c2, h2 = engine_stats()
    assert.equals(c1 + h1 + 1, c2 + h2, "the freed binary is compiled or read from the cache again")
    assert.equals(7, funcs.call("shared:three", 3, 4))
    assert.is_true(wippy.registry:remove("shared:three"))
  end)
end)
