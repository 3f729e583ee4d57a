-- The checks besides funcs.call (SPEC §5.4): fs.get on each mount when a call starts,
-- http.request on each outbound URL and socket.connect on each address while the guest runs —
-- each both denying and allowing, under the caller's scope, and strict mode. Network denials
-- reach the guest as errors; the fs.get denial fails the call. Uses the caps and async test
-- guests and the local servers of spec/fixtures/servers.py.
local H = dofile("spec/helper.lua")
local wippy, funcs = H.wippy, H.funcs
local security = wippy.security

local CAPS = H.CWD .. "/build/guests/caps_guest.wasm"
local ASYNC = H.CWD .. "/build/guests/async_guest.wasm"

local add = H.add

local function policy(id, effect, actions, resources)
  return { id = id, actions = actions, resources = resources, effect = effect }
end

-- An executor for actor `who` whose scope allows every call and adds `policies`.
local function as(who, policies)
  local all = { policy("calls", "allow", { "funcs.call" }, { "chk:*" }) }
  for _, p in ipairs(policies or {}) do all[#all + 1] = p end
  return funcs.new():with_actor(security.new_actor(who)):with_scope(security.new_scope(all))
end

describe("the fs.get, http.request and socket.connect checks", function()
  local root, server, ports

  setup(function()
    root = H.tmpdir()
    assert(os.execute("mkdir -p '" .. root .. "/data' '" .. root .. "/other'"))
    H.write(root .. "/data/note.txt", "in data")
    H.write(root .. "/other/note.txt", "in other")
    add({ id = "chk:data", kind = "fs.directory", directory = root .. "/data" })
    add({ id = "chk:other", kind = "fs.directory", directory = root .. "/other" })
    add({ id = "chk:read", kind = "function.wasm", path = CAPS, method = "read-file", imports = { "wasi:filesystem" },
          wasi = { mounts = { { fs = "chk:data", guest = "/data" }, { fs = "chk:other", guest = "/other" } } } })
    local NET = { "wasi:http", "wasi:sockets", "wasi:clocks", "wasi:cli" }
    add({ id = "chk:http", kind = "function.wasm", path = ASYNC, method = "http-request", imports = NET,
          wasi = { allowed_hosts = { "127.0.0.1:*" } } })
    add({ id = "chk:tcp", kind = "function.wasm", path = ASYNC, method = "tcp-roundtrip", imports = NET,
          wasi = { allowed_hosts = { "127.0.0.1:*" } } })
    server = assert(io.popen("exec python3 spec/fixtures/servers.py --parent $PPID", "r"))
    ports = {}
    for _ = 1, 3 do
      local k, v = assert(server:read("*l"), "spec/fixtures/servers.py did not start"):match("^(%a+) (%d+)$")
      ports[k] = tonumber(v)
    end
  end)

  teardown(function()
    if ports and ports.pid then os.execute("kill " .. ports.pid .. " 2>/dev/null") end
    if server then server:close() end
    if root then os.execute("rm -rf '" .. root .. "'") end
    wippy.configure({ strict = false })
  end)

  local function url(path) return ("http://127.0.0.1:%d%s"):format(ports.http, path) end

  describe("fs.get", function()
    it("is checked on each mount of the entry when the call starts", function()
      local ex = as("user:1", { policy("no-other", "deny", { "fs.get" }, { "chk:other" }) })
      local r, err = ex:call("chk:read", "/data/note.txt")
      assert.is_nil(r)
      assert.equals("PERMISSION_DENIED", err:kind())
      assert.equals("chk:read: fs.get is not allowed on chk:other (mounted at /other) for actor user:1", err:message())
      -- The same from a task.
      local tr, terr = wippy.run(function() return ex:call("chk:read", "/data/note.txt") end)
      assert.is_nil(tr)
      assert.equals("PERMISSION_DENIED", terr:kind())
    end)

    it("allows what the scope allows (and, without a scope, everything)", function()
      local ex = as("user:1", { policy("fs", "allow", { "fs.get" }, { "chk:data", "chk:other" }) })
      assert.equals("in other", ex:call("chk:read", "/other/note.txt"))
      assert.equals("in data", funcs.call("chk:read", "/data/note.txt"))
    end)

    it("denies a mount no policy allows in strict mode", function()
      wippy.configure({ strict = true })
      local r, err = as("user:1", { policy("fs", "allow", { "fs.get" }, { "chk:data" }) }):call("chk:read", "/data/note.txt")
      assert.is_nil(r)
      assert.equals("chk:read: fs.get is not allowed on chk:other (mounted at /other) for actor user:1", err:message())
      local all = as("user:1", { policy("fs", "allow", { "fs.*" }, { "chk:*" }) })
      assert.equals("in data", all:call("chk:read", "/data/note.txt"))
      wippy.configure({ strict = false })
    end)
  end)

  describe("http.request", function()
    it("is checked on each URL: a denial is an error inside the guest", function()
      local ex = as("user:2", { policy("no-secret", "deny", { "http.request" }, { "http://127.0.0.1:*/secret*" }) })
      local status, body = ex:call("chk:http", "GET", url("/open"), {}, nil)
      assert.equals(200, status.status)
      local r, err = ex:call("chk:http", "GET", url("/secret/x"), {}, nil)
      assert.is_nil(r)
      assert.equals("string", type(err))
      assert.matches("HttpRequestDenied", err, 1, true)
      local tr, terr = wippy.run(function() return ex:call("chk:http", "GET", url("/secret/y"), {}, nil) end)
      assert.is_nil(tr)
      assert.matches("HttpRequestDenied", terr, 1, true)
    end)

    it("allows what the scope allows in strict mode, and denies the rest", function()
      wippy.configure({ strict = true })
      local ex = as("user:2", { policy("open", "allow", { "http.request" }, { "http://127.0.0.1:*/open*" }) })
      assert.equals(200, ex:call("chk:http", "GET", url("/open"), {}, nil).status)
      local r, err = ex:call("chk:http", "GET", url("/other"), {}, nil)
      assert.is_nil(r)
      assert.matches("HttpRequestDenied", err, 1, true)
      wippy.configure({ strict = false })
    end)
  end)

  describe("socket.connect", function()
    it("is checked on each address: a denial is an error inside the guest", function()
      local addr = ("127.0.0.1:%d"):format(ports.tcp)
      local deny = as("user:3", { policy("no-tcp", "deny", { "socket.connect" }, { addr }) })
      local r, err = deny:call("chk:tcp", addr, "x")
      assert.is_nil(r)
      assert.equals("string", type(err))
      assert.matches("^connect 127%.0%.0%.1:" .. ports.tcp .. ": ", err)
      local allow = as("user:3", { policy("tcp", "allow", { "socket.connect" }, { "127.0.0.1:*" }) })
      assert.equals("ping", allow:call("chk:tcp", addr, "ping"))
      local tr = wippy.run(function() return allow:call("chk:tcp", addr, "pong") end)
      assert.equals("pong", tr)
      -- The same instance, called again under the denying scope: the check follows the caller.
      assert.is_nil((deny:call("chk:tcp", addr, "x")))
    end)
  end)
end)
