//! Integration tests, one binary: `cargo test --features lua54,vendored --test all`.

mod pools;
mod registry;
mod ui;
