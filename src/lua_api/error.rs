//! Error objects as Lua sees them (SPEC §2.1).

use mlua::{Lua, MetaMethod, UserData, UserDataMethods, Value};

use crate::error::Error;

/// The userdata behind an error object.
pub struct LuaError(pub Error);

impl UserData for LuaError {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("kind", |_, this, ()| Ok(this.0.kind.as_str()));
        methods.add_method("message", |_, this, ()| Ok(this.0.message.clone()));
        methods.add_method("retryable", |_, this, ()| Ok(this.0.retryable));
        methods.add_method("details", |lua, this, ()| match &this.0.details {
            None => Ok(Value::Nil),
            Some(d) => {
                let t = lua.create_table()?;
                t.set("reason", d.reason.as_str())?;
                t.set("trap", d.trap.as_str())?;
                if let Some(code) = d.code {
                    t.set("code", code)?;
                }
                if let Some(stderr) = &d.stderr {
                    t.set("stderr", stderr.as_str())?;
                }
                Ok(Value::Table(t))
            }
        });
        methods.add_method("stack", |_, this, ()| Ok(this.0.stack.clone()));
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.message.clone()));
        methods.add_meta_method(MetaMethod::Eq, |_, this, other: Value| {
            Ok(match other {
                Value::UserData(ud) => ud.borrow::<LuaError>().map(|o| o.0 == this.0).unwrap_or(false),
                _ => false,
            })
        });
    }
}

/// `nil, err` as a call returns it.
pub fn fail(lua: &Lua, err: Error) -> mlua::Result<mlua::MultiValue> {
    let ud = lua.create_userdata(LuaError(err))?;
    Ok(mlua::MultiValue::from_iter([Value::Nil, Value::UserData(ud)]))
}

/// `wippy.errors.is(v)`.
pub fn is_error(v: &Value) -> bool {
    matches!(v, Value::UserData(ud) if ud.is::<LuaError>())
}
