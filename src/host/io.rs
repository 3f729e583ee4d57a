//! `wasi:io` (`error`, `streams`) and `wasi:poll` (`wasi:io/poll`): the streams and pollables
//! other capabilities hand out. On their own they reach nothing of the host.

use wasmtime::component::{HasData, Linker, ResourceTable};

use super::state::HostState;

/// The store's resource table is all these interfaces need.
struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

fn table(s: &mut HostState) -> &mut ResourceTable {
    &mut s.table
}

/// Adds `wasi:io/error` and `wasi:io/streams`.
pub fn add_io(l: &mut Linker<HostState>, asynchronous: bool) -> wasmtime::Result<()> {
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<HostState, HasTable>(l, table)?;
    if asynchronous {
        wasmtime_wasi_io::bindings::wasi::io::streams::add_to_linker::<HostState, HasTable>(l, table)
    } else {
        wasmtime_wasi::p2::bindings::sync::io::streams::add_to_linker::<HostState, HasTable>(l, table)
    }
}

/// Adds `wasi:io/poll`.
pub fn add_poll(l: &mut Linker<HostState>, asynchronous: bool) -> wasmtime::Result<()> {
    if asynchronous {
        wasmtime_wasi_io::bindings::wasi::io::poll::add_to_linker::<HostState, HasTable>(l, table)
    } else {
        wasmtime_wasi::p2::bindings::sync::io::poll::add_to_linker::<HostState, HasTable>(l, table)
    }
}
