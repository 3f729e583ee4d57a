//! What one Lua state keeps for itself: a lookup cache of entries, its loaded Lua functions
//! and the handlers it registered.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use mlua::{Function, Lua};
use rustc_hash::FxHashMap;

use crate::runtime::{self, Loaded};

#[derive(Default)]
pub struct StateData {
    /// Target bytes → entry, valid while `generation` equals the runtime's.
    cache: RefCell<FxHashMap<Box<[u8]>, Arc<Loaded>>>,
    generation: Cell<u64>,
    /// `function.lua` entries loaded in this state: ID → (entry generation, function).
    pub lua_funcs: RefCell<HashMap<String, (u64, Function)>>,
    /// `registry:add{handler = fn}` functions: ID → function.
    pub handlers: RefCell<HashMap<String, Function>>,
}

/// The state's data, created on first use.
pub fn data(lua: &Lua) -> mlua::AppDataRef<'_, StateData> {
    if lua.app_data_ref::<StateData>().is_none() {
        lua.set_app_data(StateData::default());
    }
    // Just set above when missing, so it is present.
    lua.app_data_ref::<StateData>()
        .unwrap_or_else(|| unreachable!())
}

impl StateData {
    /// The entry for a target, through the cache.
    pub fn lookup(
        &self,
        target: &[u8],
        id: impl FnOnce() -> Option<String>,
    ) -> Option<Arc<Loaded>> {
        let now = runtime::generation();
        let mut cache = self.cache.borrow_mut();
        if self.generation.get() != now {
            cache.clear();
            self.generation.set(now);
        }
        if let Some(hit) = cache.get(target) {
            return Some(hit.clone());
        }
        let loaded = runtime::get(&id()?)?;
        cache.insert(target.into(), loaded.clone());
        Some(loaded)
    }
}
