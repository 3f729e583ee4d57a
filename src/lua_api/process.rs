//! Commands (SPEC §7.2) for Lua and the `wippy` launcher: `wippy.command(name, args, options)`
//! runs a `process.wasm` command with the real stdin, stdout and stderr and returns its exit
//! code; `wippy.commands()` lists them; `wippy.hash(path)` gives a file's `sha256:` for `hash:`
//! fields.

use mlua::{Lua, MultiValue, Table, Value};

use super::error::fail;
use super::state::data;
use crate::call::process;
use crate::host::grant::Launch;

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
                match v? {
                    Value::String(s) => out.push(s.to_str()?.to_string()),
                    Value::Integer(n) => out.push(n.to_string()),
                    Value::Number(n) => out.push(n.to_string()),
                    other => {
                        return Err(mlua::Error::runtime(format!(
                            "bad argument #2 to 'command' (args[{}] must be a string, got {})",
                            i + 1,
                            other.type_name()
                        )))
                    }
                }
            }
            Some(out)
        }
    };
    let mut env = Vec::new();
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
                (k, _) => {
                    return Err(mlua::Error::runtime(format!(
                        "bad argument #3 to 'command' (unknown option \"{k}\"; known: env)"
                    )))
                }
            }
        }
    }
    let cmd = match process::command(&name) {
        Ok(c) => c,
        Err(e) => return fail(lua, e),
    };
    let argv = process::argv(&name, &cmd.loaded, args);
    let ctx = data(lua).current.borrow().clone();
    let launch = Launch { argv: Some(argv), inherit_stdio: true, env };
    match process::run_command(&cmd.loaded, &ctx, launch) {
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
                match v {
                    Value::String(s) => argv.push(s.to_string_lossy()),
                    Value::Integer(n) => argv.push(n.to_string()),
                    Value::Number(n) => argv.push(n.to_string()),
                    other => {
                        return Err(Error::invalid(format!(
                            "{}: argument {} of a command must be a string, got {}",
                            loaded.id,
                            i + 1,
                            other.type_name()
                        )))
                    }
                }
            }
            let argv = if args.is_empty() && !loaded.grant.args.is_empty() { None } else { Some(argv) };
            (Launch { argv, ..Launch::default() }, Vec::new())
        }
        false => (Launch::default(), args),
    };
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
    Ok(MultiValue::from_iter([Value::UserData(ud)]))
}

/// `core.wait_any(futures, timeout_ms?)`: blocks (outside a task) until one of the futures is
/// complete or the time is up, running the Lua functions guests call meanwhile.
pub fn wait_any(lua: &Lua, (futs, timeout): (Table, Option<f64>)) -> mlua::Result<()> {
    let mut ops = Vec::new();
    for v in futs.sequence_values::<mlua::AnyUserData>() {
        ops.push(v?.borrow::<super::future::LuaFuture>()?.op.clone());
    }
    let until = timeout.map(|ms| std::time::Instant::now() + std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    let inbox = data(lua).inbox.clone();
    loop {
        let any = || ops.iter().any(|o| o.is_done());
        if any() || until.is_some_and(|u| std::time::Instant::now() >= u) {
            return Ok(());
        }
        for job in inbox.serve_wait(any, until) {
            super::guest::run_now(lua, job);
        }
    }
}
