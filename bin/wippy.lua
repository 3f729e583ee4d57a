-- The `wippy` launcher (SPEC §7.4): runs registry commands and WASI program files with the
-- real stdin, stdout and stderr, and passes their exit codes through.
--
--   wippy run [-r DIR] NAME [ARGS...]          a command of the registry in DIR (default .)
--   wippy run [--dir HOST[::GUEST]]... [--env NAME[=VALUE]]... [--allow-host PATTERN]...
--             FILE.wasm [ARGS...]              a WASI program file, like `wasmtime run`
--   wippy list [-r DIR]                        the commands, with their `short` text
--   wippy hash FILE...                         sha256:<hex> of each file, for `hash:` fields
--   wippy --help | --version
--
-- `make build` installs it as build/bin/wippy (a shell wrapper setting the module path); the
-- rock installs it as `wippy`.
local wippy = require("wippy")

local USAGE = [==[
usage: wippy run [-r DIR] NAME [ARGS...]
       wippy run [--dir HOST[::GUEST]]... [--env NAME[=VALUE]]... [--allow-host PATTERN]... FILE.wasm [ARGS...]
       wippy list [-r DIR]
       wippy hash FILE...
       wippy --help | --version

run    runs the command NAME of the registry in DIR (default .), or a WASI program file (a
       preview-1 module exporting _start or a component exporting wasi:cli/run) with only the
       directories, variables and hosts given. NAME is a file when it ends in .wasm or has a /.
list   prints the registry's commands.
hash   prints sha256:<hex> for each file (for `hash:` fields).
]==]

local function die(msg, code)
  io.stderr:write("wippy: ", msg, "\n")
  os.exit(code or 2, false)
end

-- Exits without closing the Lua state (a guest's threads and caches need no teardown).
local function finish(code)
  io.stdout:flush()
  os.exit(code, false)
end

local function load_registry(dir)
  local ok, err = wippy.load(dir)
  if not ok then die("cannot load the registry in " .. dir .. ":\n" .. tostring(err), 2) end
end

-- `-r DIR` options before the rest; returns the directory and the index of the first other argument.
local function registry_dir(args, i)
  local dir = "."
  while args[i] == "-r" or args[i] == "--registry" do
    dir = args[i + 1] or die("-r needs a directory")
    i = i + 2
  end
  return dir, i
end

local function is_file(name) return name:match("%.wasm$") or name:find("/", 1, true) end

local function run_registry(dir, name, rest)
  load_registry(dir)
  -- No arguments: the command's own wasi.args, if it has them.
  local code, err = wippy.command(name, #rest > 0 and rest or nil, { sigint = "default" })
  if code == nil then die(tostring(err), 1) end
  finish(code)
end

local function run_file(opts, file, rest)
  local f = io.open(file, "rb")
  if not f then die("cannot open " .. file, 2) end
  f:close()
  local reg = wippy.registry
  local mounts = {}
  for i, d in ipairs(opts.dirs) do
    local host, guest = d:match("^(.-)::(.+)$")
    host = host or d
    guest = guest or d
    if not guest:match("^/") then guest = "/" .. guest end
    local ok, err = reg:add({ id = "run:dir" .. i, kind = "fs.directory", directory = host })
    if not ok then die("--dir " .. d .. ": " .. tostring(err)) end
    mounts[#mounts + 1] = { fs = "run:dir" .. i, guest = guest }
  end
  local env = {}
  for _, e in ipairs(opts.env) do
    local k, v = e:match("^([^=]+)=(.*)$")
    if k then env[k] = v else env[e] = os.getenv(e) end
  end
  local imports = { "wasi1", "wasi:cli", "wasi:clocks", "wasi:random", "wasi:io", "wasi:poll" }
  if #mounts > 0 then imports[#imports + 1] = "wasi:filesystem" end
  if #opts.hosts > 0 then
    imports[#imports + 1] = "wasi:sockets"
    imports[#imports + 1] = "wasi:http"
  end
  local name = file:match("([^/]+)$")
  local entry = { id = "run:program", kind = "process.wasm", path = file, imports = imports,
                  meta = { command = { name = name } }, wasi = { mounts = mounts } }
  if #opts.hosts > 0 then entry.wasi.allowed_hosts = opts.hosts end
  local ok, err = reg:add(entry)
  if not ok then die(file .. ": " .. tostring(err), 2) end
  local code, cerr = wippy.command(name, rest, { env = env, sigint = "default" })
  if code == nil then die(tostring(cerr), 1) end
  finish(code)
end

local function main(args)
  local cmd = args[1]
  if cmd == nil or cmd == "--help" or cmd == "-h" or cmd == "help" then
    io.stdout:write(USAGE)
    finish(cmd == nil and 2 or 0)
  elseif cmd == "--version" then
    io.stdout:write("wippy ", wippy.version, "\n")
    finish(0)
  elseif cmd == "hash" then
    if #args < 2 then die("hash needs at least one file") end
    local status = 0
    for i = 2, #args do
      local h, err = wippy.hash(args[i])
      if h then io.stdout:write(h, "  ", args[i], "\n") else io.stderr:write("wippy: ", err, "\n"); status = 1 end
    end
    finish(status)
  elseif cmd == "list" then
    local dir = registry_dir(args, 2)
    load_registry(dir)
    for _, c in ipairs(wippy.commands()) do
      io.stdout:write(c.short and ("%-16s %s\n"):format(c.name, c.short) or (c.name .. "\n"))
    end
    finish(0)
  elseif cmd == "run" then
    local opts = { dirs = {}, env = {}, hosts = {} }
    local dir, i = nil, 2
    while args[i] and args[i]:match("^%-") do
      local a = args[i]
      if a == "-r" or a == "--registry" then dir = args[i + 1] or die("-r needs a directory")
      elseif a == "--dir" then opts.dirs[#opts.dirs + 1] = args[i + 1] or die("--dir needs HOST[::GUEST]")
      elseif a == "--env" then opts.env[#opts.env + 1] = args[i + 1] or die("--env needs NAME[=VALUE]")
      elseif a == "--allow-host" then opts.hosts[#opts.hosts + 1] = args[i + 1] or die("--allow-host needs a pattern")
      elseif a == "--" then i = i + 1; break
      else die("unknown option " .. a .. "\n" .. USAGE) end
      i = i + 2
    end
    local name = args[i] or die("run needs a command name or a .wasm file\n" .. USAGE)
    local rest = {}
    for j = i + 1, #args do rest[#rest + 1] = args[j] end
    if is_file(name) then
      if dir then die("-r names a registry; a .wasm file runs alone") end
      run_file(opts, name, rest)
    else
      if #opts.dirs + #opts.env + #opts.hosts > 0 then
        die("--dir, --env and --allow-host are for .wasm files; a registry command has its own grant")
      end
      run_registry(dir or ".", name, rest)
    end
  else
    die("unknown command " .. tostring(cmd) .. "\n" .. USAGE)
  end
end

main(arg)
