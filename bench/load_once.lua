-- One fresh-process load for bench/cold_warm.sh:
--   lua5.4 bench/load_once.lua DIR CACHE_DIR TARGET [ARGS...]
-- loads the _index.yaml directory DIR with `wippy.load(DIR, { cache_dir = CACHE_DIR })`, then
-- calls TARGET once (with integer ARGS) to check that it works. Prints one line:
--   load_ms first_call_ms compiled cache_hits result
local t_start = os.clock()
local ROOT = (arg[0] or ""):match("^(.*)/bench/[^/]*$") or "."
local now = dofile(ROOT .. "/bench/clock.lua")
local t_require = now()
local wippy = require("wippy")
local required = now() - t_require

local dir, cache, target = arg[1], arg[2], arg[3]
local args = {}
for i = 4, #arg do args[#args + 1] = tonumber(arg[i]) end

local t0 = now()
local ok, err = wippy.load(dir, { cache_dir = cache })
local load_s = now() - t0
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
local t1 = now()
local r, e = wippy.funcs.call(target, (table.unpack or unpack)(args))
local call_s = now() - t1
if r == nil then
  io.stderr:write(target, ": ", tostring(e), "\n")
  os.exit(1)
end
local eng = wippy.stats().engine
print(string.format("%.2f %.2f %d %d %s %.2f %.2f", load_s * 1000, call_s * 1000, eng.compiled, eng.cache_hits,
  tostring(r), required * 1000, (os.clock() - t_start) * 1000))
