---@meta security
-- LuaLS stubs: `require("security")`, the same table as `require("wippy").security`
-- (see docs/security.md). Add this directory to
-- `workspace.library` in .luarc.json.

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

return security
