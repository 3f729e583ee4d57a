//! WIT ⇄ Lua values, driven by the WIT type (SPEC §3), with errors that name the path.

pub mod int64;
mod lua;
mod path;
pub mod push;
pub mod read;
pub mod resource;
pub mod ty;

pub use lua::{from_val, null, scalar_from_core, scalar_raw, scalar_to_core, scalar_val, to_val, Num};
pub use path::{ConvError, Path};
pub use ty::{Scalar, Ty};
