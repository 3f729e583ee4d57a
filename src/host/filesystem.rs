//! `wasi:filesystem`: the entry's `wasi.mounts` as preopened directories, nothing else.
//! Confinement to each mount (no `..`, absolute path or symbolic link out of it) and
//! `read_only` are enforced by wasmtime-wasi's capability-based directories.

use wasmtime::component::Linker;
use wasmtime_wasi::filesystem::WasiFilesystem;
use wasmtime_wasi::p2::bindings;

use super::state::HostState;

fn get(t: &mut HostState) -> wasmtime_wasi::filesystem::WasiFilesystemCtxView<'_> {
    use wasmtime_wasi::filesystem::WasiFilesystemView as _;
    t.filesystem()
}

pub fn add(l: &mut Linker<HostState>, asynchronous: bool) -> wasmtime::Result<()> {
    bindings::filesystem::preopens::add_to_linker::<HostState, WasiFilesystem>(l, get)?;
    if asynchronous {
        bindings::filesystem::types::add_to_linker::<HostState, WasiFilesystem>(l, get)
    } else {
        bindings::sync::filesystem::types::add_to_linker::<HostState, WasiFilesystem>(l, get)
    }
}
