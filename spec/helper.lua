-- Shared by the specs: loaded with dofile("spec/helper.lua").
local wippy = require("wippy")
local H = {}

H.wippy = wippy
H.funcs = wippy.funcs
H.registry = wippy.registry
H.is_luajit = type(jit) == "table"
-- Lua 5.1 and 5.2: every number is a double (no integer subtype, no 64-bit cdata); 64-bit
-- results beyond 2^53 come back as the nearest double (docs/lua-api.md, "Lua versions").
H.doubles = not H.is_luajit and math.type == nil
-- The interpreter running the specs, for child processes of the same VM.
H.VM = H.is_luajit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))

-- Memory and a `cabi_realloc` that bump-allocates from 1024 and grows memory as needed, for WAT
-- modules called through the canonical ABI (`H.ECHO_WAT`, spec modules with strings in `wit`).
H.BUMP_ALLOC = [[
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (block $fits
      (br_if $fits (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
      (br_if $fits (i32.ne (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))) (i32.const -1)))
      unreachable)
    (if (local.get $old) (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_size))))
    (local.get $ptr))
]]

-- A core module whose `echo` returns its (pointer, length) argument through the return area:
-- under the canonical ABI that echoes any `list<T>` or `string`, whatever T is, because the
-- lifted value is read back from the memory the host just wrote. cabi_realloc is a bump
-- allocator that grows memory as needed.
H.ECHO_WAT = [[
(module
]] .. H.BUMP_ALLOC .. [[
  (func (export "echo") (param $p i32) (param $n i32) (result i32)
    (i32.store (i32.const 16) (local.get $p))
    (i32.store offset=4 (i32.const 16) (local.get $n))
    (i32.const 16))
  (func (export "cabi_post_echo") (param i32)
    (global.set $heap (i32.const 1024))))
]]

-- Registers `id` as the echo module with the given WIT; fails the test on error.
function H.add_echo(id, wit)
  local ok, err = wippy.registry:add({ id = id, kind = "function.wat", source = H.ECHO_WAT, wit = wit, method = "echo" })
  assert(ok, tostring(err))
end

-- Registers an entry; fails the test on error.
function H.add(entry)
  local ok, err = wippy.registry:add(entry)
  assert(ok, tostring(err))
end

-- Registers an inline WAT function; fails the test on error.
function H.add_wat(id, source, fields)
  local entry = { id = id, kind = "function.wat", source = source }
  for k, v in pairs(fields or {}) do entry[k] = v end
  local ok, err = wippy.registry:add(entry)
  assert(ok, tostring(err))
end

-- Calls and returns the error object, asserting the call failed.
function H.call_err(target, ...)
  local r, err = wippy.funcs.call(target, ...)
  assert(r == nil, "expected a failure, got " .. tostring(r))
  assert(wippy.errors.is(err), "expected an error object, got " .. tostring(err))
  return err
end

-- The output of a shell command.
function H.shell(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

-- The directory the specs run in (the repository root).
H.CWD = H.shell("pwd"):match("^(.-)%s*$")

-- A fresh directory under /tmp.
function H.tmpdir()
  local name = os.tmpname()
  os.remove(name)
  assert(os.execute("mkdir -p '" .. name .. "'"))
  return name
end

function H.write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

function H.sha256(path)
  local p = assert(io.popen("sha256sum '" .. path .. "'"))
  local out = p:read("*a")
  p:close()
  return (out:match("^(%x+)"))
end

return H
