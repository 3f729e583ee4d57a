//! Host capabilities given to guests (SPEC §5): an entry's [`grant::Grant`], the state of a
//! store built from it ([`state::HostState`]), and one module per `imports:` profile that adds
//! its interfaces to a linker ([`link`]); everything not granted is stubbed ([`deny`]).

pub mod actor;
pub mod cli;
pub mod clocks;
pub mod deny;
pub mod filesystem;
pub mod grant;
pub mod http;
pub mod io;
pub mod link;
pub mod net;
pub mod output;
pub mod random;
pub mod sockets;
pub mod state;
