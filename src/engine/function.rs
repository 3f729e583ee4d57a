//! A callable WebAssembly function, resolved once per entry: its export, its parameter and
//! result types, and how it is reached.

use std::sync::Arc;

use wasmtime::component::{self, ComponentExportIndex};
use wasmtime::Engine;

use super::engines::Build;
use crate::convert::{Scalar, Ty};
use crate::host::state::HostState;
use crate::registry::{Common, Limits, Profiles};

/// A named parameter.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub ty: Ty,
    /// The type as WIT writes it (named types by name), for `describe` and messages.
    pub wit: String,
}

/// How a function is reached.
pub enum Callee {
    /// A core export whose parameters and results are single core values.
    Core {
        /// Linked with synchronous WASI preview 1 (or with no imports).
        pre: wasmtime::InstancePre<HostState>,
        /// Linked with asynchronous preview 1, when the module imports it with `wasi1`: for
        /// calls that may wait without blocking a thread.
        pre_async: Option<wasmtime::InstancePre<HostState>>,
        export: String,
        params: Vec<Scalar>,
        results: Vec<Scalar>,
    },
    /// A component export (a component, or a core module wrapped with its WIT).
    Component {
        /// Linked with asynchronous WASI: for calls that may wait without blocking a thread
        /// (tasks, futures, time limits).
        pre: component::InstancePre<HostState>,
        /// Linked with synchronous WASI: for callers that block anyway (no fiber per call).
        pre_sync: component::InstancePre<HostState>,
        export: ComponentExportIndex,
        /// The instance holding live resources of this component, shared by its entries.
        sticky: Arc<crate::pool::Sticky>,
        /// Keeps the compiled binary and its linking shared by the entries naming them while
        /// any of them lives (the process-wide tables hold them weakly).
        keep: Option<Arc<dyn std::any::Any + Send + Sync>>,
    },
}

/// A callable WebAssembly function, resolved once per entry.
pub struct Function {
    pub id: String,
    pub params: Vec<Param>,
    /// Result types (WIT functions have at most one; core modules without WIT may have several).
    pub results: Vec<Param>,
    /// `func(...) -> ...` in WIT syntax.
    pub signature: String,
    pub callee: Callee,
    pub limits: Limits,
    /// How calls are scheduled and instances kept (`pool`).
    pub pool: crate::registry::Pool,
    /// The profiles its code is linked with (`imports` and the ones they bring along).
    pub profiles: Profiles,
    /// `funcs` is granted: the guest may call the registry, so its calls run under a context of
    /// their own (one level deeper, see `call::bind`).
    pub calls_registry: bool,
    /// A `process.wasm` entry's command entry point (`wasi:cli/run`'s `run` or `_start`): run
    /// to an exit code.
    pub command: bool,
    /// The code is a component (not a core module, wrapped or not).
    pub is_component: bool,
    /// The engine its code was compiled for (the pooling one with `pool.isolate`).
    pub engine: Engine,
    /// Parameters or results hold resource handles (the call then pins its instance).
    pub has_resources: bool,
    /// Component functions whose parameters and result are numbers or booleans: the raw
    /// `funcs.call` path converts them straight from the Lua stack.
    pub flat: Option<(Vec<Scalar>, Option<Scalar>)>,
    /// Component functions whose values travel on value tapes (no resource handles): read off
    /// the Lua stack and lowered straight into guest memory (`convert::tape`).
    pub tape: bool,
}

impl Function {
    pub(super) fn new(
        id: &str,
        params: Vec<Param>,
        results: Vec<Param>,
        signature: String,
        callee: Callee,
        common: &Common,
        build: &Build,
    ) -> Function {
        let limits = &common.limits;
        let has_resources = params.iter().chain(&results).any(|p| p.ty.has_resources());
        let numeric = |t: &Ty| Scalar::from_ty(t).filter(|s| !matches!(s, Scalar::Char | Scalar::Enum(..)));
        let flat = match (&callee, results.len()) {
            (Callee::Component { .. }, 0 | 1) => {
                let ps: Option<Vec<Scalar>> = params.iter().map(|p| numeric(&p.ty)).collect();
                let r = results.first().map(|r| numeric(&r.ty));
                match (ps, r) {
                    (Some(ps), None) => Some((ps, None)),
                    (Some(ps), Some(Some(r))) => Some((ps, Some(r))),
                    _ => None,
                }
            }
            _ => None,
        };
        let tape = matches!(callee, Callee::Component { .. })
            && results.len() <= 1
            && params.iter().chain(&results).all(|p| p.ty.tape_convertible());
        let profiles = Profiles::granted(&common.imports);
        Function {
            id: id.to_string(),
            params,
            results,
            signature,
            callee,
            limits: limits.clone(),
            pool: common.pool.clone(),
            profiles,
            calls_registry: profiles.has(crate::registry::Profile::Funcs),
            command: false,
            is_component: false,
            engine: build.engine().clone(),
            has_resources,
            flat,
            tape,
        }
    }
}

impl Function {
    /// Whether a call may wait inside WASI (so it needs the asynchronous linking to yield).
    #[inline]
    pub fn may_wait(&self) -> bool {
        match &self.callee {
            Callee::Core { pre_async, .. } => pre_async.is_some(),
            Callee::Component { .. } => true,
        }
    }
}
