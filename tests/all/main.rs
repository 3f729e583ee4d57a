//! Integration tests, one binary: `cargo test --features lua54,vendored --test all`.

mod fuzz_loader;
mod fuzz_util;
mod fuzz_wasm;
mod pools;
mod registry;
mod ui;
