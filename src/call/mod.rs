//! The call path below `lua_api`, one step after the other (docs/design.md, "The call path"):
//!
//! 1. **resolve** — the target text to an entry ([`Targets::resolve`]; `INVALID` for a
//!    malformed ID, `NOT_FOUND` for an unknown one);
//! 2. **authorize** — the caller's context may call it ([`authorize`]; the security issue fills
//!    it in, every call is allowed until then);
//! 3. **grant** — the entry's capabilities for this call ([`bind`]: its `wasi.env` read now, a
//!    missing required variable fails here);
//! 4. **route** — where and how it runs ([`route`], the one place that decides);
//! 5. **run** — on the entry's pool, in a store built from the grant ([`Bound::core_now`],
//!    [`Bound::component_now`], [`run`] for calls that may wait or move to a worker).
//!
//! Lua values never reach this module: `lua_api` converts arguments before step 5 and results
//! after it, and does the yielding. Nothing here calls back into `lua_api`.

pub mod guest;
pub mod process;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use wasmtime::component::Val;
use wasmtime::ValRaw;

use crate::convert::tape::Tape;
use crate::engine::{Callee, Function};
use crate::error::{Error, Kind};
use crate::host::grant::{Env, Launch};
use crate::pool::{Call, Io, Pinned};
use crate::registry::PoolKind;
use crate::runtime::{self, Loaded};
use crate::sched::{self, Control};
use crate::security::Context;

/// How the caller waits for a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Outside a task: the caller blocks.
    Block,
    /// In a task: the call may yield the task.
    Task,
    /// `funcs.async`: the caller gets a future at once.
    Async,
    /// A coroutine nginx runs (OpenResty): a call that may wait runs elsewhere and the caller
    /// waits through nginx; one that cannot runs here.
    Ngx,
}

/// Per-call options of an executor.
#[derive(Clone)]
pub struct Options {
    /// `with_options{ timeout = ms }` (0 = none).
    pub timeout_ms: u64,
    pub ctx: Arc<Context>,
    /// `with_options{ record_keys = }`: result records keyed by snake_case names (`Some(true)`),
    /// by WIT names (`Some(false)`), or as configured (`None`).
    pub snake_keys: Option<bool>,
}

/// A target's bytes and the entry they resolved to.
type Resolved = (Rc<[u8]>, Arc<Loaded>);

/// Step 1: a caller's resolved targets (target bytes → entry), valid while the registry's
/// generation holds. One per Lua state.
#[derive(Default)]
pub struct Targets {
    /// Keys shared with `last`, so that moving it to another target allocates nothing.
    cache: RefCell<FxHashMap<Rc<[u8]>, Arc<Loaded>>>,
    /// The last target found, checked first: a loop calling one function skips the hashing.
    last: RefCell<Option<Resolved>>,
    generation: Cell<u64>,
}

impl Targets {
    /// The entry for `target`, from the cache only (`None` on a miss).
    #[inline]
    pub fn cached(&self, target: &[u8]) -> Option<Arc<Loaded>> {
        self.refresh();
        let mut last = self.last.borrow_mut();
        if let Some((key, loaded)) = &*last {
            if **key == *target {
                return Some(loaded.clone());
            }
        }
        let (key, hit) = self.cache.borrow().get_key_value(target).map(|(k, v)| (k.clone(), v.clone()))?;
        *last = Some((key, hit.clone()));
        Some(hit)
    }

    /// Forgets the resolved targets when the registry changed since they were resolved, which
    /// lets a removed or replaced entry (its pool and warm instances) go. Called on every
    /// lookup, and by `registry:add`, `registry:remove` and `wippy.load` so that the state
    /// that changed the registry does not keep the old entry until its next call.
    #[inline]
    pub fn refresh(&self) {
        let now = runtime::generation();
        if self.generation.get() != now {
            self.cache.borrow_mut().clear();
            *self.last.borrow_mut() = None;
            self.generation.set(now);
        }
    }

    /// The entry for `target`: checks the ID as SPEC §2 orders, then looks it up.
    ///
    /// # Errors
    /// `INVALID` for a malformed ID, `NOT_FOUND` for an unknown entry.
    pub fn resolve(&self, target: &[u8]) -> Result<Arc<Loaded>, Error> {
        if let Some(hit) = self.cached(target) {
            return Ok(hit);
        }
        let id = check_target(target)?;
        let loaded = runtime::get(id).ok_or_else(|| Error::new(Kind::NotFound, format!("function not found: {id}")))?;
        self.cache.borrow_mut().insert(target.into(), loaded.clone());
        Ok(loaded)
    }
}

/// Checks a target in the order §2 gives; returns the ID text.
fn check_target(target: &[u8]) -> Result<&str, Error> {
    let text = std::str::from_utf8(target).map_err(|_| Error::invalid("function ID must be valid UTF-8"))?;
    if text.is_empty() {
        return Err(Error::invalid("function ID required"));
    }
    match text.split_once(':') {
        None => Err(Error::invalid(format!("namespace required in function ID \"{text}\""))),
        Some((_, "")) => Err(Error::invalid(format!("name required in function ID \"{text}\""))),
        Some(("", _)) => Err(Error::invalid(format!("namespace required in function ID \"{text}\""))),
        Some(_) => Ok(text),
    }
}

/// Step 2: may the caller's context call this entry (`funcs.call` on its ID, and `fs.get` on
/// each directory it mounts, SPEC §5.4)? Without a scope nothing applies: allowed, unless strict
/// mode is on.
///
/// # Errors
/// `PERMISSION_DENIED` when the context's scope denies it (or, in strict mode, does not allow it).
#[inline]
pub fn authorize(ctx: &Context, loaded: &Loaded) -> Result<(), Error> {
    if ctx.scope.is_none() && !crate::security::strict() {
        return Ok(());
    }
    check(ctx, loaded)
}

#[cold]
fn check(ctx: &Context, loaded: &Loaded) -> Result<(), Error> {
    let who = || ctx.actor.as_ref().map(|a| format!(" for actor {}", a.id)).unwrap_or_default();
    let denied = |message: String| {
        let mut e = Error::new(Kind::PermissionDenied, message);
        e.retryable = false;
        e
    };
    if !ctx.can("funcs.call", &loaded.id) {
        return Err(denied(format!("{}: funcs.call is not allowed{}", loaded.id, who())));
    }
    // The directories the call would reach: `fs.get` on each mount's fs.directory entry.
    for m in &loaded.grant.mounts {
        if !ctx.can("fs.get", &m.entry) {
            return Err(denied(format!(
                "{}: fs.get is not allowed on {} (mounted at {}){}",
                loaded.id,
                m.entry,
                m.guest,
                who()
            )));
        }
    }
    Ok(())
}

/// Steps 2 and 3 done: an authorized call with the entry's grant and this call's environment.
pub struct Bound<'a> {
    pub loaded: &'a Loaded,
    pub f: &'a Function,
    /// The caller's context.
    pub ctx: &'a Arc<Context>,
    /// The context inside the call, for an entry that may call the registry (`funcs`): one
    /// level deeper, with its pool held ([`Context::inside`]). Others run under the caller's.
    pub inner: Option<Arc<Context>>,
    /// The caller runs inside a call of this entry's pool (a guest calling its own entry
    /// through the registry): the call does not wait for a slot of the pool.
    pub reentrant: bool,
    pub env: Env,
    /// A process's run: a fresh instance with this stdio and argv ([`Bound::launch`]).
    pub launch: Option<Launch>,
}

/// Authorizes a call of a WebAssembly entry and reads its grant's environment.
///
/// # Errors
/// `PERMISSION_DENIED`, or `UNAVAILABLE` when a required `wasi.env` variable is missing.
#[inline]
pub fn bind<'a>(loaded: &'a Loaded, f: &'a Function, ctx: &'a Arc<Context>) -> Result<Bound<'a>, Error> {
    // Not in a child forked after the engine and threads started (nginx's workers).
    crate::sched::wake::check_fork()?;
    authorize(ctx, loaded)?;
    let env = loaded.grant.env_values().map_err(|m| missing_env(f, m))?;
    let (inner, reentrant) =
        if ctx.held.is_none() && !f.calls_registry { (None, false) } else { enter(loaded, f, ctx)? };
    Ok(Bound { loaded, f, ctx, inner, reentrant, env, launch: None })
}

/// The context inside a call of an entry that may call the registry, and whether the caller
/// runs inside a call of the same pool.
#[cold]
fn enter(loaded: &Loaded, f: &Function, ctx: &Arc<Context>) -> Result<(Option<Arc<Context>>, bool), Error> {
    let pool = pool_key(loaded);
    let inner = match f.calls_registry {
        true => Some(ctx.inside(&loaded.id, pool).map_err(Error::invalid)?),
        false => None,
    };
    Ok((inner, ctx.holds(pool)))
}

/// The identity of an entry's pool in a context's chain ([`Context::held`]).
fn pool_key(loaded: &Loaded) -> usize {
    &loaded.pool as *const crate::pool::Pool as usize
}

#[cold]
fn missing_env(f: &Function, m: String) -> Error {
    let mut e = Error::new(Kind::Unavailable, format!("{}: {m}", f.id));
    e.retryable = false;
    e
}

/// Step 4: where a call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Now, on the caller's thread (the caller blocks, or the call cannot wait and belongs to
    /// an `inline` pool): synchronous WASI, except that an `inline` pool's component keeps its
    /// one (asynchronous) instance, driven here.
    Here,
    /// On the caller's thread, blocking it, under a [`Control`]: a time limit must also stop a
    /// guest that waits.
    BlockOn,
    /// In the instance holding the resources its values carry, on the caller's thread.
    Pinned,
    /// Started as an operation: polled on this thread first (`inline`: no parallelism) or
    /// spawned on the workers; the caller gets a future (a task yields for it). `yielding`: a
    /// long computation yields to the executor at each epoch tick.
    Start { here_first: bool, yielding: bool },
}

/// Decides where a call of `f` runs (the only place that does).
#[inline]
pub fn route(f: &Function, kind: PoolKind, caller: Caller, timeout_ms: u64) -> Route {
    if f.has_resources {
        return Route::Pinned;
    }
    let inline = kind == PoolKind::Inline;
    let waits = f.may_wait();
    match caller {
        // A call that cannot wait, in an inline pool, computes on the Lua thread to the end
        // (its own time limit is the epoch deadline; an executor's timeout needs the control).
        Caller::Task if inline && !waits && timeout_ms == 0 => Route::Here,
        Caller::Task => Route::Start { here_first: inline, yielding: !inline },
        Caller::Async => Route::Start { here_first: inline, yielding: true },
        // Polled here first: a guest that does not wait finishes without a thread hop; one
        // that waits, or computes past an epoch tick, moves to the workers.
        Caller::Ngx if !waits && timeout_ms == 0 => Route::Here,
        Caller::Ngx => Route::Start { here_first: true, yielding: !inline },
        Caller::Block => {
            if timeout_ms > 0 || (waits && f.limits.max_execution_ms > 0) {
                Route::BlockOn
            } else {
                Route::Here
            }
        }
    }
}

impl Bound<'_> {
    /// The context the guest runs under.
    pub fn ctx(&self) -> &Arc<Context> {
        self.inner.as_ref().unwrap_or(self.ctx)
    }

    fn call(&self) -> Call<'_> {
        Call {
            f: self.f,
            grant: &self.loaded.grant,
            env: &self.env,
            ctx: self.ctx(),
            reentrant: self.reentrant,
            launch: self.launch.as_ref(),
        }
    }

    /// Runs as a process: in a fresh instance (never reused) with `launch`'s stdio and argv.
    pub fn launch(mut self, launch: Launch) -> Self {
        self.launch = Some(launch);
        self
    }

    /// Step 5 for a core function on this thread ([`Route::Here`]): `raw` holds the arguments
    /// and receives the results.
    ///
    /// # Errors
    /// A trap, a timeout, or an instantiation failure.
    #[inline]
    pub fn core_now(&self, raw: &mut [ValRaw]) -> Result<(), Error> {
        self.loaded.pool.call_core(&self.call(), None, raw)
    }

    /// Step 5 for a component function on this thread ([`Route::Here`] or [`Route::Pinned`]).
    /// Returns the instance its results' resources live in.
    ///
    /// # Errors
    /// A trap, or an instantiation failure.
    pub fn component_now(&self, io: Io<'_>, pinned: Option<&Arc<Pinned>>) -> Result<Option<Arc<Pinned>>, Error> {
        let pool = &self.loaded.pool;
        if pool.kind == PoolKind::Inline && !self.f.has_resources {
            // One instance for every caller (SPEC §4): the asynchronous one, which tasks use too.
            return sched::block_on(pool.run_component(&self.call(), None, io, true))?.map(|()| None);
        }
        pool.call_component(&self.call(), io, pinned)
    }

    /// Step 5 on this thread, now ([`Route::Here`]), for converted arguments.
    ///
    /// # Errors
    /// A trap, a timeout, or an instantiation failure.
    pub fn now(&self, input: Input) -> Result<Output, Error> {
        let f = self.f;
        match input {
            Input::Core(vals) => {
                let Callee::Core { params, results, .. } = &f.callee else {
                    return Err(Error::internal(format!("{}: not a core function", f.id)));
                };
                let mut raw = vec![ValRaw::i32(0); params.len().max(results.len())];
                for (i, v) in vals.iter().enumerate() {
                    raw[i] = crate::convert::Scalar::to_raw(v);
                }
                self.core_now(&mut raw)?;
                Ok(Output::Core(results.iter().zip(&raw).map(|(s, r)| s.from_raw(r)).collect()))
            }
            Input::Component(vals) => {
                let mut out = vec![Val::Bool(false); f.results.len()];
                self.component_now(Io::Val { args: &vals, results: &mut out }, None)?;
                Ok(Output::Component(out))
            }
            Input::Tape(args) => {
                let mut out = Tape::default();
                self.component_now(Io::Tape { args: &args, results: &mut out }, None)?;
                Ok(Output::Tape(out))
            }
        }
    }

    /// An owned copy, to run where the caller's frame does not reach (a worker, a future).
    pub fn owned(&self, loaded: &Arc<Loaded>) -> Owned {
        Owned {
            loaded: loaded.clone(),
            ctx: self.ctx().clone(),
            reentrant: self.reentrant,
            env: self.env.clone(),
            launch: self.launch.clone(),
        }
    }
}

/// A bound call that owns what it needs (`Send`).
pub struct Owned {
    loaded: Arc<Loaded>,
    /// The context the guest runs under.
    ctx: Arc<Context>,
    reentrant: bool,
    env: Env,
    launch: Option<Launch>,
}

/// Arguments converted by the caller, ready to cross to a worker.
pub enum Input {
    Core(Vec<wasmtime::Val>),
    Component(Vec<Val>),
    /// On a tape that owns its bytes.
    Tape(Tape),
}

/// What a finished call produced, before conversion back.
pub enum Output {
    Core(Vec<wasmtime::Val>),
    Component(Vec<Val>),
    /// Results on a value tape (functions with `Function::tape`).
    Tape(Tape),
}

/// Step 5 for calls that may wait: runs under `control` (cancel, deadline). The future is
/// `Send`: it may be polled on the caller's thread or spawned on the workers.
pub async fn run(call: Owned, control: Arc<Control>, input: Input, yielding: bool) -> Result<Output, Error> {
    let Owned { loaded, ctx, reentrant, env, launch } = call;
    let Some(f) = loaded.code() else {
        return Err(Error::internal(format!("{}: not a WebAssembly function", loaded.entry.id)));
    };
    let c = Call { f, grant: &loaded.grant, env: &env, ctx: &ctx, reentrant, launch: launch.as_ref() };
    let guarded = sched::guarded(&f.id, &control, async {
        match input {
            Input::Core(vals) => run_core(&loaded, &c, Some(&control), &vals, yielding).await,
            Input::Component(vals) => {
                let mut out = vec![Val::Bool(false); f.results.len()];
                let io = Io::Val { args: &vals, results: &mut out };
                loaded.pool.run_component(&c, Some(&control), io, yielding).await?;
                Ok(Output::Component(out))
            }
            Input::Tape(args) => {
                let mut out = Tape::default();
                let io = Io::Tape { args: &args, results: &mut out };
                loaded.pool.run_component(&c, Some(&control), io, yielding).await?;
                Ok(Output::Tape(out))
            }
        }
    })
    .await;
    match guarded {
        Ok(r) => r,
        // Stopped while it waited: the pool never saw the failure, so count it here.
        Err(e) => Err(loaded.pool.stats.failed(e)),
    }
}

/// Runs [`run`] to the end on this thread ([`Route::BlockOn`]).
///
/// # Errors
/// The call's error, or the workers failing to start.
pub fn block_on(call: Owned, control: Arc<Control>, input: Input) -> Result<Output, Error> {
    sched::block_on(run(call, control, input, true))?
}

async fn run_core(
    loaded: &Loaded,
    c: &Call<'_>,
    control: Option<&Arc<Control>>,
    vals: &[wasmtime::Val],
    yielding: bool,
) -> Result<Output, Error> {
    let Callee::Core { params, results, .. } = &c.f.callee else {
        return Err(Error::internal(format!("{}: not a core function", c.f.id)));
    };
    let mut raw = vec![ValRaw::i32(0); params.len().max(results.len())];
    for (i, v) in vals.iter().enumerate() {
        raw[i] = crate::convert::Scalar::to_raw(v);
    }
    if c.f.may_wait() {
        loaded.pool.run_core(c, control, &mut raw, yielding).await?;
    } else {
        // A core module without WASI cannot wait: its time limit is the epoch deadline. Its
        // slot is waited for here, as a future, so a task's call yields instead of blocking.
        let _held = loaded.pool.permit(c).await;
        loaded.pool.call_core_held(c, control, &mut raw)?;
    }
    Ok(Output::Core(results.iter().zip(&raw).map(|(s, r)| s.from_raw(r)).collect()))
}

/// The result of a call whose job died on a worker (a panic).
pub fn lost(id: &str) -> impl FnOnce() -> Result<Output, Error> + Send + 'static {
    let id = id.to_string();
    move || Err(Error::internal(format!("{id}: the call failed on a worker thread (a panic)")))
}
