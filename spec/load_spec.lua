local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs

describe("wippy.load", function()
  it("loads a directory of _index.yaml files and returns true", function()
    local ok, err = wippy.load("spec/fixtures/app")
    assert.is_nil(err)
    assert.is_true(ok)
    assert.equals(42, funcs.call("app:answer_wat"))
  end)

  it("loads a single YAML file", function()
    local dir = H.tmpdir()
    H.write(dir .. "/one.yaml", [[
namespace: single
entries:
  - name: seven
    kind: function.wat
    source: '(module (func (export "f") (result i32) i32.const 7))'
]])
    assert.is_true(wippy.load(dir .. "/one.yaml"))
    assert.equals(7, funcs.call("single:seven"))
  end)

  it("reports every problem, registry and engine alike, as FILE:LINE: ENTRY: message", function()
    local ok, err = wippy.load("spec/fixtures/bad")
    assert.is_nil(ok)
    assert.is_true(wippy.errors.is(err))
    assert.equals("INVALID", err:kind())
    local lines = {}
    for line in tostring(err):gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.same({
      "spec/fixtures/bad/_index.yaml:6: bad:broken: invalid WAT at line 1, column 50: expected a i32",
      "spec/fixtures/bad/_index.yaml:9: bad:typo: missing required field \"source\" for kind function.wat",
      "spec/fixtures/bad/_index.yaml:11: bad:typo: unknown field \"sorce\" in entry bad:typo; did you mean \"source\"?",
      "spec/fixtures/bad/_index.yaml:14: bad:dangling: fs reference \"nowhere\" not found (no fs.directory entry bad:nowhere)",
    }, lines)
  end)

  it("applies nothing when anything is wrong", function()
    wippy.load("spec/fixtures/bad")
    assert.is_nil(wippy.registry:get("bad:fine"))
    local err = H.call_err("bad:fine")
    assert.equals("NOT_FOUND", err:kind())
  end)

  it("survives malformed YAML and keeps the interpreter usable", function()
    local dir = H.tmpdir()
    H.write(dir .. "/_index.yaml", "namespace: [unclosed\nentries:\n  - {name: x\n")
    local ok, err = wippy.load(dir)
    assert.is_nil(ok)
    assert.matches("_index.yaml:%d+: %-: ", tostring(err))
    assert.equals(42, funcs.call("app:answer_wat"))
  end)

  it("reports a path that does not exist", function()
    local ok, err = wippy.load("spec/fixtures/does-not-exist")
    assert.is_nil(ok)
    assert.matches("spec/fixtures/does%-not%-exist: .*no such file or directory", tostring(err))
  end)

  it("updates changed entries when loading again", function()
    local dir = H.tmpdir()
    local function version(n)
      H.write(dir .. "/_index.yaml", ([[
namespace: reload
entries:
  - name: v
    kind: function.wat
    source: '(module (func (export "f") (result i32) i32.const %d))'
]]):format(n))
    end
    version(1)
    assert.is_true(wippy.load(dir))
    assert.equals(1, funcs.call("reload:v"))
    version(2)
    assert.is_true(wippy.load(dir))
    assert.equals(2, funcs.call("reload:v"))
  end)

  it("keeps unchanged entries warm when loading again", function()
    local dir = H.tmpdir()
    assert(os.execute("cp build/guests/core_math.wasm '" .. dir .. "/m.wasm'"))
    H.write(dir .. "/_index.yaml", [[
namespace: warm
entries:
  - name: counter
    kind: function.wasm
    path: m.wasm
    method: counter
]])
    assert.is_true(wippy.load(dir))
    local first = funcs.call("warm:counter")
    assert.is_true(wippy.load(dir))
    assert.equals(first + 1, funcs.call("warm:counter"))
    -- A changed entry starts over with a new instance.
    H.write(dir .. "/_index.yaml", [[
namespace: warm
entries:
  - name: counter
    kind: function.wasm
    path: m.wasm
    method: counter
    meta: { changed: true }
]])
    assert.is_true(wippy.load(dir))
    assert.equals(1, funcs.call("warm:counter"))
  end)

  it("creates fs.directory directories with auto_init", function()
    local dir = H.tmpdir()
    H.write(dir .. "/_index.yaml", [[
namespace: dirs
entries:
  - name: data
    kind: fs.directory
    directory: made/here
    auto_init: true
    mode: "0750"
]])
    assert.is_true(wippy.load(dir))
    local p = io.popen("stat -c %a '" .. dir .. "/made/here'")
    local mode = p:read("*l")
    p:close()
    assert.equals("750", mode)
  end)

  it("verifies sha256 hashes of wasm files", function()
    local dir = H.tmpdir()
    assert(os.execute("cp build/guests/core_math.wasm '" .. dir .. "/m.wasm'"))
    local hash = H.sha256(dir .. "/m.wasm")
    H.write(dir .. "/_index.yaml", ([[
namespace: hashed
entries:
  - name: add
    kind: function.wasm
    path: m.wasm
    hash: sha256:%s
    method: add_i64
]]):format(hash))
    assert.is_true(wippy.load(dir))
    assert.equals(5, funcs.call("hashed:add", 2, 3))

    H.write(dir .. "/_index.yaml", ([[
namespace: hashed
entries:
  - name: add
    kind: function.wasm
    path: m.wasm
    hash: sha256:%s
    method: add_i64
]]):format(("0"):rep(64)))
    local ok, err = wippy.load(dir)
    assert.is_nil(ok)
    assert.matches("hashed:add: field \"hash\": sha256 of .*m%.wasm does not match: expected sha256:0+, actual sha256:" .. hash, tostring(err))
  end)

  it("keeps entries of unknown kinds, visible but not callable", function()
    local e = wippy.registry:get("app:settings")
    assert.equals("my.custom.kind", e.kind)
    assert.equals("blue", e.colour)
    assert.equals("team-a", e.meta.owner)
    local err = H.call_err("app:settings")
    assert.equals("UNAVAILABLE", err:kind())
    assert.matches("app:settings: entries of kind `my.custom.kind` cannot be called", err:message(), 1, true)
  end)

  it("rejects unknown options", function()
    assert.has_error(function() wippy.load("spec/fixtures/app", { cache = true }) end)
    assert.is_true(wippy.load("spec/fixtures/app", { cache_dir = false }))
  end)
end)
