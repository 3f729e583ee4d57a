local H = dofile("spec/helper.lua")

describe("guest output", function()
  it("goes to stderr, each line prefixed with the entry ID", function()
    local vm = H.VM
    local dir = H.tmpdir()
    local script = dir .. "/out.lua"
    H.write(script, ([[
package.cpath = %q
local wippy = require("wippy")
assert(wippy.registry:add({ id = "out:log", kind = "function.wasm", path = "build/guests/types_guest.wasm", method = "log", imports = { "wasi:cli" } }))
wippy.funcs.call("out:log", "first line")
wippy.funcs.call("out:log", "second line")
io.stdout:write("done\n")
]]):format(package.cpath))
    local p = assert(io.popen(vm .. " '" .. script .. "' 2>'" .. dir .. "/err.txt'"))
    local stdout = p:read("*a")
    p:close()
    local f = assert(io.open(dir .. "/err.txt"))
    local stderr = f:read("*a")
    f:close()
    assert.equals("done\n", stdout)
    assert.equals("out:log: first line\nout:log: second line\n", stderr)
  end)
end)
