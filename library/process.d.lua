---@meta _
-- LuaLS stubs: `require("wippy").process` (see docs/processes.md); there is no
-- `require("process")`. Add this directory to `workspace.library` in .luarc.json.

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
