//! `funcs.call` and `funcs.async` (SPEC §2, §4): the Lua side of the call path.
//!
//! This file converts Lua values and hands calls to [`crate::call`], which resolves the
//! target, authorizes the call, binds the entry's grant and decides where it runs
//! ([`call::route`]). What is left here is Lua's part: reading the arguments, pushing the
//! results, running `function.lua` entries, and returning a future (or the marker that makes a
//! task yield) for calls that run elsewhere.

use std::sync::Arc;

use mlua::{Lua, MultiValue, Value};
use wasmtime::component::Val;

use super::error::fail;
use super::future::LuaFuture;
use super::resource;
use super::state::{data, StateData};
use crate::call::{self, Caller, Input, Options, Output, Route};
use crate::convert::{self, Path, Ty};
use crate::engine::{Callee, Function};
use crate::error::{Error, Kind};
use crate::pool::Io;
use crate::registry::{LuaSource, Spec};
use crate::runtime::Loaded;
use crate::sched::{self, Control, Op};

/// `funcs.call(target, ...)`.
pub fn call(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut args = args.into_iter();
    let target = match args.next() {
        Some(Value::String(s)) => s,
        // The raw closure in `fast` raises this itself; kept so this function is whole alone.
        other => {
            let got = other.as_ref().map(super::type_name).unwrap_or("no value");
            return Err(mlua::Error::runtime(format!("bad argument #1 to 'call' (string expected, got {got})")));
        }
    };
    let rest: Vec<Value> = args.collect();
    let state = data(lua);
    // Set by the raw closure for this one call: its caller is a task that may yield.
    let mode = match (state.in_task.replace(false), state.in_ngx.replace(false)) {
        (true, true) => Caller::Ngx,
        (true, false) => Caller::Task,
        _ => Caller::Block,
    };
    let opts = Options { timeout_ms: 0, ctx: state.current.borrow().clone(), snake_keys: None };
    call_target(lua, &state, &target, rest, mode, &opts)
}

/// Resolves `target` and calls it; failures come back as `nil, err`.
pub fn call_target(
    lua: &Lua,
    state: &StateData,
    target: &mlua::LuaString,
    args: Vec<Value>,
    mode: Caller,
    opts: &Options,
) -> mlua::Result<MultiValue> {
    let resolved = state.targets.resolve(&target.as_bytes());
    match resolved {
        Ok(loaded) => call_loaded(lua, state, &loaded, args, mode, opts),
        Err(e) => fail(lua, e),
    }
}

fn call_loaded(
    lua: &Lua,
    state: &StateData,
    loaded: &Arc<Loaded>,
    args: Vec<Value>,
    mode: Caller,
    opts: &Options,
) -> mlua::Result<MultiValue> {
    if let Some(f) = &loaded.func {
        return match call_wasm(lua, state, loaded, f, &args, mode, opts) {
            Ok(values) => Ok(values),
            Err(e) if mode == Caller::Async => Ok(MultiValue::from_iter([
                Value::Nil,
                Value::UserData(lua.create_userdata(super::error::LuaError(e))?),
            ])),
            Err(e) => fail(lua, e),
        };
    }
    let id = loaded.entry.id.to_string();
    match &loaded.entry.spec {
        Spec::FunctionLua(lf) => {
            if let Err(e) = call::authorize(&opts.ctx, loaded) {
                return fail(lua, e);
            }
            let func = match lua_function(lua, state, loaded, &lf.source, lf.method.as_deref()) {
                Ok(f) => f,
                Err(e) => return fail(lua, e),
            };
            // The function runs under the call's context: its own calls, `security.actor()` and
            // `funcs.context()` see it.
            let inner = match opts.ctx.nested(&loaded.id) {
                Ok(c) => c,
                Err(m) => return fail(lua, Error::invalid(m)),
            };
            if mode == Caller::Task {
                // A task runs the function itself, as a task of its own under the call's context,
                // so that calls inside it that wait yield instead of blocking the Lua thread.
                let mut out = MultiValue::from_iter([
                    super::sched::marker(),
                    Value::String(lua.create_string("lua")?),
                    Value::Function(func),
                    Value::UserData(lua.create_userdata(super::security::LuaContext(inner))?),
                    Value::String(lua.create_string(&id)?),
                ]);
                out.extend(args);
                return Ok(out);
            }
            let called = {
                let _entered = Entered::new(state, inner);
                func.call::<MultiValue>(MultiValue::from_iter(args))
            };
            let values = match called {
                Ok(values) => values,
                Err(e) => fail(lua, Error::internal(format!("{id}: {}", lua_error_text(&e))))?,
            };
            if mode == Caller::Async {
                return LuaFuture::completed(lua, loaded.clone(), values);
            }
            Ok(values)
        }
        _ => fail(lua, unavailable(format!("{id}: entries of kind `{}` cannot be called", loaded.entry.kind))),
    }
}

/// Makes `ctx` the state's current context until dropped (then the previous one again, also
/// when the Lua function raised).
pub struct Entered<'a> {
    state: &'a StateData,
    previous: Option<Arc<crate::security::Context>>,
}

impl<'a> Entered<'a> {
    pub fn new(state: &'a StateData, ctx: Arc<crate::security::Context>) -> Entered<'a> {
        let previous = Some(state.current.replace(ctx));
        Entered { state, previous }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.previous.take() {
            *self.state.current.borrow_mut() = p;
        }
    }
}

/// The message of a Lua error, without mlua's wrapping or the traceback.
pub(super) fn lua_error_text(e: &mlua::Error) -> String {
    let text = match e {
        mlua::Error::CallbackError { cause, .. } => return lua_error_text(cause),
        mlua::Error::RuntimeError(m) => m.clone(),
        other => other.to_string(),
    };
    without_traceback(&text).to_string()
}

/// A Lua error message without the traceback `debug.traceback` appended to it.
pub(super) fn without_traceback(text: &str) -> &str {
    match text.find("\nstack traceback:") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// The function of a `function.lua` entry in this state, loading its chunk once per entry
/// generation.
pub(super) fn lua_function(
    lua: &Lua,
    state: &StateData,
    loaded: &Loaded,
    source: &LuaSource,
    method: Option<&str>,
) -> Result<mlua::Function, Error> {
    let id = loaded.entry.id.to_string();
    if let Some((generation, f)) = state.lua_funcs.borrow().get(&id) {
        if *generation == loaded.generation {
            return Ok(f.clone());
        }
    }
    let func =
        match source {
            LuaSource::Handler => state.handlers.borrow().get(&id).cloned().ok_or_else(|| {
                unavailable(format!("{id}: the handler of this entry was added in another Lua state"))
            })?,
            LuaSource::Code { text, chunk_name } => {
                let value: Value = lua.load(text.as_str()).set_name(chunk_name.as_str()).call(()).map_err(|e| {
                    Error::internal(format!("{id}: loading the Lua source failed: {}", lua_error_text(&e)))
                })?;
                match (value, method) {
                    (Value::Function(f), None) => f,
                    (Value::Table(t), Some(m)) => match t.get::<Value>(m) {
                        Ok(Value::Function(f)) => f,
                        _ => return Err(Error::invalid(format!("{id}: the Lua source returns no function `{m}`"))),
                    },
                    (Value::Table(_), None) => {
                        return Err(Error::invalid(format!(
                            "{id}: the Lua source returns a table: set `method` to the key of the function"
                        )))
                    }
                    (other, _) => {
                        return Err(Error::invalid(format!(
                            "{id}: the Lua source must return a table of functions (or a function), got {}",
                            super::lua_type(&other)
                        )))
                    }
                }
            }
        };
    state.lua_funcs.borrow_mut().insert(id, (loaded.generation, func.clone()));
    Ok(func)
}

/// Arguments after trimming trailing nils beyond the parameter count.
pub(super) fn check_count(f: &Function, args: &[Value]) -> Result<usize, Error> {
    let mut n = args.len();
    while n > f.params.len() && args[n - 1].is_nil() {
        n -= 1;
    }
    let missing_ok = f.params[n.min(f.params.len())..].iter().all(|p| matches!(p.ty.bare(), Ty::Option(_)));
    if n > f.params.len() || !missing_ok {
        let want = f.params.len();
        let plural = if want == 1 { "" } else { "s" };
        return Err(Error::invalid(format!("{}: expected {want} argument{plural}, got {n}", f.id)));
    }
    Ok(n)
}

/// An argument that does not fit its type. An alias of a scalar read by a scalar path (core
/// modules, `flat` calls) is named here, as the general readers name it.
pub(super) fn arg_error(f: &Function, i: usize, mut e: convert::ConvError) -> Error {
    let p = &f.params[i];
    if e.path.is_empty() {
        e.message = p.ty.name_message(e.message);
    }
    Error::invalid(format!("{}: argument {} ({}): {e}", f.id, i + 1, p.name))
}

fn call_wasm(
    lua: &Lua,
    state: &StateData,
    loaded: &Arc<Loaded>,
    f: &Function,
    args: &[Value],
    mode: Caller,
    opts: &Options,
) -> Result<MultiValue, Error> {
    check_count(f, args)?;
    let bound = call::bind(loaded, f, &opts.ctx)?;
    let route = call::route(f, loaded.pool.kind, mode, opts.timeout_ms);
    if route == Route::Pinned {
        // Handles live in an instance pinned to this thread: such calls always block
        // (`async` returns a future that is already complete).
        let values = convert::with_record_keys(opts.snake_keys, || call_with_resources(lua, &bound, args))?;
        if mode == Caller::Async {
            return LuaFuture::completed(lua, loaded.clone(), values).map_err(|e| lua_internal(f, e));
        }
        return Ok(values);
    }
    let input = read_input(lua, f, args)?;
    let control = Control::new(f.limits.max_execution_ms, opts.timeout_ms);
    let (here_first, yielding) = match route {
        Route::Here => {
            let out = bound.now(input)?;
            return convert::with_record_keys(opts.snake_keys, || output_to_lua(lua, f, out));
        }
        Route::BlockOn => {
            let out = call::block_on(bound.owned(loaded), control, input)?;
            return convert::with_record_keys(opts.snake_keys, || output_to_lua(lua, f, out));
        }
        Route::Start { here_first, yielding } => (here_first, yielding),
        Route::Pinned => return Err(Error::internal(format!("{}: resources on the wrong path", f.id))),
    };
    let op: Arc<Op<Result<Output, Error>>> = Op::new(state.inbox.clone(), control.clone());
    let fut = Box::pin(call::run(bound.owned(loaded), control, input, yielding));
    if here_first {
        // Runs on this thread until the guest has to wait; only then moves to the workers.
        let mut fut = fut;
        match sched::poll_once(&mut fut, &op.waker())? {
            std::task::Poll::Ready(v) => op.complete(v),
            std::task::Poll::Pending => sched::spawn(&op, fut, call::lost(&f.id))?,
        }
    } else {
        sched::spawn(&op, fut, call::lost(&f.id))?;
    }
    let future = LuaFuture::new(op, loaded.clone()).keyed(opts.snake_keys);
    if matches!(mode, Caller::Task | Caller::Ngx) && future.op.is_done() {
        return future.collect(lua).map_err(|e| lua_internal(f, e));
    }
    let ud = lua.create_userdata(future).map_err(|e| lua_internal(f, e))?;
    Ok(match mode {
        Caller::Task | Caller::Ngx => MultiValue::from_iter([super::sched::marker(), Value::UserData(ud)]),
        _ => MultiValue::from_iter([Value::UserData(ud)]),
    })
}

/// Converts the arguments for the function's callee: core values, a tape (owning its
/// bytes, so it may cross to a worker), or `Val`s when a value needs the general rules (a
/// LuaJIT 64-bit cdata).
pub(super) fn read_input(lua: &Lua, f: &Function, args: &[Value]) -> Result<Input, Error> {
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Nil);
    if let Callee::Core { params, .. } = &f.callee {
        let path = Path::new();
        let mut vals = Vec::with_capacity(params.len());
        for (i, s) in params.iter().enumerate() {
            vals.push(convert::scalar_to_core(lua, arg(i), s, &path).map_err(|e| arg_error(f, i, e))?);
        }
        return Ok(Input::Core(vals));
    }
    if f.tape && !convert::general_only() {
        let types: Vec<&Ty> = f.params.iter().map(|p| &p.ty).collect();
        let tape = convert::read::args_to_tape(lua, args, &types).map_err(|e| match e {
            convert::read::ArgsError::Arg(i, e) => arg_error(f, i, e),
            convert::read::ArgsError::Lua(e) => Error::internal(format!("{}: reading the arguments: {e}", f.id)),
        })?;
        if let Some(t) = tape {
            return Ok(Input::Tape(t));
        }
    }
    let mut path = Path::new();
    let mut vals = Vec::with_capacity(f.params.len());
    for (i, p) in f.params.iter().enumerate() {
        path.clear();
        vals.push(convert::to_val(lua, arg(i), &p.ty, &mut path).map_err(|e| arg_error(f, i, e))?);
    }
    Ok(Input::Component(vals))
}

/// Converts a finished call's values to what `funcs.call` returns.
pub fn output_to_lua(lua: &Lua, f: &Function, out: Output) -> Result<MultiValue, Error> {
    match (out, &f.callee) {
        (Output::Core(out), Callee::Core { results, .. }) => {
            let to_lua = |v: &wasmtime::Val, s| {
                convert::scalar_from_core(lua, v, s).map_err(|m| Error::internal(format!("{}: {m}", f.id)))
            };
            match results.len() {
                0 => Ok(MultiValue::new()),
                1 => Ok(MultiValue::from_iter([to_lua(&out[0], &results[0])?])),
                _ => {
                    let t = lua.create_table().map_err(|e| lua_internal(f, e))?;
                    for (i, (v, s)) in out.iter().zip(results).enumerate() {
                        t.raw_set(i + 1, to_lua(v, s)?).map_err(|e| lua_internal(f, e))?;
                    }
                    Ok(MultiValue::from_iter([Value::Table(t)]))
                }
            }
        }
        (Output::Tape(out), _) => {
            let values = convert::push::results_to_lua(lua, &out, f.results.first().map(|r| &r.ty));
            crate::convert::tape::give_back(out);
            values.map_err(|e| lua_internal(f, e))
        }
        (Output::Component(out), _) => match out.into_iter().next() {
            Some(first) => results_to_lua(lua, first, &f.results[0].ty).map_err(|e| lua_internal(f, e)),
            None => Ok(MultiValue::new()),
        },
        (Output::Core(_), _) => Err(Error::internal(format!("{}: result does not match the function", f.id))),
    }
}

/// A component call whose values hold resource handles: on this thread, in the instance the
/// handles live in.
fn call_with_resources(lua: &Lua, bound: &call::Bound<'_>, args: &[Value]) -> Result<MultiValue, Error> {
    let f = bound.f;
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Nil);
    let _scope = resource::begin_call(lua, None, Some((f.id.as_str().into(), f.limits.clone())));
    let mut path = Path::new();
    let mut vals = Vec::with_capacity(f.params.len());
    for (i, p) in f.params.iter().enumerate() {
        path.clear();
        vals.push(convert::to_val(lua, arg(i), &p.ty, &mut path).map_err(|e| arg_error(f, i, e))?);
    }
    let pinned = resource::pinned_for_call(lua);
    let mut out = vec![Val::Bool(false); f.results.len()];
    let produced = bound.component_now(Io::Val { args: &vals, results: &mut out }, pinned.as_ref())?;
    resource::finish_call(lua, produced);
    match out.into_iter().next() {
        Some(first) => results_to_lua(lua, first, &f.results[0].ty).map_err(|e| lua_internal(f, e)),
        None => Ok(MultiValue::new()),
    }
}

/// A top-level `result<T, E>` becomes `value, nil` or `nil, e` (§2.1).
pub fn results_to_lua(lua: &Lua, v: Val, ty: &Ty) -> mlua::Result<MultiValue> {
    let convert = |v: Val, ty: &Ty| convert::from_val(lua, v, ty, false);
    match (v, ty.bare()) {
        (Val::Result(r), Ty::Result(ok, err)) => {
            let (is_ok, payload, pty) = match r {
                Ok(p) => (true, p, ok),
                Err(p) => (false, p, err),
            };
            let value = match (payload, pty) {
                (Some(p), Some(t)) => convert(*p, t)?,
                _ => Value::Boolean(true),
            };
            Ok(if is_ok {
                MultiValue::from_iter([value, Value::Nil])
            } else {
                MultiValue::from_iter([Value::Nil, value])
            })
        }
        (v, ty) => Ok(MultiValue::from_iter([convert(v, ty)?])),
    }
}

/// A failure of Lua itself while building results, named by entry.
pub fn lua_internal(f: &Function, e: mlua::Error) -> Error {
    Error::internal(format!("{}: cannot convert the result to Lua: {}", f.id, lua_error_text(&e)))
}

/// A permanent condition: retrying the same call cannot help.
fn unavailable(message: String) -> Error {
    let mut e = Error::new(Kind::Unavailable, message);
    e.retryable = false;
    e
}
