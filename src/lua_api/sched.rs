//! The Rust half of the scheduler: what `lua/sched.lua` needs from the host (waiting on the
//! state's inbox, the clock, task registration, starting calls), and the module functions it
//! defines (`wippy.spawn/run/sleep`, `funcs.async`, `funcs.new`).

use std::ffi::c_void;
use std::time::{Duration, Instant};

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use super::funcs::call_target;
use super::state::data;
use crate::call::{Caller, Options};

/// The value a task's call yields with its future: "I wait for this".
static MARKER: u8 = 0;

pub fn marker() -> Value {
    Value::LightUserData(LightUserData(&MARKER as *const u8 as *mut c_void))
}

/// True when `p` is the marker (for the raw `funcs.call`).
pub fn is_marker(p: *const c_void) -> bool {
    std::ptr::eq(p, &MARKER as *const u8 as *const c_void)
}

/// Milliseconds on a monotonic clock.
fn now_ms() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

fn target_arg(v: Option<Value>, name: &str) -> mlua::Result<mlua::LuaString> {
    match v {
        Some(Value::String(s)) => Ok(s),
        other => {
            let got = match &other {
                None | Some(Value::Nil) => "no value",
                Some(v) => super::lua_type(v),
            };
            Err(mlua::Error::runtime(format!("bad argument #1 to '{name}' (string expected, got {got})")))
        }
    }
}

/// `core.call(timeout_ms, in_task, overrides, record_keys, target, ...)` and
/// `core.async(timeout_ms, overrides, record_keys, target, ...)`: `overrides` is an executor's
/// actor, scope and values (or nil), set over the caller's context; `record_keys` its
/// `"snake"` or `"wit"` (or nil).
fn start(lua: &Lua, mut args: MultiValue, with_task_flag: bool) -> mlua::Result<MultiValue> {
    let timeout = match args.pop_front() {
        Some(Value::Integer(i)) if i >= 0 => i as u64,
        Some(Value::Number(n)) if n >= 0.0 => n.ceil() as u64,
        _ => 0,
    };
    // The caller: a task (`true`), a coroutine nginx runs (`"ngx"`), or neither.
    let flag = if with_task_flag { args.pop_front() } else { None };
    let (name, mode) = match (with_task_flag, flag) {
        (false, _) => ("async", Caller::Async),
        (true, Some(Value::Boolean(true))) => ("call", Caller::Task),
        (true, Some(Value::String(s))) if s.as_bytes().as_ref() == b"ngx" => ("call", Caller::Ngx),
        (true, _) => ("call", Caller::Block),
    };
    let overrides = match args.pop_front() {
        Some(Value::UserData(ud)) => Some(ud),
        _ => None,
    };
    // The executor's `record_keys`, checked by `with_options`.
    let snake_keys = match args.pop_front() {
        Some(Value::String(s)) => Some(s.as_bytes().as_ref() == b"snake"),
        _ => None,
    };
    let ctx = super::security::context_for(lua, overrides.as_ref())?;
    let target = target_arg(args.pop_front(), name)?;
    let state = data(lua);
    let opts = Options { timeout_ms: timeout, ctx, snake_keys };
    call_target(lua, &state, &target, args.into_iter().collect(), mode, &opts)
}

/// Loads the scheduler and puts its functions into the module and `funcs` tables.
///
/// # Errors
/// When Lua fails to allocate or the embedded chunk fails to load.
pub fn install(lua: &Lua, module: &Table, funcs: &Table) -> mlua::Result<()> {
    let core = lua.create_table()?;
    core.set("marker", marker())?;
    core.set(
        "task_begin",
        lua.create_function(|lua, co: mlua::Thread| {
            data(lua).tasks.borrow_mut().insert(co.to_pointer() as usize);
            Ok(())
        })?,
    )?;
    core.set(
        "task_end",
        lua.create_function(|lua, co: mlua::Thread| {
            data(lua).tasks.borrow_mut().remove(&(co.to_pointer() as usize));
            Ok(())
        })?,
    )?;
    core.set(
        "wait",
        lua.create_function(|lua, timeout: Option<f64>| {
            let inbox = data(lua).inbox.clone();
            let (ids, jobs) = inbox.wait(timeout.map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)));
            Ok((ids, jobs))
        })?,
    )?;
    core.set("jobs", lua.create_function(super::guest::jobs)?)?;
    core.set("spawn", lua.create_function(super::process::spawn)?)?;
    // `core.error(kind, message)`: an error object for the scheduler's own failures.
    core.set(
        "error",
        lua.create_function(|lua, (kind, message): (String, String)| {
            use crate::error::Kind;
            let kind = match kind.as_str() {
                "NOT_FOUND" => Kind::NotFound,
                "TIMEOUT" => Kind::Timeout,
                "INVALID" => Kind::Invalid,
                _ => Kind::Internal,
            };
            let mut e = crate::error::Error::new(kind, message);
            e.retryable = kind == Kind::Timeout;
            lua.create_userdata(super::error::LuaError(e))
        })?,
    )?;
    core.set("wait_any", lua.create_function(super::process::wait_any)?)?;
    core.set("self_pid", lua.create_function(super::process::self_pid)?)?;
    core.set("send", lua.create_function(super::process::send)?)?;
    core.set("try_receive", lua.create_function(super::process::try_receive)?)?;
    core.set("mail_future", lua.create_function(super::process::mail_future)?)?;
    core.set("reply", lua.create_function(super::guest::reply)?)?;
    core.set("now", lua.create_function(|_, ()| Ok(now_ms()))?)?;
    core.set(
        "block_sleep",
        lua.create_function(|_, ms: f64| {
            if ms > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(ms / 1000.0));
            }
            Ok(())
        })?,
    )?;
    // Lua 5.1 and 5.2 have no coroutine.isyieldable: the scheduler asks this instead.
    #[cfg(any(feature = "lua51", feature = "lua52"))]
    super::fast::check_layout(lua)?;
    // SAFETY: `yieldable` is a C function that pushes one boolean and raises nothing.
    let yieldable = unsafe { lua.create_c_function(super::fast::yieldable)? };
    core.set("yieldable", yieldable.clone())?;
    // OpenResty's coroutine table lacks coroutine.isyieldable too (docs/openresty.md).
    core.set("isyieldable", yieldable)?;
    core.set("call", lua.create_function(|lua, args: MultiValue| start(lua, args, true))?)?;
    core.set("async", lua.create_function(|lua, args: MultiValue| start(lua, args, false))?)?;
    super::security::install(lua, module, funcs, &core)?;
    // A Lua function entry that a task ran failed: `nil, err` as `funcs.call` gives it.
    core.set(
        "lua_failed",
        lua.create_function(|lua, (id, err): (String, Value)| {
            let text = super::guest::error_text(&err);
            let text = super::funcs::without_traceback(&text);
            super::error::fail(lua, crate::error::Error::internal(format!("{id}: {text}")))
        })?,
    )?;

    // OpenResty (docs/openresty.md): waiting through nginx.
    core.set(
        "set_ngx",
        lua.create_function(|lua, on: bool| {
            data(lua).ngx.set(on);
            Ok(())
        })?,
    )?;
    core.set("bell", lua.create_function(bell)?)?;
    core.set(
        "unbell",
        lua.create_function(|_, ticket: u64| {
            crate::sched::wake::forget(ticket);
            Ok(())
        })?,
    )?;
    core.set(
        "serve_jobs",
        lua.create_function(|lua, ()| {
            let inbox = data(lua).inbox.clone();
            for job in inbox.take_jobs() {
                super::guest::run_now(lua, job);
            }
            Ok(())
        })?,
    )?;

    let m: Table = lua.load(include_str!("../../lua/sched.lua")).set_name("=wippy.sched").call(core)?;
    for name in ["spawn", "run", "sleep"] {
        module.set(name, m.get::<Value>(name)?)?;
    }
    funcs.set("async", m.get::<Value>("async")?)?;
    // In nginx: `funcs.call` waits through nginx where a coroutine may yield (lua/sched.lua).
    if let Value::Function(wrap) = m.get::<Value>("wrap_call")? {
        let raw: mlua::Function = funcs.get("call")?;
        funcs.set("call", wrap.call::<mlua::Function>(raw)?)?;
    }
    module.set("process", m.get::<Value>("process")?)?;
    funcs.set("new", m.get::<Value>("new")?)?;
    Ok(())
}

/// `core.bell(futures, any)`: a bell that rings when one of `futures` completes, a job is
/// queued, or (with `any`) anything reaches the state's inbox. Returns `false` when that is so
/// already, else the ticket and the wake socket's path to wait on it through nginx; `nil, err`
/// when it cannot be had.
fn bell(lua: &Lua, (futs, any): (Option<Table>, bool)) -> mlua::Result<MultiValue> {
    use crate::sched::wake;
    let state = data(lua);
    let bell = wake::Bell::new();
    let mut ready = false;
    if let Some(futs) = futs {
        for v in futs.sequence_values::<mlua::AnyUserData>() {
            let ud = v?;
            ready |= match ud.borrow::<super::future::LuaFuture>() {
                Ok(f) => f.op.ring_when_done(&bell),
                Err(_) => ud.borrow::<super::process::MailFuture>()?.0.ring_when_done(&bell),
            };
        }
    }
    if any {
        state.inbox.on_any.add(&bell);
    } else {
        state.inbox.on_job.add(&bell);
    }
    if ready || state.inbox.has_work(any) {
        return Ok(MultiValue::from_iter([Value::Boolean(false)]));
    }
    match wake::ticket(bell) {
        Ok((id, path)) => {
            Ok(MultiValue::from_iter([Value::Integer(id as mlua::Integer), Value::String(lua.create_string(&path)?)]))
        }
        Err(e) => super::error::fail(lua, e),
    }
}
