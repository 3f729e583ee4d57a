//! Instances of an entry and running calls on them.
//!
//! For now every call runs on the calling thread (`inline`), reusing a warm instance; an
//! instance that trapped is discarded. The call takes only Rust data (values, the caller's
//! context), so moving it to a worker thread changes where it runs, not what it takes.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, Weak};

use wasmtime::component::{self, ComponentExportIndex, ResourceAny, Val};
use wasmtime::{Store, Trap, ValRaw, WasmBacktrace};

use crate::engine::{engine, Callee, Function, HostState};
use crate::error::{Details, Error, Kind, Reason};
use crate::registry::Limits;
use crate::security::Context;

/// A live instance and the function to call on it.
enum Live {
    Core { store: Store<HostState>, func: wasmtime::Func },
    Component { store: Store<HostState>, func: component::Func, instance: component::Instance },
}

/// Warm instances of one entry: one in a lock-free slot (the common, sequential case costs
/// an atomic swap to take and one to give back), more behind a mutex when calls overlap.
#[derive(Default)]
pub struct Pool {
    hot: AtomicPtr<Live>,
    // Boxed so that moving an instance between the slot, this list and a call moves a pointer.
    #[allow(clippy::vec_box)]
    warm: Mutex<Vec<Box<Live>>>,
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
    fn take(&self, f: &Function) -> Result<Box<Live>, Error> {
        let p = self.hot.swap(ptr::null_mut(), Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: taken out of the slot by the swap, so owned here alone.
            return Ok(unsafe { Box::from_raw(p) });
        }
        if let Some(live) = self.warm.lock().ok().and_then(|mut w| w.pop()) {
            return Ok(live);
        }
        let mut store = Store::new(engine(), HostState::new(&f.id, &f.limits));
        store.limiter(|s| s);
        store.set_epoch_deadline(HostState::IDLE_DEADLINE);
        match &f.callee {
            Callee::Core { pre, export, .. } => {
                let instance = pre.instantiate(&mut store).map_err(|e| instantiate_error(&f.id, e))?;
                let func = instance
                    .get_func(&mut store, export)
                    .ok_or_else(|| Error::internal(format!("{}: export `{export}` vanished", f.id)))?;
                Ok(Box::new(Live::Core { store, func }))
            }
            Callee::Component { pre, export, .. } => {
                let instance = pre.instantiate(&mut store).map_err(|e| instantiate_error(&f.id, e))?;
                let func = instance
                    .get_func(&mut store, export)
                    .ok_or_else(|| Error::internal(format!("{}: export vanished", f.id)))?;
                Ok(Box::new(Live::Component { store, func, instance }))
            }
        }
    }

    fn give_back(&self, live: Box<Live>) {
        let p = Box::into_raw(live);
        if self.hot.compare_exchange(ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed).is_err() {
            // SAFETY: the exchange failed, so `p` is still ours alone.
            let live = unsafe { Box::from_raw(p) };
            if let Ok(mut w) = self.warm.lock() {
                w.push(live);
            }
        }
    }

    /// Calls a core export. `raw` holds the arguments and receives the results; it is as
    /// long as the longer of the two lists.
    ///
    /// # Errors
    /// A trap (`INTERNAL` with details) or an instantiation failure.
    pub fn call_core(&self, f: &Function, ctx: &Arc<Context>, raw: &mut [ValRaw]) -> Result<(), Error> {
        let Callee::Core { params, results, .. } = &f.callee else {
            return Err(Error::internal(format!("{}: not a core function", f.id)));
        };
        if raw.len() < params.len().max(results.len()) {
            return Err(Error::internal(format!("{}: argument buffer too short", f.id)));
        }
        let mut live = self.take(f)?;
        let Live::Core { store, func } = &mut *live else {
            return Err(Error::internal(format!("{}: not a core function", f.id)));
        };
        begin(store, ctx, &f.limits);
        // SAFETY: `func` was looked up by name in an instance of the module whose export type
        // gave `params` and `results` (checked in `engine::prepare`), it belongs to `store`,
        // and `raw` is long enough for both lists, written per `Scalar::core`.
        match unsafe { func.call_unchecked(&mut *store, raw as *mut [ValRaw]) } {
            Ok(()) => {
                self.give_back(live);
                Ok(())
            }
            Err(e) => Err(trap_error(&f.id, e, store.data().memory_denied)),
        }
    }

    /// Calls a component export with component values. With `pinned`, the call runs in that
    /// instance (its resources are arguments). Returns the instance the results live in when
    /// they hold resources: it is then pinned (kept out of the pool) while they live.
    ///
    /// # Errors
    /// A trap (`INTERNAL` with details) or an instantiation failure.
    pub fn call_component(
        &self,
        f: &Function,
        ctx: &Arc<Context>,
        args: &[Val],
        results: &mut [Val],
        pinned: Option<&Arc<Pinned>>,
    ) -> Result<Option<Arc<Pinned>>, Error> {
        let Callee::Component { export, sticky, .. } = &f.callee else {
            return Err(Error::internal(format!("{}: not a component function", f.id)));
        };
        // While resources of this component live, its calls run in their instance, so that
        // handles from different calls can meet in one call.
        let pinned = match pinned {
            Some(p) => Some(p.clone()),
            None => sticky.get().filter(|p| p.is_alive()),
        };
        if let Some(p) = pinned {
            p.call(&f.id, export, ctx, &f.limits, args, results)?;
            return Ok(Some(p));
        }
        let mut live = self.take(f)?;
        let Live::Component { store, func, .. } = &mut *live else {
            return Err(Error::internal(format!("{}: not a component function", f.id)));
        };
        begin(store, ctx, &f.limits);
        match func.call(&mut *store, args, results) {
            Ok(()) if f.has_resources && results.iter().any(holds_resource) => {
                let p = Arc::new(Pinned { live: Mutex::new(Some(live)) });
                sticky.set(&p);
                Ok(Some(p))
            }
            Ok(()) => {
                self.give_back(live);
                Ok(None)
            }
            Err(e) => {
                let ran = guest_ran(&e);
                let err = trap_error(&f.id, e, store.data().memory_denied);
                // An argument the host could not lower (a bad handle) fails before the guest
                // runs and leaves the instance as it was; anything else discards it.
                if !ran {
                    self.give_back(live);
                }
                Err(err)
            }
        }
    }
}

/// The instance that holds a component's live resources, if any (weakly: it goes with the
/// last handle).
#[derive(Default)]
pub struct Sticky(Mutex<Weak<Pinned>>);

impl Sticky {
    fn get(&self) -> Option<Arc<Pinned>> {
        self.0.lock().ok().and_then(|w| w.upgrade())
    }

    fn set(&self, p: &Arc<Pinned>) {
        if let Ok(mut w) = self.0.lock() {
            *w = Arc::downgrade(p);
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
        let mut guard = self.live.lock().map_err(|_| Error::internal(format!("{id}: instance lock poisoned")))?;
        let Some(live) = guard.as_mut() else {
            return Err(Error::invalid(format!(
                "{id}: the instance holding this resource trapped earlier; the resource is gone"
            )));
        };
        let Live::Component { store, instance, .. } = &mut **live else {
            return Err(Error::internal(format!("{id}: not a component instance")));
        };
        begin(store, ctx, limits);
        let func =
            instance.get_func(&mut *store, export).ok_or_else(|| Error::internal(format!("{id}: export vanished")))?;
        match func.call(&mut *store, args, results) {
            Ok(()) => Ok(()),
            Err(e) => {
                let ran = guest_ran(&e);
                let err = trap_error(id, e, store.data().memory_denied);
                if ran {
                    *guard = None;
                }
                Err(err)
            }
        }
    }

    /// Drops a resource owned by the host (`r:drop()`, `__gc`, `__close`).
    pub fn drop_resource(&self, r: ResourceAny) {
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

/// Prepares a store for a call: the caller's context, and the memory cap of the entry called
/// (an instance pinned for resources serves every entry of its component).
fn begin(store: &mut Store<HostState>, ctx: &Arc<Context>, limits: &Limits) {
    store.set_epoch_deadline(crate::engine::deadline_ticks(limits.max_execution_ms));
    let memory_bytes = limits.memory_bytes;
    let data = store.data_mut();
    if !Arc::ptr_eq(&data.ctx, ctx) {
        data.ctx = ctx.clone();
    }
    data.memory_bytes = memory_bytes;
    data.memory_denied = false;
}

/// Whether a failed call got as far as running guest code (a trap, or a host error raised
/// while the guest ran, which carries a backtrace).
fn guest_ran(e: &wasmtime::Error) -> bool {
    e.downcast_ref::<Trap>().is_some() || e.downcast_ref::<WasmBacktrace>().is_some()
}

fn instantiate_error(id: &str, e: wasmtime::Error) -> Error {
    trap_error(id, e, false)
}

/// Classifies a failed call: traps get `details().reason`, the backtrace goes to `stack`.
fn trap_error(id: &str, e: wasmtime::Error, memory_denied: bool) -> Error {
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
        let mut err = Error::new(kind, format!("{id}: the call ran out of time (limits.max_execution_ms)"));
        err.stack = stack;
        return err;
    }
    let mut err = Error::new(kind, format!("{id}: wasm trap: {trap_text}"));
    err.details = Some(Details { reason, trap: trap_text });
    err.stack = stack;
    err
}
