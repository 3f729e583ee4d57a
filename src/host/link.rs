//! Linking an entry's code with exactly its profiles: each granted profile's module adds its
//! interfaces, and every other import is stubbed ([`super::deny`]).

use wasmtime::component::{self, Linker};

use super::state::HostState;
use crate::registry::{Profile, Profiles};

/// Links a component with the interfaces of `profiles` (asynchronously: for calls that may wait
/// without blocking a thread; synchronously: for callers that block anyway). `wrapped_core`:
/// the component wraps a core module with the preview-1 adapter (`profiles` is
/// [`P1_PROFILES`] with `wasi1`, else empty), so its denials name `wasi1`.
///
/// # Errors
/// A linker failure (an import whose type does not match what the host provides).
pub fn component(
    comp: &component::Component,
    profiles: Profiles,
    asynchronous: bool,
    wrapped_core: bool,
) -> wasmtime::Result<component::InstancePre<HostState>> {
    let mut l = linker(comp, profiles, asynchronous)?;
    super::deny::stub_imports(&mut l, comp, profiles, wrapped_core)?;
    l.instantiate_pre(comp)
}

/// The preview-2 profiles a core module's preview-1 imports reach through the adapter.
pub const P1_PROFILES: Profiles =
    Profiles::of(&[Profile::Io, Profile::Poll, Profile::Clocks, Profile::Random, Profile::Cli, Profile::Filesystem]);

fn linker(comp: &component::Component, profiles: Profiles, asynchronous: bool) -> wasmtime::Result<Linker<HostState>> {
    let mut l = Linker::<HostState>::new(comp.engine());
    for p in profiles.iter() {
        match p {
            Profile::Io => super::io::add_io(&mut l, asynchronous)?,
            Profile::Poll => super::io::add_poll(&mut l, asynchronous)?,
            Profile::Clocks => super::clocks::add(&mut l)?,
            Profile::Random => super::random::add(&mut l)?,
            Profile::Cli => super::cli::add(&mut l)?,
            Profile::Filesystem => super::filesystem::add(&mut l, asynchronous)?,
            Profile::Sockets => super::sockets::add(&mut l, asynchronous)?,
            Profile::Http => super::http::add(&mut l, asynchronous)?,
            Profile::Funcs => crate::call::guest::add_to_linker(&mut l, asynchronous)?,
            Profile::Actor => super::actor::add(&mut l, asynchronous)?,
            // `wasi1` is preview 1, for core modules: nothing for a component.
            Profile::Wasi1 => {}
        }
    }
    Ok(l)
}

/// The module name of WASI preview 1 imports.
pub const P1: &str = "wasi_snapshot_preview1";

/// Links a core module: its preview-1 imports with `wasi1` (else stubs that deny), nothing
/// else. Returns whether the linking has asynchronous functions (then calls must be async).
///
/// # Errors
/// An import other than preview 1 (the message names it and says what to do).
pub fn core(
    module: &wasmtime::Module,
    wasi1: bool,
    asynchronous: bool,
) -> Result<wasmtime::InstancePre<HostState>, String> {
    let mut l = wasmtime::Linker::<HostState>::new(module.engine());
    let mut p1 = false;
    for import in module.imports() {
        if import.module() != P1 {
            return Err(format!(
                "core module imports `{}`.`{}`: core modules may import only WASI preview 1 \
                 (`{P1}`, with \"wasi1\" in imports)",
                import.module(),
                import.name()
            ));
        }
        if import.ty().func().is_none() {
            return Err(format!("core module imports `{P1}`.`{}`, which is not a function", import.name()));
        }
        p1 = true;
    }
    let linked = match (p1, wasi1, asynchronous) {
        (false, _, _) => Ok(()),
        (true, true, true) => wasmtime_wasi::p1::add_to_linker_async(&mut l, HostState::p1),
        (true, true, false) => wasmtime_wasi::p1::add_to_linker_sync(&mut l, HostState::p1),
        (true, false, _) => module.imports().try_for_each(|i| super::deny::stub_core(&mut l, &i)),
    };
    linked.map_err(|e| format!("cannot link WASI preview 1: {}", crate::engine::one_line(&format!("{e:#}"))))?;
    l.instantiate_pre(module).map_err(|e| format!("cannot link module: {}", crate::engine::one_line(&format!("{e:#}"))))
}

/// Whether a core module imports preview 1 (so its calls may wait in WASI).
pub fn imports_p1(module: &wasmtime::Module) -> bool {
    module.imports().any(|i| i.module() == P1)
}
