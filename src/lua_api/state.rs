//! What one Lua state keeps for itself: its resolved targets, its loaded Lua functions and
//! the handlers it registered.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::Error;
use crate::security::Context;
use mlua::{Function, Lua};

pub struct StateData {
    /// The targets this state resolved (the call path's step 1).
    pub targets: crate::call::Targets,
    /// `function.lua` entries loaded in this state: ID → (entry generation, function).
    pub lua_funcs: RefCell<HashMap<String, (u64, Function)>>,
    /// `registry:add{handler = fn}` functions: ID → function.
    pub handlers: RefCell<HashMap<String, Function>>,
    /// An error of the raw fast path, handed to the function that returns it to Lua.
    pub pending: RefCell<Option<Error>>,
    /// The security context of calls made without an executor: the top level's (no actor,
    /// no scope), or the one of the call whose Lua function or task is running.
    pub current: RefCell<Arc<Context>>,
    /// The top level's context: no actor, no scope, no values; this state as home.
    pub root: Arc<Context>,
    /// The instance resources of the call being converted live in (see `resource`).
    pub call_pinned: RefCell<Option<Arc<crate::pool::Pinned>>>,
    /// The entry of the call being converted (named by the handles it makes).
    pub call_entry: RefCell<Option<(Arc<str>, crate::registry::Limits)>>,
    /// Owned resource handles passed to the call being made.
    pub moved: RefCell<Vec<mlua::AnyUserData>>,
    /// Calls of this state that finished, for its scheduler, and Lua calls guests ask of it.
    pub inbox: Arc<crate::sched::Inbox>,
    /// This state's mailbox (`process.self()`), opened on first use.
    pub mailbox: RefCell<Option<Arc<crate::mailbox::Mailbox>>>,
    /// Runs those Lua calls at once for a caller blocked on this thread (`sched::server`).
    pub server: crate::sched::Server,
    /// Threads (by address) of the tasks this state's scheduler runs.
    pub tasks: RefCell<rustc_hash::FxHashSet<usize>>,
    /// Set by the raw `funcs.call` for the slow path: the caller is a task that may yield.
    pub in_task: Cell<bool>,
    /// Set with `in_task` when the caller is a coroutine nginx runs rather than a task.
    pub in_ngx: Cell<bool>,
    /// Running inside nginx (OpenResty): a coroutine that may yield waits through nginx.
    pub ngx: Cell<bool>,
    /// Argument tape of the raw path's component calls (taken while in use).
    pub args_tape: Cell<crate::convert::tape::Tape>,
}

/// The state's data, created on first use. Shared (`Rc`) so the raw `funcs.call` closure
/// can keep it alive as long as it exists.
pub fn data(lua: &Lua) -> Rc<StateData> {
    if let Some(d) = lua.app_data_ref::<Rc<StateData>>() {
        return d.clone();
    }
    let inbox: Arc<crate::sched::Inbox> = Arc::default();
    let root = Arc::new(Context { home: Some(crate::security::Home(inbox.clone())), ..Context::default() });
    let d = Rc::new(StateData {
        targets: Default::default(),
        lua_funcs: RefCell::default(),
        handlers: RefCell::default(),
        pending: RefCell::default(),
        current: RefCell::new(root.clone()),
        root,
        call_pinned: RefCell::default(),
        call_entry: RefCell::default(),
        moved: RefCell::default(),
        inbox: inbox.clone(),
        server: super::guest::server(lua),
        mailbox: RefCell::default(),
        tasks: RefCell::default(),
        in_task: Cell::new(false),
        in_ngx: Cell::new(false),
        ngx: Cell::new(false),
        args_tape: Cell::default(),
    });
    crate::sched::add_server(&inbox, &d.server);
    lua.set_app_data(d.clone());
    d
}

impl Drop for StateData {
    fn drop(&mut self) {
        // Guests still running for this state get an error for the Lua calls they ask.
        self.inbox.close();
    }
}
