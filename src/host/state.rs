//! The host side of a store: the caller's context, the WASI state built from the entry's
//! grant, and the limits and stop conditions of the call running in it.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Trap, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::grant::{Env, Grant};
use super::output::Tail;
use super::sockets::NameBook;
use crate::registry::Limits;
use crate::sched::Control;
use crate::security::Context;

/// How often the engine's epoch advances.
pub const TICK_MS: u64 = 5;

/// A deadline far enough that it never comes (and `current + delta` cannot overflow).
pub const NO_DEADLINE: u64 = 1 << 60;

/// The epoch deadline (in ticks from now) for a call limited to `max_ms` (0 = no limit).
pub fn deadline_ticks(max_ms: u64) -> u64 {
    if max_ms == 0 {
        NO_DEADLINE
    } else {
        max_ms.div_ceil(TICK_MS).max(1)
    }
}

/// Per-store host data: the caller's context, WASI state and the store's limits.
pub struct HostState {
    /// The security context of the call running in this store.
    pub ctx: Arc<Context>,
    pub memory_bytes: u64,
    /// Set when the guest asked for more memory than `limits.memory_bytes`.
    pub memory_denied: bool,
    /// The largest linear memory of the instance so far, for `limits.max_retained_memory_bytes`.
    pub memory_size: u64,
    /// Cancel flag and deadline of the call running in this store.
    pub control: Option<Arc<Control>>,
    /// When `limits.max_execution_ms` of the running call is up.
    pub deadline: Option<std::time::Instant>,
    /// The call runs asynchronously: a long computation yields to the executor at each tick.
    pub yielding: bool,
    /// WASI preview 2 (components), built from the entry's grant.
    pub wasi: WasiCtx,
    /// WASI preview 1 (core modules with `wasi1`), built from the entry's grant.
    pub p1: Option<WasiP1Ctx>,
    pub http: WasiHttpCtx,
    pub hooks: super::http::Hooks,
    pub table: ResourceTable,
    /// Host names the guest resolved, for the socket policy's name patterns.
    pub names: Arc<NameBook>,
    /// The running call's context for the network checks (entries with network only).
    pub caller: Option<Arc<super::net::Caller>>,
    /// Which environment values the WASI context holds ([`Env::stamp`]).
    pub env_stamp: u64,
    /// The entry declares `wasi.mounts` (used when `wasi:filesystem` is not granted).
    pub wants_mounts: bool,
    /// The last bytes the guest wrote to stderr, and where the running call started in it.
    pub stderr: Arc<Tail>,
    pub stderr_mark: u64,
    /// The store of a process's run (SPEC §7): never reused.
    pub process: bool,
    /// An actor's mailbox (`wippy:actor/process`); unregistered when the store goes.
    pub mailbox: Option<Arc<crate::mailbox::Mailbox>>,
}

impl HostState {
    /// The epoch deadline of a store between calls: none (instantiation included).
    pub const IDLE_DEADLINE: u64 = NO_DEADLINE;

    /// The state of a new store of `entry`, with WASI built from its grant and this call's
    /// environment (`p1`: preview 1 for a core module).
    ///
    /// # Errors
    /// A mount whose directory cannot be opened.
    pub fn new(
        entry: &str,
        limits: &Limits,
        grant: &Grant,
        env: &Env,
        p1: bool,
        launch: Option<&super::grant::Launch>,
    ) -> Result<HostState, String> {
        let names = Arc::new(NameBook::default());
        let stderr = Arc::new(Tail::default());
        let caller = Arc::new(super::net::Caller::default());
        let mut b = grant.wasi_builder(entry, env, &names, &caller, &stderr, launch)?;
        let (wasi, p1) = if p1 { (WasiCtxBuilder::new().build(), Some(b.build_p1())) } else { (b.build(), None) };
        Ok(HostState {
            ctx: Context::root(),
            memory_bytes: limits.memory_bytes,
            memory_denied: false,
            memory_size: 0,
            control: None,
            deadline: None,
            yielding: false,
            wasi,
            p1,
            http: WasiHttpCtx::new(),
            hooks: super::http::Hooks::new(grant.net.clone(), caller.clone()),
            caller: grant.net.enabled.then_some(caller),
            table: ResourceTable::new(),
            names,
            env_stamp: env.stamp,
            wants_mounts: !grant.mounts.is_empty(),
            stderr,
            stderr_mark: 0,
            process: launch.is_some(),
            mailbox: launch.and_then(|l| l.mailbox.clone()),
        })
    }

    /// The preview-1 context (a core module's store always has one; any other gets an empty one).
    pub fn p1(&mut self) -> &mut WasiP1Ctx {
        self.p1.get_or_insert_with(|| WasiCtxBuilder::new().build_p1())
    }

    /// Called by wasmtime at every epoch tick while the guest runs: stops a canceled or
    /// overdue call, and lets an asynchronous call yield so other calls progress.
    pub fn on_tick(&self) -> wasmtime::Result<UpdateDeadline> {
        if let Some(c) = &self.control {
            if c.is_canceled() {
                return Err(wasmtime::Error::new(Stopped::Canceled));
            }
            if c.expired() {
                return Err(Trap::Interrupt.into());
            }
        }
        let now = std::time::Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            return Err(Trap::Interrupt.into());
        }
        if self.yielding {
            return Ok(UpdateDeadline::Yield(1));
        }
        if self.control.is_some() {
            return Ok(UpdateDeadline::Continue(1));
        }
        // Nothing to watch but the time limit: sleep until it is due (at least one tick: a
        // limit less than a millisecond away must not read as "no limit").
        Ok(UpdateDeadline::Continue(match self.deadline {
            Some(d) => ((d - now).as_millis() as u64).div_ceil(TICK_MS).max(1),
            None => NO_DEADLINE,
        }))
    }
}

/// Why the epoch callback stopped a guest besides a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Canceled,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call was canceled")
    }
}

impl std::error::Error for Stopped {}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let ok = desired as u64 <= self.memory_bytes;
        if ok {
            self.memory_size = self.memory_size.max(desired as u64);
        } else {
            self.memory_denied = true;
        }
        Ok(ok)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}
