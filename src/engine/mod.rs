//! WebAssembly code: the engines, turning an entry into a callable [`Function`] (compile,
//! check, link with the entry's profiles), the artifact cache, and stores.

pub mod cache;
mod component;
pub mod core;
mod engines;
mod function;
mod prepare;
pub mod warn;
pub mod wit;

pub use engines::{engine, Build, Flavor, ISOLATE_MAX_MEMORY};
pub use function::{Callee, Function, Param};
pub use prepare::prepare;

use crate::host::grant::{Env, Grant, Launch};
use crate::host::state::HostState;

pub(crate) fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A store for an entry's instances, with WASI built from its grant and this call's
/// environment, its limiter and its epoch callback installed.
///
/// # Errors
/// A mount whose directory cannot be opened.
pub fn new_store(
    f: &Function,
    grant: &Grant,
    env: &Env,
    launch: Option<&Launch>,
) -> Result<wasmtime::Store<HostState>, String> {
    let p1 = matches!(f.callee, Callee::Core { .. });
    let state = HostState::new(&f.id, &f.limits, grant, env, p1, launch)?;
    let mut store = wasmtime::Store::new(&f.engine, state);
    store.limiter(|s| s);
    store.epoch_deadline_callback(|ctx| ctx.data().on_tick());
    store.set_epoch_deadline(HostState::IDLE_DEADLINE);
    Ok(store)
}
