//! `wasi:random`: secure and insecure random numbers, seeded per instance.

use wasmtime::component::Linker;
use wasmtime_wasi::p2::bindings::random;
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::WasiView;

use super::state::HostState;

pub fn add(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    random::random::add_to_linker::<HostState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(l, |t| t.ctx().ctx.random())
}
