//! Components compiled once per distinct binary and [`Flavor`], and linked once per profile
//! set: entries naming exports of one file share code, resource types and, when their
//! profiles match, linking and the instance holding live resources.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use wasmtime::component::{self, ComponentExportIndex};

use super::engines::{Build, Flavor};
use super::{cache, one_line, wit};
use crate::convert::resource::{Method, ResourceInfo};
use crate::host::link;
use crate::host::state::HostState;
use crate::registry::Profiles;

/// A component compiled once per distinct binary and [`Flavor`]: entries naming different
/// exports of one file (with the same `isolate` and fuel settings) share its code, its
/// resource types and its linking, so a resource made through one entry can be passed to
/// another.
pub(super) struct Compiled {
    pub comp: component::Component,
    pub wit: wit::Wit,
    pub exports: Vec<wit::Export>,
    /// Its linkings by profile set, held weakly (by the entries using them).
    links: Mutex<HashMap<Profiles, Weak<Linked>>>,
}

/// A compiled component linked with one set of profiles: entries of one binary that share
/// their profiles share this (and so their resources' instance, [`crate::pool::Sticky`]).
pub(super) struct Linked {
    pub pre: component::InstancePre<HostState>,
    pub pre_sync: component::InstancePre<HostState>,
    pub sticky: Arc<crate::pool::Sticky>,
    /// Keeps the compiled binary alive with its linking.
    _compiled: Arc<Compiled>,
}

impl Compiled {
    /// This component linked with `profiles` (once per set while entries use it).
    pub fn linked(self: &Arc<Self>, profiles: Profiles) -> Result<Arc<Linked>, Vec<String>> {
        let mut links = self.links.lock().map_err(|_| vec!["component linking lock poisoned".to_string()])?;
        if let Some(hit) = links.get(&profiles).and_then(Weak::upgrade) {
            return Ok(hit);
        }
        let link = |asynchronous| {
            link::component(&self.comp, profiles, asynchronous, false)
                .map_err(|err| vec![format!("cannot link component: {}", one_line(&format!("{err:#}")))])
        };
        let linked = Arc::new(Linked {
            pre: link(true)?,
            pre_sync: link(false)?,
            sticky: Arc::default(),
            _compiled: self.clone(),
        });
        links.retain(|_, w| w.strong_count() > 0);
        links.insert(profiles, Arc::downgrade(&linked));
        Ok(linked)
    }
}

pub(super) fn compiled_component(
    bytes: &[u8],
    digest: Option<[u8; 32]>,
    build: &Build,
) -> Result<Arc<Compiled>, Vec<String>> {
    use sha2::Digest;
    type Key = ([u8; 32], Flavor);
    // Weak: a binary no entry names any more is freed with its last entry.
    static CACHE: OnceLock<Mutex<HashMap<Key, Weak<Compiled>>>> = OnceLock::new();
    let sha256: [u8; 32] = digest.unwrap_or_else(|| sha2::Sha256::digest(bytes).into());
    let key: Key = (sha256, build.flavor);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(&key).and_then(Weak::upgrade)) {
        return Ok(hit);
    }
    let (resolve, world) = match wit_parser::decoding::decode(bytes) {
        Ok(wit_parser::decoding::DecodedWasm::Component(resolve, world)) => (resolve, world),
        Ok(_) => return Err(vec!["the binary is a WIT package, not a component".into()]),
        Err(e) => return Err(vec![format!("invalid component: {}", one_line(&format!("{e:#}")))]),
    };
    let mut wit = wit::Wit { resolve, world, resources: Default::default() };
    let exports = wit.exports();
    // Every resource with methods gets its info first, so method signatures can name it.
    let exported_interfaces: Vec<wit_parser::InterfaceId> = wit.resolve.worlds[wit.world]
        .exports
        .values()
        .filter_map(|item| match item {
            wit_parser::WorldItem::Interface { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    for iface in exported_interfaces {
        for (name, t) in &wit.resolve.interfaces[iface].types {
            if matches!(wit.resolve.types[*t].kind, wit_parser::TypeDefKind::Resource) {
                wit.resources
                    .entry(*t)
                    .or_insert_with(|| Arc::new(ResourceInfo { name: name.clone(), methods: OnceLock::new() }));
            }
        }
    }
    for e in &exports {
        if let Some(r) = wit::Wit::method_of(&e.func) {
            let r = wit.dealias(r);
            let name = wit.resolve.types[r].name.clone().unwrap_or_default();
            wit.resources.entry(r).or_insert_with(|| Arc::new(ResourceInfo { name, methods: OnceLock::new() }));
        }
    }
    let comp = cache::component(bytes, Some(sha256), build)
        .map_err(|err| vec![format!("cannot compile the component: {}", one_line(&format!("{err:#}")))])?;
    for (r, info) in &wit.resources {
        let mut methods = Vec::new();
        for m in exports.iter().filter(|m| wit::Wit::method_of(&m.func).map(|x| wit.dealias(x)) == Some(*r)) {
            let short = m.name.rsplit('.').next().unwrap_or(&m.name).to_string();
            methods.push(Method {
                label: format!("{}.{short}", info.name),
                name: short,
                export: component_export(&comp, &m.canonical)?,
                params: m.func.params.iter().skip(1).map(|p| (p.name.clone(), wit.ty(&p.ty))).collect(),
                result: m.func.result.as_ref().map(|t| wit.ty(t)),
            });
        }
        let _ = info.methods.set(methods);
    }
    let compiled = Arc::new(Compiled { comp, wit, exports, links: Mutex::default() });
    if let Ok(mut c) = cache.lock() {
        c.retain(|_, w| w.strong_count() > 0);
        c.insert(key, Arc::downgrade(&compiled));
    }
    Ok(compiled)
}

/// The export index of `iface#name` or `name` in a component.
pub(super) fn component_export(
    comp: &component::Component,
    canonical: &str,
) -> Result<ComponentExportIndex, Vec<String>> {
    let (iface, name) = match canonical.split_once('#') {
        Some((iface, name)) => (Some(iface), name),
        None => (None, canonical),
    };
    let parent = match iface {
        Some(i) => {
            Some(comp.get_export_index(None, i).ok_or_else(|| vec![format!("component does not export `{i}`")])?)
        }
        None => None,
    };
    comp.get_export_index(parent.as_ref(), name).ok_or_else(|| vec![format!("component does not export `{canonical}`")])
}
