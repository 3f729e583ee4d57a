//! Host capabilities given to guests. For now: where guest output goes.

pub mod output;
