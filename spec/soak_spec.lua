-- Soak (issue 12, docs/reliability.md "Soak"): bench/soak.lua run in a child process of the
-- same VM, so that its RSS is its own and a crash fails the case instead of busted. Each case
-- checks the child's exit status (it exits 1 on a wrong result or an RSS growth past the
-- limit) and the figures it prints.
--
-- Sizes: `mixed` runs the full 1,000,000 calls and `tasks` the full 10,000 tasks; `gc` runs
-- 100,000 calls here and 1,000,000 in `make soak`. SOAK_CALLS / SOAK_GC_CALLS / SOAK_TASKS
-- change them (for a quick local run). The figures of the last run go to build/soak-VM.txt.
local H = dofile("spec/helper.lua")

local LIMIT_MB = 5

local function soak(mode, args)
  local cmd = ("cd '%s' && LUA_CPATH='%s' %s bench/soak.lua %s %s max_growth_mb=%d 2>&1; echo \"exit=$?\"")
    :format(H.CWD, package.cpath, H.VM, mode, args, LIMIT_MB)
  local out = H.shell(cmd)
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  assert.equals(0, code, "bench/soak.lua " .. mode .. " failed:\n" .. out)
  local line = out:match("(soak " .. mode .. " %b()[^\n]*)")
  assert.is_not_nil(line, out)
  -- The figures of the last run, per VM: build/soak-lua5.4.txt, build/soak-luajit.txt, ...
  local f = io.open(H.CWD .. "/build/soak-" .. H.VM .. ".txt", mode == "mixed" and "w" or "a")
  if f then
    f:write(os.date("!%Y-%m-%d %H:%M UTC "), line, "\n")
    f:close()
  end
  return line
end

local function figure(line, name)
  local v = line:match(name .. " ([%d%.+-]+)")
  assert.is_not_nil(v, "no '" .. name .. "' in: " .. line)
  return tonumber(v)
end

describe("soak", function()
  it("1,000,000 mixed calls: RSS growth after warm-up <= 5 MiB, every result right", function()
    local calls = tonumber(os.getenv("SOAK_CALLS")) or 1000000
    local line = soak("mixed", "calls=" .. calls)
    assert.is_true(figure(line, "calls") >= calls - 31, line)
    assert.equals(0, figure(line, "wrong results"), line)
    local growth = figure(line, "growth")
    assert.is_true(growth <= LIMIT_MB, line)
  end)

  it("10,000 tasks with a call in flight at once; RSS flat over the rounds", function()
    local tasks = tonumber(os.getenv("SOAK_TASKS")) or 10000
    local line = soak("tasks", "tasks=" .. tasks)
    assert.equals(tasks, figure(line, "in flight at once"), line)
    assert.equals(0, figure(line, "wrong results"), line)
    assert.is_true(figure(line, "growth") <= LIMIT_MB, line)
  end)

  it("GC stress: a collector step between calls, resources left to finalizers", function()
    local calls = tonumber(os.getenv("SOAK_GC_CALLS")) or 100000
    local line = soak("gc", "calls=" .. calls)
    assert.is_true(figure(line, "calls") >= calls - 31, line)
    assert.equals(0, figure(line, "wrong results"), line)
    assert.is_true(figure(line, "growth") <= LIMIT_MB, line)
  end)
end)
