-- Commands (SPEC §7.2) and the launcher (§7.4): a C program (clang + wasi-libc, preview 1
-- `_start`) and a Rust wasm32-wasip2 program (a component exporting wasi:cli/run), run with
-- arguments, stdin, stdout, stderr, files in a mount, the environment and exit codes — through
-- `wippy.command` and through `build/bin/wippy` in a shell.
local H = dofile("spec/helper.lua")
local wippy, registry = H.wippy, H.registry

local CWD = H.CWD
local WIPPY = CWD .. "/build/bin/wippy"
local C = CWD .. "/build/guests/c_cmd.wasm"
local RUST = CWD .. "/build/guests/rust_cmd.wasm"

-- Runs a shell command; returns its exit code, stdout and stderr.
local function sh(cmd)
  local out, err = os.tmpname(), os.tmpname()
  local ok, how, code = os.execute(cmd .. " >" .. out .. " 2>" .. err)
  if type(ok) == "number" then code = math.floor(ok / 256) elseif how ~= "exit" then code = 128 + (code or 0) end
  local function slurp(p)
    local f = assert(io.open(p, "rb"))
    local s = f:read("*a")
    f:close()
    os.remove(p)
    return s
  end
  return code, slurp(out), slurp(err)
end

describe("commands", function()
  local root

  setup(function()
    root = H.tmpdir()
    assert(os.execute("mkdir -p '" .. root .. "/data' '" .. root .. "/reg'"))
    H.write(root .. "/data/in.txt", "from the host\n")
    -- A registry directory for the launcher: both programs as commands with a mount.
    H.write(root .. "/reg/_index.yaml", ([[
namespace: cmd
entries:
  - name: data
    kind: fs.directory
    directory: %s/data
  - name: bins
    kind: fs.directory
    directory: %s/build/guests
  - name: c
    kind: process.wasm
    fs: bins
    path: /c_cmd.wasm
    imports: [wasi1]
    wasi:
      mounts: [{ fs: data, guest: /data }]
    meta:
      command: { name: c-cmd, short: the C test command }
  - name: rust
    kind: process.wasm
    fs: bins
    path: /rust_cmd.wasm
    imports: [wasi:cli, wasi:filesystem, wasi:clocks, wasi:random]
    wasi:
      mounts: [{ fs: data, guest: /data }]
      args: [rust-cmd, echo, from, wasi.args]
    meta:
      command: { name: rust-cmd, short: the Rust test command }
  - name: upper
    kind: process.wasm
    fs: bins
    path: /relay_guest.wasm
    method: upper
    meta:
      command: { name: upper }
  - name: add
    kind: process.wasm
    fs: bins
    path: /async_guest.wasm
    method: add
    meta:
      command: { name: add }
  - name: describe
    kind: process.wasm
    fs: bins
    path: /relay_guest.wasm
    method: describe
    meta:
      command: { name: describe }
]]):format(root, CWD))
    assert(wippy.load(root .. "/reg"))
  end)

  teardown(function()
    if root then os.execute("rm -rf '" .. root .. "'") end
  end)

  describe("wippy.command", function()
    it("returns the exit code of a C program (preview 1 _start)", function()
      assert.equals(0, wippy.command("c-cmd", { "write", "/data/c.txt", "written by C" }))
      local f = assert(io.open(root .. "/data/c.txt"))
      assert.equals("written by C", f:read("*a"))
      f:close()
      assert.equals(3, wippy.command("c-cmd", { "err", "a message for stderr" }))
      assert.equals(42, wippy.command("c-cmd", { "exit", "42" }))
      assert.equals(2, wippy.command("c-cmd", { "read", "/etc/passwd" }), "outside its mount")
    end)

    it("returns the exit code of a Rust wasm32-wasip2 program (wasi:cli/run)", function()
      assert.equals(0, wippy.command("rust-cmd", { "write", "/data/rust.txt", "written by Rust" }))
      local f = assert(io.open(root .. "/data/rust.txt"))
      assert.equals("written by Rust", f:read("*a"))
      f:close()
      -- wasi:cli/exit of WASI 0.2 takes a result: a component exits 0 or 1.
      assert.equals(1, wippy.command("rust-cmd", { "exit", "9" }))
      assert.equals(1, wippy.command("rust-cmd", { "read", "/nowhere" }))
    end)

    it("gives an error for an unknown command, a trap, and bad arguments", function()
      local code, err = wippy.command("nope")
      assert.is_nil(code)
      assert.equals("NOT_FOUND", err:kind())
      assert.equals("command not found: nope (known: add, c-cmd, describe, rust-cmd, upper)", err:message())
      code, err = wippy.command("rust-cmd", { "panic" })
      assert.is_nil(code)
      -- The panic message went to the real stderr.
      assert.equals("INTERNAL", err:kind())
      assert.equals("trap", err:details().reason)
      local function raises(text, ...)
        local ok, e = pcall(wippy.command, ...)
        assert.is_false(ok)
        assert.matches(text, tostring(e), 1, true)
      end
      raises("bad argument #1 to 'wippy.command' (string expected, got number)", 42)
      raises("bad argument #2 to 'wippy.command' (args[1] must be a string, got table)", "c-cmd", { {} })
      raises("bad argument #3 to 'wippy.command' (unknown option \"envs\"; known: env, sigint)", "c-cmd", {}, { envs = {} })
      raises("bad argument #3 to 'wippy.command' (sigint must be \"default\")", "c-cmd", {}, { sigint = "ignore" })
    end)

    it("is listed by wippy.commands", function()
      local names = {}
      for _, c in ipairs(wippy.commands()) do names[#names + 1] = c.name .. "=" .. c.id .. ":" .. tostring(c.short) end
      assert.same({ "add=cmd:add:nil", "c-cmd=cmd:c:the C test command", "describe=cmd:describe:nil",
        "rust-cmd=cmd:rust:the Rust test command", "upper=cmd:upper:nil" }, names)
    end)

    it("is not a function: funcs.call refuses it", function()
      local r, err = wippy.funcs.call("cmd:c")
      assert.is_nil(r)
      assert.equals("UNAVAILABLE", err:kind())
    end)
  end)

  describe("the launcher", function()
    local reg = function() return " -r '" .. root .. "/reg' " end

    it("runs a registry command with arguments, stdin, stdout, stderr and its exit code", function()
      assert.same({ 0, "a b c\n", "" }, { sh(WIPPY .. " run" .. reg() .. "c-cmd echo a 'b c'") })
      assert.same({ 0, "hi\n", "" }, { sh("echo hi | " .. WIPPY .. " run" .. reg() .. "c-cmd cat") })
      assert.same({ 0, "hi\n", "" }, { sh("echo hi | " .. WIPPY .. " run" .. reg() .. "rust-cmd cat") })
      assert.same({ 3, "", "oops\n" }, { sh(WIPPY .. " run" .. reg() .. "c-cmd err oops") })
      assert.same({ 42, "", "" }, { sh(WIPPY .. " run" .. reg() .. "c-cmd exit 42") })
      assert.same({ 0, "from the host\n", "" }, { sh(WIPPY .. " run" .. reg() .. "rust-cmd read /data/in.txt") })
      -- Without arguments, wasi.args is the whole argv.
      assert.same({ 0, "from wasi.args\n", "" }, { sh(WIPPY .. " run" .. reg() .. "rust-cmd") })
      local code, _, err = sh(WIPPY .. " run" .. reg() .. "nope")
      assert.equals(1, code)
      assert.matches("command not found: nope", err, 1, true)
    end)

    it("runs a .wasm file with only the directories, variables and hosts given", function()
      local dir = " --dir '" .. root .. "/data::/in' "
      assert.same({ 0, "from the host\n", "" }, { sh(WIPPY .. " run" .. dir .. C .. " read /in/in.txt") })
      assert.same({ 0, "from the host\n", "" }, { sh(WIPPY .. " run" .. dir .. RUST .. " read /in/in.txt") })
      local code, out, err = sh(WIPPY .. " run " .. C .. " read " .. root .. "/data/in.txt")
      assert.same({ 2, "" }, { code, out })
      assert.matches("Capabilities insufficient", err, 1, true)
      assert.same({ 0, "hello from C\n", "" }, { sh(WIPPY .. " run " .. C) })
      assert.same({ 0, "c_cmd.wasm\n", "" }, { sh(WIPPY .. " run " .. C .. " argv0") })
      assert.same({ 0, "1\n", "" }, { sh(WIPPY .. " run --env A=1 " .. RUST .. " env A") })
      assert.same({ 0, "from-host\n", "" }, { sh("B=from-host " .. WIPPY .. " run --env B " .. C .. " env B") })
      assert.same({ 1, "(unset)\n", "" }, { sh("B=from-host " .. WIPPY .. " run " .. C .. " env B") })
      assert.same({ 0, "piped\n", "" }, { sh("echo piped | " .. WIPPY .. " run " .. RUST .. " cat") })
      -- A guest path defaults to the host path.
      assert.same({ 0, "from the host\n", "" }, { sh(WIPPY .. " run --dir '" .. root .. "/data' " .. C .. " read " .. root .. "/data/in.txt") })
    end)

    it("runs a command of another method: string arguments converted, the result printed", function()
      assert.same({ 0, "HELLO\n", "" }, { sh(WIPPY .. " run" .. reg() .. "upper hello") })
      assert.same({ 1, "", "empty input\n" }, { sh(WIPPY .. " run" .. reg() .. "upper ''") })
      assert.same({ 0, "5\n", "" }, { sh(WIPPY .. " run" .. reg() .. "add 2 3") })
      assert.same({ 0, '{"length":3,"text":"a b","words":["a","b"]}\n', "" }, { sh(WIPPY .. " run" .. reg() .. "describe 'a b'") })
      local code, out, err = sh(WIPPY .. " run" .. reg() .. "add 2 x")
      assert.same({ 1, "" }, { code, out })
      assert.equals('wippy: cmd:add: argument 2 (b: u32): cannot convert "x" (expected an integer)\n', err)
      code, _, err = sh(WIPPY .. " run" .. reg() .. "add 2")
      assert.equals(1, code)
      assert.equals("wippy: cmd:add: expected 2 arguments, got 1\n", err)
      code, _, err = sh(WIPPY .. " run" .. reg() .. "add 2 3 4")
      assert.equals(1, code)
      assert.equals("wippy: cmd:add: expected 2 arguments, got 3\n", err)
    end)

    it("gives a .wasm file network only to the hosts --allow-host names", function()
      local server = assert(io.popen("exec python3 spec/fixtures/servers.py --parent $PPID", "r"))
      local ports = {}
      for _ = 1, 3 do
        local k, v = assert(server:read("*l")):match("^(%a+) (%d+)$")
        ports[k] = tonumber(v)
      end
      local addr = "127.0.0.1:" .. ports.tcp
      -- No --allow-host: no network at all (the socket interface is not granted).
      local code, out, err = sh(WIPPY .. " run " .. RUST .. " connect " .. addr)
      assert.same({ 1, "" }, { code, out })
      assert.matches('wasi:sockets/tcp-create-socket is not granted: add "wasi:sockets" to imports', err, 1, true)
      -- Another host allowed: the connect fails inside the guest (a wasip2 program exits 1).
      code, out, err = sh(WIPPY .. " run --allow-host 'example.com:*' " .. RUST .. " connect " .. addr)
      assert.same({ 1, "" }, { code, out })
      assert.matches("connect " .. addr .. ": Permission denied", err, 1, true)
      assert.same({ 0, "connected\n", "" }, { sh(WIPPY .. " run --allow-host '127.0.0.1:*' " .. RUST .. " connect " .. addr) })
      os.execute("kill " .. ports.pid .. " 2>/dev/null")
      server:close()
    end)

    it("stops the guest at Ctrl-C (SIGINT), as a shell's foreground program", function()
      -- The guest waits on stdin; without the default action it would run until "late" came.
      local code, out = sh("(sleep 2; echo late) | timeout --preserve-status -s INT 0.3 " .. WIPPY .. " run " .. C .. " cat")
      assert.same({ 130, "" }, { code, out })
    end)

    it("lists commands, hashes files, and answers --help and --version", function()
      local code, out = sh(WIPPY .. " list" .. reg())
      assert.equals(0, code)
      assert.equals("add\nc-cmd            the C test command\ndescribe\nrust-cmd         the Rust test command\nupper\n", out)
      code, out = sh(WIPPY .. " hash " .. C)
      assert.equals(0, code)
      assert.equals("sha256:" .. H.sha256(C) .. "  " .. C .. "\n", out)
      code, out = sh(WIPPY .. " --version")
      assert.same({ 0, "wippy " .. wippy.version .. "\n" }, { code, out })
      code, out = sh(WIPPY .. " --help")
      assert.equals(0, code)
      assert.matches("usage: wippy run", out, 1, true)
      local bad, _, err = sh(WIPPY .. " run --bogus x.wasm")
      assert.equals(2, bad)
      assert.matches("unknown option --bogus", err, 1, true)
    end)
  end)

  describe("processes run to completion", function()
    local process = wippy.process
    local ASYNC = CWD .. "/build/guests/async_guest.wasm"
    local system = require("system")
    local function now() return system.monotime() * 1000 end

    setup(function()
      assert(registry:add({ id = "proc:sleep", kind = "process.wasm", path = ASYNC, method = "sleep-ms",
                            imports = { "wasi:clocks", "wasi:cli" } }))
      assert(registry:add({ id = "proc:c", kind = "process.wasm", path = C, imports = { "wasi1" } }))
    end)

    it("spawn a method with converted arguments and wait for its result", function()
      local pid = process.spawn("proc:sleep", 20)
      assert.is_string(pid)
      local r, err = process.wait(pid)
      assert.is_nil(err)
      assert.is_true(r >= 20)
      -- A result is delivered once.
      local again, aerr = process.wait(pid)
      assert.is_nil(again)
      assert.equals("NOT_FOUND", aerr:kind())
    end)

    it("give a command's exit code as its result, its arguments as its argv", function()
      assert.equals(5, process.wait(process.spawn("proc:c", "exit", "5")))
      assert.equals(0, process.wait(process.spawn("proc:c")))
    end)

    it("report exits in the order they happen, waiting for the running ones", function()
      -- Margins of 200 ms: under valgrind (make memcheck) a spawn can take tens of ms.
      local a = process.spawn("proc:sleep", 420)
      local b = process.spawn("proc:sleep", 10)
      local c = process.spawn("proc:sleep", 210)
      local order = {}
      for ev in process.events() do
        assert.equals("EXIT", ev.kind)
        assert.is_nil(ev.result.error)
        order[#order + 1] = ev.from
      end
      assert.same({ b, c, a }, order)
    end)

    it("time out a wait, and terminate a process (CANCELED)", function()
      local pid = process.spawn("proc:sleep", 5000)
      local t0 = now()
      local r, err = process.wait(pid, 50)
      assert.is_nil(r)
      assert.equals("TIMEOUT", err:kind())
      assert.is_true(now() - t0 < 1000)
      assert.is_true(process.terminate(pid))
      r, err = process.wait(pid)
      assert.is_nil(r)
      assert.equals("CANCELED", err:kind())
      assert.is_false(process.terminate("pid:none"))
    end)

    it("wait by yielding in tasks: processes overlap", function()
      local t0 = now()
      local results = wippy.run(function()
        local pids = {}
        for i = 1, 4 do pids[i] = process.spawn("proc:sleep", 200) end
        local order = {}
        for ev in process.events() do order[#order + 1] = ev.result.value end
        return order
      end)
      assert.equals(4, #results)
      assert.is_true(now() - t0 < 700, "4 processes of 200 ms took " .. (now() - t0) .. " ms")
    end)

    it("refuse what is not a process, and arguments of the wrong type", function()
      local pid, err = process.spawn("proc:nope")
      assert.is_nil(pid)
      assert.equals("NOT_FOUND", err:kind())
      assert(registry:add({ id = "proc:fn", kind = "function.wat", source = '(module (func (export "f")))' }))
      pid, err = process.spawn("proc:fn")
      assert.is_nil(pid)
      assert.equals("proc:fn: not a process.wasm entry (functions are called with funcs.call)", err:message())
      pid, err = process.spawn("proc:sleep", "soon")
      assert.is_nil(pid)
      assert.equals("proc:sleep: argument 1 (ms): expected u32, got string", err:message())
    end)
  end)
end)
