//! Calls from WebAssembly into the registry: `wippy:runtime/funcs@0.1.0` (SPEC §5.2), for
//! entries granted `funcs`.
//!
//! `call-string(target, input)` takes the steps of `funcs.call` under the guest's context (the
//! caller's, one level deeper — `call::bind` made it): resolve, authorize (`funcs.call` on the
//! target), grant, run. A WebAssembly target gets the input as its one argument and runs on its
//! own pool (a target of the caller's own pool does not wait for a slot: see
//! `Bound::reentrant`). A `function.lua` target runs on the Lua thread of the state the
//! outermost call came from (`Context::home`): at once when that thread is the one blocked in
//! this call (`sched::server`), else as a [`Job`] its scheduler runs as a task while the guest
//! waits — its fiber suspended, no thread blocked.
//!
//! Results come back as the guest asked: a string or bytes as they are, anything else as JSON
//! (`convert::json`); a failure as the error's message.

use std::sync::Arc;

use tokio::sync::oneshot;
use wasmtime::component::{Linker, Val};

use super::{authorize, bind, check_target, run, Input, Output};
use crate::convert::Ty;
use crate::engine::{Callee, Function};
use crate::error::{Error, Kind};
use crate::host::state::HostState;
use crate::registry::Spec;
use crate::runtime::{self, Loaded};
use crate::sched::{self, Control, Inbox, Job};
use crate::security::Context;

/// The interface, as guests import it.
pub const INTERFACE: &str = "wippy:runtime/funcs@0.1.0";

/// What a guest's registry call gives back: the bytes, or the error's message.
type Reply = Result<Vec<u8>, String>;

/// Adds `wippy:runtime/funcs` (asynchronously: a Lua target suspends the guest; synchronously:
/// for callers blocked on the Lua thread, where a Lua target runs at once).
///
/// # Errors
/// A linker failure.
pub fn add_to_linker(l: &mut Linker<HostState>, asynchronous: bool) -> wasmtime::Result<()> {
    let mut i = l.instance(INTERFACE)?;
    if asynchronous {
        i.func_wrap_async("call-string", |store, (target, input): (String, String)| {
            let ctx = store.data().ctx.clone();
            Box::new(async move {
                let id = target.clone();
                Ok((text(&id, call_async(ctx, target, input.into_bytes(), false).await),))
            })
        })?;
        i.func_wrap_async("call-bytes", |store, (target, input): (String, Vec<u8>)| {
            let ctx = store.data().ctx.clone();
            Box::new(async move { Ok((call_async(ctx, target, input, true).await,)) })
        })?;
    } else {
        i.func_wrap("call-string", |store, (target, input): (String, String)| {
            let ctx = store.data().ctx.clone();
            Ok((text(&target, call_now(&ctx, &target, input.into_bytes(), false)),))
        })?;
        i.func_wrap("call-bytes", |store, (target, input): (String, Vec<u8>)| {
            let ctx = store.data().ctx.clone();
            Ok((call_now(&ctx, &target, input, true),))
        })?;
    }
    Ok(())
}

/// A `call-string` result must be text.
fn text(target: &str, r: Reply) -> Result<String, String> {
    r.and_then(|b| {
        String::from_utf8(b)
            .map_err(|_| format!("{target}: the result is not valid UTF-8 text (use call-bytes for bytes)"))
    })
}

/// Steps 1 and 2: the entry, if the guest's context may call it.
fn resolve(ctx: &Context, target: &str) -> Result<Arc<Loaded>, Error> {
    let id = check_target(target.as_bytes())?;
    let loaded = runtime::get(id).ok_or_else(|| Error::new(Kind::NotFound, format!("function not found: {id}")))?;
    authorize(ctx, &loaded)?;
    Ok(loaded)
}

/// A registry call of a guest blocked on the Lua thread (synchronous WASI).
fn call_now(ctx: &Arc<Context>, target: &str, input: Vec<u8>, bytes: bool) -> Reply {
    let loaded = resolve(ctx, target).map_err(message)?;
    match loaded.func.as_deref() {
        Some(f) => {
            let bound = bind(&loaded, f, ctx).map_err(message)?;
            let out = bound.now(wasm_input(f, input, bytes).map_err(message)?).map_err(message)?;
            encode(f, out)
        }
        None => {
            let (job, rx) = lua_job(ctx, &loaded, input, bytes).map_err(message)?;
            let home = home(ctx, &loaded).map_err(message)?;
            match serve_here(home, job, rx) {
                Ok(reply) => reply,
                Err(_) => Err(format!("{}: a Lua function cannot run here (no Lua thread is waiting)", loaded.id)),
            }
        }
    }
}

/// A registry call of a guest running asynchronously (on a worker, or polled on the Lua
/// thread).
async fn call_async(ctx: Arc<Context>, target: String, input: Vec<u8>, bytes: bool) -> Reply {
    let loaded = resolve(&ctx, &target).map_err(message)?;
    match loaded.func.as_deref() {
        Some(f) => {
            let (owned, input) = {
                let bound = bind(&loaded, f, &ctx).map_err(message)?;
                (bound.owned(&loaded), wasm_input(f, input, bytes).map_err(message)?)
            };
            let control = Control::new(f.limits.max_execution_ms, 0);
            let out = run(owned, control, input, true).await.map_err(message)?;
            encode(f, out)
        }
        None => {
            let (job, rx) = lua_job(&ctx, &loaded, input, bytes).map_err(message)?;
            let home = home(&ctx, &loaded).map_err(message)?;
            let (job, rx) = match serve_here(home, job, rx) {
                Ok(reply) => return reply,
                Err(pending) => pending,
            };
            let gone = || format!("{}: the Lua state that made this call is gone", loaded.id);
            home.push_job(job).map_err(|_| gone())?;
            rx.await.map_err(|_| gone())?
        }
    }
}

/// Runs the job at once when its Lua thread is this one and blocked in this call; else gives
/// it back.
fn serve_here(
    home: &Arc<Inbox>,
    job: Job,
    mut rx: oneshot::Receiver<Reply>,
) -> Result<Reply, (Job, oneshot::Receiver<Reply>)> {
    let Some(server) = sched::server(home) else {
        return Err((job, rx));
    };
    let id = job.target.clone();
    server(job);
    Ok(rx.try_recv().unwrap_or_else(|_| Err(format!("{id}: the Lua function gave no result"))))
}

/// A call of a `function.lua` entry: runs under the guest's context, one level deeper.
fn lua_job(
    ctx: &Arc<Context>,
    loaded: &Loaded,
    input: Vec<u8>,
    bytes: bool,
) -> Result<(Job, oneshot::Receiver<Reply>), Error> {
    if !matches!(loaded.entry.spec, Spec::FunctionLua(_)) {
        let mut e = Error::new(
            Kind::Unavailable,
            format!("{}: entries of kind `{}` cannot be called", loaded.id, loaded.entry.kind),
        );
        e.retryable = false;
        return Err(e);
    }
    let inner = ctx.nested(&loaded.id).map_err(Error::invalid)?;
    let (reply, rx) = oneshot::channel();
    Ok((Job { target: loaded.id.to_string(), ctx: inner, input, bytes, reply }, rx))
}

fn home<'a>(ctx: &'a Context, loaded: &Loaded) -> Result<&'a Arc<Inbox>, Error> {
    ctx.home.as_ref().map(|h| &h.0).ok_or_else(|| {
        Error::new(
            Kind::Unavailable,
            format!("{}: a Lua function can be called only in calls made from Lua", loaded.id),
        )
    })
}

/// The guest's input as the target's one argument: a `string` or `list<u8>` parameter (or
/// none, for an empty input).
fn wasm_input(f: &Function, input: Vec<u8>, bytes: bool) -> Result<Input, Error> {
    let wrong = || {
        Error::invalid(format!(
            "{}: a registry call from WebAssembly passes one {} argument; this function takes {}",
            f.id,
            if bytes { "list<u8>" } else { "string" },
            f.signature
        ))
    };
    if f.has_resources {
        return Err(wrong());
    }
    match (&f.callee, f.params.as_slice()) {
        (Callee::Core { .. }, []) if input.is_empty() => Ok(Input::Core(Vec::new())),
        (Callee::Component { .. }, []) if input.is_empty() => Ok(Input::Component(Vec::new())),
        (Callee::Component { .. }, [p]) => match p.ty.bare() {
            Ty::String => {
                let s = String::from_utf8(input).map_err(|_| {
                    Error::invalid(format!("{}: argument 1 ({}): expected a UTF-8 string, got bytes", f.id, p.name))
                })?;
                Ok(Input::Component(vec![Val::String(s)]))
            }
            Ty::Bytes => Ok(Input::Component(vec![Val::List(input.into_iter().map(Val::U8).collect())])),
            _ => Err(wrong()),
        },
        _ => Err(wrong()),
    }
}

/// The bytes a guest gets for a finished WebAssembly call.
fn encode(f: &Function, out: Output) -> Reply {
    let json_error = |m: String| format!("{}: cannot encode the result as JSON: {m}", f.id);
    match out {
        Output::Component(vals) => match (vals.into_iter().next(), f.results.first().map(|r| r.ty.bare())) {
            (Some(Val::Result(r)), Some(Ty::Result(ok, err))) => match r {
                Ok(Some(v)) => payload(*v, ok.as_deref()).map_err(json_error),
                Ok(None) => Ok(Vec::new()),
                Err(Some(v)) => Err(payload(*v, err.as_deref())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .map_err(json_error)?),
                Err(None) => Err(format!("{}: the call failed", f.id)),
            },
            (Some(v), ty) => payload(v, ty).map_err(json_error),
            (None, _) => Ok(Vec::new()),
        },
        Output::Core(vals) => {
            let mut s = String::new();
            let core = |v: &wasmtime::Val, s: &mut String| match v {
                wasmtime::Val::I32(n) => {
                    s.push_str(&n.to_string());
                    Ok(())
                }
                wasmtime::Val::I64(n) => {
                    s.push_str(&n.to_string());
                    Ok(())
                }
                wasmtime::Val::F32(b) => crate::convert::json::float(f64::from(f32::from_bits(*b)), s),
                wasmtime::Val::F64(b) => crate::convert::json::float(f64::from_bits(*b), s),
                _ => Err("a reference has no JSON form".to_string()),
            };
            match vals.as_slice() {
                [] => {}
                [v] => core(v, &mut s).map_err(json_error)?,
                many => {
                    s.push('[');
                    for (i, v) in many.iter().enumerate() {
                        if i > 0 {
                            s.push(',');
                        }
                        core(v, &mut s).map_err(json_error)?;
                    }
                    s.push(']');
                }
            }
            Ok(s.into_bytes())
        }
        Output::Tape(_) => Err(format!("{}: the result came back in an unexpected form", f.id)),
    }
}

/// A string or bytes as they are; any other value as JSON.
fn payload(v: Val, ty: Option<&Ty>) -> Result<Vec<u8>, String> {
    match (v, ty.map(Ty::bare)) {
        (Val::String(s), _) => Ok(s.into_bytes()),
        (Val::List(items), Some(Ty::Bytes)) => {
            Ok(items.into_iter().map(|i| if let Val::U8(b) = i { b } else { 0 }).collect())
        }
        (other, _) => {
            let mut s = String::new();
            crate::convert::json::val(&other, &mut s)?;
            Ok(s.into_bytes())
        }
    }
}

fn message(e: Error) -> String {
    e.message
}
