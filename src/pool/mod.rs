//! Instances of an entry and running calls on them (SPEC §4, §6).
//!
//! A pool keeps warm instances and bounds how many calls of its entry run at once (`inline`:
//! one; `lazy`/`adaptive`: `max_size`; `static`: `workers`) — every call, whoever makes it: a
//! task's call waits for a slot as a future (the task yields), a blocked caller's thread sleeps
//! until one frees ([`Slots`]). A slot holds at most one instance, and the pool keeps no more
//! instances than slots, so in-use plus idle instances stay within the bound. A `static` pool
//! makes its `workers` instances at load and admits at most `workers + buffer` calls at once
//! (the rest wait to be admitted); an `adaptive` pool drops instances that stayed idle
//! ([`Pool::shrink`], driven by `runtime`'s reaper). Where a call runs — the Lua thread or a
//! worker — is the caller's choice (see `lua_api::funcs`); the pool takes only Rust data
//! (values, the caller's context, the call's [`Control`]), so both are the same code.
//! An instance that trapped, timed out or was canceled is discarded, and so is one that grew
//! past `limits.max_retained_memory_bytes`, or every instance with `pool.isolate`.
//!
//! A call nested in a call of the same pool (a guest calling its own entry through the
//! registry, `Call::reentrant`) takes a free slot if there is one but never waits for one: its
//! caller holds a slot and would wait for itself. With none free it runs in an instance of its
//! own past the bound, dropped after the call (the depth limit, 64, bounds how many).

mod slots;
mod stats;

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use wasmtime::component::{self, ComponentExportIndex, ResourceAny, TypedFunc, Val};
use wasmtime::{Store, Trap, ValRaw, WasmBacktrace};

use self::slots::{Slot, Slots};
pub use self::stats::{Snapshot, Stats};
use crate::convert::tape::{Args, RawArgs, RawRet, Rets, Tape};
use crate::engine::{new_store, Callee, Function};
use crate::error::{Details, Error, Kind, Reason};
use crate::host::grant::{Env, Grant, Launch};
use crate::host::state::{HostState, Stopped};
use crate::registry::{Limits, PoolKind};
use crate::sched::Control;
use crate::security::Context;

/// What a call brings to its pool besides its values: the entry's function and grant, the
/// environment read for this call, and the caller's security context.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub f: &'a Function,
    pub grant: &'a Grant,
    pub env: &'a Env,
    pub ctx: &'a Arc<Context>,
    /// The caller runs inside a call of this pool already and holds its slot (a guest calling
    /// its own entry through the registry): this call must not wait for one.
    pub reentrant: bool,
    /// A process's run (SPEC §7): a fresh instance with this stdio and argv, dropped after.
    pub launch: Option<&'a Launch>,
}

/// The slot (and, in a `static` pool, the admission) a call holds while it runs; the slot is
/// given back first, so a queued call takes it before a new one is admitted.
pub(crate) struct Held<'a> {
    _slot: Option<Slot<'a>>,
    _admit: Option<Slot<'a>>,
}

/// A slot for a caller blocked on its thread. On its Lua state's thread it runs the Lua calls
/// guests ask of that state while it waits (every millisecond): the slots may be held by that
/// state's futures whose guests wait for exactly those calls.
fn take_serving<'a>(slots: &'a Slots, c: &Call<'_>) -> Slot<'a> {
    if let Some(s) = slots.try_take() {
        return s;
    }
    let home = c.ctx.home.as_ref().map(|h| h.0.clone());
    let server = home.as_ref().and_then(crate::sched::server);
    match (home, server) {
        (Some(home), Some(server)) => slots.take_blocking_serving(std::time::Duration::from_millis(1), || {
            for job in home.take_jobs() {
                server(job);
            }
        }),
        _ => slots.take_blocking(),
    }
}

/// A live instance and the function to call on it.
enum Live {
    Core {
        store: Store<HostState>,
        func: wasmtime::Func,
        /// Linked with asynchronous preview 1 (called with `call_async` only).
        asynchronous: bool,
        _count: stats::Counted,
    },
    Component {
        store: Store<HostState>,
        func: component::Func,
        instance: component::Instance,
        /// Linked with asynchronous WASI (called with `call_async` only).
        asynchronous: bool,
        _count: stats::Counted,
    },
}

/// A component call's values: `Val`s both ways, or value tapes (`convert::tape`), which
/// wasmtime lowers and lifts without `Val` trees through a typed call.
pub enum Io<'a> {
    Val {
        args: &'a [Val],
        results: &'a mut [Val],
    },
    Tape {
        args: &'a Tape,
        results: &'a mut Tape,
    },
    /// Parameters that are all numbers or booleans, already lowered to their core values, and
    /// a result of at most one core value, returned as the guest gave it.
    Raw {
        args: &'a [ValRaw],
        result: &'a mut ValRaw,
    },
}

impl Io<'_> {
    fn holds_resource(&self) -> bool {
        match self {
            Io::Val { results, .. } => results.iter().any(holds_resource),
            Io::Tape { .. } | Io::Raw { .. } => false,
        }
    }
}

/// The export as a typed function over core values.
fn typed_raw(func: &component::Func) -> TypedFunc<RawArgs<'_>, RawRet> {
    // SAFETY: only for functions whose parameters and result are flat scalars (`Function::flat`),
    // whose core values the caller lowered by the canonical ABI (`convert::scalar_raw`).
    unsafe { TypedFunc::new_unchecked(*func) }
}

/// The export as a typed function over tapes.
fn typed(func: &component::Func) -> TypedFunc<Args<'_>, Rets> {
    // SAFETY: `Args` and `Rets` lower and lift by the function's own type, which wasmtime
    // hands them (see `convert::tape`); they accept any type check for that reason.
    unsafe { TypedFunc::new_unchecked(*func) }
}

fn call_blocking(func: &component::Func, store: &mut Store<HostState>, io: Io<'_>) -> wasmtime::Result<()> {
    match io {
        Io::Val { args, results } => func.call(store, args, results),
        Io::Tape { args, results } => {
            let Rets(out) = typed(func).call(store, Args(args))?;
            *results = out;
            Ok(())
        }
        Io::Raw { args, result } => {
            *result = typed_raw(func).call(store, RawArgs(args))?.0;
            Ok(())
        }
    }
}

async fn call_async(func: &component::Func, store: &mut Store<HostState>, io: Io<'_>) -> wasmtime::Result<()> {
    match io {
        Io::Val { args, results } => func.call_async(store, args, results).await,
        Io::Tape { args, results } => {
            let Rets(out) = typed(func).call_async(store, Args(args)).await?;
            *results = out;
            Ok(())
        }
        Io::Raw { args, result } => {
            *result = typed_raw(func).call_async(store, RawArgs(args)).await?.0;
            Ok(())
        }
    }
}

impl Live {
    fn store(&self) -> &Store<HostState> {
        match self {
            Live::Core { store, .. } | Live::Component { store, .. } => store,
        }
    }
}

/// Warm instances of one entry: one in a lock-free slot (the common, sequential case costs
/// an atomic swap to take and one to give back), more behind a mutex when calls overlap.
pub struct Pool {
    hot: AtomicPtr<Live>,
    // Boxed so that moving an instance between the slot, this list and a call moves a pointer.
    #[allow(clippy::vec_box)]
    warm: Mutex<Vec<Box<Live>>>,
    /// Component instances linked with asynchronous WASI.
    #[allow(clippy::vec_box)]
    warm_async: Mutex<Vec<Box<Live>>>,
    /// How many calls of this entry may run at once (each holds at most one instance); the rest
    /// wait (yielding their task, or blocking their thread).
    slots: Slots,
    /// `static`: how many calls may be admitted at once, running or queued for a slot
    /// (`workers + buffer`); the rest wait to be admitted.
    admit: Option<Slots>,
    /// `adaptive`: the most slots held at once since [`Pool::shrink`] last looked.
    peak: AtomicU32,
    pub kind: PoolKind,
    isolate: bool,
    pub stats: Arc<Stats>,
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::new(&crate::registry::Pool::default())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let p = *self.hot.get_mut();
        if !p.is_null() {
            // SAFETY: the slot owns the box it points to (set by `give_back` from `into_raw`).
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

impl Pool {
    pub fn new(cfg: &crate::registry::Pool) -> Pool {
        let size = match cfg.kind {
            PoolKind::Inline => 1,
            PoolKind::Lazy | PoolKind::Adaptive => cfg.max_size.unwrap_or(16),
            PoolKind::Static => cfg.workers.or(cfg.size).unwrap_or(8),
        }
        .max(1);
        let admit = (cfg.kind == PoolKind::Static)
            .then(|| Slots::new(size.saturating_add(cfg.buffer.unwrap_or(size.saturating_mul(64)))));
        Pool {
            hot: AtomicPtr::default(),
            warm: Mutex::default(),
            warm_async: Mutex::default(),
            slots: Slots::new(size),
            admit,
            peak: AtomicU32::new(0),
            kind: cfg.kind,
            isolate: cfg.isolate,
            stats: Arc::default(),
        }
    }

    /// A warm instance built with this call's environment, if there is one (never with
    /// `isolate`). One built with other environment values is dropped.
    fn take_warm(&self, asynchronous: bool, c: &Call<'_>) -> Option<Box<Live>> {
        if self.isolate || c.launch.is_some() {
            return None;
        }
        let env = c.env;
        let live = if asynchronous {
            self.warm_async.lock().ok().and_then(|mut w| w.pop())
        } else {
            let p = self.hot.swap(ptr::null_mut(), Ordering::Acquire);
            if p.is_null() {
                self.warm.lock().ok().and_then(|mut w| w.pop())
            } else {
                // SAFETY: taken out of the slot by the swap, so owned here alone.
                Some(unsafe { Box::from_raw(p) })
            }
        }?;
        if live.store().data().env_stamp != env.stamp {
            self.stats.recycled();
            return None;
        }
        Some(live)
    }

    /// A store for a new instance of this call's entry.
    fn store(&self, c: &Call<'_>) -> Result<Store<HostState>, Error> {
        new_store(c.f, c.grant, c.env, c.launch).map_err(|m| {
            let mut e = Error::new(Kind::Unavailable, format!("{}: {m}", c.f.id));
            e.retryable = false;
            e
        })
    }

    fn take_core(&self, c: &Call<'_>) -> Result<Box<Live>, Error> {
        let f = c.f;
        if let Some(live) = self.take_warm(false, c) {
            return Ok(live);
        }
        let Callee::Core { pre, export, .. } = &f.callee else {
            return Err(Error::internal(format!("{}: not a core function", f.id)));
        };
        self.make_room();
        let mut store = self.store(c)?;
        // A start function runs under the entry's limits (and fuel) too.
        begin(&mut store, &Context::root(), &f.limits, None, false);
        let instance = pre.instantiate(&mut store).map_err(|e| instantiate_error(&f.id, e))?;
        // A WASI reactor initializes itself once, before any other export.
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ()).map_err(|e| instantiate_error(&f.id, e))?;
        }
        let func = instance
            .get_func(&mut store, export)
            .ok_or_else(|| Error::internal(format!("{}: export `{export}` vanished", f.id)))?;
        Ok(Box::new(Live::Core { store, func, asynchronous: false, _count: self.stats.count_instance() }))
    }

    /// An instance of a core module linked with asynchronous preview 1.
    async fn take_core_async(&self, c: &Call<'_>, control: Option<&Arc<Control>>) -> Result<Box<Live>, Error> {
        let f = c.f;
        if let Some(live) = self.take_warm(true, c) {
            return Ok(live);
        }
        let Callee::Core { pre_async: Some(pre), export, .. } = &f.callee else {
            return Err(Error::internal(format!("{}: not a core function with WASI", f.id)));
        };
        self.make_room();
        let mut store = self.store(c)?;
        begin(&mut store, &Context::root(), &f.limits, control, true);
        let instance = pre.instantiate_async(&mut store).await.map_err(|e| instantiate_error(&f.id, e))?;
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call_async(&mut store, ()).await.map_err(|e| instantiate_error(&f.id, e))?;
        }
        let func = instance
            .get_func(&mut store, export)
            .ok_or_else(|| Error::internal(format!("{}: export `{export}` vanished", f.id)))?;
        Ok(Box::new(Live::Core { store, func, asynchronous: true, _count: self.stats.count_instance() }))
    }

    /// An instance for a blocking call (synchronous WASI).
    fn take_component_sync(&self, c: &Call<'_>) -> Result<Box<Live>, Error> {
        let f = c.f;
        if let Some(live) = self.take_warm(false, c) {
            return Ok(live);
        }
        let Callee::Component { pre_sync, export, .. } = &f.callee else {
            return Err(Error::internal(format!("{}: not a component function", f.id)));
        };
        self.make_room();
        let mut store = self.store(c)?;
        begin(&mut store, &Context::root(), &f.limits, None, false);
        let instance = pre_sync.instantiate(&mut store).map_err(|e| instantiate_error(&f.id, e))?;
        let func = instance
            .get_func(&mut store, export)
            .ok_or_else(|| Error::internal(format!("{}: export vanished", f.id)))?;
        Ok(Box::new(Live::Component {
            store,
            func,
            instance,
            asynchronous: false,
            _count: self.stats.count_instance(),
        }))
    }

    async fn take_component(&self, c: &Call<'_>, control: Option<&Arc<Control>>) -> Result<Box<Live>, Error> {
        let f = c.f;
        if let Some(live) = self.take_warm(true, c) {
            return Ok(live);
        }
        let Callee::Component { pre, export, .. } = &f.callee else {
            return Err(Error::internal(format!("{}: not a component function", f.id)));
        };
        self.make_room();
        let mut store = self.store(c)?;
        // Start functions run under the call's limits too.
        begin(&mut store, &Context::root(), &f.limits, control, true);
        let instance = pre.instantiate_async(&mut store).await.map_err(|e| instantiate_error(&f.id, e))?;
        let func = instance
            .get_func(&mut store, export)
            .ok_or_else(|| Error::internal(format!("{}: export vanished", f.id)))?;
        Ok(Box::new(Live::Component { store, func, instance, asynchronous: true, _count: self.stats.count_instance() }))
    }

    /// Before a new instance: with as many instances as slots, an idle one (of the other kind:
    /// synchronous or asynchronous WASI, or one a nested call made past the bound) goes.
    fn make_room(&self) {
        if self.stats.instances() >= u64::from(self.slots.max()) {
            if let Some(idle) = self.pop_idle() {
                drop(idle);
                self.stats.recycled();
            }
        }
    }

    /// Any idle instance (asynchronous ones first: they are the larger).
    fn pop_idle(&self) -> Option<Box<Live>> {
        if let Some(l) = self.warm_async.lock().ok().and_then(|mut w| w.pop()) {
            return Some(l);
        }
        if let Some(l) = self.warm.lock().ok().and_then(|mut w| w.pop()) {
            return Some(l);
        }
        let p = self.hot.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: taken out of the slot by the swap, so owned here alone.
        (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
    }

    /// `adaptive`: drops idle instances beyond the most calls that ran at once since the last
    /// look (at least one stays warm). `runtime`'s reaper calls it every `pool_idle_ms`, so an
    /// instance left idle that long goes. Returns how many went.
    pub fn shrink(&self) -> usize {
        let peak = self.peak.swap(self.slots.used(), Ordering::Relaxed);
        let keep = u64::from(peak.max(1));
        let mut n = 0;
        while self.stats.instances() > keep {
            let Some(idle) = self.pop_idle() else { break };
            drop(idle);
            self.stats.recycled();
            n += 1;
        }
        n
    }

    /// `static`: makes the pool's `workers` instances now (at load), so that the first calls
    /// find them warm (instances for calls that block their Lua thread: synchronous WASI). A
    /// failure (a missing environment variable, a start function that traps) stops it quietly:
    /// the first call reports it.
    pub fn prewarm(&self, f: &Function, grant: &Grant) {
        if self.kind != PoolKind::Static || self.isolate || f.has_resources {
            return;
        }
        let Ok(env) = grant.env_values() else { return };
        let ctx = Context::root();
        let c = Call { f, grant, env: &env, ctx: &ctx, reentrant: false, launch: None };
        let mut made = Vec::new();
        let mut held = Vec::new();
        for _ in 0..self.slots.max() {
            // Made under slots, like any call's instance: calls already running keep the bound.
            let Some(slot) = self.slots.try_take() else { break };
            held.push(slot);
            let live = match &f.callee {
                Callee::Core { .. } => self.take_core(&c),
                Callee::Component { .. } => self.take_component_sync(&c),
            };
            match live {
                Ok(l) => made.push(l),
                Err(_) => break,
            }
        }
        for l in made {
            self.give_back(l, &f.limits);
        }
    }

    /// The counters, with the slots' figures.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = self.stats.snapshot();
        let running = self.slots.used();
        s.running = u64::from(running);
        s.queued = match &self.admit {
            Some(a) => u64::from(a.used().saturating_sub(running)),
            None => u64::from(self.slots.waiting()),
        };
        s.waiting = self.admit.as_ref().map_or(0, |a| u64::from(a.waiting()));
        s
    }

    /// A slot of the pool for this call, waiting for one (as a future) while all are busy.
    /// A process's run takes none (it runs in an instance of its own, started at once: an
    /// actor may live long); a nested call takes one only if one is free (module docs).
    pub(crate) async fn permit(&self, c: &Call<'_>) -> Held<'_> {
        if c.reentrant || c.launch.is_some() {
            return self.permit_nested(c);
        }
        let admit = match &self.admit {
            Some(a) => Some(a.take().await),
            None => None,
        };
        let slot = self.slots.take().await;
        self.mark_peak();
        Held { _slot: Some(slot), _admit: admit }
    }

    /// [`Pool::permit`] for a caller that blocks its thread meanwhile.
    #[inline]
    fn permit_now(&self, c: &Call<'_>) -> Held<'_> {
        if c.reentrant || c.launch.is_some() {
            return self.permit_nested(c);
        }
        let admit = self.admit.as_ref().map(|a| take_serving(a, c));
        let slot = take_serving(&self.slots, c);
        self.mark_peak();
        Held { _slot: Some(slot), _admit: admit }
    }

    #[cold]
    fn permit_nested(&self, c: &Call<'_>) -> Held<'_> {
        let slot = if c.launch.is_some() { None } else { self.slots.try_take() };
        Held { _slot: slot, _admit: None }
    }

    #[inline]
    fn mark_peak(&self) {
        if self.kind == PoolKind::Adaptive {
            self.peak.fetch_max(self.slots.used(), Ordering::Relaxed);
        }
    }

    /// Returns an instance after a successful call, unless it must not be reused (or the pool
    /// holds as many as it has slots: one a nested call made past the bound).
    fn give_back(&self, live: Box<Live>, limits: &Limits) {
        let data = live.store().data();
        if self.isolate
            || data.process
            || data.memory_size > limits.max_retained_memory_bytes
            || self.stats.instances() > u64::from(self.slots.max())
        {
            self.stats.recycled();
            return;
        }
        if matches!(*live, Live::Component { asynchronous: true, .. } | Live::Core { asynchronous: true, .. }) {
            if let Ok(mut w) = self.warm_async.lock() {
                w.push(live);
            }
            return;
        }
        let p = Box::into_raw(live);
        if self.hot.compare_exchange(ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed).is_err() {
            // SAFETY: the exchange failed, so `p` is still ours alone.
            let live = unsafe { Box::from_raw(p) };
            if let Ok(mut w) = self.warm.lock() {
                w.push(live);
            }
        }
    }

    /// Calls a core export on this thread. `raw` holds the arguments and receives the
    /// results; it is as long as the longer of the two lists.
    ///
    /// # Errors
    /// A trap (`INTERNAL` with details), a timeout or cancel, or an instantiation failure.
    #[inline]
    pub fn call_core(&self, c: &Call<'_>, control: Option<&Arc<Control>>, raw: &mut [ValRaw]) -> Result<(), Error> {
        let _held = self.permit_now(c);
        self.call_core_held(c, control, raw)
    }

    /// [`Pool::call_core`] for a caller that holds its slot already ([`Pool::permit`]).
    ///
    /// # Errors
    /// As [`Pool::call_core`].
    pub(crate) fn call_core_held(
        &self,
        c: &Call<'_>,
        control: Option<&Arc<Control>>,
        raw: &mut [ValRaw],
    ) -> Result<(), Error> {
        let (f, ctx) = (c.f, c.ctx);
        let Callee::Core { params, results, .. } = &f.callee else {
            return Err(Error::internal(format!("{}: not a core function", f.id)));
        };
        if raw.len() < params.len().max(results.len()) {
            return Err(Error::internal(format!("{}: argument buffer too short", f.id)));
        }
        let timer = self.stats.start();
        let mut live = match self.take_core(c) {
            Ok(l) => l,
            Err(e) => return Err(self.stats.failed(e)),
        };
        let Live::Core { store, func, .. } = &mut *live else {
            return Err(Error::internal(format!("{}: not a core function", f.id)));
        };
        begin(store, ctx, &f.limits, control, false);
        // SAFETY: `func` was looked up by name in an instance of the module whose export type
        // gave `params` and `results` (checked in `engine::prepare`), it belongs to `store`,
        // and `raw` is long enough for both lists, written per `Scalar::core`.
        let r = unsafe { func.call_unchecked(&mut *store, raw as *mut [ValRaw]) };
        let r = match r {
            Ok(()) => {
                self.give_back(live, &f.limits);
                Ok(())
            }
            Err(e) => Err(self.stats.failed(self.failed_call(live, e, f, control))),
        };
        self.stats.finish(timer);
        r
    }

    /// Calls a component export whose parameters and results hold no resources. The future
    /// is `Send`: it may run on a worker thread or be polled on the Lua thread. It waits for a
    /// free slot of the pool first.
    ///
    /// # Errors
    /// A trap (`INTERNAL` with details), a timeout or cancel, or an instantiation failure.
    pub async fn run_component(
        &self,
        c: &Call<'_>,
        control: Option<&Arc<Control>>,
        io: Io<'_>,
        yielding: bool,
    ) -> Result<(), Error> {
        let _held = self.permit(c).await;
        let timer = self.stats.start_timed();
        let r = self.run_component_in(c, control, io, yielding).await.map_err(|e| self.stats.failed(e));
        self.stats.finish(timer);
        r
    }

    /// Calls a core export of a module linked with asynchronous preview 1 (its guest may wait
    /// without blocking the thread). `raw` as for [`Pool::call_core`].
    ///
    /// # Errors
    /// As [`Pool::call_core`].
    pub async fn run_core(
        &self,
        c: &Call<'_>,
        control: Option<&Arc<Control>>,
        raw: &mut [ValRaw],
        yielding: bool,
    ) -> Result<(), Error> {
        let f = c.f;
        let Callee::Core { params, results, .. } = &f.callee else {
            return Err(Error::internal(format!("{}: not a core function", f.id)));
        };
        let _held = self.permit(c).await;
        let timer = self.stats.start_timed();
        let r = async {
            let mut live = self.take_core_async(c, control).await?;
            let Live::Core { store, func, .. } = &mut *live else {
                return Err(Error::internal(format!("{}: not a core function", f.id)));
            };
            begin(store, c.ctx, &f.limits, control, yielding);
            let args: Vec<wasmtime::Val> = params.iter().zip(&*raw).map(|(s, r)| s.from_raw(r)).collect();
            let mut out: Vec<wasmtime::Val> = results.iter().map(|_| wasmtime::Val::I32(0)).collect();
            match func.call_async(&mut *store, &args, &mut out).await {
                Ok(()) => {
                    for (slot, v) in raw.iter_mut().zip(&out) {
                        *slot = crate::convert::Scalar::to_raw(v);
                    }
                    self.give_back(live, &f.limits);
                    Ok(())
                }
                Err(e) => Err(self.failed_call(live, e, f, control)),
            }
        }
        .await
        .map_err(|e| self.stats.failed(e));
        self.stats.finish(timer);
        r
    }

    async fn run_component_in(
        &self,
        c: &Call<'_>,
        control: Option<&Arc<Control>>,
        io: Io<'_>,
        yielding: bool,
    ) -> Result<(), Error> {
        let (f, ctx) = (c.f, c.ctx);
        let mut live = self.take_component(c, control).await?;
        let Live::Component { store, func, .. } = &mut *live else {
            return Err(Error::internal(format!("{}: not a component function", f.id)));
        };
        begin(store, ctx, &f.limits, control, yielding);
        match call_async(func, store, io).await {
            Ok(()) => {
                self.give_back(live, &f.limits);
                Ok(())
            }
            Err(e) => Err(self.failed_call(live, e, f, control)),
        }
    }

    /// A failed call's error; the instance goes back only when the guest never ran (an
    /// argument the host could not lower, such as a bad handle, leaves it as it was).
    fn failed_call(&self, live: Box<Live>, e: wasmtime::Error, f: &Function, control: Option<&Arc<Control>>) -> Error {
        let ran = guest_ran(&e);
        let err = trap_error(&f.id, e, live.store().data(), control);
        if !ran {
            self.give_back(live, &f.limits);
        }
        err
    }

    /// Calls a component export on this thread, blocking until it is done. With `pinned`,
    /// the call runs in that instance (its resources are arguments). Returns the instance
    /// the results live in when they hold resources: it is then pinned (kept out of the pool)
    /// while they live.
    ///
    /// # Errors
    /// A trap (`INTERNAL` with details) or an instantiation failure.
    pub fn call_component(
        &self,
        c: &Call<'_>,
        io: Io<'_>,
        pinned: Option<&Arc<Pinned>>,
    ) -> Result<Option<Arc<Pinned>>, Error> {
        let (f, ctx) = (c.f, c.ctx);
        let Callee::Component { export, sticky, .. } = &f.callee else {
            return Err(Error::internal(format!("{}: not a component function", f.id)));
        };
        if !f.has_resources {
            let timer = self.stats.start_busy();
            let r = self.call_sync(c, io, None).map_err(|e| self.stats.failed(e));
            self.stats.finish(timer);
            return r;
        }
        let Io::Val { args, results } = io else {
            return Err(Error::internal(format!("{}: resource handles travel as values", f.id)));
        };
        // While resources of this component live, its calls run in their instance, so that
        // handles from different calls can meet in one call — only for entries with the same
        // capabilities as the one that made the instance.
        let pinned = match pinned {
            Some(p) if p.grant != c.grant.fingerprint => {
                return Err(Error::invalid(format!(
                    "{}: the resources passed were made by an entry with other capabilities (imports or wasi); \
                     pass them to entries with the same grant",
                    f.id
                )))
            }
            Some(p) => Some(p.clone()),
            // The environment it was built with must be this call's too.
            None => sticky.get(c.grant.fingerprint).filter(|p| p.is_alive() && p.env == c.env.stamp),
        };
        if let Some(p) = pinned {
            let timer = self.stats.start_busy();
            let r = p.call(&f.id, export, ctx, &f.limits, args, results).map_err(|e| self.stats.failed(e));
            self.stats.finish(timer);
            r?;
            return Ok(Some(p));
        }
        let timer = self.stats.start_busy();
        let r = self.call_sync(c, Io::Val { args, results }, Some(sticky)).map_err(|e| self.stats.failed(e));
        self.stats.finish(timer);
        r
    }

    /// A blocking call on an instance linked with synchronous WASI. With `sticky` (a function
    /// with resources), results that hold handles pin the instance, which is returned.
    fn call_sync(&self, c: &Call<'_>, mut io: Io<'_>, sticky: Option<&Sticky>) -> Result<Option<Arc<Pinned>>, Error> {
        let (f, ctx) = (c.f, c.ctx);
        let _held = self.permit_now(c);
        let mut live = self.take_component_sync(c)?;
        let Live::Component { store, func, .. } = &mut *live else {
            return Err(Error::internal(format!("{}: not a component function", f.id)));
        };
        begin(store, ctx, &f.limits, None, false);
        let called = match &mut io {
            Io::Val { args, results } => call_blocking(func, store, Io::Val { args, results }),
            Io::Tape { args, results } => call_blocking(func, store, Io::Tape { args, results }),
            Io::Raw { args, result } => call_blocking(func, store, Io::Raw { args, result }),
        };
        match called {
            Ok(()) => match sticky {
                Some(sticky) if io.holds_resource() => {
                    let p = Arc::new(Pinned {
                        live: Mutex::new(Some(live)),
                        busy: Default::default(),
                        deferred: Mutex::default(),
                        grant: c.grant.fingerprint,
                        env: c.env.stamp,
                    });
                    sticky.set(c.grant.fingerprint, &p);
                    Ok(Some(p))
                }
                _ => {
                    self.give_back(live, &f.limits);
                    Ok(None)
                }
            },
            Err(e) => Err(self.failed_call(live, e, f, None)),
        }
    }
}

/// The instance that holds a component's live resources, if any (weakly: it goes with the
/// last handle).
/// One per grant fingerprint: entries of a binary with different capabilities never share it.
#[derive(Default)]
pub struct Sticky(Mutex<Vec<(u64, Weak<Pinned>)>>);

impl Sticky {
    fn get(&self, grant: u64) -> Option<Arc<Pinned>> {
        let slots = self.0.lock().ok()?;
        slots.iter().find(|(g, _)| *g == grant).and_then(|(_, w)| w.upgrade())
    }

    fn set(&self, grant: u64, p: &Arc<Pinned>) {
        if let Ok(mut slots) = self.0.lock() {
            slots.retain(|(g, w)| *g != grant && w.strong_count() > 0);
            slots.push((grant, Arc::downgrade(p)));
        }
    }
}

/// True when a value holds a resource handle anywhere inside.
fn holds_resource(v: &Val) -> bool {
    match v {
        Val::Resource(_) => true,
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => items.iter().any(holds_resource),
        Val::Record(fields) => fields.iter().any(|(_, v)| holds_resource(v)),
        Val::Variant(_, Some(p)) | Val::Option(Some(p)) => holds_resource(p),
        Val::Result(Ok(Some(p)) | Err(Some(p))) => holds_resource(p),
        _ => false,
    }
}

/// An instance kept for the resources that live in it; it goes away with the last of them.
/// After a trap it is gone (`None`): its resources fail with a clear error.
pub struct Pinned {
    live: Mutex<Option<Box<Live>>>,
    /// The thread running a call in the instance (0: none): a call reaching it again from
    /// inside that call (a guest calling Lua that uses the resource) fails instead of waiting
    /// for itself.
    busy: std::sync::atomic::AtomicUsize,
    /// Handles dropped while the instance was busy on their thread, dropped after the call.
    deferred: Mutex<Vec<ResourceAny>>,
    /// The fingerprint of the grant its store was built with.
    grant: u64,
    /// The stamp of the environment it was built with.
    env: u64,
}

impl Pinned {
    /// False once a trap took the instance.
    fn is_alive(&self) -> bool {
        self.live.lock().map(|g| g.is_some()).unwrap_or(false)
    }

    /// Calls an export of the pinned instance (a resource method or a function taking its
    /// resources).
    ///
    /// # Errors
    /// A trap, or an instance lost to an earlier trap.
    pub fn call(
        &self,
        id: &str,
        export: &ComponentExportIndex,
        ctx: &Arc<Context>,
        limits: &Limits,
        args: &[Val],
        results: &mut [Val],
    ) -> Result<(), Error> {
        let me = thread_key();
        if self.busy.load(Ordering::Acquire) == me {
            let mut e = Error::new(
                Kind::Unavailable,
                format!(
                    "{id}: the instance holding this resource is busy with the call that led here \
                     (a guest calling back into Lua that uses it); use the resource after that call returns"
                ),
            );
            e.retryable = false;
            return Err(e);
        }
        let mut guard = self.live.lock().map_err(|_| Error::internal(format!("{id}: instance lock poisoned")))?;
        self.busy.store(me, Ordering::Release);
        let busy = Busy(&self.busy);
        let Some(live) = guard.as_mut() else {
            return Err(Error::invalid(format!(
                "{id}: the instance holding this resource trapped earlier; the resource is gone"
            )));
        };
        let Live::Component { store, instance, .. } = &mut **live else {
            return Err(Error::internal(format!("{id}: not a component instance")));
        };
        begin(store, ctx, limits, None, false);
        let func =
            instance.get_func(&mut *store, export).ok_or_else(|| Error::internal(format!("{id}: export vanished")))?;
        let r = match func.call(&mut *store, args, results) {
            Ok(()) => Ok(()),
            Err(e) => {
                let ran = guest_ran(&e);
                let err = trap_error(id, e, store.data(), None);
                if ran {
                    *guard = None;
                }
                Err(err)
            }
        };
        drop(guard);
        drop(busy);
        // Handles collected while the call ran (a Lua function it called dropped them).
        let later = self.deferred.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default();
        for r in later {
            self.drop_resource(r);
        }
        r
    }

    /// Drops a resource owned by the host (`r:drop()`, `__gc`, `__close`). While a call of
    /// this thread runs in the instance (a Lua function it called collected the handle), the
    /// drop waits for that call to end.
    pub fn drop_resource(&self, r: ResourceAny) {
        if self.busy.load(Ordering::Acquire) == thread_key() {
            if let Ok(mut d) = self.deferred.lock() {
                d.push(r);
            }
            return;
        }
        if let Ok(mut guard) = self.live.lock() {
            if let Some(live) = guard.as_mut() {
                if let Live::Component { store, .. } = &mut **live {
                    // A failing destructor can only poison this instance, which goes with its
                    // last resource anyway.
                    if r.resource_drop(&mut *store).is_err() {
                        *guard = None;
                    }
                }
            }
        }
    }
}

/// This thread, as a number no other running thread has.
fn thread_key() -> usize {
    thread_local!(static KEY: u8 = const { 0 });
    KEY.with(|k| k as *const u8 as usize)
}

/// Clears a pinned instance's busy mark when its call ends.
struct Busy<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

/// Prepares a store for a call: the caller's context, the call's control, fuel, and the
/// memory cap of the entry called (an instance pinned for resources serves every entry of its
/// component).
fn begin(
    store: &mut Store<HostState>,
    ctx: &Arc<Context>,
    limits: &Limits,
    control: Option<&Arc<Control>>,
    yielding: bool,
) {
    // Only entries with a fuel limit are compiled with fuel metering (`engine::Flavor`).
    if limits.fuel > 0 {
        let _ = store.set_fuel(limits.fuel);
    }
    let data = store.data_mut();
    if !Arc::ptr_eq(&data.ctx, ctx) {
        data.ctx = ctx.clone();
        if let Some(caller) = &data.caller {
            caller.set(ctx);
        }
    }
    data.memory_bytes = limits.memory_bytes;
    data.memory_denied = false;
    data.stderr_mark = data.stderr.mark();
    data.yielding = yielding;
    data.deadline = (limits.max_execution_ms > 0)
        .then(|| Instant::now() + std::time::Duration::from_millis(limits.max_execution_ms));
    data.control = control.cloned();
    // The epoch callback runs at the next tick when a call can be canceled or yields, else
    // only when its time limit is due.
    let ticks =
        if yielding || control.is_some() { 1 } else { crate::host::state::deadline_ticks(limits.max_execution_ms) };
    store.set_epoch_deadline(ticks);
}

/// Whether a failed call got as far as running guest code (a trap, or a host error raised
/// while the guest ran, which carries a backtrace).
fn guest_ran(e: &wasmtime::Error) -> bool {
    e.downcast_ref::<Trap>().is_some() || e.downcast_ref::<WasmBacktrace>().is_some()
}

fn instantiate_error(id: &str, e: wasmtime::Error) -> Error {
    let mut err = classify(id, e, false, None);
    if err.kind == Kind::Internal && err.details.is_none() {
        err.message = format!("{id}: cannot instantiate: {}", err.message.trim_start_matches(&format!("{id}: ")));
    }
    err
}

/// Classifies a failed call in a store; a guest that wrote to stderr during the call before it
/// stopped has those lines in `details().stderr`, and a Rust panic's message in the message.
fn trap_error(id: &str, e: wasmtime::Error, data: &HostState, control: Option<&Arc<Control>>) -> Error {
    let mut err = classify(id, e, data.memory_denied, control);
    if let Some(details) = err.details.as_mut() {
        if let Some(text) = data.stderr.since(data.stderr_mark) {
            if let Some(panic) = crate::host::output::panic_message(&text) {
                err.message = format!("{} (guest panicked: {panic})", err.message);
            }
            details.stderr = Some(text);
        }
    }
    err
}

/// Classifies a failed call: traps get `details().reason`, the backtrace goes to `stack`.
fn classify(id: &str, e: wasmtime::Error, memory_denied: bool, control: Option<&Arc<Control>>) -> Error {
    if e.downcast_ref::<Stopped>().is_some() {
        let mut err = Error::new(Kind::Canceled, format!("{id}: the call was canceled"));
        err.retryable = false;
        return err;
    }
    if let Some(denied) = e.downcast_ref::<crate::host::deny::Denied>() {
        if memory_denied {
            // Out of memory first, then a capability it lacks (Rust's allocation-error handler
            // reads the environment to print its message): the memory limit is the cause.
            let mut err = Error::new(
                Kind::Internal,
                format!("{id}: the guest ran out of memory (limits.memory_bytes), then: {denied}"),
            );
            err.retryable = false;
            err.details =
                Some(Details { reason: Reason::MemoryLimit, trap: denied.to_string(), code: None, stderr: None });
            return err;
        }
        let mut err = Error::new(Kind::PermissionDenied, format!("{id}: {denied}"));
        err.retryable = false;
        return err;
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        let mut err = Error::new(Kind::Internal, format!("{id}: the guest exited with code {}", exit.0));
        err.retryable = false;
        err.details =
            Some(Details { reason: Reason::Exit, trap: format!("exit({})", exit.0), code: Some(exit.0), stderr: None });
        return err;
    }
    let stack = e.downcast_ref::<WasmBacktrace>().map(|bt| {
        bt.frames()
            .iter()
            .map(|fr| {
                let name = fr.func_name().map(str::to_string).unwrap_or_else(|| format!("<func {}>", fr.func_index()));
                format!("{}!{name}", fr.module().name().unwrap_or("<module>"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    let trap = e.downcast_ref::<Trap>().copied();
    let (reason, kind) = match trap {
        Some(Trap::OutOfFuel) => (Reason::OutOfFuel, Kind::Internal),
        Some(Trap::StackOverflow) => (Reason::StackOverflow, Kind::Internal),
        Some(Trap::Interrupt) => (Reason::Trap, Kind::Timeout),
        Some(_) if memory_denied => (Reason::MemoryLimit, Kind::Internal),
        _ if memory_denied => (Reason::MemoryLimit, Kind::Internal),
        _ => (Reason::Trap, Kind::Internal),
    };
    let trap_text = match trap {
        Some(t) => t.to_string().trim_start_matches("wasm trap: ").to_string(),
        // Past wasmtime's "error while executing at wasm backtrace" context: the cause.
        None => e.root_cause().to_string(),
    };
    if kind == Kind::Timeout {
        let mut err = match control {
            Some(c) if c.deadline.is_some() && c.expired() => c.stop_error(id),
            _ => Error::new(kind, format!("{id}: the call ran out of time (limits.max_execution_ms)")),
        };
        err.stack = stack;
        return err;
    }
    let mut err = Error::new(kind, format!("{id}: wasm trap: {trap_text}"));
    err.details = Some(Details { reason, trap: trap_text, code: None, stderr: None });
    err.stack = stack;
    err
}
