-- A monotonic wall clock in seconds for the benchmark scripts: lua-system's monotime
-- (Debian lua-system, installed with lua-busted), else LuaJIT's FFI clock_gettime.
local ok, sys = pcall(require, "system")
if ok and type(sys) == "table" and sys.monotime then
  return sys.monotime
end
if jit then
  local ffi = require("ffi")
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } wippy_bench_ts;
    int clock_gettime(int clk, wippy_bench_ts *ts);
  ]])
  local ts = ffi.new("wippy_bench_ts")
  return function()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
  end
end
error("the benchmarks need a wall clock: install lua-system (Debian package lua-system)")
