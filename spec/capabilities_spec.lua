-- Capabilities (SPEC §1.3, §5.1, §5.3): each entry reaches exactly what its `imports` and `wasi`
-- grant. Real guests: a Rust wasm32-wasip2 component using std::fs, std::env and args
-- (tests/guests/caps), a C program built with clang + wasi-libc for preview 1
-- (tests/guests/c-caps), and WAT modules importing wasi_snapshot_preview1.
local H = dofile("spec/helper.lua")
local wippy, funcs, registry = H.wippy, H.funcs, H.registry

local CWD = H.CWD
local CAPS = CWD .. "/build/guests/caps_guest.wasm"
local C_CAPS = CWD .. "/build/guests/c_caps.wasm"

local function add(entry)
  local ok, err = registry:add(entry)
  assert(ok, tostring(err))
  return ok, err
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- A directory tree: data/ (hello.txt, sub/, a symlink out and one inside), ro/, and a secret
-- outside both.
local function tree()
  local root = H.tmpdir()
  assert(os.execute(("mkdir -p '%s/data/sub' '%s/ro' '%s/outside'"):format(root, root, root)))
  H.write(root .. "/data/hello.txt", "hello")
  H.write(root .. "/data/sub/deep.txt", "deep")
  H.write(root .. "/ro/ro.txt", "read only")
  H.write(root .. "/outside/secret.txt", "secret")
  assert(os.execute(("ln -s ../outside/secret.txt '%s/data/escape'"):format(root)))
  assert(os.execute(("ln -s '%s/outside' '%s/data/escape_dir'"):format(root, root)))
  assert(os.execute(("ln -s hello.txt '%s/data/inside'"):format(root)))
  return root
end

-- The error object of a failed call.
local function failure(r, err)
  assert.is_nil(r)
  assert.is_true(wippy.errors.is(err), "expected an error object, got " .. tostring(err))
  return err
end

describe("capabilities", function()
  local root

  setup(function()
    assert(read(CAPS), CAPS .. " is missing: build the guests first (bash scripts/guests.sh build/guests)")
    root = tree()
    add({ id = "caps:data", kind = "fs.directory", directory = root .. "/data" })
    add({ id = "caps:ro", kind = "fs.directory", directory = root .. "/ro" })
    add({ id = "caps:greeting", kind = "env.variable", variable = "WIPPY_CAPS_GREETING", default = "hi" })
    add({ id = "caps:home", kind = "env.variable", variable = "HOME" })
    add({ id = "caps:unset", kind = "env.variable", variable = "WIPPY_CAPS_SURELY_UNSET" })
    add({ id = "caps:add", kind = "function.wasm", path = CAPS, method = "add" })
    local FS = {
      imports = { "wasi:filesystem" },
      wasi = { mounts = { { fs = "caps:ro", guest = "/ro", read_only = true }, { fs = "caps:data", guest = "/data" } } },
    }
    for _, m in ipairs({ "read-file", "write-file", "list-dir" }) do
      add({ id = "caps:fs_" .. m, kind = "function.wasm", path = CAPS, method = m, imports = FS.imports, wasi = FS.wasi })
    end
    local CLI = {
      imports = { "wasi:cli" },
      wasi = {
        args = { "caps", "--flag", "two words" },
        env = { { id = "caps:greeting", name = "GREETING" }, { id = "caps:home" }, { id = "caps:unset" } },
      },
    }
    for _, m in ipairs({ "get-env", "env-vars", "args", "say" }) do
      add({ id = "caps:cli_" .. m, kind = "function.wasm", path = CAPS, method = m, imports = CLI.imports, wasi = CLI.wasi })
    end
  end)

  teardown(function()
    if root then os.execute("rm -rf '" .. root .. "'") end
  end)

  describe("wasi.mounts", function()
    it("reads and writes files inside a mount", function()
      assert.equals("hello", funcs.call("caps:fs_read-file", "/data/hello.txt"))
      assert.equals("deep", funcs.call("caps:fs_read-file", "/data/sub/deep.txt"))
      assert.equals("read only", funcs.call("caps:fs_read-file", "/ro/ro.txt"))
      assert.equals("hello", funcs.call("caps:fs_read-file", "/data/inside"))
      assert.is_true(funcs.call("caps:fs_write-file", "/data/new.txt", "written"))
      assert.equals("written", read(root .. "/data/new.txt"))
      assert.same({ "escape", "escape_dir", "hello.txt", "inside", "new.txt", "sub" }, funcs.call("caps:fs_list-dir", "/data"))
    end)

    it("reaches nothing outside a mount: .., absolute host paths, symlinks out", function()
      for _, path in ipairs({
        "/data/../outside/secret.txt",
        "/data/sub/../../outside/secret.txt",
        root .. "/outside/secret.txt",
        "/etc/passwd",
        "/data/escape",
        "/data/escape_dir/secret.txt",
        "../outside/secret.txt",
      }) do
        local r, err = funcs.call("caps:fs_read-file", path)
        assert.is_nil(r, path .. " was readable")
        assert.equals("string", type(err), path)
      end
      local r, err = funcs.call("caps:fs_list-dir", "/data/escape_dir")
      assert.is_nil(r)
      assert.equals("string", type(err))
    end)

    it("does not write to a read-only mount", function()
      local r, err = funcs.call("caps:fs_write-file", "/ro/new.txt", "nope")
      assert.is_nil(r)
      assert.equals("string", type(err))
      assert.is_nil(read(root .. "/ro/new.txt"))
      r, err = funcs.call("caps:fs_write-file", "/ro/ro.txt", "overwritten")
      assert.is_nil(r)
      assert.equals("read only", read(root .. "/ro/ro.txt"))
    end)

    it("follows an fs.directory removed and added again", function()
      add({ id = "caps:gone", kind = "fs.directory", directory = root .. "/data" })
      add({ id = "caps:fs_gone", kind = "function.wasm", path = CAPS, method = "read-file",
        imports = { "wasi:filesystem" }, wasi = { mounts = { { fs = "caps:gone", guest = "/data" } } } })
      assert.equals("hello", funcs.call("caps:fs_gone", "/data/hello.txt"))
      assert.is_true(registry:remove("caps:gone"))
      local err = failure(funcs.call("caps:fs_gone", "/data/hello.txt"))
      assert.equals("UNAVAILABLE", err:kind())
      assert.matches("fs.directory caps:gone no longer exists", err:message(), 1, true)
      add({ id = "caps:gone", kind = "fs.directory", directory = root .. "/data" })
      assert.equals("hello", funcs.call("caps:fs_gone", "/data/hello.txt"))
    end)

    it("follows a reloaded fs.directory", function()
      local other = H.tmpdir()
      H.write(other .. "/hello.txt", "from the other directory")
      add({ id = "caps:data", kind = "fs.directory", directory = other })
      assert.equals("from the other directory", funcs.call("caps:fs_read-file", "/data/hello.txt"))
      add({ id = "caps:data", kind = "fs.directory", directory = root .. "/data" })
      assert.equals("hello", funcs.call("caps:fs_read-file", "/data/hello.txt"))
      os.execute("rm -rf '" .. other .. "'")
    end)

    it("fails with PERMISSION_DENIED when mounts are used without wasi:filesystem", function()
      local ok, warnings = add({ id = "caps:fs_undeclared", kind = "function.wasm", path = CAPS, method = "read-file",
        wasi = { mounts = { { fs = "caps:data", guest = "/data" } } } })
      assert.is_true(ok)
      assert.same({ 'caps:fs_undeclared: wasi.mounts has no effect without "wasi:filesystem" in imports' }, warnings)
      local err = failure(funcs.call("caps:fs_undeclared", "/data/hello.txt"))
      assert.equals("PERMISSION_DENIED", err:kind())
      assert.equals('caps:fs_undeclared: wasi:filesystem/preopens is not granted: add "wasi:filesystem" to imports', err:message())
    end)

    it("gives no directory to an entry without mounts", function()
      add({ id = "caps:fs_none", kind = "function.wasm", path = CAPS, method = "read-file" })
      local r, err = funcs.call("caps:fs_none", "/data/hello.txt")
      assert.is_nil(r)
      assert.equals("string", type(err))
    end)
  end)

  describe("wasi.env, wasi.args and wasi.cwd", function()
    it("gives exactly the mapped variables, from the host or their default", function()
      assert.equals("hi", funcs.call("caps:cli_get-env", "GREETING"))
      assert.equals(os.getenv("HOME"), funcs.call("caps:cli_get-env", "HOME"))
      assert.is_nil(funcs.call("caps:cli_get-env", "WIPPY_CAPS_SURELY_UNSET"))
      assert.is_nil(funcs.call("caps:cli_get-env", "PATH"))
      assert.is_nil(funcs.call("caps:cli_get-env", "WIPPY_CAPS_GREETING"))
      assert.same({ { "GREETING", "hi" }, { "HOME", os.getenv("HOME") } }, funcs.call("caps:cli_env-vars"))
    end)

    it("reads the host's variables at call time", function()
      if not H.is_luajit then return end -- only LuaJIT's ffi can set the process environment here
      local ffi = require("ffi")
      pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite); int unsetenv(const char *name);")
      ffi.C.setenv("WIPPY_CAPS_GREETING", "from the host", 1)
      assert.equals("from the host", funcs.call("caps:cli_get-env", "GREETING"))
      ffi.C.setenv("WIPPY_CAPS_GREETING", "", 1)
      assert.equals("hi", funcs.call("caps:cli_get-env", "GREETING"))
      ffi.C.unsetenv("WIPPY_CAPS_GREETING")
    end)

    it("fails a call whose required variable is missing, naming it", function()
      add({ id = "caps:cli_required", kind = "function.wasm", path = CAPS, method = "get-env", imports = { "wasi:cli" },
        wasi = { env = { { id = "caps:unset", required = true } } } })
      local err = failure(funcs.call("caps:cli_required", "X"))
      assert.equals("UNAVAILABLE", err:kind())
      assert.equals("caps:cli_required: required wasi env variable not found: caps:unset", err:message())
    end)

    it("follows a reloaded env.variable", function()
      add({ id = "caps:greeting", kind = "env.variable", variable = "WIPPY_CAPS_GREETING", default = "hello again" })
      assert.equals("hello again", funcs.call("caps:cli_get-env", "GREETING"))
      add({ id = "caps:greeting", kind = "env.variable", variable = "WIPPY_CAPS_GREETING", default = "hi" })
      assert.equals("hi", funcs.call("caps:cli_get-env", "GREETING"))
    end)

    it("passes wasi.args as the whole argv, and none by default", function()
      assert.same({ "caps", "--flag", "two words" }, funcs.call("caps:cli_args"))
      add({ id = "caps:cli_noargs", kind = "function.wasm", path = CAPS, method = "args", imports = { "wasi:cli" } })
      assert.same({}, funcs.call("caps:cli_noargs"))
    end)

    it("reports wasi.cwd and opens relative paths under it", function()
      add({ id = "caps:cwd_initial", kind = "function.wasm", path = CAPS, method = "initial-cwd", imports = { "wasi:cli" },
        wasi = { cwd = "/data/sub" } })
      assert.equals("/data/sub", funcs.call("caps:cwd_initial"))
      add({ id = "caps:cwd_read", kind = "function.wasm", path = CAPS, method = "read-file",
        imports = { "wasi:cli", "wasi:filesystem" },
        wasi = { cwd = "/data/sub", mounts = { { fs = "caps:data", guest = "/data" } } } })
      assert.equals("deep", funcs.call("caps:cwd_read", "deep.txt"))
      assert.equals("hello", funcs.call("caps:cwd_read", "/data/hello.txt"))
      local r = funcs.call("caps:cwd_read", "../../outside/secret.txt")
      assert.is_nil(r)
    end)

    it("does not follow a symbolic link the guest made in the cwd's path", function()
      assert(os.execute(("mkdir -p '%s/data/w' && rm -rf '%s/data/w' && ln -s ../outside '%s/data/w'"):format(root, root, root)))
      add({ id = "caps:cwd_link", kind = "function.wasm", path = CAPS, method = "read-file",
        imports = { "wasi:cli", "wasi:filesystem" },
        wasi = { cwd = "/data/w", mounts = { { fs = "caps:data", guest = "/data" } } } })
      local r, err = funcs.call("caps:cwd_link", "secret.txt")
      assert.is_nil(r)
      assert.is_true(wippy.errors.is(err), "expected an error object, got " .. tostring(err))
      assert.equals("UNAVAILABLE", err:kind())
      assert.matches("cannot open wasi.cwd /data/w", err:message(), 1, true)
      os.remove(root .. "/data/w")
    end)

    it("denies wasi:cli to an entry that does not import it", function()
      add({ id = "caps:cli_undeclared", kind = "function.wasm", path = CAPS, method = "args", wasi = { args = { "x" } } })
      local err = failure(funcs.call("caps:cli_undeclared"))
      assert.equals("PERMISSION_DENIED", err:kind())
      assert.matches('^caps:cli_undeclared: wasi:cli/environment is not granted: add "wasi:cli" to imports$', err:message())
    end)
  end)

  describe("undeclared interfaces", function()
    it("link, and fail when called with PERMISSION_DENIED naming the profile to add", function()
      add({ id = "caps:random", kind = "function.wasm", path = CAPS, method = "random-u64" })
      local err = failure(funcs.call("caps:random"))
      assert.equals("PERMISSION_DENIED", err:kind())
      assert.equals('caps:random: wasi:random/random is not granted: add "wasi:random" to imports', err:message())
      add({ id = "caps:clock", kind = "function.wasm", path = CAPS, method = "now-ms" })
      err = failure(funcs.call("caps:clock"))
      assert.equals('caps:clock: wasi:clocks/wall-clock is not granted: add "wasi:clocks" to imports', err:message())
      -- The same binary with the profile: its own linking.
      add({ id = "caps:random_ok", kind = "function.wasm", path = CAPS, method = "random-u64", imports = { "wasi:random" } })
      local n = funcs.call("caps:random_ok")
      assert.is_true(type(n) == "number" or type(n) == "cdata", "a u64, got " .. type(n))
      assert.equals("PERMISSION_DENIED", failure(funcs.call("caps:random")):kind())
      -- A function using no WASI runs without any profile.
      assert.equals(5, funcs.call("caps:add", 2, 3))
    end)

    it("of wippy:actor on a function load with a warning (actors are processes)", function()
      local WAT = [[(component
        (import "wippy:actor/process@0.1.0" (instance $f (export "self" (func (result string)))))
        (core module $m (func (export "f") (result i32) i32.const 1))
        (core instance $i (instantiate $m))
        (func (export "f") (result s32) (canon lift (core func $i "f"))))]]
      local ok, warnings = registry:add({ id = "caps:actor", kind = "function.wat", source = WAT, imports = { "wippy:actor" } })
      assert.is_true(ok, tostring(warnings))
      assert.same({ 'caps:actor: "wippy:actor" is for process.wasm entries (actors run with process.spawn): a function\'s calls of wippy:actor/process fail' }, warnings)
      assert.equals(1, funcs.call("caps:actor"))
    end)

    it("deny inside tasks and futures too", function()
      local r, err = wippy.run(function() return funcs.call("caps:random") end)
      assert.equals("PERMISSION_DENIED", failure(r, err):kind())
      local fut = funcs.async("caps:random")
      assert.equals("PERMISSION_DENIED", failure(fut:result()):kind())
    end)

    it("explain a guest panic: the message in the error, stderr in the details", function()
      add({ id = "caps:fail", kind = "function.wasm", path = CAPS, method = "fail", imports = { "wasi:cli" } })
      local err = failure(funcs.call("caps:fail", "the disk is full"))
      assert.equals("INTERNAL", err:kind())
      assert.equals("trap", err:details().reason)
      assert.matches("^caps:fail: wasm trap: .*%(guest panicked: the disk is full%)$", tostring(err))
      local stderr = err:details().stderr
      assert.matches("^about to fail\n", stderr)
      assert.matches("panicked at", stderr, 1, true)
      assert.is_true(#stderr <= 2048)
      -- The next call's error holds only what that call wrote.
      err = failure(funcs.call("caps:fail", "second"))
      assert.matches("(guest panicked: second)", tostring(err), 1, true)
      assert.is_nil(err:details().stderr:find("the disk is full", 1, true))
      -- A trap without output has no stderr.
      assert.is_nil(failure(funcs.call("caps:random")):details())
    end)

    it("end the call with reason exit when the guest exits", function()
      add({ id = "caps:quit", kind = "function.wasm", path = CAPS, method = "quit", imports = { "wasi:cli" } })
      local err = failure(funcs.call("caps:quit", 0))
      assert.equals("INTERNAL", err:kind())
      assert.equals("exit", err:details().reason)
      assert.equals(0, err:details().code)
      assert.equals(5, funcs.call("caps:add", 2, 3))
    end)
  end)

  describe("wasi.allowed_hosts for sockets", function()
    local server, port, pid

    setup(function()
      server = assert(io.popen("exec python3 spec/fixtures/servers.py --parent $PPID", "r"))
      local ports = {}
      for _ = 1, 3 do
        local k, v = assert(server:read("*l")):match("^(%a+) (%d+)$")
        ports[k] = tonumber(v)
      end
      port, pid = ports.tcp, ports.pid
      local NET = { "wasi:sockets" }
      add({ id = "caps:tcp_name", kind = "function.wasm", path = CAPS, method = "tcp-connect", imports = NET,
        wasi = { allowed_hosts = { "localhost:" .. port } } })
      add({ id = "caps:tcp_name_literal", kind = "function.wasm", path = CAPS, method = "tcp-connect", imports = NET,
        wasi = { allowed_hosts = { "localhost:" .. port } } })
      add({ id = "caps:tcp_ip", kind = "function.wasm", path = CAPS, method = "tcp-connect", imports = NET,
        wasi = { allowed_hosts = { "127.0.0.1:*" } } })
      add({ id = "caps:tcp_other", kind = "function.wasm", path = CAPS, method = "tcp-connect", imports = NET,
        wasi = { allowed_hosts = { "api.example.com:*" } } })
      add({ id = "caps:tcp_default", kind = "function.wasm", path = CAPS, method = "tcp-connect", imports = NET })
      add({ id = "caps:tcp_undeclared", kind = "function.wasm", path = CAPS, method = "tcp-connect" })
    end)

    teardown(function()
      if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
      if server then server:close() end
    end)

    it("allows a connect to an address a host-name pattern resolved to", function()
      assert.equals("127.0.0.1:" .. port, funcs.call("caps:tcp_name", "localhost", port))
      assert.equals("127.0.0.1:" .. port, funcs.call("caps:tcp_ip", "127.0.0.1", port))
      assert.equals("127.0.0.1:" .. port, funcs.call("caps:tcp_ip", "localhost", port))
    end)

    it("denies a host that is not allowed, inside the guest", function()
      for _, id in ipairs({ "caps:tcp_other", "caps:tcp_default" }) do
        local r, err = funcs.call(id, "localhost", port)
        assert.is_nil(r)
        assert.matches("access%-denied", err)
      end
      local r, err = funcs.call("caps:tcp_name", "localhost", port + 1)
      assert.is_nil(r)
      assert.matches("access%-denied", err)
      -- An address literal is not the allowed name (until the guest resolved that name to it).
      r, err = funcs.call("caps:tcp_name_literal", "127.0.0.1", port)
      assert.is_nil(r)
      assert.matches("access%-denied", err)
    end)

    it("denies sockets to an entry without wasi:sockets", function()
      local err = failure(funcs.call("caps:tcp_undeclared", "localhost", port))
      assert.equals("PERMISSION_DENIED", err:kind())
      assert.matches('is not granted: add "wasi:sockets" to imports$', err:message())
    end)
  end)

  describe("WASI preview 1", function()
    local C = "caps:c_"

    local function add_c(name, method, fields)
      local entry = { id = C .. name, kind = "function.wasm", path = C_CAPS, method = method }
      for k, v in pairs(fields or {}) do entry[k] = v end
      return add(entry)
    end

    setup(function()
      assert(read(C_CAPS), C_CAPS .. " is missing: build the guests first")
      local wasi = {
        args = { "c-caps", "/data/hello.txt", "/data/c.txt", "written by C", "/ro/ro.txt", "GREETING", "HOME",
          "/data/../outside/secret.txt", "/data/escape", root .. "/outside/secret.txt", "/ro/c.txt", "deep.txt" },
        env = { { id = "caps:greeting", name = "GREETING" } },
        mounts = { { fs = "caps:data", guest = "/data" }, { fs = "caps:ro", guest = "/ro", read_only = true } },
        cwd = "/data/sub",
      }
      for _, m in ipairs({ "argc", "read_file", "write_file", "env_len", "env_count", "first_byte", "quit", "cwd_read" }) do
        add_c(m, m, { imports = { "wasi1" }, wasi = wasi })
      end
    end)

    it("runs a C program with its args, env and mounts", function()
      assert.equals(12, funcs.call(C .. "argc"))
      assert.equals(5, funcs.call(C .. "read_file", 1))
      assert.equals(string.byte("h"), funcs.call(C .. "first_byte", 1))
      assert.equals(9, funcs.call(C .. "read_file", 4))
      assert.equals(12, funcs.call(C .. "write_file", 2, 3))
      assert.equals("written by C", read(root .. "/data/c.txt"))
      assert.equals(2, funcs.call(C .. "env_len", 5))
      assert.equals(-1, funcs.call(C .. "env_len", 6))
      assert.equals(1, funcs.call(C .. "env_count"))
      assert.equals(4, funcs.call(C .. "cwd_read", 11))
    end)

    it("reaches nothing outside its mounts and writes nothing to a read-only one", function()
      for _, i in ipairs({ 7, 8, 9 }) do
        local n = funcs.call(C .. "read_file", i)
        assert.is_true(n < 0, "argv[" .. i .. "] gave " .. tostring(n))
      end
      assert.is_true(funcs.call(C .. "write_file", 10, 3) < 0)
      assert.is_nil(read(root .. "/ro/c.txt"))
    end)

    it("ends the call with reason exit and the code on proc_exit", function()
      local err = failure(funcs.call(C .. "quit", 3))
      assert.equals("INTERNAL", err:kind())
      assert.equals("exit", err:details().reason)
      assert.equals(3, err:details().code)
      assert.equals(12, funcs.call(C .. "argc"))
    end)

    it("denies preview 1 to a core module without wasi1", function()
      add_c("undeclared", "argc")
      local err = failure(funcs.call(C .. "undeclared"))
      assert.equals("PERMISSION_DENIED", err:kind())
      assert.matches('wasi_snapshot_preview1 is not granted: add "wasi1" to imports', err:message(), 1, true)
    end)

    it("gives a WAT module importing preview 1 the same settings", function()
      local WAT = [[
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "argc") (result i32)
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (i32.load (i32.const 0)))
  (func (export "envc") (result i32)
    (drop (call $env (i32.const 0) (i32.const 4)))
    (i32.load (i32.const 0)))
  (func (export "leave") (param i32) (call $exit (local.get 0))))]]
      for _, m in ipairs({ "argc", "envc", "leave" }) do
        H.add_wat("caps:wat_" .. m, WAT, { method = m, imports = { "wasi1" },
          wasi = { args = { "a", "b", "c" }, env = { { id = "caps:greeting" } } } })
      end
      assert.equals(3, funcs.call("caps:wat_argc"))
      assert.equals(1, funcs.call("caps:wat_envc"))
      local err = failure(funcs.call("caps:wat_leave", 7))
      assert.equals("exit", err:details().reason)
      assert.equals(7, err:details().code)
      H.add_wat("caps:wat_denied", WAT, { method = "argc" })
      assert.equals("PERMISSION_DENIED", failure(funcs.call("caps:wat_denied")):kind())
      -- Tasks take the asynchronous linking.
      assert.equals(3, wippy.run(function() return funcs.call("caps:wat_argc") end))
    end)

    it("serves a core module with strings in its wit through the preview-1 adapter", function()
      local WAT = [[
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
]] .. H.BUMP_ALLOC .. [[
  (func (export "count") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (i32.add (i32.load (i32.const 0)) (local.get $len))))]]
      local WIT = "count: func(text: string) -> u32;"
      local ok, warnings = H.registry:add({ id = "caps:wat_string", kind = "function.wat", source = WAT, wit = WIT,
        imports = { "wasi1" }, wasi = { args = { "a", "b" } } })
      assert.is_true(ok, tostring(warnings))
      assert.equals(5, funcs.call("caps:wat_string", "xyz"))
      assert.equals(5, wippy.run(function() return funcs.call("caps:wat_string", "xyz") end))
      H.add_wat("caps:wat_string_denied", WAT, { wit = WIT })
      local err = failure(funcs.call("caps:wat_string_denied", "xyz"))
      assert.equals("PERMISSION_DENIED", err:kind())
      assert.matches('wasi_snapshot_preview1 is not granted: add "wasi1" to imports', err:message(), 1, true)
    end)
  end)

  describe("load warnings", function()
    it("name each setting that cannot take effect, with file and line", function()
      local dir = H.tmpdir()
      H.write(dir .. "/_index.yaml", ([[
version: "1.0"
namespace: warn
entries:
  - name: files
    kind: fs.directory
    directory: %s
  - name: key
    kind: env.variable
    variable: HOME
  - name: nothing
    kind: function.wasm
    path: %s
    method: add
    wasi:
      args: ["x"]
      env:
        - id: key
      mounts:
        - fs: files
          guest: /data
      allowed_hosts: ["example.com"]
  - name: core
    kind: function.wat
    source: '(module (func (export "f")))'
    imports: [wasi:cli, funcs]
]]):format(root .. "/data", CAPS))
      local ok, warnings = wippy.load(dir)
      assert.is_true(ok, tostring(warnings))
      local file = dir .. "/_index.yaml"
      assert.same({
        file .. ':18: warn:nothing: wasi.mounts has no effect without "wasi:filesystem" in imports',
        file .. ':16: warn:nothing: wasi.env has no effect without "wasi:cli" in imports',
        file .. ':15: warn:nothing: wasi.args has no effect without "wasi:cli" in imports',
        file .. ':21: warn:nothing: wasi.allowed_hosts has no effect without "wasi:sockets" or "wasi:http" in imports',
        file .. ':25: warn:core: "wasi:cli" has no effect on a core module: core modules reach WASI through "wasi1"',
        file .. ':25: warn:core: "funcs" has no effect on a core module: only components import wippy:runtime/funcs',
      }, warnings)
      assert.equals(5, funcs.call("warn:nothing", 2, 3))
      -- A second load of the same files changes nothing and warns of nothing new.
      assert.is_true(wippy.load(dir))
      os.execute("rm -rf '" .. dir .. "'")
    end)

    it("name pool settings that do not apply to the pool's type", function()
      local dir = H.tmpdir()
      H.write(dir .. "/_index.yaml", ([[
version: "1.0"
namespace: pools
entries:
  - name: lazy
    kind: function.wasm
    path: %s
    method: add
    pool: { type: lazy, max_size: 4, workers: 2 }
  - name: static
    kind: function.wasm
    path: %s
    method: add
    pool:
      type: static
      workers: 2
      buffer: 16
      max_size: 8
  - name: adaptive
    kind: function.wasm
    path: %s
    method: add
    pool: { type: adaptive, max_size: 4 }
  - name: plain
    kind: function.wasm
    path: %s
    method: add
    pool: { type: static, workers: 2 }
  - name: lazybuf
    kind: function.wasm
    path: %s
    method: add
    pool: { type: lazy, buffer: 8 }
]]):format(CAPS, CAPS, CAPS, CAPS, CAPS))
      local ok, warnings = wippy.load(dir)
      assert.is_true(ok, tostring(warnings))
      local file = dir .. "/_index.yaml"
      table.sort(warnings)
      assert.same({
        file .. ':17: pools:static: pool.max_size has no effect on a static pool (workers bounds it)',
        file .. ':32: pools:lazybuf: pool.buffer has no effect on a lazy pool (max_size bounds it): only a static pool has a queue buffer',
        file .. ':8: pools:lazy: pool.workers has no effect on a lazy pool (max_size bounds it)',
      }, warnings)
      for _, id in ipairs({ "pools:lazy", "pools:static", "pools:adaptive", "pools:plain", "pools:lazybuf" }) do
        assert.equals(5, funcs.call(id, 2, 3))
      end
      os.execute("rm -rf '" .. dir .. "'")
    end)
  end)

  describe("Wippy's files", function()
    -- app/_index.yaml with an fs.directory `wasm` (app/wasm) and the entries given.
    local function write_index(dir, entries)
      H.write(dir .. "/app/_index.yaml", [[
version: "1.0"
namespace: app
entries:
  - name: wasm
    kind: fs.directory
    directory: app/wasm
]] .. entries)
    end

    it("load unchanged: fs with path /x.wasm, transport wasi-http", function()
      local dir = H.tmpdir()
      assert(os.execute(("mkdir -p '%s/app/wasm' && cp '%s' '%s/app/wasm/compute.wasm'"):format(dir, CAPS, dir)))
      write_index(dir, ([[
  - name: compute
    kind: function.wasm
    fs: app:wasm
    path: /compute.wasm
    hash: sha256:%s
    method: add
    transport: wasi-http
    pool:
      type: lazy
      max_size: 4
  - name: relative
    kind: function.wasm
    fs: wasm
    path: compute.wasm
    method: add
]]):format(H.sha256(CAPS)))
      local ok, err = wippy.load(dir)
      assert.is_true(ok, tostring(err))
      assert.equals(42, funcs.call("app:compute", 40, 2))
      assert.equals(7, funcs.call("app:relative", 3, 4))
      os.execute("rm -rf '" .. dir .. "'")
    end)

    it("keep path inside its directory", function()
      local dir = H.tmpdir()
      assert(os.execute(("mkdir -p '%s/app/wasm' && cp '%s' '%s/outside.wasm'"):format(dir, CAPS, dir)))
      write_index(dir, [[
  - name: escape
    kind: function.wasm
    fs: app:wasm
    path: ../../outside.wasm
    method: add
]])
      local ok, err = wippy.load(dir)
      assert.is_nil(ok)
      assert.matches(':10: app:escape: field "path": "../../outside.wasm" leaves the directory of fs entry app:wasm', tostring(err), 1, true)
      os.execute("rm -rf '" .. dir .. "'")
    end)
  end)
end)
