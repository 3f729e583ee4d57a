//! Commands (SPEC §7.2) for Lua and the `wippy` launcher: `wippy.command(name, args, options)`
//! runs a `process.wasm` command with the real stdin, stdout and stderr and returns its exit
//! code; `wippy.commands()` lists them; `wippy.hash(path)` gives a file's `sha256:` for `hash:`
//! fields.

use mlua::{Lua, MultiValue, Table, Value};

use super::error::fail;
use super::state::data;
use crate::call::process;
use crate::host::grant::Launch;

/// A command-line argument given in Lua: a string (or a number, written out).
fn arg_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(n) => Some(n.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `wippy.command(name, args?, options?)` → exit code, or `nil, err`.
pub fn command(lua: &Lua, (name, args, options): (Value, Option<Table>, Option<Table>)) -> mlua::Result<MultiValue> {
    let Value::String(name) = name else {
        return Err(mlua::Error::runtime(format!(
            "bad argument #1 to 'command' (string expected, got {})",
            super::type_name(&name)
        )));
    };
    let name = name.to_str()?.to_string();
    let args = match args {
        None => None,
        Some(t) => {
            let mut out = Vec::new();
            for (i, v) in t.sequence_values::<Value>().enumerate() {
                let v = v?;
                let Some(text) = arg_text(&v) else {
                    return Err(mlua::Error::runtime(format!(
                        "bad argument #2 to 'command' (args[{}] must be a string, got {})",
                        i + 1,
                        super::lua_type(&v)
                    )));
                };
                out.push(text);
            }
            Some(out)
        }
    };
    let mut env = Vec::new();
    let mut sigint_default = false;
    if let Some(o) = options {
        for pair in o.pairs::<Value, Value>() {
            let (k, v) = pair?;
            match (k.to_string()?.as_str(), v) {
                ("env", Value::Table(t)) => {
                    for pair in t.pairs::<String, String>() {
                        env.push(pair.map_err(|_| {
                            mlua::Error::runtime("bad argument #3 to 'command' (env must map names to strings)")
                        })?);
                    }
                    env.sort();
                }
                ("sigint", Value::String(s)) if s.to_str()? == "default" => sigint_default = true,
                ("sigint", _) => {
                    return Err(mlua::Error::runtime("bad argument #3 to 'command' (sigint must be \"default\")"))
                }
                (k, _) => {
                    return Err(mlua::Error::runtime(format!(
                        "bad argument #3 to 'command' (unknown option \"{k}\"; known: env, sigint)"
                    )))
                }
            }
        }
    }
    let cmd = match process::command(&name) {
        Ok(c) => c,
        Err(e) => return fail(lua, e),
    };
    let is_command = cmd.loaded.program.as_deref().is_some_and(|f| f.command);
    let method_args = if is_command { None } else { Some(args.clone().unwrap_or_default()) };
    let argv = process::argv(&name, &cmd.loaded, args);
    let ctx = data(lua).current.borrow().clone();
    let launch = Launch { argv: Some(argv), inherit_stdio: true, env, mailbox: None };
    // The launcher's Ctrl-C: the interpreter's own SIGINT handler would only stop Lua after the
    // guest returned; with the default action the process (and the guest) ends at once.
    let _sigint = sigint_default.then(SigintDefault::set);
    let ran = match method_args {
        Some(strings) => run_method(lua, &cmd, strings, launch),
        None => process::run_command(&cmd.loaded, &ctx, launch),
    };
    match ran {
        Ok(code) => Ok(MultiValue::from_iter([Value::Integer(code.into())])),
        Err(e) => fail(lua, e),
    }
}

/// `wippy.commands()` → `{ { name =, short =, id = }, ... }` sorted by name.
pub fn commands(lua: &Lua, _: ()) -> mlua::Result<Table> {
    let out = lua.create_table()?;
    for (i, c) in process::commands().into_iter().enumerate() {
        let t = lua.create_table()?;
        t.set("name", c.name)?;
        t.set("short", c.short)?;
        t.set("id", c.loaded.id.clone())?;
        out.raw_set(i + 1, t)?;
    }
    Ok(out)
}

/// `wippy.hash(path)` → `"sha256:<hex>"`, or `nil, message`.
pub fn hash(_: &Lua, path: String) -> mlua::Result<(Option<String>, Option<String>)> {
    use sha2::Digest;
    match std::fs::read(&path) {
        Ok(bytes) => {
            let digest = sha2::Sha256::digest(&bytes);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            Ok((Some(format!("sha256:{hex}")), None))
        }
        Err(e) => Ok((None, Some(format!("{path}: {e}")))),
    }
}

/// `core.spawn(id, ...)` (behind `process.spawn`, SPEC §7.1) → a future of the run, or
/// `nil, err`. The entry's method runs in a new instance on the workers with the arguments
/// converted by its WIT types; a command gets them as its argv (after its name) and its future
/// gives the exit code.
pub fn spawn(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut it = args.into_iter();
    let target = match it.next() {
        Some(Value::String(s)) => s,
        other => {
            return Err(mlua::Error::runtime(format!(
                "bad argument #1 to 'spawn' (string expected, got {})",
                super::type_name(&other.unwrap_or(Value::Nil))
            )))
        }
    };
    let rest: Vec<Value> = it.collect();
    let state = data(lua);
    let loaded = match state.targets.resolve(&target.as_bytes()) {
        Ok(l) => l,
        Err(e) => return fail(lua, e),
    };
    let ctx = state.current.borrow().clone();
    match start(lua, &state, &loaded, rest, &ctx) {
        Ok(v) => Ok(v),
        Err(e) => fail(lua, e),
    }
}

fn start(
    lua: &Lua,
    state: &super::state::StateData,
    loaded: &std::sync::Arc<crate::runtime::Loaded>,
    args: Vec<Value>,
    ctx: &std::sync::Arc<crate::security::Context>,
) -> Result<MultiValue, crate::error::Error> {
    use crate::call;
    use crate::error::Error;
    let Some(f) = loaded.program.as_deref() else {
        return Err(Error::invalid(format!(
            "{}: not a process.wasm entry (functions are called with funcs.call)",
            loaded.id
        )));
    };
    if f.has_resources {
        return Err(Error::invalid(format!("{}: a process cannot take or return resources", loaded.id)));
    }
    let (launch, args) = match f.command {
        true => {
            let name = match &loaded.entry.spec {
                crate::registry::Spec::ProcessWasm(p) => p.command.as_ref().map(|c| c.name.clone()),
                _ => None,
            };
            let mut argv = vec![name.unwrap_or_else(|| loaded.entry.id.name.clone())];
            for (i, v) in args.iter().enumerate() {
                let Some(text) = arg_text(v) else {
                    return Err(Error::invalid(format!(
                        "{}: argument {} of a command must be a string, got {}",
                        loaded.id,
                        i + 1,
                        super::lua_type(v)
                    )));
                };
                argv.push(text);
            }
            let argv = if args.is_empty() && !loaded.grant.args.is_empty() { None } else { Some(argv) };
            (Launch { argv, ..Launch::default() }, Vec::new())
        }
        false => (Launch::default(), args),
    };
    // An actor gets its mailbox before it runs, so messages sent to its pid at once are kept.
    let pid = crate::mailbox::new_pid();
    let mut launch = launch;
    if f.profiles.has(crate::registry::Profile::Actor) {
        let limits = match &loaded.entry.spec {
            crate::registry::Spec::ProcessWasm(p) => crate::mailbox::limits_of(&p.options),
            _ => crate::mailbox::Limits::default(),
        };
        launch.mailbox = Some(crate::mailbox::open(&pid, limits));
    }
    super::funcs::check_count(f, &args)?;
    let bound = call::bind(loaded, f, ctx)?.launch(launch);
    let input = super::funcs::read_input(lua, f, &args)?;
    let control = crate::sched::Control::new(f.limits.max_execution_ms, 0);
    let op = crate::sched::Op::new(state.inbox.clone(), control.clone());
    let fut = Box::pin(call::run(bound.owned(loaded), control, input, true));
    crate::sched::spawn(&op, fut, call::lost(&f.id))?;
    let ud = lua
        .create_userdata(super::future::LuaFuture::new(op, loaded.clone()))
        .map_err(|e| Error::internal(format!("{}: {e}", loaded.id)))?;
    Ok(MultiValue::from_iter([
        Value::UserData(ud),
        Value::String(lua.create_string(&pid).map_err(|e| Error::internal(e.to_string()))?),
    ]))
}

/// `core.wait_any(futures, timeout_ms?)`: blocks (outside a task) until one of the futures is
/// complete or the time is up, running the Lua functions guests call meanwhile.
pub fn wait_any(lua: &Lua, (futs, timeout): (Table, Option<f64>)) -> mlua::Result<()> {
    let mut ops: Vec<Box<dyn Fn() -> bool>> = Vec::new();
    for v in futs.sequence_values::<mlua::AnyUserData>() {
        let ud = v?;
        if let Ok(f) = ud.borrow::<super::future::LuaFuture>() {
            let op = f.op.clone();
            ops.push(Box::new(move || op.is_done()));
        } else {
            let op = ud.borrow::<MailFuture>()?.0.clone();
            ops.push(Box::new(move || op.is_done()));
        }
    }
    let until = timeout.map(|ms| std::time::Instant::now() + std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    let inbox = data(lua).inbox.clone();
    loop {
        let any = || ops.iter().any(|o| o());
        if any() || until.is_some_and(|u| std::time::Instant::now() >= u) {
            return Ok(());
        }
        for job in inbox.serve_wait(any, until) {
            super::guest::run_now(lua, job);
        }
    }
}

/// This state's mailbox, opened on first use (`process.self`, `send`, `receive`).
fn own_mailbox(lua: &Lua) -> std::sync::Arc<crate::mailbox::Mailbox> {
    let state = data(lua);
    let mut mb = state.mailbox.borrow_mut();
    mb.get_or_insert_with(|| crate::mailbox::open(&crate::mailbox::new_pid(), crate::mailbox::Limits::default()))
        .clone()
}

/// `core.self_pid()`: this Lua state's pid.
pub fn self_pid(lua: &Lua, _: ()) -> mlua::Result<String> {
    Ok(own_mailbox(lua).pid.clone())
}

/// `core.send(pid, topic, ...)` → `true`, or `nil, message`: strings are `text` payloads
/// (`bytes` when not UTF-8), other values `json`.
pub fn send(
    lua: &Lua,
    (pid, topic, values): (String, String, MultiValue),
) -> mlua::Result<(Option<bool>, Option<String>)> {
    use crate::mailbox::{Message, Payload};
    let mut payloads = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        let p = match &v {
            Value::String(s) => match s.to_str() {
                Ok(t) => Payload { format: "text".into(), data: t.as_bytes().to_vec() },
                Err(_) => Payload { format: "bytes".into(), data: s.as_bytes().to_vec() },
            },
            other => match super::guest::json_of(other) {
                Ok(text) => Payload { format: "json".into(), data: text.into_bytes() },
                Err(m) => return Err(mlua::Error::runtime(format!("bad argument #{} to 'send' ({m})", i + 3))),
            },
        };
        payloads.push(p);
    }
    let from = own_mailbox(lua).pid.clone();
    match crate::mailbox::send(&pid, Message { from, topic, payloads }) {
        Ok(()) => Ok((Some(true), None)),
        Err(m) => Ok((None, Some(m))),
    }
}

/// `core.try_receive()` → the oldest message of this state's mailbox as
/// `{ from =, topic =, payloads = { ... } }` (`text`/`bytes` → string, `json` → decoded), or nil.
pub fn try_receive(lua: &Lua, _: ()) -> mlua::Result<Value> {
    let Some(m) = own_mailbox(lua).try_receive() else { return Ok(Value::Nil) };
    let t = lua.create_table()?;
    t.set("from", m.from)?;
    t.set("topic", m.topic)?;
    let ps = lua.create_table()?;
    for (i, p) in m.payloads.into_iter().enumerate() {
        let v = match p.format.as_str() {
            "json" => match serde_json::from_slice::<serde_json::Value>(&p.data) {
                Ok(j) => json_to_lua(lua, &j)?,
                Err(_) => Value::String(lua.create_string(&p.data)?),
            },
            _ => Value::String(lua.create_string(&p.data)?),
        };
        ps.raw_set(i + 1, v)?;
    }
    t.set("payloads", ps)?;
    Ok(Value::Table(t))
}

fn json_to_lua(lua: &Lua, j: &serde_json::Value) -> mlua::Result<Value> {
    use serde_json::Value as J;
    Ok(match j {
        J::Null => crate::convert::null(),
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i as _),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::String(lua.create_string(s)?),
        J::Array(items) => {
            let t = lua.create_table()?;
            for (i, v) in items.iter().enumerate() {
                t.raw_set(i + 1, json_to_lua(lua, v)?)?;
            }
            Value::Table(t)
        }
        J::Object(map) => {
            let t = lua.create_table()?;
            for (k, v) in map {
                t.raw_set(k.as_str(), json_to_lua(lua, v)?)?;
            }
            Value::Table(t)
        }
    })
}

/// A wait for this state's mailbox (`process.receive`): complete when a message is there. The
/// scheduler waits on it like on a call's future.
pub struct MailFuture(pub(super) std::sync::Arc<crate::sched::Op<()>>);

impl mlua::UserData for MailFuture {
    fn add_methods<M: mlua::UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("poll", |_, this, ()| Ok(this.0.is_done()));
        methods.add_method("id", |_, this, ()| Ok(this.0.id));
        methods.add_method("watch", |_, this, ()| {
            this.0.watch();
            Ok(())
        });
        methods.add_method("is_complete", |_, this, ()| Ok(this.0.is_done()));
    }
}

/// `core.mail_future()`.
pub fn mail_future(lua: &Lua, _: ()) -> mlua::Result<MailFuture> {
    let inbox = data(lua).inbox.clone();
    let op: std::sync::Arc<crate::sched::Op<()>> = crate::sched::Op::new(inbox, crate::sched::Control::new(0, 0));
    own_mailbox(lua).on_arrival(&op);
    Ok(MailFuture(op))
}

/// A command whose entry has another `method`: the string arguments converted to its
/// parameter types, the result printed to stdout (a string as it is, anything else as JSON),
/// `err` of a `result` to stderr with exit code 1.
fn run_method(
    lua: &Lua,
    cmd: &process::Command,
    args: Vec<String>,
    launch: Launch,
) -> Result<i32, crate::error::Error> {
    use crate::convert::Ty;
    use crate::error::Error;
    use std::io::Write;
    let loaded = &cmd.loaded;
    let Some(f) = loaded.program.as_deref() else {
        return Err(Error::invalid(format!("{}: not a process.wasm entry", loaded.id)));
    };
    let mut values = Vec::with_capacity(args.len());
    for (i, s) in args.iter().enumerate() {
        // Arguments beyond the parameters stay strings: the count check names them.
        let Some(p) = f.params.get(i) else {
            values.push(Value::String(lua.create_string(s).map_err(|e| Error::internal(e.to_string()))?));
            continue;
        };
        let bad = |what: &str| {
            Error::invalid(format!(
                "{}: argument {} ({}: {}): cannot convert \"{s}\" ({what})",
                loaded.id,
                i + 1,
                p.name,
                p.wit
            ))
        };
        let ty = match p.ty.bare() {
            Ty::Option(_) if s.is_empty() => {
                values.push(Value::Nil);
                continue;
            }
            Ty::Option(inner) => inner.bare(),
            other => other,
        };
        let v = match ty {
            Ty::S8 | Ty::U8 | Ty::S16 | Ty::U16 | Ty::S32 | Ty::U32 | Ty::S64 | Ty::U64 => {
                Value::Integer(s.trim().parse::<i64>().map_err(|_| bad("expected an integer"))? as _)
            }
            Ty::F32 | Ty::F64 => Value::Number(s.trim().parse::<f64>().map_err(|_| bad("expected a number"))?),
            Ty::Bool => match s.as_str() {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                _ => return Err(bad("expected true or false")),
            },
            Ty::String | Ty::Char | Ty::Enum(..) | Ty::Bytes => {
                Value::String(lua.create_string(s).map_err(|e| bad(&e.to_string()))?)
            }
            _ => {
                let j: serde_json::Value = serde_json::from_str(s).map_err(|_| bad("expected JSON for this type"))?;
                json_to_lua(lua, &j).map_err(|e| bad(&e.to_string()))?
            }
        };
        values.push(v);
    }
    super::funcs::check_count(f, &values)?;
    let ctx = data(lua).current.borrow().clone();
    let bound = crate::call::bind(loaded, f, &ctx)?.launch(launch);
    let input = super::funcs::read_input(lua, f, &values)?;
    let out = bound.now(input)?;
    let results = super::funcs::output_to_lua(lua, f, out)?;
    let mut it = results.into_iter();
    let (first, second) = (it.next(), it.next());
    let show = |v: &Value| -> String {
        match v {
            Value::String(s) => s.to_string_lossy(),
            other => super::guest::json_of(other).unwrap_or_else(|m| format!("({m})")),
        }
    };
    match (first, second) {
        (Some(Value::Nil) | None, Some(e)) if !e.is_nil() => {
            let _ = writeln!(std::io::stderr(), "{}", show(&e));
            Ok(1)
        }
        (Some(v), _) if !v.is_nil() => {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "{}", show(&v));
            let _ = out.flush();
            Ok(0)
        }
        _ => Ok(0),
    }
}

/// SIGINT's default action until dropped (then the previous handler again).
struct SigintDefault(libc::sighandler_t);

impl SigintDefault {
    fn set() -> SigintDefault {
        // SAFETY: `signal` replaces the process's SIGINT disposition with the default one, a valid
        // handler value; the previous one is kept and put back by `drop`.
        SigintDefault(unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) })
    }
}

impl Drop for SigintDefault {
    fn drop(&mut self) {
        if self.0 != libc::SIG_ERR {
            // SAFETY: puts back the handler `signal` returned in `set`, which was installed before.
            unsafe { libc::signal(libc::SIGINT, self.0) };
        }
    }
}
