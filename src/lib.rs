//! `wippy`: run WebAssembly modules and components from Lua as registry entries.
//!
//! The Lua entry point is `luaopen_wippy` (`require("wippy")`); `luaopen_wippy_funcs` serves
//! `require("wippy.funcs")` from the same library.

// Every unsafe operation sits in a block that says why it is sound (as wasmtime does).
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod call;
pub mod convert;
pub mod engine;
pub mod error;
pub mod host;
pub mod lua_api;
pub mod mailbox;
pub mod pool;
pub mod registry;
pub mod runtime;
pub mod sched;
pub mod security;

pub use error::{Error, Kind};
pub use runtime::check_path;

/// Builds the module table. In module mode mlua skips its per-allocation protected calls
/// (`skip_memory_check`): like C modules, a Lua allocation failure then raises a Lua error
/// directly, which costs nothing on the hot path.
#[cfg_attr(feature = "module", mlua::lua_module(name = "wippy", skip_memory_check))]
pub fn wippy(lua: &mlua::Lua) -> mlua::Result<mlua::Table> {
    lua_api::module(lua)
}

/// `require("wippy.funcs")`: the `funcs` table of the module.
#[cfg_attr(feature = "module", mlua::lua_module(name = "wippy_funcs", skip_memory_check))]
pub fn wippy_funcs(lua: &mlua::Lua) -> mlua::Result<mlua::Table> {
    lua_api::module(lua)?.get("funcs")
}
