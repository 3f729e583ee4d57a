-- Faults (issue 12, docs/reliability.md "Faults"): each one fails only its own call, with an
-- error that names the entry and what happened, while other calls are in flight in other tasks
-- and all return their right values; afterwards the same entry, other entries and the Lua state
-- work. Guests: inline WAT, build/guests/async_guest.wasm and types_guest.wasm.
local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs
local system = require("system") -- luasystem: a dependency of busted itself

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

local ASYNC = H.CWD .. "/build/guests/async_guest.wasm"
local TYPES = H.CWD .. "/build/guests/types_guest.wasm"

local function add_async(id, method, fields)
  local entry = { id = id, kind = "function.wasm", path = ASYNC, method = method, imports = { "wasi:clocks", "wasi:cli" } }
  for k, v in pairs(fields or {}) do entry[k] = v end
  H.add(entry)
end

-- Runs `fault()` in a task while 40 other calls run in other tasks (20 guests sleeping 30 ms,
-- 20 additions, started before and after it), asserts that every one of them returned its own
-- right value, and returns what `fault` returned, packed.
local function amid_traffic(fault)
  return wippy.run(function()
    local others = {}
    local function start(i)
      others[#others + 1] = { wippy.spawn(function() return funcs.call("faults:sleep", 30) end), "sleep" }
      others[#others + 1] = { wippy.spawn(function() return funcs.call("faults:add", i, 1000) end), i + 1000 }
    end
    for i = 1, 10 do start(i) end
    local f = wippy.spawn(function() return pack(fault()) end)
    for i = 11, 20 do start(i) end
    local out, raised = f:result()
    assert(out, "the fault's task raised: " .. tostring(raised))
    for k, o in ipairs(others) do
      local v, err = o[1]:result()
      assert(err == nil, ("call %d in flight failed: %s"):format(k, tostring(err)))
      if o[2] == "sleep" then
        assert(type(v) == "number" and v >= 30, ("call %d in flight: slept %s ms"):format(k, tostring(v)))
      else
        assert.equals(o[2], v)
      end
    end
    return out
  end)
end

-- The entry and other entries work after a fault, inside and outside tasks.
local function still_works(id, ...)
  assert.equals(42, funcs.call(id, 0))
  assert.equals(42, wippy.run(function() return funcs.call(id, 0) end))
  assert.equals(3, funcs.call("faults:add", 1, 2))
  assert.is_true(funcs.call("faults:sleep", 1) >= 1)
end

-- A core module whose f(go) returns 42 when go = 0, else runs BODY (which traps).
local function trapper(body)
  return ([[
(module
  (memory 1)
  (type $t (func (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $wrong)
  (func $wrong (param i32) (result i32) (local.get 0))
  (func $deep (param i32) (result i32) (i32.add (call $deep (local.get 0)) (i32.const 1)))
  (func (export "f") (param $go i32) (result i32)
    (if (local.get $go) (then %s))
    (i32.const 42)))]]):format(body)
end

-- Every trap kind: name, body (with $go = 1), wasmtime's trap text, details().reason, fields.
local TRAPS = {
  { "unreachable", "unreachable", "wasm `unreachable` instruction executed", "trap" },
  { "divide_by_zero", "(drop (i32.div_s (i32.const 1) (i32.sub (local.get $go) (i32.const 1))))",
    "integer divide by zero", "trap" },
  { "integer_overflow", "(drop (i32.div_s (i32.const 0x80000000) (i32.sub (i32.const 0) (local.get $go))))",
    "integer overflow", "trap" },
  { "bad_conversion",
    "(drop (i32.trunc_f32_s (f32.div (f32.const 0) (f32.convert_i32_s (i32.sub (local.get $go) (i32.const 1))))))",
    "invalid conversion to integer", "trap" },
  { "memory_out_of_bounds", "(drop (i32.load (i32.mul (local.get $go) (i32.const 70000))))",
    "out of bounds memory access", "trap" },
  { "table_out_of_bounds", "(drop (call_indirect (type $t) (i32.add (local.get $go) (i32.const 4))))",
    "undefined element: out of bounds table access", "trap" },
  { "signature_mismatch", "(drop (call_indirect (type $t) (i32.sub (local.get $go) (i32.const 1))))",
    "indirect call type mismatch", "trap" },
  { "null_reference", "(drop (call_indirect (type $t) (local.get $go)))", "uninitialized element", "trap" },
  { "stack_overflow", "(drop (call $deep (local.get $go)))", "call stack exhausted", "stack_overflow" },
  { "out_of_memory", "(drop (memory.grow (i32.const 100))) (i32.store (i32.const 3000000) (local.get $go))",
    "out of bounds memory access", "memory_limit", { limits = { memory_bytes = 1024 * 1024 } } },
  { "out_of_fuel", "(loop $l (br $l))", "all fuel consumed by WebAssembly", "out_of_fuel", { limits = { fuel = 100000 } } },
}

describe("faults", function()
  setup(function()
    H.add_wat("faults:add", [[(module (func (export "add") (param i32 i32) (result i32)
      (i32.add (local.get 0) (local.get 1))))]])
    add_async("faults:sleep", "sleep-ms", { pool = { type = "lazy", max_size = 64 } })
    add_async("faults:sleep_inline", "sleep-ms", { pool = { type = "inline" } })
    add_async("faults:boom", "boom")
    add_async("faults:grow", "grow", { limits = { memory_bytes = 32 * 1024 * 1024 } })
    add_async("faults:spin", "spin-forever", { limits = { max_execution_ms = 100 } })
    for _, t in ipairs(TRAPS) do
      H.add_wat("faults:" .. t[1], trapper(t[2]), t[5])
      H.add_wat("faults:" .. t[1] .. "_isolated", trapper(t[2]),
        { limits = (t[5] or {}).limits, pool = { type = "lazy", isolate = true } })
    end
  end)

  describe("every trap kind", function()
    for _, t in ipairs(TRAPS) do
      for _, suffix in ipairs({ "", "_isolated" }) do
        local id = "faults:" .. t[1] .. suffix
        it(t[1] .. suffix .. ": fails its call alone, named, amid 40 calls in flight; all else works", function()
          local before = wippy.stats(id)
          local out = amid_traffic(function() return funcs.call(id, 1) end)
          assert.is_nil(out[1])
          local err = out[2]
          assert.equals("INTERNAL", err:kind())
          assert.equals(id .. ": wasm trap: " .. t[3], err:message())
          assert.equals(t[4], err:details().reason)
          assert.equals(t[3]:gsub("^undefined element: ", ""), (err:details().trap:gsub("^undefined element: ", "")))
          assert.is_false(err:retryable())
          -- Outside a task (on the Lua thread) too.
          local err2 = H.call_err(id, 1)
          assert.equals(err:message(), err2:message())
          still_works(id)
          local after = wippy.stats(id)
          assert.equals(before.traps + 2, after.traps)
          assert.equals(0, after.busy)
        end)
      end
    end

    it("timeout: a guest in an endless loop stops with TIMEOUT amid calls in flight", function()
      local out = amid_traffic(function() return funcs.call("faults:spin") end)
      assert.equals("TIMEOUT", out[2]:kind())
      assert.equals("faults:spin: the call ran out of time (limits.max_execution_ms)", out[2]:message())
      assert.equals(3, funcs.call("faults:add", 1, 2))
    end)

    it("a Rust guest that panics (unreachable) and one that allocates past limits.memory_bytes", function()
      local out = amid_traffic(function()
        local _, e1 = funcs.call("faults:boom")
        local _, e2 = funcs.call("faults:grow", 64)
        return e1, e2
      end)
      assert.equals("trap", out[1]:details().reason)
      assert.matches("^faults:boom: wasm trap: wasm `unreachable` instruction executed", out[1]:message())
      assert.equals("memory_limit", out[2]:details().reason)
      assert.matches("^faults:grow: ", out[2]:message())
      assert.equals(8, funcs.call("faults:grow", 8))
      assert.equals(8, wippy.run(function() return funcs.call("faults:grow", 8) end))
    end)
  end)

  describe("a guest trapping while it holds resources", function()
    setup(function()
      -- make-counter allocates each counter in the guest; with 2 MiB of memory the instance
      -- holding the counters runs out after some thousands and traps.
      H.add({ id = "faults:make_counter", kind = "function.wasm", path = TYPES, method = "counters#make-counter",
              limits = { memory_bytes = 2 * 1024 * 1024 } })
      H.add({ id = "faults:total", kind = "function.wasm", path = TYPES, method = "counters#total" })
      H.add({ id = "faults:other_component", kind = "function.wasm", path = TYPES, method = "echo-s32" })
    end)

    -- Let go of the types guest (a later spec may count its compiles).
    teardown(function()
      for _, id in ipairs({ "faults:make_counter", "faults:total", "faults:other_component" }) do wippy.registry:remove(id) end
    end)

    it("loses the instance and its handles, cleanly; calls in flight and fresh instances work", function()
      local keep = {}
      local out = amid_traffic(function()
        for i = 1, 200000 do
          local c, err = funcs.call("faults:make_counter", i)
          if not c then return i, err end
          keep[i] = c
        end
      end)
      local n, err = out[1], out[2]
      assert.is_true(n > 1000, "made " .. tostring(n) .. " counters before the trap")
      assert.equals(n - 1, #keep)
      assert.equals("INTERNAL", err:kind())
      assert.equals("memory_limit", err:details().reason)
      -- Rust's allocation-error handler reads the environment (not granted) after the failed
      -- grow: the message names the memory limit as the cause.
      assert.equals("faults:make_counter: the guest ran out of memory (limits.memory_bytes), then: "
        .. "wasi:cli/environment is not granted: add \"wasi:cli\" to imports", err:message())
      -- The handles' instance is gone: methods fail with a clear message; drop does nothing.
      for _, i in ipairs({ 1, math.floor(n / 2), n - 1 }) do
        local ok, r, e = pcall(function() return keep[i]:value() end)
        local msg = ok and tostring(e) or tostring(r)
        assert.is_true(not ok or r == nil)
        assert.matches("the instance holding this resource trapped earlier; the resource is gone", msg, 1, true)
        wippy.drop(keep[i])
      end
      keep = nil
      collectgarbage()
      -- Fresh instances: new counters, a function taking two of them, another export.
      local a = assert(funcs.call("faults:make_counter", 1))
      local b = assert(funcs.call("faults:make_counter", 100))
      assert.equals(2, a:increment(1))
      assert.equals(102, funcs.call("faults:total", a, b))
      assert.equals(-3, funcs.call("faults:other_component", -3))
      wippy.drop(a)
      wippy.drop(b)
    end)
  end)

  describe("cancel in the middle of a host call", function()
    for _, id in ipairs({ "faults:sleep", "faults:sleep_inline" }) do
      it(id .. ": a guest waiting in wasi:clocks is canceled; the instance is discarded; others go on", function()
        local before = wippy.stats(id)
        local out = amid_traffic(function()
          local f = assert(funcs.async(id, 10000))
          wippy.sleep(50)
          assert.is_false(f:is_complete())
          f:cancel()
          return f:result()
        end)
        assert.is_nil(out[1])
        assert.equals("CANCELED", out[2]:kind())
        assert.equals(id .. ": the call was canceled", out[2]:message())
        -- Not one instance left busy with the canceled call, and the entry works.
        local s
        for _ = 1, 100 do
          s = wippy.stats(id)
          if s.busy == 0 then break end
          wippy.sleep(10)
        end
        assert.equals(0, s.busy)
        assert.is_true(s.errors >= before.errors + 1)
        assert.is_true(funcs.call(id, 5) >= 5)
        assert.is_true(wippy.run(function() return funcs.call(id, 5) end) >= 5)
      end)
    end

    it("a Lua function that the canceled call waits in is finished, and the state works", function()
      H.add({ id = "faults:lua_waits", kind = "function.lua", handler = function(ms)
        local r, err = funcs.call("faults:sleep", ms)
        assert(err == nil, tostring(err))
        return r
      end })
      local out = amid_traffic(function()
        local f = assert(funcs.async("faults:sleep", 10000))
        local g = wippy.spawn(function() return funcs.call("faults:lua_waits", 40) end)
        wippy.sleep(20)
        f:cancel()
        local _, err = f:result()
        return err, g:result()
      end)
      assert.equals("CANCELED", out[1]:kind())
      assert.is_true(out[2] >= 40)
      assert.is_true(funcs.call("faults:lua_waits", 1) >= 1)
    end)
  end)

  describe("cancel while a guest waits in a registry call", function()
    setup(function()
      H.add({ id = "faults:relay", kind = "function.wasm", path = H.CWD .. "/build/guests/relay_guest.wasm",
              method = "relay", imports = { "funcs" } })
      -- Called by the guest through wippy:runtime/funcs; waits in another guest.
      H.add({ id = "faults:nap", kind = "function.lua", handler = function(input)
        local r, err = funcs.call("faults:sleep", tonumber(input))
        return "slept " .. tostring(r and r >= tonumber(input) or err)
      end })
    end)

    it("the guest -> Lua -> guest chain is canceled from outside; all else works", function()
      assert.equals("slept true", funcs.call("faults:relay", "faults:nap", "10"))
      local out = amid_traffic(function()
        local f = assert(funcs.async("faults:relay", "faults:nap", "3000"))
        wippy.sleep(50)
        local t0 = system.monotime()
        f:cancel()
        local r, err = f:result()
        return r, err, (system.monotime() - t0) * 1000
      end)
      -- The canceled call ends at once; the Lua function it called runs to its end (Lua code is
      -- not interrupted) and its result is dropped.
      assert.is_true(out[3] < 1500, ("the canceled call took %.0f ms"):format(out[3]))
      assert.is_nil(out[1])
      assert.equals("CANCELED", out[2]:kind())
      assert.equals("faults:relay: the call was canceled", out[2]:message())
      assert.equals("slept true", funcs.call("faults:relay", "faults:nap", "10"))
      assert.equals("slept true", wippy.run(function() return funcs.call("faults:relay", "faults:nap", "10") end))
    end)
  end)

  describe("a Lua error inside a function.lua called from a task", function()
    setup(function()
      H.add({ id = "faults:lua_raises", kind = "function.lua", handler = function(x)
        if x == "string" then error("bad input: " .. x, 0) end
        if x == "table" then error({ code = 7 }) end
        local t = nil
        return t.field -- a runtime error with the file and line
      end })
      H.add({ id = "faults:lua_ok", kind = "function.lua", handler = function(a, b) return a * b end })
    end)

    it("reaches the caller with its message; the scheduler and other tasks go on", function()
      local out = amid_traffic(function()
        local r = {}
        for _, x in ipairs({ "string", "table", "runtime" }) do
          local v, err = funcs.call("faults:lua_raises", x)
          assert.is_nil(v)
          r[#r + 1] = err
        end
        r[#r + 1] = funcs.call("faults:lua_ok", 6, 7)
        return unpack(r)
      end)
      assert.equals("INTERNAL", out[1]:kind())
      assert.equals("faults:lua_raises: bad input: string", out[1]:message())
      assert.matches("^faults:lua_raises: ", out[2]:message())
      assert.matches("^faults:lua_raises: .*faults_spec%.lua:%d+: attempt to index .*nil value", out[3]:message())
      assert.equals(42, out[4])
      -- The scheduler still runs tasks, and the same entries work.
      assert.equals(12, wippy.run(function()
        local t = wippy.spawn(function() return funcs.call("faults:lua_ok", 3, 4) end)
        return t:result()
      end))
      assert.equals("faults:lua_raises: bad input: string", select(2, funcs.call("faults:lua_raises", "string")):message())
    end)
  end)
end)

describe("faults of the artifact cache", function()
  local root = H.tmpdir()
  local run_id = tostring(os.time()) .. tostring(math.random(1, 1e9))
  local seq = 0

  -- A number for a string (stamps become a global's value: a comment would not change the
  -- binary, and a data segment would need a memory image).
  local function hash(text)
    local h = 0
    for i = 1, #text do h = (h * 31 + text:byte(i)) % 2147483647 end
    return h
  end

  -- A fresh app of one function.wat entry returning `value`, whose source (so artifact) is new
  -- to every cache unless `stamp` repeats one.
  local function app(stamp, value)
    seq = seq + 1
    local ns = "cachefault" .. seq
    local dir = root .. "/" .. ns
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    H.write(dir .. "/_index.yaml", ([[
namespace: %s
entries:
  - name: f
    kind: function.wat
    source: '(module (global i32 (i32.const %d)) (func (export "f") (result i32) i32.const %d))'
]]):format(ns, hash(run_id .. stamp), value or 7))
    return dir, ns .. ":f"
  end

  local function engine_stats()
    local s = wippy.stats().engine
    return s.compiled, s.cache_hits
  end

  -- Files in `dir`: artifacts and (separately) temporary files left behind.
  local function files(dir)
    local arts, tmps = {}, {}
    for name in H.shell("ls -A '" .. dir .. "' 2>/dev/null"):gmatch("[^\n]+") do
      -- Lock files (`.load.lock`, `.NAME.lock`) stay by design (docs/lua-api.md, cache_dir).
      if name:match("%.lock$") then -- luacheck: ignore 542
      elseif name:sub(1, 1) == "." then tmps[#tmps + 1] = name else arts[#arts + 1] = dir .. "/" .. name end
    end
    return arts, tmps
  end

  local function size(path) return tonumber(H.shell("stat -c %s '" .. path .. "'"):match("%d+")) end

  -- Loads a fresh app with `stamp` and asserts whether it compiled or hit the cache.
  local function load_expect(cache, stamp, expect)
    local dir, id = app(stamp)
    local c0, h0 = engine_stats()
    assert.is_true(wippy.load(dir, { cache_dir = cache }))
    local c1, h1 = engine_stats()
    if expect == "compiled" then
      assert.same({ c0 + 1, h0 }, { c1, h1 }, "compiled, not read from the cache")
    else
      assert.same({ c0, h0 + 1 }, { c1, h1 }, "read from the cache")
    end
    assert.equals(7, funcs.call(id))
  end

  -- Damages the one artifact in `cache` with `damage(path, size)`, then: a load detects it and
  -- compiles, rewrites a whole artifact, and the load after reads it.
  local function damaged(name, damage)
    local cache = root .. "/" .. name
    load_expect(cache, name, "compiled")
    local arts = files(cache)
    assert.equals(1, #arts)
    local good_size = size(arts[1])
    damage(arts[1], good_size)
    load_expect(cache, name, "compiled")
    assert.equals(good_size, size(arts[1]), "the damaged artifact was rewritten")
    load_expect(cache, name, "hit")
    local _, tmps = files(cache)
    assert.same({}, tmps)
  end

  it("a truncated artifact is detected and compiled again", function()
    damaged("truncated", function(path, n)
      assert(os.execute(("truncate -s %d '%s'"):format(math.floor(n / 2), path)))
    end)
  end)

  it("an artifact with a byte changed in the middle is detected and compiled again", function()
    damaged("corrupted", function(path, n)
      local f = assert(io.open(path, "r+b"))
      f:seek("set", math.floor(n / 2))
      local b = f:read(1):byte()
      f:seek("set", math.floor(n / 2))
      f:write(string.char((b + 1) % 256))
      f:close()
    end)
  end)

  it("an empty artifact, and one that is a directory, are compiled past", function()
    damaged("emptied", function(path) H.write(path, "") end)
    local cache = root .. "/dir_artifact"
    load_expect(cache, "dir_artifact", "compiled")
    local art = files(cache)[1]
    assert(os.execute("rm '" .. art .. "' && mkdir '" .. art .. "'"))
    load_expect(cache, "dir_artifact", "compiled")
  end)

  -- Runs a child `H.VM` on `body` (after loading wippy), through `wrap` (a shell command with
  -- %s for the Lua command); returns its output.
  local function child(name, body, wrap)
    local script = root .. "/" .. name .. ".lua"
    H.write(script, ("package.cpath = %q\nlocal wippy = require('wippy')\n"):format(package.cpath) .. body)
    local cmd = H.VM .. " '" .. script .. "'"
    return H.shell((wrap or "%s"):format(cmd) .. " 2>&1")
  end

  -- The body of a child that loads app `dir` and prints compiled, cache hits and the result.
  local function loader(dir, cache, id)
    return ([[
assert(wippy.load(%q, { cache_dir = %q }))
local s = wippy.stats().engine
local r, err = wippy.funcs.call(%q)
io.write(s.compiled, " ", s.cache_hits, " ", tostring(r or err))
]]):format(dir, cache, id)
  end

  local is_root = H.shell("id -u"):match("^%s*0%s*$") ~= nil

  it("a read-only cache directory: artifacts there are read, new code compiles, nothing is written", function()
    local cache = root .. "/readonly"
    load_expect(cache, "readonly_old", "compiled")
    local old_dir, old_id = app("readonly_old")
    local new_dir, new_id = app("readonly_new")
    local body = loader(old_dir, cache, old_id) .. "\nio.write(' ')\n" .. loader(new_dir, cache, new_id)
    local out
    if not is_root then
      assert(os.execute("chmod 555 '" .. cache .. "'"))
      out = child("readonly", body)
      os.execute("chmod 755 '" .. cache .. "'")
    else
      -- chmod does not stop root: a read-only bind mount of the directory, in a mount
      -- namespace of the child's own.
      local probe = H.shell("unshare -m true 2>&1 && echo ok")
      if not probe:match("ok") then
        pending("running as root without mount namespaces: no way to make the directory read-only")
        return
      end
      out = child("readonly", body, ("unshare -m --propagation private sh -c \"mount --bind '%s' '%s' && "
        .. "mount -o remount,ro,bind '%s' && touch '%s/probe' 2>/dev/null; exec %%s\""):format(cache, cache, cache, cache))
    end
    -- The old artifact was a hit, the new code compiled, and both calls returned 7.
    assert.equals("0 1 7 1 1 7", out)
    local arts, tmps = files(cache)
    assert.equals(1, #arts, "nothing written into the read-only directory")
    assert.same({}, tmps)
  end)

  it("a full cache directory (file size limit): compiles, calls work, no file left behind", function()
    local cache = root .. "/full_fsize"
    assert(os.execute("mkdir -p '" .. cache .. "'"))
    local dir, id = app("full_fsize")
    -- RLIMIT_FSIZE of 1 KiB: writing the artifact fails with EFBIG (SIGXFSZ ignored).
    local out = child("full_fsize", loader(dir, cache, id), "sh -c \"trap '' XFSZ; ulimit -f 2; exec %s\"")
    assert.equals("1 0 7", out)
    local arts, tmps = files(cache)
    assert.same({}, arts)
    assert.same({}, tmps, "the partial temporary file is removed")
  end)

  it("a full cache directory (a 4 KiB tmpfs): compiles, calls work, no file left behind", function()
    if not is_root or not H.shell("unshare -m true 2>&1 && echo ok"):match("ok") then
      pending("needs root and mount namespaces for a tmpfs; the file-size-limit case covers a failing write")
      return
    end
    local cache = root .. "/full_tmpfs"
    assert(os.execute("mkdir -p '" .. cache .. "'"))
    local dir, id = app("full_tmpfs")
    local body = loader(dir, cache, id) .. ([[

local p = io.popen("ls -A '%s' | grep -v '[.]lock$'")
io.write(" [", (p:read("*a"):gsub("\n", ",")), "]")
p:close()
]]):format(cache)
    local out = child("full_tmpfs", body, ("unshare -m --propagation private sh -c \"mount -t tmpfs -o size=4k tmpfs '%s' && exec %%s\""):format(cache))
    assert.equals("1 0 7 []", out)
  end)

  it("a cache path that is a file: compiles, calls work", function()
    local cache = root .. "/a_file"
    H.write(cache, "not a directory")
    load_expect(cache, "a_file", "compiled")
    load_expect(cache, "a_file", "compiled")
    assert.equals("not a directory", H.shell("cat '" .. cache .. "'"))
  end)

  it("two processes compiling into one cache at once: both work, one whole artifact", function()
    local cache = root .. "/shared"
    local dir, id = app("shared")
    local go = root .. "/shared.go"
    -- Both children start, wait for `go`, then load at the same moment.
    local body = ([[
local t0 = os.time()
while not io.open(%q) do
  assert(os.time() - t0 < 20, "no go")
  wippy.sleep(2)
end
]]):format(go) .. loader(dir, cache, id)
    local scripts = {}
    for i = 1, 2 do
      scripts[i] = root .. "/shared" .. i .. ".lua"
      H.write(scripts[i], ("package.cpath = %q\nlocal wippy = require('wippy')\n"):format(package.cpath) .. body)
    end
    local p1 = assert(io.popen(H.VM .. " '" .. scripts[1] .. "' 2>&1"))
    local p2 = assert(io.popen(H.VM .. " '" .. scripts[2] .. "' 2>&1"))
    H.shell("sleep 0.3; touch '" .. go .. "'")
    local outs = { p1:read("*a"), p2:read("*a") }
    p1:close()
    p2:close()
    for i, out in ipairs(outs) do
      local c, h, v = out:match("^(%d+) (%d+) (%d+)$")
      assert(c, "child " .. i .. ": " .. out)
      assert.equals(1, tonumber(c) + tonumber(h))
      assert.equals("7", v)
    end
    local arts, tmps = files(cache)
    assert.equals(1, #arts)
    assert.same({}, tmps)
    -- The artifact is whole: a third process reads it.
    assert.equals("0 1 7", child("shared3", loader(dir, cache, id)))
  end)
end)

describe("a reload while calls are in flight", function()
  local root = H.tmpdir()

  local function write_app(limit, value)
    H.write(root .. "/_index.yaml", ([[
namespace: reload
entries:
  - name: slow
    kind: function.wasm
    path: %s
    method: sleep-ms
    imports: [wasi:clocks, wasi:cli]
    pool: { type: lazy, max_size: 256 }
    limits: { max_execution_ms: %d }
  - name: value
    kind: function.wat
    source: '(module (func (export "f") (result i32) i32.const %d))'
]]):format(ASYNC, limit, value))
  end

  local function settle(id)
    local s
    for _ = 1, 200 do
      s = wippy.stats(id)
      if s.busy == 0 then return s end
      wippy.sleep(10)
    end
    return s
  end

  it("100 calls started before a reload all finish on the old entry; new calls take the new one", function()
    write_app(10000, 1)
    assert.is_true(wippy.load(root, { cache_dir = false }))
    assert.equals(1, funcs.call("reload:value"))
    local before = wippy.stats("reload:slow")
    local results = wippy.run(function()
      local old, new = {}, {}
      for i = 1, 100 do old[i] = wippy.spawn(function() return funcs.call("reload:slow", 150) end) end
      wippy.sleep(30)
      write_app(20000, 2)
      local ok, err = wippy.load(root, { cache_dir = false })
      assert(ok, tostring(err))
      local value = funcs.call("reload:value")
      for i = 1, 100 do new[i] = wippy.spawn(function() return funcs.call("reload:slow", 10) end) end
      local out = { value = value, old = {}, new = {} }
      for i = 1, 100 do out.old[i] = pack(old[i]:result()) end
      for i = 1, 100 do out.new[i] = pack(new[i]:result()) end
      return out
    end)
    assert.equals(2, results.value)
    for i = 1, 100 do
      assert(results.old[i][2] == nil, "old call " .. i .. ": " .. tostring(results.old[i][2]))
      assert.is_true(results.old[i][1] >= 150, "old call " .. i .. " slept its 150 ms")
      assert(results.new[i][2] == nil, "new call " .. i .. ": " .. tostring(results.new[i][2]))
      assert.is_true(results.new[i][1] >= 10)
    end
    assert.equals(0, settle("reload:slow").busy)
    assert.equals(2, funcs.call("reload:value"))
    assert.is_true(funcs.call("reload:slow", 1) >= 1)
    assert.is_not_nil(before)
  end)

  it("100 calls in flight when their entry is removed all finish; then it is not found", function()
    write_app(30000, 3)
    assert.is_true(wippy.load(root, { cache_dir = false }))
    local results = wippy.run(function()
      local tasks = {}
      for i = 1, 100 do tasks[i] = wippy.spawn(function() return funcs.call("reload:slow", 100) end) end
      wippy.sleep(30)
      assert.is_true(wippy.registry:remove("reload:slow"))
      local out = {}
      for i = 1, 100 do out[i] = pack(tasks[i]:result()) end
      return out
    end)
    for i = 1, 100 do
      assert(results[i][2] == nil, "call " .. i .. ": " .. tostring(results[i][2]))
      assert.is_true(results[i][1] >= 100)
    end
    assert.equals("NOT_FOUND", H.call_err("reload:slow", 1):kind())
    assert.equals(3, funcs.call("reload:value"))
  end)
end)
