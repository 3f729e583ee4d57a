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
