-- Isolation (issue 12, docs/reliability.md "Isolation"): with `pool.isolate` every call gets a
-- fresh instance from the pooling allocator, whose memory, table and global slots are reused
-- after a reset. A guest that leaves a secret in linear memory (also in pages it grew), in a
-- global and in a table must find none of it in any later call, across 10,000 calls
-- interleaved between entries that share the allocator, from blocking callers and from tasks.
local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs

-- probe(secret) returns a bit set of what it found left over, then leaves `secret` behind:
--   1 the global is not 0          2 a word of memory other than the data segment is not 0
--   4 the data segment changed     8 memory is not its initial 1 page
--  16 table slot 0 is not null    32 a grown page is not zero
-- It scans every word of its memory after growing it to 3 pages, then writes the secret into
-- the global, the data segment, words on each of the 3 pages (the grown ones too), and a
-- function into the table.
local function probe_wat(data)
  return ([[
(module
  (memory 1)
  (data (i32.const 200) "\%02x\00\00\00")
  (global $g (mut i32) (i32.const 0))
  (table $tab 2 funcref)
  (func $mark (result i32) (i32.const 1))
  (elem declare func $mark)
  (func (export "probe") (param $secret i32) (result i32)
    (local $leaks i32) (local $a i32)
    (if (i32.ne (global.get $g) (i32.const 0)) (then (local.set $leaks (i32.or (local.get $leaks) (i32.const 1)))))
    (if (i32.ne (i32.load (i32.const 200)) (i32.const %d)) (then (local.set $leaks (i32.or (local.get $leaks) (i32.const 4)))))
    (if (i32.ne (memory.size) (i32.const 1)) (then (local.set $leaks (i32.or (local.get $leaks) (i32.const 8)))))
    (if (i32.eqz (ref.is_null (table.get $tab (i32.const 0)))) (then (local.set $leaks (i32.or (local.get $leaks) (i32.const 16)))))
    (if (i32.eq (memory.grow (i32.const 2)) (i32.const -1)) (then unreachable))
    (block $done
      (loop $scan
        (br_if $done (i32.ge_u (local.get $a) (i32.const 196608)))
        (if (i32.and (i32.ne (local.get $a) (i32.const 200)) (i32.ne (i32.load (local.get $a)) (i32.const 0)))
          (then (local.set $leaks (i32.or (local.get $leaks)
                  (select (i32.const 32) (i32.const 2) (i32.ge_u (local.get $a) (i32.const 65536)))))))
        (local.set $a (i32.add (local.get $a) (i32.const 4)))
        (br $scan)))
    (global.set $g (local.get $secret))
    (i32.store (i32.const 200) (local.get $secret))
    (i32.store (i32.const 100) (local.get $secret))
    (i32.store (i32.add (i32.const 1024) (i32.and (local.get $secret) (i32.const 0x3ffc))) (local.get $secret))
    (i32.store (i32.const 65636) (local.get $secret))
    (i32.store (i32.add (i32.const 70000) (i32.and (local.get $secret) (i32.const 0xfffc))) (local.get $secret))
    (i32.store (i32.const 196604) (local.get $secret))
    (table.set $tab (i32.const 0) (ref.func $mark))
    (local.get $leaks)))]]):format(data, data)
end

local ASYNC = H.CWD .. "/build/guests/async_guest.wasm"
local PROBE_WIT = "probe: func(secret: u32) -> u32;"

describe("pool.isolate", function()
  local ISOLATE = { type = "lazy", isolate = true }
  local entries = { "iso:core_a", "iso:core_b", "iso:wit_a", "iso:wit_b" }

  setup(function()
    H.add_wat("iso:core_a", probe_wat(42), { pool = ISOLATE })
    H.add_wat("iso:core_b", probe_wat(43), { pool = ISOLATE })
    H.add_wat("iso:wit_a", probe_wat(44), { wit = PROBE_WIT, pool = ISOLATE })
    H.add_wat("iso:wit_b", probe_wat(45), { wit = PROBE_WIT, pool = ISOLATE })
    H.add_wat("iso:warm", probe_wat(46), { wit = PROBE_WIT })
    H.add({ id = "iso:counter", kind = "function.wasm", path = ASYNC, method = "counter", imports = { "wasi:clocks", "wasi:cli" },
            pool = ISOLATE })
  end)

  it("the probe sees what a call left behind in a warm (not isolated) instance", function()
    -- Without isolate the instance is reused: the second call finds the first one's secret
    -- (global, memory, data segment, grown memory, table), so the probe can fail.
    assert.equals(0, funcs.call("iso:warm", 7))
    assert.equals(1 + 2 + 4 + 8 + 16 + 32, funcs.call("iso:warm", 8))
  end)

  it("no secret survives into the next call: 10,000 calls interleaved between 5 entries", function()
    local calls, leaks = 0, {}
    local function check(id, secret, found, err)
      calls = calls + 1
      if err ~= nil then
        leaks[#leaks + 1] = ("%s call %d: %s"):format(id, secret, tostring(err))
      elseif id == "iso:counter" then
        if found ~= 1 then leaks[#leaks + 1] = ("%s call %d: counter %s"):format(id, secret, tostring(found)) end
      elseif found ~= 0 then
        leaks[#leaks + 1] = ("%s call %d: leak bits %d"):format(id, secret, found)
      end
    end
    local all = { entries[1], entries[2], entries[3], entries[4], "iso:counter" }
    local before = {}
    for _, id in ipairs(all) do before[id] = wippy.stats(id) end
    local secret = 0
    -- 5,000 blocking calls on the Lua thread, in rotation.
    for _ = 1, 1000 do
      for _, id in ipairs(all) do
        secret = secret + 1
        if id == "iso:counter" then check(id, secret, funcs.call(id)) else check(id, secret, funcs.call(id, secret)) end
      end
    end
    -- 5,000 from tasks on the worker threads, 50 at a time, entries mixed in each batch.
    wippy.run(function()
      for _ = 1, 100 do
        local batch = {}
        for j = 1, 50 do
          secret = secret + 1
          local id, s = all[(j % #all) + 1], secret
          batch[j] = { id, s, wippy.spawn(function()
            if id == "iso:counter" then return funcs.call(id) end
            return funcs.call(id, s)
          end) }
        end
        for _, b in ipairs(batch) do check(b[1], b[2], b[3]:result()) end
      end
    end)
    assert.equals(10000, calls)
    assert.same({}, leaks)
    -- Every call had its own instance: each was recycled after its call.
    for _, id in ipairs(all) do
      local s = wippy.stats(id)
      assert.equals(2000, s.calls - before[id].calls, id)
      assert.equals(2000, s.recycled - before[id].recycled, id)
      assert.equals(0, s.errors - before[id].errors, id)
    end
  end)

  it("a trap in an isolated call leaves nothing to the next", function()
    -- The probe's secret is written; then a trap in another entry of the same engine; the
    -- next probe call still finds nothing.
    H.add_wat("iso:trap", [[(module (memory 1) (global $g (mut i32) (i32.const 0))
      (func (export "f") (param i32) (result i32)
        (global.set $g (local.get 0)) (i32.store (i32.const 100) (local.get 0)) unreachable))]], { pool = ISOLATE })
    for i = 1, 200 do
      assert.equals(0, funcs.call("iso:core_a", 100000 + i))
      assert.equals("trap", H.call_err("iso:trap", 100000 + i):details().reason)
      assert.equals(0, funcs.call("iso:wit_a", 200000 + i))
    end
  end)

  it("is tested against the pinned wasmtime 48.0.8 (re-run this spec on any other version)", function()
    local lock = H.shell("grep -A1 '^name = \"wasmtime\"$' Cargo.lock")
    assert.matches('version = "48.0.8"', lock, 1, true)
    local toml = H.shell("grep '^wasmtime = ' Cargo.toml")
    assert.matches('version = "=48.0.8"', toml, 1, true)
  end)
end)
