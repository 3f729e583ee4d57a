-- Pools bound their instances (SPEC §4, issue 12): 10,000 calls in flight at once against a
-- `max_size: 16` entry never hold more than 16 instances, and every one completes with its own
-- result.
local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs
local ASYNC = H.CWD .. "/build/guests/async_guest.wasm"

describe("pools", function()
  it("hold at most max_size instances with 10,000 calls in flight, and complete them all", function()
    H.add({ id = "pools:sleep", kind = "function.wasm", path = ASYNC, method = "sleep-ms",
      imports = { "wasi:clocks" }, pool = { type = "lazy", max_size = 16 } })
    H.add({ id = "pools:add", kind = "function.wasm", path = ASYNC, method = "add",
      pool = { type = "lazy", max_size = 16 } })
    local N, done, peak, wrong = 10000, 0, 0, 0
    wippy.run(function()
      for i = 1, N do
        wippy.spawn(function()
          -- A guest that waits holds its instance meanwhile; then one that computes.
          assert(funcs.call("pools:sleep", 1))
          if funcs.call("pools:add", i, 1) ~= i + 1 then wrong = wrong + 1 end
          done = done + 1
        end)
      end
      while done < N do
        for _, id in ipairs({ "pools:sleep", "pools:add" }) do
          peak = math.max(peak, wippy.stats(id).instances)
        end
        wippy.sleep(1)
      end
    end)
    assert.equals(N, done)
    assert.equals(0, wrong)
    assert.is_true(peak >= 1 and peak <= 16, "peak instances " .. peak)
    assert.is_true(wippy.stats("pools:sleep").instances <= 16)
    assert.equals(N, wippy.stats("pools:sleep").calls)
  end)
end)
