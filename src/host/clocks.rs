//! `wasi:clocks`: the host's wall clock and monotonic clock (timers yield only the calling
//! task when the call is asynchronous).

use wasmtime::component::Linker;
use wasmtime_wasi::clocks::WasiClocks;
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::bindings::clocks;

use super::state::HostState;

pub fn add(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(l, |t| t.clocks())?;
    clocks::monotonic_clock::add_to_linker::<HostState, WasiClocks>(l, |t| t.clocks())
}
