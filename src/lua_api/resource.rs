//! Resource handles as Lua userdata: `r:method(...)`, `r:drop()`, `__close`, and `__gc`.
//!
//! A handle lives in the instance that made it, so that instance is pinned (kept out of the
//! pool) while any of its handles lives; calls that take a handle run in its instance.

use std::cell::Cell;
use std::sync::Arc;

use mlua::{AnyUserData, Lua, MetaMethod, MultiValue, UserData, UserDataMethods, Value};
use wasmtime::component::{ResourceAny, Val};

use super::error::fail;
use super::funcs::results_to_lua;
use super::state::data;
use crate::convert::resource::{Method, ResourceHooks, ResourceInfo};
use crate::convert::{self, Path};
use crate::error::Error;
use crate::pool::Pinned;
use crate::registry::Limits;

/// The userdata of a resource handle.
pub struct LuaResource {
    any: ResourceAny,
    /// The entry whose call made it, to name it in messages.
    entry: Arc<str>,
    /// That entry's limits, which its method calls run under.
    limits: Limits,
    pinned: Arc<Pinned>,
    info: Arc<ResourceInfo>,
    /// Dropped by the host, or given away to the guest (`own<R>` argument).
    gone: Cell<bool>,
}

impl LuaResource {
    fn release(&self) {
        if !self.gone.replace(true) {
            self.pinned.drop_resource(self.any);
        }
    }
}

impl Drop for LuaResource {
    fn drop(&mut self) {
        self.release();
    }
}

impl UserData for LuaResource {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, this, key: String| {
            // A WIT method named `drop` wins: the host's drop stays reachable as `wippy.drop(r)`.
            if key == "drop" && this.info.method("drop").is_none() {
                return Ok(Value::Function(lua.create_function(|_, ud: AnyUserData| {
                    ud.borrow::<LuaResource>()?.release();
                    Ok(true)
                })?));
            }
            match this.info.method(&key) {
                Some(_) => {
                    let info = this.info.clone();
                    Ok(Value::Function(
                        lua.create_function(move |lua, args: MultiValue| call_method(lua, &info, &key, args))?,
                    ))
                }
                None => Ok(Value::Nil),
            }
        });
        // `<close>` variables exist from Lua 5.4 on.
        #[cfg(feature = "lua54")]
        methods.add_meta_method(MetaMethod::Close, |_, this, ()| {
            this.release();
            Ok(())
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("{} resource{}", this.info.name, if this.gone.get() { " (dropped)" } else { "" }))
        });
    }
}

/// `wippy.drop(r)`: drops a resource handle whatever its methods are called. Returns `true`.
///
/// # Errors
/// A value that is not a resource handle (a programming error: it raises).
pub fn drop_handle(_: &Lua, v: Value) -> mlua::Result<bool> {
    if let Value::UserData(ud) = &v {
        if let Ok(r) = ud.borrow::<LuaResource>() {
            r.release();
            return Ok(true);
        }
    }
    let got = match &v {
        Value::Nil => "nil",
        Value::UserData(_) => "another userdata",
        other => other.type_name(),
    };
    Err(mlua::Error::runtime(format!("bad argument #1 to 'drop' (resource expected, got {got})")))
}

/// `r:name(...)`.
fn call_method(lua: &Lua, info: &Arc<ResourceInfo>, name: &str, args: MultiValue) -> mlua::Result<MultiValue> {
    let Some(m) = info.method(name) else {
        return Ok(MultiValue::new());
    };
    let mut args = args.into_iter();
    let this = match args.next() {
        Some(Value::UserData(ud)) if ud.borrow::<LuaResource>().is_ok_and(|r| Arc::ptr_eq(&r.info, info)) => ud,
        _ => {
            return Err(mlua::Error::runtime(format!(
                "bad self to '{name}' (call it as r:{name}(...), with a {} resource)",
                info.name
            )))
        }
    };
    let rest: Vec<Value> = args.collect();
    let (any, pinned, entry, memory) = {
        let r = this.borrow::<LuaResource>()?;
        (r.any, r.pinned.clone(), r.entry.clone(), r.limits.clone())
    };
    let label = if entry.is_empty() { m.label.clone() } else { format!("{entry}: {}", m.label) };
    if this.borrow::<LuaResource>()?.gone.get() {
        return fail(lua, Error::invalid(format!("{label}: the {} resource was dropped", info.name)));
    }
    match run_method(lua, m, &label, any, &pinned, (entry, memory), &rest) {
        Ok(v) => Ok(v),
        Err(e) => fail(lua, e),
    }
}

fn run_method(
    lua: &Lua,
    m: &Method,
    label: &str,
    any: ResourceAny,
    pinned: &Arc<Pinned>,
    entry: (Arc<str>, Limits),
    args: &[Value],
) -> Result<MultiValue, Error> {
    let limits = entry.1.clone();
    let mut n = args.len();
    while n > m.params.len() && args[n - 1].is_nil() {
        n -= 1;
    }
    if n > m.params.len() {
        let plural = if m.params.len() == 1 { "" } else { "s" };
        return Err(Error::invalid(format!("{label}: expected {} argument{plural}, got {n}", m.params.len())));
    }
    let state = data(lua);
    let _scope = begin_call(lua, Some(pinned.clone()), Some(entry));
    let mut vals = Vec::with_capacity(m.params.len() + 1);
    vals.push(Val::Resource(any));
    let mut path = Path::new();
    for (i, (pname, ty)) in m.params.iter().enumerate() {
        path.clear();
        let v = args.get(i).unwrap_or(&Value::Nil);
        vals.push(
            convert::to_val(lua, v, ty, &mut path)
                .map_err(|e| Error::invalid(format!("{label}: argument {} ({pname}): {e}", i + 1)))?,
        );
    }
    let mut out = vec![Val::Bool(false); usize::from(m.result.is_some())];
    let ctx = state.current.borrow().clone();
    pinned.call(label, &m.export, &ctx, &limits, &vals, &mut out)?;
    finish_call(lua, Some(pinned.clone()));
    let result = match (out.into_iter().next(), &m.result) {
        (Some(v), Some(ty)) => results_to_lua(lua, v, ty)
            .map_err(|e| Error::internal(format!("{label}: cannot convert the result to Lua: {e}")))?,
        _ => MultiValue::new(),
    };
    Ok(result)
}

/// The resource bookkeeping of one call; dropping it restores the state of the call it
/// interrupted (a finalizer or a nested call may run a call in the middle of another).
pub struct CallScope {
    state: std::rc::Rc<super::state::StateData>,
    pinned: Option<Arc<Pinned>>,
    entry: Option<(Arc<str>, Limits)>,
    moved: Vec<AnyUserData>,
}

impl Drop for CallScope {
    fn drop(&mut self) {
        *self.state.call_pinned.borrow_mut() = self.pinned.take();
        *self.state.call_entry.borrow_mut() = self.entry.take();
        *self.state.moved.borrow_mut() = std::mem::take(&mut self.moved);
    }
}

/// Before converting the arguments of a call: no instance chosen yet (or the given one), and
/// the entry that handles made by the call will name. Keep the scope until the results are
/// converted.
#[must_use]
pub fn begin_call(lua: &Lua, pinned: Option<Arc<Pinned>>, entry: Option<(Arc<str>, Limits)>) -> CallScope {
    let state = data(lua);
    let pinned = state.call_pinned.replace(pinned);
    let entry = state.call_entry.replace(entry);
    let moved = state.moved.take();
    CallScope { state, pinned, entry, moved }
}

/// The instance the arguments' resources live in, if any.
pub fn pinned_for_call(lua: &Lua) -> Option<Arc<Pinned>> {
    data(lua).call_pinned.borrow().clone()
}

/// After a successful call: owned handles passed in are the guest's now; handles in the
/// results live in `produced`.
pub fn finish_call(lua: &Lua, produced: Option<Arc<Pinned>>) {
    let state = data(lua);
    for ud in state.moved.borrow_mut().drain(..) {
        if let Ok(r) = ud.borrow::<LuaResource>() {
            r.gone.set(true);
        }
    }
    *state.call_pinned.borrow_mut() = produced;
}

fn wrap(lua: &Lua, any: ResourceAny, info: &Arc<ResourceInfo>) -> mlua::Result<Value> {
    let state = data(lua);
    let Some(pinned) = state.call_pinned.borrow().clone() else {
        return Err(mlua::Error::runtime("a resource was returned without its instance"));
    };
    let (entry, limits) = state.call_entry.borrow().clone().unwrap_or_else(|| ("".into(), Limits::default()));
    let ud =
        lua.create_userdata(LuaResource { any, entry, limits, pinned, info: info.clone(), gone: Cell::new(false) })?;
    Ok(Value::UserData(ud))
}

fn unwrap(lua: &Lua, v: &Value, info: &Arc<ResourceInfo>, own: bool) -> Result<ResourceAny, String> {
    let expected = if own { info.name.clone() } else { format!("borrow<{}>", info.name) };
    let Value::UserData(ud) = v else {
        let got = super::lua_type(v);
        return Err(format!("expected {expected} (a resource handle), got {got}"));
    };
    let r = ud
        .borrow::<LuaResource>()
        .map_err(|_| format!("expected {expected} (a resource handle), got another userdata"))?;
    if !Arc::ptr_eq(&r.info, info) {
        let other = if r.info.name == info.name { " of another component" } else { "" };
        return Err(format!("expected {expected}, got a {} resource{other}", r.info.name));
    }
    if r.gone.get() {
        return Err(format!("the {} resource was dropped", info.name));
    }
    let state = data(lua);
    let mut pinned = state.call_pinned.borrow_mut();
    match pinned.as_ref() {
        None => *pinned = Some(r.pinned.clone()),
        Some(p) if Arc::ptr_eq(p, &r.pinned) => {}
        Some(_) => return Err("resources of one call must come from the same instance".into()),
    }
    if own {
        let mut moved = state.moved.borrow_mut();
        if moved.iter().any(|m| m.to_pointer() == ud.to_pointer()) {
            return Err(format!("the {} resource is given away twice in one call", info.name));
        }
        moved.push(ud.clone());
    }
    Ok(r.any)
}

/// Installs the hooks `convert` uses for resource values in this Lua state.
pub fn install(lua: &Lua) {
    lua.set_app_data(ResourceHooks { wrap, unwrap });
}
