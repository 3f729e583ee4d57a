-- Raised errors as Lua libraries raise them (issue 13): a string `bad argument #1 to
-- 'wippy.load' (string expected, got table)`, with the caller's position, without mlua's
-- "runtime error: " prefix and stack traceback. Wraps the module's functions written in Rust
-- (and the Lua ones that call Rust helpers) once, when the module is built; `funcs.call` stays
-- the raw C function (it raises only for a non-string target, with a plain message already).
local m = ...
local is_error = m.errors.is

-- The message of an mlua error value, under the public name `name` (short: as Rust names it).
local function clean(e, name, short)
  local s = tostring(e):gsub("\nstack traceback:.*$", ""):gsub("^runtime error: ", ""):gsub("%s+$", "")
  local lua_type = { integer = "number", String = "string" }
  -- mlua's own argument conversions: name the function and the types as Lua does.
  local n, got, want = s:match("^bad argument #(%d+): error converting Lua (%w+) to (%w+)")
  if not n then
    -- A method's: its self is argument #1 there, not for the caller.
    n, got, want = s:match("^bad argument #(%d+) to `[^`]*`: error converting Lua (%w+) to (%w+)")
    n = n and tonumber(n) - 1
  end
  if n then
    return ("bad argument #%s to '%s' (%s expected, got %s)"):format(n, name, lua_type[want] or want:lower(),
      lua_type[got] or got)
  end
  return (s:gsub("to '" .. short:gsub("%p", "%%%0") .. "'", "to '" .. name:gsub("%%", "%%%%") .. "'", 1))
end

-- The caller of a wrapped function: raise ← settle ← (the wrapper, replaced by settle's tail
-- call) ← caller. Lua 5.1 keeps a "(tail call)" level in its place, one more to skip.
local LEVEL = (_VERSION == "Lua 5.1" and type(jit) ~= "table") and 4 or 3

local function raise(name, short, e)
  if type(e) == "userdata" and not is_error(e) then
    error(clean(e, name, short), LEVEL)
  end
  error(e, 0)
end

local function wrap(f, name, short)
  local function settle(ok, ...)
    if ok then return ... end
    raise(name, short, (...))
  end
  return function(...) return settle(pcall(f, ...)) end
end

for _, k in ipairs({ "load", "configure", "stats", "drop", "command", "commands", "hash" }) do
  m[k] = wrap(m[k], "wippy." .. k, k)
end
for k, f in pairs(m.security) do
  if type(f) == "function" then m.security[k] = wrap(f, "wippy.security." .. k, k) end
end
-- Lua 5.1 cannot yield across pcall: there the functions that wait (yielding in a task) stay
-- unwrapped. They raise only their own argument errors, already plain strings.
local waits = {}
if _VERSION == "Lua 5.1" and type(jit) ~= "table" then
  waits = { wait = true, receive = true, events = true }
end
for k, f in pairs(m.process) do
  if type(f) == "function" and not waits[k] then m.process[k] = wrap(f, "wippy.process." .. k, k) end
end
m.funcs.context = wrap(m.funcs.context, "funcs.context", "context")

-- The registry: an empty proxy whose methods are the wrapped methods of the userdata.
local reg = m.registry
local methods = {}
for _, k in ipairs({ "get", "entries", "add", "remove", "describe" }) do
  methods[k] = wrap(function(_, ...) return reg[k](reg, ...) end, "registry:" .. k, k)
end
m.registry = setmetatable({}, {
  __index = methods,
  __tostring = function() return "wippy.registry" end,
  __newindex = function() error("wippy.registry is read-only", 2) end,
  __metatable = "wippy.registry",
})
