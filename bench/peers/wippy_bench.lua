-- wippy side of the component peer benchmark (bench/peers/run.sh): funcs.call of the types
-- guest (tests/guests/types) for `add` (s32, s32) -> s32 and `users#transform-users` on 10 users.
-- Prints one line per case: `<label> <case> <best µs> <median µs> <N>` (5 runs of N calls each;
-- N is calibrated so that a run takes about 0.5 s of CPU time (os.clock), unless given).
-- Usage: LUA_CPATH='build/lua54/?.so' lua5.4 bench/peers/wippy_bench.lua [label] [N_add] [N_transform]
local wippy = require("wippy")
local funcs = wippy.funcs
local clock = os.clock

local label = arg and arg[1] or (jit and "wippy-luajit" or "wippy-lua54")
local N_ADD = tonumber(arg and arg[2])
local N_TRANSFORM = tonumber(arg and arg[3])
local RUNS = 5
local TARGET = 0.5 -- seconds per run when N is calibrated
local GUEST = os.getenv("WIPPY_BENCH_GUEST") or "build/guests/types_guest.wasm"

local function add_entry(id, method)
  local ok, err = wippy.registry:add({ id = id, kind = "function.wasm", path = GUEST, method = method })
  assert(ok, tostring(err))
end
add_entry("bench:add", "add")
add_entry("bench:transform", "users#transform-users")

local users = {}
for i = 1, 10 do
  users[i] = { id = i, name = "user" .. i, tags = { "a", "b" }, active = true, email = "u" .. i .. "@x.org" }
end

local call = funcs.call
-- Check the results once (and warm the instance up) before timing.
assert(call("bench:add", 2, 3) == 5)
local out = assert(call("bench:transform", users))
assert(#out == 10 and out[10].name == "USER10" and out[10].tags[3] == "seen" and out[10].email == "u10@x.org")

-- Doubles as the warm-up: grows n until a batch takes 0.1 s, then scales it to TARGET; once
-- more with that n (the first batches may be slower than the warm code).
local function calibrate(body)
  local n, t = 1, 0
  while t < 0.1 do
    n = n * ((t > 0.01) and math.ceil(0.12 / t) or 8)
    local t0 = clock()
    body(n)
    t = clock() - t0
  end
  for _ = 1, 2 do
    n = math.max(1, math.floor(n * TARGET / t))
    local t0 = clock()
    body(n)
    t = clock() - t0
  end
  return math.max(1, math.floor(n * TARGET / t))
end

local function measure(case, n, body)
  if n then body(math.max(1, math.floor(n / 10))) else n = calibrate(body) end
  local runs = {}
  for r = 1, RUNS do
    local t0 = clock()
    body(n)
    runs[r] = (clock() - t0) / n * 1e6
  end
  table.sort(runs)
  print(string.format("%s %s %.4f %.4f %d", label, case, runs[1], runs[math.floor((RUNS + 1) / 2)], n))
  io.stdout:flush()
end

measure("add", N_ADD, function(n)
  local s = 0
  for _ = 1, n do s = call("bench:add", s, 1) end
  assert(s >= n)
end)
measure("transform", N_TRANSFORM, function(n)
  local r
  for _ = 1, n do r = call("bench:transform", users) end
  assert(#r == 10)
end)
