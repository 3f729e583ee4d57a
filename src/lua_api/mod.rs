//! The only place that touches mlua: builds the `wippy` module table.

mod error;
mod fast;
mod funcs;
mod future;
mod guest;
mod process;
mod registry;
mod resource;
mod sched;
mod security;
mod state;

use mlua::{Lua, Table, Value};

/// How a Lua value is named in "bad argument" messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "no value",
        other => lua_type(other),
    }
}

/// A Lua value's type as Lua's `type()` names it (mlua says `integer` for one kind of number).
fn lua_type(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "number",
        other => other.type_name(),
    }
}

/// Key of the module table in the Lua registry, so every `luaopen_*` returns the same one.
const MODULE_KEY: &str = "wippy.module";

/// The `wippy` module table of this Lua state (built once per state).
///
/// # Errors
/// Only when Lua itself fails (out of memory).
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    if let Ok(Value::Table(t)) = lua.named_registry_value::<Value>(MODULE_KEY) {
        return Ok(t);
    }
    // nginx forks after init_by_lua: notice it (sched::wake).
    crate::sched::wake::watch_forks();
    resource::install(lua);
    crate::convert::int64::install(lua);
    let m = lua.create_table()?;
    m.set("version", env!("CARGO_PKG_VERSION"))?;
    m.set("null", crate::convert::null())?;
    m.set("load", lua.create_function(registry::load)?)?;
    m.set("configure", lua.create_function(registry::configure)?)?;
    m.set("stats", lua.create_function(registry::stats)?)?;
    m.set("registry", lua.create_userdata(registry::Registry)?)?;
    m.set("drop", lua.create_function(resource::drop_handle)?)?;
    m.set("command", lua.create_function(process::command)?)?;
    m.set("commands", lua.create_function(process::commands)?)?;
    m.set("hash", lua.create_function(process::hash)?)?;

    let funcs = lua.create_table()?;
    funcs.set("call", fast::create_call(lua, lua.create_function(funcs::call)?)?)?;
    m.set("funcs", funcs.clone())?;
    sched::install(lua, &m, &funcs)?;

    let errors = lua.create_table()?;
    errors.set("is", lua.create_function(|_, v: Value| Ok(error::is_error(&v)))?)?;
    m.set("errors", errors)?;

    // Raised errors as plain messages with the caller's position (lua/plain.lua).
    lua.load(include_str!("../../lua/plain.lua")).set_name("=wippy.plain").call::<()>(m.clone())?;

    // `require("funcs")` and `require("wippy.funcs")` give the same table once wippy is loaded.
    let package: Table = lua.globals().get("package")?;
    let preload: Table = package.get("preload")?;
    let funcs_loader = lua.create_function(move |_, ()| Ok(funcs.clone()))?;
    for name in ["funcs", "wippy.funcs"] {
        if preload.raw_get::<Value>(name)?.is_nil() {
            preload.raw_set(name, funcs_loader.clone())?;
        }
    }
    lua.set_named_registry_value(MODULE_KEY, m.clone())?;
    Ok(m)
}
