---@meta funcs
-- LuaLS stubs: `require("funcs")`, the same table as `require("wippy").funcs` and
-- `require("wippy.funcs")` (see docs/lua-api.md). Add this directory to
-- `workspace.library` in .luarc.json.

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

return funcs
