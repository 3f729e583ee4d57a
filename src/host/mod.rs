//! Host capabilities given to guests: where guest output goes, and the network policy.

pub mod http;
pub mod net;
pub mod output;
