---@meta wippy
-- LuaLS stubs for the wippy module: exactly the API that exists today (see docs/lua-api.md).
-- Add this directory to `workspace.library` in .luarc.json.

---An error object: what a failed call returns as its second value.
---@class wippy.Error
local Error = {}

---The kind of failure.
---@return "INVALID"|"NOT_FOUND"|"PERMISSION_DENIED"|"UNAVAILABLE"|"INTERNAL"|"CANCELED"|"TIMEOUT"
function Error:kind() end

---The message; call errors start with the entry ID (`app:div: wasm trap: ...`). Also `tostring(err)`.
---@return string
function Error:message() end

---Whether trying again may succeed (`UNAVAILABLE`, `TIMEOUT`).
---@return boolean
function Error:retryable() end

---For traps: `reason` is `"trap"`, `"memory_limit"`, `"stack_overflow"`, `"out_of_fuel"` or
---`"exit"`; `trap` is wasmtime's trap text; `code` is the exit code for `"exit"`; `stderr` the last
---(at most 2 KB) of what the guest wrote to stderr during the call. `nil` for other failures.
---@return { reason: string, trap: string, code: integer|nil, stderr: string|nil }|nil
function Error:details() end

---For traps: the WebAssembly backtrace, one `module!function` frame a line.
---@return string|nil
function Error:stack() end

---A handle to a resource of a component: what a function returning `own<R>` gives (see
---docs/lua-api.md#resources). Its other methods are the resource's WIT methods
---(`[method]R.name` exports), looked up by name when indexed: `r:increment(5)` calls
---`[method]counter.increment` and returns like `funcs.call` (the result(s), or `nil, err`).
---Passing it as an `own<R>` argument gives it to the guest (it is dropped afterwards); as
---`borrow<R>` it stays usable. `tostring(r)` is `"counter resource"` or
---`"counter resource (dropped)"`. Lua 5.4 `local r <close>` and garbage collection drop it too.
---@class wippy.Resource
---@field [string] fun(self: wippy.Resource, ...: any): ... the resource's WIT methods
local Resource = {}

---Drops the resource now (the guest's destructor runs). Later method calls return
---`nil, err` (`INVALID`: `ENTRY: R.method: the R resource was dropped`). Idempotent.
---@return true
function Resource:drop() end

---A registry entry as `registry:get` and `registry:entries` return it: `id`, `kind`, `meta`,
---and every other field of the entry as written (after `file://` substitution).
---@class wippy.Entry
---@field id string `namespace:name`
---@field kind string `function.wat`, `function.wasm`, `function.lua`, `fs.directory`, `env.variable`, `process.wasm`, or any other kind
---@field meta table free-form; `{}` when the entry has none
---@field [string] any the kind's fields (`source`, `wit`, `method`, `pool`, ...)

---A table for `registry:add`: the YAML form of an entry with `id` (or `namespace` + `name`).
---@class wippy.NewEntry
---@field id? string `namespace:name`
---@field namespace? string with `name`, instead of `id`
---@field name? string with `namespace`, instead of `id`
---@field kind string
---@field meta? table
---@field handler? function for `function.lua`: the function itself, instead of `source`/`method`
---@field [string] any the kind's fields

---A parameter or result of `registry:describe`.
---@class wippy.Param
---@field name string
---@field type string the type in WIT syntax (`s32`, `list<user>`, `borrow<counter>`)

---The signature of a WebAssembly function entry.
---@class wippy.Signature
---@field params wippy.Param[]
---@field results wippy.Param[]
---@field wit string `func(a: s32, b: s32) -> s32`

---@class wippy.EntryFilter
---@field kind? string exact kind
---@field namespace? string this namespace and every namespace below it

---The process-wide registry.
---@class wippy.Registry
local Registry = {}

---The entry with this ID, or nil.
---@param id string
---@return wippy.Entry|nil
function Registry:get(id) end

---Every entry (ordered by ID) that matches the filter.
---@param filter? wippy.EntryFilter
---@return wippy.Entry[]
function Registry:entries(filter) end

---Adds an entry, or replaces the entry with the same ID, after the same checks as `wippy.load`.
---@param entry wippy.NewEntry
---@return true|nil ok
---@return wippy.Error|string[]|nil err on failure, kind `INVALID`, one problem a line; on success, the warnings (`ENTRY: message`), or `nil`
function Registry:add(entry) end

---Removes an entry.
---@param id string
---@return true|nil ok
---@return wippy.Error|nil err kind `NOT_FOUND`: `entry not found: ID`
function Registry:remove(id) end

---The signature of a WebAssembly function entry.
---@param id string
---@return wippy.Signature|nil signature
---@return wippy.Error|nil err `NOT_FOUND`, or `INVALID` for entries without a WIT signature
function Registry:describe(id) end

---Calling registry entries; also `require("wippy.funcs")` and `require("funcs")`.
---@class wippy.funcs
local funcs = {}

---Calls a registry entry: a WebAssembly function (arguments and results converted by its WIT
---types) or a `function.lua` entry (passed unchanged). Returns the results, or `nil, err`.
---A top-level `result<T, E>` gives `value, nil` or `nil, e` (the converted payload). A function
---without results returns nothing. An `own<R>` result of a component is a `wippy.Resource`; on
---LuaJIT, 64-bit results beyond 2^53 are `int64_t`/`uint64_t` cdata. Raises only when `target`
---is not a string.
---@param target string `namespace:name`
---@param ... any arguments (a `wippy.Resource` for `own<R>`/`borrow<R>` parameters)
---@return any ...
function funcs.call(target, ...) end

---Starts a call and returns at once. In a task the call runs on a worker thread (or on the Lua
---thread for `inline` pools, until the guest waits).
---@param target string `namespace:name`
---@param ... any arguments
---@return wippy.Future|nil future
---@return wippy.Error|nil err for a bad or unknown target
function funcs.async(target, ...) end

---A new executor (immutable call options).
---@return wippy.Executor
function funcs.new() end

---The context values of the current call (`{}` outside any executor).
---@return table
function funcs.context() end

---A started call.
---@class wippy.Future
local Future = {}

---Waits (yielding in a task, blocking elsewhere); returns what `funcs.call` would.
---@return any ...
function Future:result() end
---@return boolean
function Future:is_complete() end
---@return boolean
function Future:is_canceled() end
---Interrupts the call; it finishes with kind `CANCELED`.
---@return true
function Future:cancel() end
---The error object of a finished, failed call.
---@return wippy.Error|nil
function Future:error() end

---Immutable call options; each `with_*` returns a new executor.
---@class wippy.Executor
local Executor = {}

---@param opts { timeout?: integer, record_keys?: "wit"|"snake" } `timeout`: milliseconds per call (`TIMEOUT` when exceeded); `record_keys`: result records keyed by WIT names or snake_case
---@return wippy.Executor
function Executor:with_options(opts) end
---Context values merged over the caller's (`funcs.context()` inside the calls it makes).
---@param values table
---@return wippy.Executor
function Executor:with_context(values) end
---Calls through the new executor carry this actor.
---@param actor wippy.Actor
---@return wippy.Executor
function Executor:with_actor(actor) end
---Calls through the new executor are checked against this scope.
---@param scope wippy.Scope
---@return wippy.Executor
function Executor:with_scope(scope) end
---Like `funcs.call`, with this executor's options.
---@param target string
---@return any ...
function Executor:call(target, ...) end
---Like `funcs.async`, with this executor's options.
---@param target string
---@return wippy.Future|nil future
---@return wippy.Error|nil err
function Executor:async(target, ...) end

---@class wippy.Actor
local Actor = {}
---@return string
function Actor:id() end
---@return table meta a copy
function Actor:meta() end

---@class wippy.Policy
---@field id string
---@field actions string|string[] patterns (`*` wildcards): `funcs.call`, `fs.get`, `http.request`, `socket.connect`
---@field resources string|string[] patterns (`*` wildcards): an entry ID (`funcs.call`), an `fs.directory` ID (`fs.get`), a URL (`http.request`), `HOST:PORT` (`socket.connect`)
---@field effect "allow"|"deny"
---@field conditions? { field: string, operator: string, value: any }[]

---An immutable set of policies.
---@class wippy.Scope
local Scope = {}
---@param policy wippy.Policy
---@return wippy.Scope
function Scope:with(policy) end
---@param id string
---@return wippy.Scope
function Scope:without(id) end
---@param id string
---@return boolean
function Scope:contains(id) end
---@return wippy.Policy[]
function Scope:policies() end
---@param actor wippy.Actor|nil
---@param action string
---@param resource string
---@return "allow"|"deny"|"undefined"
function Scope:evaluate(actor, action, resource) end

---`require("wippy").security`, also `require("security")`.
---@class wippy.security
local security = {}
---@param id string
---@param meta? table
---@return wippy.Actor
function security.new_actor(id, meta) end
---@param policies? wippy.Policy[]
---@return wippy.Scope
function security.new_scope(policies) end
---Whether the current context may do `action` on `resource` (undefined is allowed unless strict).
---@param action string
---@param resource string
---@return boolean
function security.can(action, resource) end
---The current actor: the outermost caller's, also inside a Lua function a guest called through
---`wippy:runtime/funcs`.
---@return wippy.Actor|nil
function security.actor() end
---@return wippy.Scope|nil
function security.scope() end

---`require("wippy").process`: runs of `process.wasm` entries (docs/processes.md).
---@class wippy.process
local process = {}
---Starts `method(...)` of a process entry in a new instance (a command: `...` is its argv).
---@param id string
---@return string|nil pid
---@return wippy.Error|nil err
function process.spawn(id, ...) end
---The run's result (a command's: its exit code); yields in a task, blocks elsewhere.
---@param pid string
---@param timeout_ms? number
---@return any result
---@return wippy.Error|nil err
function process.wait(pid, timeout_ms) end
---Iterates `{ kind = "EXIT", from = pid, result = { value =, error = } }` in completion order.
---@return fun(): { kind: "EXIT", from: string, result: { value: any, error: any } }|nil
function process.events() end
---This Lua state's pid (its mailbox opens on first use).
---@return string
function process.self() end
---Sends a message: strings travel as `text` payloads, other values as `json`.
---@param pid string
---@param topic string
---@return true|nil ok
---@return string|nil err `overloaded`, `message too large: ...`, `no process ...`
function process.send(pid, topic, ...) end
---The next message sent to this Lua state, or nil after `timeout_ms`; yields in a task.
---@param timeout_ms? number
---@return { from: string, topic: string, payloads: any[] }|nil
function process.receive(timeout_ms) end
---Stops a process; its result becomes a CANCELED error.
---@param pid string
---@return boolean
function process.terminate(pid) end

---A task of the state's scheduler.
---@class wippy.Task
local Task = {}

---The task's return values, or `nil, err` if it raised. Yields in a task; elsewhere runs the
---scheduler until the task is done.
---@return any ...
function Task:result() end
---@return boolean
function Task:is_done() end

---@class wippy.errors
local errors = {}

---Whether `v` is an error object of this module.
---@param v any
---@return boolean
function errors.is(v) end

---@class wippy
---@field version string the module's version, e.g. `"0.1.0"`
---@field null lightuserdata the `none` sentinel where `nil` would be lost (list elements, payloads, `option<option<T>>`)
---@field registry wippy.Registry the process-wide registry
---@field funcs wippy.funcs
---@field errors wippy.errors
---@field security wippy.security
---@field process wippy.process
local wippy = {}

---Loads a directory (every `_index.yaml` below it) or one YAML file: all or nothing.
---@param path string
---@param opts? { cache_dir?: string|false } `cache_dir`: compiled-artifact directory for this load, `false` for none
---@return true|nil ok
---@return wippy.Error|string[]|nil err on failure, kind `INVALID`: every problem, one a line, as `FILE:LINE: ENTRY: message`; on success, the load warnings (settings that cannot take effect) in the same form, or `nil`
function wippy.load(path, opts) end

---Process-wide settings.
---@param opts { cache_dir?: string|false, workers?: integer, strict?: boolean, spin_us?: integer, record_keys?: "wit"|"snake", pool_idle_ms?: integer } default artifact-cache directory (or `false` for none); worker threads (before the first call that uses them); `strict`: deny what no policy allows; `pool_idle_ms` (default 30000): how often adaptive pools drop idle instances; `spin_us` (0–10000, default 50): how long a waiting thread busy-waits before it sleeps, 0 never; `record_keys`: result records keyed by WIT names (default) or snake_case
---@return true
function wippy.configure(opts) end

---@class wippy.EntryStats
---@field calls integer
---@field errors integer
---@field traps integer
---@field timeouts integer
---@field instances integer live instances
---@field recycled integer instances dropped without a failure (isolate, retained memory, past the bound, adaptive shrinking)
---@field busy integer calls running now
---@field running integer calls holding a slot of the pool now
---@field queued integer calls waiting for a slot (static: admitted ones)
---@field waiting integer static: callers waiting to be admitted
---@field p50_us number
---@field p99_us number

---With an ID, that entry's counters (or `nil`); without, every WebAssembly entry's counters by ID
---plus `engine = { compiled, cache_hits, workers, spin_us }`.
---@param id? string
---@return wippy.EntryStats|table<string, wippy.EntryStats|{ compiled: integer, cache_hits: integer, workers: integer, spin_us: integer }>|nil
function wippy.stats(id) end

---Drops a resource handle now (like `r:drop()`, also for a resource whose WIT has its own
---`drop` method). Raises for anything that is not a handle.
---@param r wippy.Resource
---@return true
function wippy.drop(r) end

---Starts `fn(...)` as a task of this state's scheduler.
---@param fn function
---@return wippy.Task
function wippy.spawn(fn, ...) end

---Runs `fn(...)` as a task and drives every task until all finished; returns `fn`'s results
---and raises its error.
---@param fn function
---@return any ...
function wippy.run(fn, ...) end

---Yields the task for `ms` milliseconds; blocks outside a task.
---@param ms number
function wippy.sleep(ms) end

---Runs the command `name` (a `process.wasm` entry's `meta.command.name`) with the real stdin,
---stdout and stderr; its argv is `name` and `args` (`nil`: its `wasi.args`, else the name).
---@param name string
---@param args? string[]
---@param options? { env?: table<string, string>, sigint?: "default" } extra variables for this run; SIGINT's default action while it runs
---@return integer|nil exit_code
---@return wippy.Error|nil err `NOT_FOUND` for an unknown command; a trap
function wippy.command(name, args, options) end

---The loaded commands, sorted by name.
---@return { name: string, short: string|nil, id: string }[]
function wippy.commands() end

---A file's `sha256:<hex>`, for `hash:` fields.
---@param path string
---@return string|nil hash
---@return string|nil err
function wippy.hash(path) end

return wippy
