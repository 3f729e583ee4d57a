//! WIT ⇄ Lua values, driven by the WIT type (SPEC §3), with errors that name the path.

pub mod int64;
pub mod json;
mod lua;
mod path;
pub mod push;
pub mod read;
pub mod resource;
pub mod tape;
pub mod ty;

pub use lua::{is_null, null, scalar_from_core, scalar_raw, scalar_to_core, Num};
pub use path::{ConvError, Path};
pub use ty::{Scalar, Ty};

use mlua::{Lua, Value};
use wasmtime::component::Val;

/// Converts a Lua value to a component value of type `ty`: straight off the Lua stack when the
/// type allows ([`Ty::stack_convertible`]), else through mlua (resources, LuaJIT cdata).
///
/// # Errors
/// The value does not fit its type; the message names the path.
pub fn to_val(lua: &Lua, v: &Value, ty: &Ty, path: &mut Path) -> Result<Val, ConvError> {
    if ty.stack_convertible() {
        read::to_val(lua, v, ty, path)
    } else {
        lua::to_val(lua, v, ty, path)
    }
}

/// Converts a component value to Lua, onto the stack when the type allows, else through mlua.
/// `slot`: a `none` here must be `wippy.null` (list and tuple elements, payloads).
///
/// # Errors
/// Only when Lua fails.
pub fn from_val(lua: &Lua, v: Val, ty: &Ty, slot: bool) -> mlua::Result<Value> {
    if ty.stack_convertible() {
        push::to_lua(lua, v, ty, slot)
    } else {
        lua::from_val(lua, v, ty, slot)
    }
}
