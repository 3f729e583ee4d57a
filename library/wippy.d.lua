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
---plus `engine = { compiled, cache_hits, workers, spin_us, task_calls_yield }`.
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
