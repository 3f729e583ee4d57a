//! `wasi:cli`: the entry's `wasi.args`, the `wasi.env` variables, `wasi.cwd` as the initial
//! directory, `exit` (which ends the call with reason `exit`), and stdio: stdin closed,
//! stdout and stderr to the host's stderr with the entry's prefix.

use wasmtime::component::Linker;
use wasmtime_wasi::cli::WasiCli;
use wasmtime_wasi::p2::bindings::cli;

use super::state::HostState;

fn get(t: &mut HostState) -> wasmtime_wasi::cli::WasiCliCtxView<'_> {
    use wasmtime_wasi::cli::WasiCliView as _;
    t.cli()
}

pub fn add(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    cli::exit::add_to_linker::<HostState, WasiCli>(l, get)?;
    cli::environment::add_to_linker::<HostState, WasiCli>(l, get)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(l, get)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(l, get)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(l, get)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, get)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, get)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, get)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, get)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, get)
}
