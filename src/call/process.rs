//! Processes (SPEC §7): `process.wasm` entries run in a fresh instance each time, as commands
//! (`wasi:cli/run` or `_start` to an exit code, with the real stdio) or as spawned runs of their
//! `method`. The call path is a function call's (authorize, grant, run) with a
//! [`Launch`](crate::host::grant::Launch): the instance gets that stdio and argv and is never
//! reused.

use std::sync::Arc;

use wasmtime::component::Val;

use super::{bind, Input, Output};
use crate::error::{Error, Kind, Reason};
use crate::host::grant::Launch;
use crate::registry::Spec;
use crate::runtime::{self, Loaded};
use crate::security::Context;

/// A command of the registry: its name, `short` text and entry.
pub struct Command {
    pub name: String,
    pub short: Option<String>,
    pub loaded: Arc<Loaded>,
}

/// Every loaded `process.wasm` entry with `meta.command`, by name.
pub fn commands() -> Vec<Command> {
    let mut out: Vec<Command> = runtime::entries()
        .into_iter()
        .filter_map(|l| match &l.entry.spec {
            Spec::ProcessWasm(p) => {
                p.command.as_ref().map(|c| Command { name: c.name.clone(), short: c.short.clone(), loaded: l.clone() })
            }
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The command named `name`.
///
/// # Errors
/// `NOT_FOUND`, naming the commands there are.
pub fn command(name: &str) -> Result<Command, Error> {
    let all = commands();
    let known: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
    all.into_iter().find(|c| c.name == name).ok_or_else(|| {
        let list =
            if known.is_empty() { "none are loaded".to_string() } else { format!("known: {}", known.join(", ")) };
        Error::new(Kind::NotFound, format!("command not found: {name} ({list})"))
    })
}

/// The argv of a command run with `args` (`None`: the entry's `wasi.args`, else the name).
pub fn argv(name: &str, loaded: &Loaded, args: Option<Vec<String>>) -> Vec<String> {
    match args {
        Some(args) => std::iter::once(name.to_string()).chain(args).collect(),
        None if !loaded.grant.args.is_empty() => loaded.grant.args.clone(),
        None => vec![name.to_string()],
    }
}

/// Runs a command's entry point to the end on this thread, in a fresh instance: its exit code
/// (`wasi:cli/run` returning `ok` or `_start` returning: 0; `run` returning `err`: 1; an exit:
/// its code).
///
/// # Errors
/// A trap, a denial, a timeout; `INVALID` for an entry that is not a command.
pub fn run_command(loaded: &Loaded, ctx: &Arc<Context>, launch: Launch) -> Result<i32, Error> {
    let f = loaded.program.as_deref().ok_or_else(|| not_process(loaded))?;
    if !f.command {
        return Err(Error::invalid(format!(
            "{}: not a command: its method is {} (a command exports wasi:cli/run or `_start`)",
            loaded.id, f.signature
        )));
    }
    let input = if f.is_component { Input::Component(Vec::new()) } else { Input::Core(Vec::new()) };
    let bound = bind(loaded, f, ctx)?.launch(launch);
    exit_code(bound.now(input))
}

/// The exit code a finished command run gives.
///
/// # Errors
/// A failure that is not an exit.
pub fn exit_code(r: Result<Output, Error>) -> Result<i32, Error> {
    match r {
        Ok(Output::Component(vals)) => Ok(match vals.first() {
            Some(Val::Result(Err(_))) => 1,
            _ => 0,
        }),
        Ok(_) => Ok(0),
        Err(e) => match &e.details {
            Some(d) if d.reason == Reason::Exit => Ok(d.code.unwrap_or(1)),
            _ => Err(e),
        },
    }
}

fn not_process(loaded: &Loaded) -> Error {
    let mut e = Error::new(Kind::Invalid, format!("{}: not a process.wasm entry", loaded.id));
    e.retryable = false;
    e
}
