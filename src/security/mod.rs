//! The caller's security context, carried by every call (SPEC §5.4).
//!
//! Actors, scopes and policy evaluation arrive with the security issue; the call path already
//! takes a [`Context`] so that every call, at any depth, carries the one of its caller.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Who is calling.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub meta: BTreeMap<String, String>,
}

/// The security context of one call: actor, scope and context values.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub actor: Option<Arc<Actor>>,
    /// Context values (`funcs.context()`), as JSON-like text pairs for now.
    pub values: BTreeMap<String, String>,
}

impl Context {
    /// The context of a call made from the top level, with no actor.
    pub fn root() -> Arc<Context> {
        Arc::new(Context::default())
    }
}
