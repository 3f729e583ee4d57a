//! The Lua side of registry calls from WebAssembly (`wippy:runtime/funcs`, see
//! `call::guest`): running a [`Job`] — a `function.lua` entry a guest called — in this state.
//!
//! A job runs at once when the Lua thread is blocked in the call that leads to the guest (the
//! state's server, registered per thread with `sched::add_server`), or as a task of the
//! scheduler (`core.jobs`, `core.reply`), or while a caller outside a task waits for a future.
//! Either way the function gets the guest's input as one string, runs under the guest's
//! context, and its result goes back as bytes: a string as it is, `nil` as nothing, anything
//! else as JSON; `nil, err` and a raised error as the error's message.

use std::cell::RefCell;
use std::fmt::Write;

use mlua::{Lua, MultiValue, UserData, Value};

use super::funcs::{lua_error_text, lua_function, Entered};
use super::state::{data, StateData};
use crate::convert::json;
use crate::registry::Spec;
use crate::sched::{Job, Server};

/// The server of a state: runs a job now, on this thread.
pub fn server(lua: &Lua) -> Server {
    let weak = lua.weak();
    std::rc::Rc::new(move |job: Job| match weak.try_upgrade() {
        Some(lua) => run_now(&lua, job),
        None => {
            let _ = job.reply.send(Err(format!("{}: the Lua state is gone", job.target)));
        }
    })
}

/// Runs a job to the end on this thread (its calls block).
pub fn run_now(lua: &Lua, job: Job) {
    let Job { target, ctx, input, bytes: _, reply } = job;
    let state = data(lua);
    let r = function(lua, &state, &target).and_then(|func| {
        let input = lua.create_string(&input).map_err(|e| format!("{target}: {e}"))?;
        let called = {
            let _entered = Entered::new(&state, ctx);
            func.call::<MultiValue>(input)
        };
        match called {
            Ok(values) => encode(&target, values),
            Err(e) => Err(format!("{target}: {}", lua_error_text(&e))),
        }
    });
    let _ = reply.send(r);
}

/// The function of the `function.lua` entry `target` in this state.
fn function(lua: &Lua, state: &StateData, target: &str) -> Result<mlua::Function, String> {
    let loaded = state.targets.resolve(target.as_bytes()).map_err(|e| e.message)?;
    match &loaded.entry.spec {
        Spec::FunctionLua(lf) => {
            lua_function(lua, state, &loaded, &lf.source, lf.method.as_deref()).map_err(|e| e.message)
        }
        _ => Err(format!("{target}: not a Lua function")),
    }
}

/// A job waiting for its task's results (`core.jobs` hands it to the scheduler).
pub struct LuaJob(RefCell<Option<(String, Answer)>>);

/// Where a job's result goes: the guest waiting for it.
type Answer = tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>;

impl UserData for LuaJob {}

/// `core.jobs()`: the jobs waiting, as `{ fn, ctx, id, input, job }` tables for the scheduler
/// to run as tasks. A job whose function cannot be loaded is answered here.
pub fn jobs(lua: &Lua, _: ()) -> mlua::Result<Vec<mlua::Table>> {
    let state = data(lua);
    let mut out = Vec::new();
    for job in state.inbox.take_jobs() {
        let Job { target, ctx, input, bytes: _, reply } = job;
        let func = match function(lua, &state, &target) {
            Ok(f) => f,
            Err(m) => {
                let _ = reply.send(Err(m));
                continue;
            }
        };
        let t = lua.create_table()?;
        t.raw_set(1, func)?;
        t.raw_set(2, super::security::LuaContext(ctx))?;
        t.raw_set(3, target.as_str())?;
        t.raw_set(4, lua.create_string(&input)?)?;
        t.raw_set(5, LuaJob(RefCell::new(Some((target, reply)))))?;
        out.push(t);
    }
    Ok(out)
}

/// `core.reply(job, ok, ...)`: a job's task ended (`ok`: its results; else its error).
pub fn reply(_: &Lua, (job, ok, values): (mlua::AnyUserData, bool, MultiValue)) -> mlua::Result<()> {
    let Some((target, reply)) = job.borrow::<LuaJob>()?.0.borrow_mut().take() else {
        return Ok(());
    };
    let r = if ok {
        encode(&target, values)
    } else {
        let text = values.into_iter().next().map(|v| error_text(&v)).unwrap_or_default();
        Err(format!("{target}: {}", super::funcs::without_traceback(&text)))
    };
    let _ = reply.send(r);
    Ok(())
}

/// The bytes a guest gets for a Lua function's results.
fn encode(target: &str, values: MultiValue) -> Result<Vec<u8>, String> {
    let mut it = values.into_iter();
    match (it.next(), it.next()) {
        (None | Some(Value::Nil), Some(e)) if !e.is_nil() => Err(error_text(&e)),
        (None | Some(Value::Nil), _) => Ok(Vec::new()),
        (Some(Value::String(s)), _) => Ok(s.as_bytes().to_vec()),
        (Some(v), _) => {
            let mut out = String::new();
            to_json(&v, &mut out, 0).map_err(|m| format!("{target}: cannot encode the result as JSON: {m}"))?;
            Ok(out.into_bytes())
        }
    }
}

/// The JSON text of a Lua value (for `json` payloads).
///
/// # Errors
/// A value with no JSON form (a function, a NaN, a cycle).
pub fn json_of(v: &Value) -> Result<String, String> {
    let mut out = String::new();
    to_json(v, &mut out, 0)?;
    Ok(out)
}

/// The message of an error value: an error object's, a string, or what `tostring` gives.
pub(super) fn error_text(v: &Value) -> String {
    if let Value::UserData(ud) = v {
        if let Ok(e) = ud.borrow::<super::error::LuaError>() {
            return e.0.message.clone();
        }
    }
    match v {
        Value::String(s) => s.to_string_lossy(),
        other => other.to_string().unwrap_or_else(|_| other.type_name().to_string()),
    }
}

/// How deep tables may nest in a JSON result (a cycle stops here).
const MAX_NESTING: usize = 100;

/// Appends the JSON text of a Lua value: an array for a table with keys `1..n` only, else an
/// object (keys sorted; number keys as text); `nil` and `wippy.null` as `null`.
fn to_json(v: &Value, out: &mut String, depth: usize) -> Result<(), String> {
    match v {
        Value::Nil => out.push_str("null"),
        v if crate::convert::is_null(v) => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Number(n) => json::float(*n, out)?,
        Value::String(s) => json::string(&s.to_str().map_err(|_| "a string is not valid UTF-8".to_string())?, out),
        Value::Table(t) => {
            if depth >= MAX_NESTING {
                return Err(format!("tables nested more than {MAX_NESTING} deep (a cycle?)"));
            }
            let n = t.raw_len();
            let pairs: Vec<(Value, Value)> =
                t.pairs::<Value, Value>().collect::<mlua::Result<_>>().map_err(|e| e.to_string())?;
            if n > 0 && pairs.len() == n {
                out.push('[');
                for i in 1..=n {
                    if i > 1 {
                        out.push(',');
                    }
                    to_json(&t.raw_get::<Value>(i).map_err(|e| e.to_string())?, out, depth + 1)?;
                }
                out.push(']');
                return Ok(());
            }
            let mut keyed: Vec<(String, Value)> = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                let key = match &k {
                    Value::String(s) => s.to_str().map_err(|_| "a key is not valid UTF-8".to_string())?.to_string(),
                    Value::Integer(i) => i.to_string(),
                    Value::Number(n) => n.to_string(),
                    other => return Err(format!("a table key of type {} has no JSON form", other.type_name())),
                };
                keyed.push((key, v));
            }
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, v)) in keyed.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json::string(k, out);
                out.push(':');
                to_json(v, out, depth + 1)?;
            }
            out.push('}');
        }
        other => return Err(format!("a {} has no JSON form", other.type_name())),
    }
    Ok(())
}
