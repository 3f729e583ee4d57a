//! Resources: what a resource type offers (its methods), and the hooks through which the Lua
//! side turns handles into userdata and back. The userdata itself lives in `lua_api`, which
//! installs the hooks in each Lua state.

use std::sync::{Arc, OnceLock};

use mlua::{Lua, Value};
use wasmtime::component::{ComponentExportIndex, ResourceAny};

use super::ty::Ty;

/// A resource type of a component.
#[derive(Debug)]
pub struct ResourceInfo {
    /// The WIT name (`counter`).
    pub name: String,
    /// Filled once the component's exports are resolved (methods may take the resource).
    pub methods: OnceLock<Vec<Method>>,
}

/// A `[method]` export of a resource: called as `r:name(...)`.
#[derive(Debug)]
pub struct Method {
    /// The Lua name (`increment` for `[method]counter.increment`).
    pub name: String,
    /// `counter.increment`, for messages (the handle adds the entry ID).
    pub label: String,
    pub export: ComponentExportIndex,
    /// Parameters after `self`.
    pub params: Vec<(String, Ty)>,
    pub result: Option<Ty>,
}

impl ResourceInfo {
    /// The method called `name`, or `name` with `_` for the `-` of a kebab-case WIT name.
    pub fn method(&self, name: &str) -> Option<&Method> {
        let same = |wit: &str| {
            wit.len() == name.len() && wit.bytes().zip(name.bytes()).all(|(a, b)| a == b || (a == b'-' && b == b'_'))
        };
        self.methods.get().and_then(|ms| ms.iter().find(|m| same(&m.name)))
    }
}

/// How a Lua state wraps and unwraps resource handles (set by `lua_api` as app data).
pub struct ResourceHooks {
    /// A handle returned by the guest becomes a Lua value.
    pub wrap: fn(&Lua, ResourceAny, &Arc<ResourceInfo>) -> mlua::Result<Value>,
    /// A Lua value passed for `own<R>` (`true`) or `borrow<R>` becomes a handle.
    pub unwrap: fn(&Lua, &Value, &Arc<ResourceInfo>, bool) -> Result<ResourceAny, String>,
}
