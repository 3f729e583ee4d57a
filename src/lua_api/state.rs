//! What one Lua state keeps for itself: a lookup cache of entries, its loaded Lua functions
//! and the handlers it registered.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use mlua::{Function, Lua};
use rustc_hash::FxHashMap;

use crate::error::Error;
use crate::runtime::{self, Loaded};
use crate::security::Context;

pub struct StateData {
    /// Target bytes → entry, valid while `generation` equals the runtime's.
    cache: RefCell<FxHashMap<Box<[u8]>, Arc<Loaded>>>,
    generation: Cell<u64>,
    /// `function.lua` entries loaded in this state: ID → (entry generation, function).
    pub lua_funcs: RefCell<HashMap<String, (u64, Function)>>,
    /// `registry:add{handler = fn}` functions: ID → function.
    pub handlers: RefCell<HashMap<String, Function>>,
    /// An error of the raw fast path, handed to the function that returns it to Lua.
    pub pending: RefCell<Option<Error>>,
    /// The context of calls made outside any executor.
    pub root: Arc<Context>,
    /// The instance resources of the call being converted live in (see `resource`).
    pub call_pinned: RefCell<Option<Arc<crate::pool::Pinned>>>,
    /// The entry of the call being converted (named by the handles it makes).
    pub call_entry: RefCell<Option<(Arc<str>, crate::registry::Limits)>>,
    /// Owned resource handles passed to the call being made.
    pub moved: RefCell<Vec<mlua::AnyUserData>>,
    /// Calls of this state that finished, for its scheduler.
    pub inbox: Arc<crate::sched::Inbox>,
    /// Threads (by address) of the tasks this state's scheduler runs.
    pub tasks: RefCell<rustc_hash::FxHashSet<usize>>,
    /// Set by the raw `funcs.call` for the slow path: the caller is a task that may yield.
    pub in_task: Cell<bool>,
    /// Argument tape of the raw path's component calls (taken while in use).
    pub args_tape: Cell<crate::convert::tape::Tape>,
}

/// The state's data, created on first use. Shared (`Rc`) so the raw `funcs.call` closure
/// can keep it alive as long as it exists.
pub fn data(lua: &Lua) -> Rc<StateData> {
    if let Some(d) = lua.app_data_ref::<Rc<StateData>>() {
        return d.clone();
    }
    let d = Rc::new(StateData {
        cache: RefCell::default(),
        generation: Cell::new(0),
        lua_funcs: RefCell::default(),
        handlers: RefCell::default(),
        pending: RefCell::default(),
        root: Context::root(),
        call_pinned: RefCell::default(),
        call_entry: RefCell::default(),
        moved: RefCell::default(),
        inbox: Arc::default(),
        tasks: RefCell::default(),
        in_task: Cell::new(false),
        args_tape: Cell::default(),
    });
    lua.set_app_data(d.clone());
    d
}

impl StateData {
    /// The entry for a target, through the cache.
    pub fn lookup(&self, target: &[u8], id: impl FnOnce() -> Option<String>) -> Option<Arc<Loaded>> {
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
