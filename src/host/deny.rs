//! Imports an entry was not granted, and imports this host does not provide: they link, so a
//! component that imports all of WASI loads, and fail when the guest calls them.
//!
//! A denied WASI function fails the call with `PERMISSION_DENIED`, naming the interface and
//! the profile to add (`wasi:filesystem/types is not granted: add "wasi:filesystem" to
//! imports`); an unknown one with `unknown import: ...`.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{self, Linker, ResourceType};

use super::state::HostState;
use crate::registry::{Profile, Profiles};

/// A call of an interface the entry's `imports` do not grant.
#[derive(Debug, Clone)]
pub struct Denied {
    /// `wasi:filesystem/types` (as the guest imports it, without version).
    pub interface: String,
    pub profile: Profile,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not granted: add \"{}\" to imports", self.interface, self.profile.name())
    }
}

impl std::error::Error for Denied {}

/// The host type behind stubbed resources (the guest can never get one).
struct StubResource;

/// What a stubbed function says when called.
#[derive(Clone)]
enum Why {
    Denied(Denied),
    Unknown(String),
}

impl Why {
    fn error(&self) -> wasmtime::Error {
        match self {
            Why::Denied(d) => wasmtime::Error::new(d.clone()),
            Why::Unknown(name) => wasmtime::format_err!("unknown import: `{name}` is not provided by this host"),
        }
    }
}

/// Stubs every import of `comp` that the linked profiles (`linked`) do not provide. `core`: the
/// component wraps a core module, whose WASI is preview 1 (`wasi1`), so denials name that.
pub fn stub_imports(
    linker: &mut Linker<HostState>,
    comp: &component::Component,
    linked: Profiles,
    core: bool,
) -> wasmtime::Result<()> {
    let engine = comp.engine().clone();
    let ty = comp.component_type();
    // Resources seen in earlier imports: a later `use` of one is an alias the linker must
    // not define again.
    let mut seen: Vec<ResourceType> = Vec::new();
    for (name, ext) in ty.imports(&engine) {
        let unversioned = name.split('@').next().unwrap_or(name);
        let profile = Profile::of_interface(unversioned);
        let why = match profile {
            Some(p) if linked.has(p) => None,
            Some(_) if core => Some(Why::Denied(Denied { interface: super::link::P1.into(), profile: Profile::Wasi1 })),
            Some(p) => Some(Why::Denied(Denied { interface: unversioned.into(), profile: p })),
            None => Some(Why::Unknown(name.into())),
        };
        match ext.ty {
            ComponentItem::ComponentInstance(inst) => {
                let mut li = match why {
                    Some(_) => Some(linker.instance(name)?),
                    None => None,
                };
                for (item, ext) in inst.exports(&engine) {
                    match (ext.ty, &mut li, &why) {
                        // libc lists the preopened directories at start-up for any descriptor use
                        // (a socket, say): without the profile there are none, which is no
                        // access, so the list is empty — unless the entry declares `wasi.mounts`,
                        // whose use then says which profile is missing.
                        (ComponentItem::ComponentFunc(_), Some(li), Some(Why::Denied(d)))
                            if d.profile == Profile::Filesystem && item == "get-directories" =>
                        {
                            let d = d.clone();
                            li.func_new(item, move |store, _, _, results| {
                                if store.data().wants_mounts {
                                    return Err(wasmtime::Error::new(d.clone()));
                                }
                                if let Some(slot) = results.first_mut() {
                                    *slot = component::Val::List(Vec::new());
                                }
                                Ok(())
                            })?;
                        }
                        (ComponentItem::ComponentFunc(_), Some(li), Some(why)) => {
                            let why = match why {
                                Why::Unknown(n) => Why::Unknown(format!("{n}#{item}")),
                                other => other.clone(),
                            };
                            li.func_new(item, move |_, _, _, _| Err(why.error()))?;
                        }
                        (ComponentItem::Resource(r), li, _) if !seen.contains(&r) => {
                            seen.push(r);
                            if let Some(li) = li {
                                li.resource(item, ResourceType::host::<StubResource>(), |_, _| Ok(()))?;
                            }
                        }
                        _ => {}
                    }
                }
            }
            ComponentItem::ComponentFunc(_) => {
                if let Some(why) = why {
                    let why = match why {
                        Why::Unknown(_) => Why::Unknown(name.into()),
                        other => other,
                    };
                    linker.root().func_new(name, move |_, _, _, _| Err(why.error()))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Stubs a core module's preview-1 import that `wasi1` does not grant.
pub fn stub_core(linker: &mut wasmtime::Linker<HostState>, import: &wasmtime::ImportType<'_>) -> wasmtime::Result<()> {
    let Some(ty) = import.ty().func().cloned() else {
        wasmtime::bail!("only functions can be stubbed");
    };
    let denied = Denied { interface: import.module().to_string(), profile: Profile::Wasi1 };
    linker.func_new(import.module(), import.name(), ty, move |_, _, _| Err(wasmtime::Error::new(denied.clone())))?;
    Ok(())
}
