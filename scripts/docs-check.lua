-- Checks that the documentation matches the code (make docs-check, part of make test):
--   1. the LuaLS stubs (library/*.d.lua) declare exactly what the module offers: every
--      declared function and field exists with its type, and every function of the module's
--      tables is declared;
--   2. every ```lua block of docs/*.md and README.md runs, in a fresh Lua process over the
--      fixtures of tests/docs (conventions: tests/docs/README.md), and each `print(...)
--      --> TEXT` line printed TEXT;
--   3. no page points at a file outside the repository, and relative links resolve;
--   4. examples/*/main.lua run (examples/hello is `make demo`'s; others here).
--
-- Run from the repository root with the lua5.4 build on the C path:
--   LUA_CPATH="build/lua54/?.so;;" LUA_PATH="lua/?.lua;;" lua5.4 scripts/docs-check.lua BUILD_DIR
-- Exit status 1 with one `FILE:LINE: problem` a line when anything does not match.

local build = arg[1] or "build"
local root = os.getenv("PWD") or "."
local problems = {}
local function problem(where, msg)
  problems[#problems + 1] = where .. ": " .. msg
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function lines_of(path)
  local out = {}
  for line in (read(path) .. "\n"):gmatch("(.-)\n") do
    out[#out + 1] = line
  end
  return out
end

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

local function q(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function files(pattern)
  local _, out = sh("ls -1 " .. pattern)
  local t = {}
  for f in out:gmatch("[^\n]+") do
    if not f:find("No such file", 1, true) then t[#t + 1] = f end
  end
  return t
end

---------------------------------------------------------------------------------------------
-- 1. Stubs against the module.

local wippy = require("wippy")
local funcs, security = wippy.funcs, wippy.security

-- Instances of each stub class, made from the real module (a sample for data classes).
assert(wippy.registry:add({ id = "docscheck:one", kind = "function.lua", handler = function() return 1 end }))
local _, an_error = funcs.call("docscheck:nothing")
local samples = {
  ["wippy"] = wippy,
  ["wippy.funcs"] = funcs,
  ["wippy.security"] = security,
  ["wippy.process"] = wippy.process,
  ["wippy.errors"] = wippy.errors,
  ["wippy.Registry"] = wippy.registry,
  ["wippy.Error"] = an_error,
  ["wippy.Future"] = funcs.async("docscheck:one"),
  ["wippy.Executor"] = funcs.new(),
  ["wippy.Actor"] = security.new_actor("docscheck"),
  ["wippy.Scope"] = security.new_scope(),
  ["wippy.Task"] = wippy.spawn(function() end),
  ["wippy.Entry"] = wippy.registry:get("docscheck:one"),
}
-- Classes that describe tables the caller writes (no instance to compare with), and the
-- resource handle (needs a component; its `drop` is checked by the specs and the examples).
local unchecked = {
  ["wippy.NewEntry"] = true, ["wippy.EntryFilter"] = true, ["wippy.Policy"] = true,
  ["wippy.Resource"] = true, ["wippy.Param"] = true, ["wippy.Signature"] = true,
  ["wippy.EntryStats"] = true,
}
-- The modules `require` gives besides wippy, and the class each stub module declares.
local required = { funcs = "wippy.funcs", ["wippy.funcs"] = "wippy.funcs", security = "wippy.security" }

local stub_classes = {} -- class -> { members = {name -> {kind=, where=}}, where = }
local stub_modules = {} -- `---@meta NAME` -> file
for _, path in ipairs(files("library/*.d.lua")) do
  local class, locals = nil, {}
  for n, line in ipairs(lines_of(path)) do
    local where = path .. ":" .. n
    local meta = line:match("^%-%-%-@meta%s+([%w%._]+)")
    if meta and meta ~= "_" then stub_modules[meta] = where end
    local c = line:match("^%-%-%-@class%s+([%w%._]+)")
    if c then
      class = c
      stub_classes[c] = stub_classes[c] or { members = {}, where = where }
    end
    local fname, ftype = line:match("^%-%-%-@field%s+([%w_]+)%??%s+(%S+)")
    if fname and class then
      stub_classes[class].members[fname] = { kind = "field", type = ftype, where = where,
        optional = line:match("^%-%-%-@field%s+[%w_]+%?") ~= nil }
    end
    local var = line:match("^local%s+([%w_]+)%s*=%s*{}") or line:match("^local%s+([%w_]+)%s*$")
    if var and class then locals[var] = class end
    local owner, sep, name = line:match("^function%s+([%w_]+)([%.:])([%w_]+)%(")
    if owner then
      local cls = locals[owner]
      if not cls then
        problem(where, "function of `" .. owner .. "`, which no ---@class names")
      else
        stub_classes[cls].members[name] = { kind = sep == ":" and "method" or "function", where = where }
      end
    end
    if not line:match("^%-%-%-") and not line:match("^local") and not line:match("^function") then
      class = line:match("^%s*$") and class or nil
    end
  end
end

local function lua_type_ok(declared, v)
  local t = type(v)
  for alt in declared:gmatch("[^|]+") do
    alt = alt:gsub("%?$", "")
    if alt == t or alt == "any" or (alt == "integer" and math.type and math.type(v) == "integer")
      or (alt == "lightuserdata" and t == "userdata") or (alt == "nil" and v == nil)
      or (alt:match("^wippy%.") and (t == "table" or t == "userdata"))
      or (alt:match("^{") and t == "table") or (alt:match("%[%]$") and t == "table")
      or (alt:match("^table") and t == "table") or (alt:match("^\"") and t == "string") then
      return true
    end
  end
  return false
end

for cls, info in pairs(stub_classes) do
  local obj = samples[cls]
  if obj == nil and not unchecked[cls] then
    problem(info.where, "class " .. cls .. ": docs-check has no instance to compare it with (add one to `samples`)")
  elseif obj ~= nil then
    for name, m in pairs(info.members) do
      local ok, v = pcall(function() return obj[name] end)
      if not ok then v = nil end
      if m.kind ~= "field" then
        if type(v) ~= "function" then
          problem(m.where, cls .. (m.kind == "method" and ":" or ".") .. name .. " is declared but the module has "
            .. (v == nil and "no such function" or "a " .. type(v)))
        end
      elseif not (v == nil and m.optional) and not lua_type_ok(m.type, v) then
        problem(m.where, cls .. "." .. name .. " is declared " .. m.type .. " but is " .. type(v))
      end
    end
    -- The other direction, for the module's tables (userdata hide their methods).
    if type(obj) == "table" and cls ~= "wippy.Entry" then
      for k, v in pairs(obj) do
        if type(k) == "string" and type(v) == "function" and k:sub(1, 1) ~= "_" and not info.members[k] then
          problem(info.where, cls .. " does not declare `" .. k .. "` (a " .. type(v) .. " of the module)")
        end
      end
    end
  end
end
for name, cls in pairs(required) do
  if not stub_modules[name] and name ~= "wippy.funcs" then
    problem("library", "no stub module `---@meta " .. name .. "` for require(\"" .. name .. "\")")
  end
  local ok, m = pcall(require, name)
  if not ok or m ~= samples[cls] then
    problem("library", "require(\"" .. name .. "\") does not give " .. cls)
  end
end
for name, where in pairs(stub_modules) do
  if name ~= "wippy" and not required[name] then
    problem(where, "a stub module for require(\"" .. name .. "\"), which the module does not offer")
  end
end

---------------------------------------------------------------------------------------------
-- 2. Documented examples.

local pages = files("docs/*.md")
pages[#pages + 1] = "README.md"

local tmp = os.getenv("TMPDIR") or "/tmp"
local _, dir = sh("mktemp -d " .. q(tmp .. "/docs-check.XXXXXX"))
dir = dir:gsub("%s+$", "")
assert(sh("cp -r tests/docs/. " .. q(dir) .. " && cp " .. q(build .. "/guests/types_guest.wasm") .. " "
  .. q(dir .. "/app/") .. " && mkdir -p " .. q(dir .. "/build") .. " && cp -r " .. q(build .. "/guests") .. " "
  .. q(dir .. "/build/guests") .. " && mkdir -p " .. q(dir .. "/tools/bin") .. " && cp " .. q(build .. "/guests/c_cmd.wasm")
  .. " " .. q(dir .. "/tools/bin/greet.wasm")) == 0, "cannot prepare the fixtures in " .. dir)

local prelude = table.concat({
  "local __out = io.stdout",
  "print = function(...) local t = { ... } for i = 1, select('#', ...) do t[i] = tostring(t[i]) end",
  "  __out:write('\\1', debug.getinfo(2, 'l').currentline, '\\2', table.concat(t, '\\t'), '\\n') end",
  "wippy = require('wippy'); funcs = wippy.funcs; security = wippy.security; process = wippy.process",
  "assert(wippy.load('app'))",
  "actor = security.new_actor('user:42', { role = 'admin' })",
}, "\n") .. "\n"
local prelude_lines = select(2, prelude:gsub("\n", ""))

local ran, skipped = 0, {}
for _, page in ipairs(pages) do
  local lines = lines_of(page)
  local chain = {} -- the page's blocks so far, for `continued`: { {doc_line, code_lines} }
  local i = 1
  while i <= #lines do
    if lines[i]:match("^```lua%s*$") then
      local start = i
      local marker = (lines[i - 1] or ""):match("^<!%-%-%s*(.-)%s*%-%->$") or ""
      local flags = {}
      for word in marker:gmatch("[^,]+") do
        flags[(word:gsub("^%s+", ""):gsub("%s+$", ""))] = true
      end
      local code = {}
      i = i + 1
      while i <= #lines and not lines[i]:match("^```%s*$") do
        code[#code + 1] = lines[i]
        i = i + 1
      end
      local block = { line = start + 1, code = code }
      local where = page .. ":" .. start
      if marker:match("^not run:") then
        local reason = marker:match("^not run:%s*(.*)$")
        if reason == "" then problem(where, "`not run` without a reason") end
        skipped[#skipped + 1] = where .. " (" .. reason .. ")"
      else
        local vm, cpath = "lua5.4", build .. "/lua54/?.so"
        if flags["run: luajit"] then vm, cpath = "luajit", build .. "/luajit/?.so" end
        if not flags.continued then chain = {} end
        chain[#chain + 1] = block
        -- The program: the prelude, then the chain's blocks; a map back to the doc's lines.
        local src, map = { prelude }, {}
        local n = prelude_lines
        for _, b in ipairs(chain) do
          for k, l in ipairs(b.code) do
            src[#src + 1] = l .. "\n"
            n = n + 1
            map[n] = b.line + k - 1
          end
        end
        local file = dir .. "/block.lua"
        local f = assert(io.open(file, "wb"))
        f:write(table.concat(src))
        f:close()
        -- A block for another VM is a side branch: the page's next blocks do not build on it.
        if flags["run: luajit"] then chain[#chain] = nil end
        local code_rc, out = sh("cd " .. q(dir) .. " && LUA_CPATH=" .. q(root .. "/" .. cpath .. ";;")
          .. " LUA_PATH=" .. q(root .. "/lua/?.lua;;") .. " timeout 60 " .. vm .. " block.lua")
        ran = ran + 1
        if code_rc ~= 0 then
          local msg = out:gsub("\1%d+\2[^\n]*\n", ""):gsub("block%.lua:(%d+)", function(l)
            return page .. ":" .. (map[tonumber(l)] or "?")
          end)
          problem(where, "the example fails (" .. vm .. "):\n" .. msg)
        else
          -- Printed lines against their `--> TEXT`.
          local printed = {}
          for l, text in out:gmatch("\1(%d+)\2([^\n]*)") do
            local d = map[tonumber(l)]
            if d then printed[d] = printed[d] and (printed[d] .. "\n" .. text) or text end
          end
          for k, l in ipairs(block.code) do
            local d = block.line + k - 1
            local want = l:match("^%s*print%(.*%-%->%s*(.-)%s*$")
            if want then
              local norm = function(s) return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")) end
              want = norm(want:gsub("%s%s+%(.*%)$", ""))
              local got = printed[d]
              if got == nil then
                problem(page .. ":" .. d, "expected output `" .. want .. "`, but nothing was printed")
              elseif norm(got) ~= want then
                problem(page .. ":" .. d, "prints `" .. norm(got) .. "`, the page says `" .. want .. "`")
              end
            end
          end
        end
      end
    end
    i = i + 1
  end
end
sh("rm -rf " .. q(dir))

---------------------------------------------------------------------------------------------
-- 3. References outside the repository, and relative links.

local scanned = files("docs/*.md")
for _, f in ipairs({ "README.md", "library/*.d.lua", "examples/*/*.lua", "tests/docs/README.md" }) do
  for _, g in ipairs(files(f)) do scanned[#scanned + 1] = g end
end
for _, path in ipairs(scanned) do
  local base = path:match("^(.*)/[^/]*$") or "."
  for n, line in ipairs(lines_of(path)) do
    local where = path .. ":" .. n
    for _, bad in ipairs({ "SPEC", "%.%./shared", "/work/", "NOTES%.md", "HOUSE%-STYLE" }) do
      if line:find(bad) then
        problem(where, "refers to something outside the repository (" .. bad:gsub("%%", "") .. ")")
      end
    end
    for target in line:gsub("`[^`]*`", ""):gmatch("%]%(([^)%s]+)%)") do
      local file = target:gsub("#.*$", "")
      if file ~= "" and not file:match("^%a+://") and not file:match("^mailto:") then
        local f = io.open(base .. "/" .. file, "rb")
        if f then f:close() else problem(where, "link to " .. file .. ", which does not exist") end
      end
    end
  end
end

---------------------------------------------------------------------------------------------
-- 4. Examples other than examples/hello (which `make demo` runs).

for _, main in ipairs(files("examples/*/main.lua")) do
  local ex = main:match("^(.*)/main%.lua$")
  if ex ~= "examples/hello" then
    local rc, out = sh("cd " .. q(ex) .. " && LUA_CPATH=" .. q(root .. "/" .. build .. "/lua54/?.so;;")
      .. " LUA_PATH=" .. q(root .. "/lua/?.lua;;") .. " timeout 60 lua5.4 main.lua")
    ran = ran + 1
    if rc ~= 0 then problem(main, "the example fails:\n" .. out) end
  end
end

for _, s in ipairs(skipped) do
  io.write("docs-check: not run: ", s, "\n")
end
if #problems > 0 then
  io.stderr:write(table.concat(problems, "\n"), "\n")
  io.stderr:write(("docs-check: %d problem(s); %d examples run, %d not run\n"):format(#problems, ran, #skipped))
  os.exit(1)
end
io.write(("docs-check: stubs match the module; %d examples run, %d not run; links resolve\n"):format(ran, #skipped))
