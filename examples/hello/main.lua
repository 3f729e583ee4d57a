-- The hello example: load the registry next to this file and call its functions.
local wippy = require("wippy")
local funcs = require("funcs")

local ok, err = wippy.load(".")
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

local function show(label, value, e)
  if e then
    print(label .. " failed: " .. tostring(e))
    os.exit(1)
  end
  print(label .. " = " .. tostring(value))
end

print("wippy " .. wippy.version .. " on " .. (jit and jit.version or _VERSION))
show("hello:add(6, 7)", funcs.call("hello:add", 6, 7))
show("hello:shout(\"hi there\")", funcs.call("hello:shout", "hi there"))
show("hello:fib(50)", funcs.call("hello:fib", 50))
show("hello:greet(\"Lua\")", funcs.call("hello:greet", "Lua"))
