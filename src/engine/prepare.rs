//! Turning a registry entry into a callable [`Function`]: compile (or take from the artifact
//! cache), pick the export, check its signature, link it with the entry's profiles and resolve
//! its types once.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component;
use wasmtime::Module;

use super::component::{compiled_component, component_export};
use super::engines::{Build, Flavor, ISOLATE_MAX_MEMORY};
use super::function::{Callee, Function, Param};
use super::{cache, core, one_line, wit};
use crate::convert::Scalar;
use crate::host::link;
use crate::host::state::HostState;
use crate::registry::{Code, Common, Entry, Profile, Profiles, Spec, WasmFunction};

/// Compiles and checks an executable entry. `Ok(None)` for entries that are not WebAssembly.
///
/// # Errors
/// One message per problem, to be reported at the entry's line.
pub fn prepare(entry: &Entry, cache_dir: Option<&Path>) -> Result<Option<Function>, Vec<String>> {
    let process;
    let (wasm, id) = match &entry.spec {
        Spec::FunctionWat(f) | Spec::FunctionWasm(f) => (f, entry.id.to_string()),
        Spec::ProcessWasm(p) => {
            process = process_code(p);
            (&process, entry.id.to_string())
        }
        _ => return Ok(None),
    };
    if wasm.common.pool.isolate && wasm.common.limits.memory_bytes > ISOLATE_MAX_MEMORY {
        return Err(vec![format!(
            "`pool.isolate` entries may use at most {} MiB of linear memory, but limits.memory_bytes is {} (lower it, or drop `isolate`)",
            ISOLATE_MAX_MEMORY >> 20,
            wasm.common.limits.memory_bytes
        )]);
    }
    let build = Build {
        flavor: Flavor { isolate: wasm.common.pool.isolate, fuel: wasm.common.limits.fuel > 0 },
        cache_dir: cache_dir.map(Path::to_path_buf),
    };
    let command = matches!(entry.spec, Spec::ProcessWasm(_));
    let mut f = prepare_wasm(&id, wasm, &build).map_err(|e| match (command, &wasm.common.method) {
        (true, Some(m)) if m == RUN || m == START => e
            .into_iter()
            .map(|m| {
                format!(
                    "{m}; a process.wasm entry without `method` is a command: a component exporting \
                     wasi:cli/run or a core module exporting `_start` (or set `method`)"
                )
            })
            .collect(),
        _ => e,
    })?;
    if command {
        // `wasi:cli/run`'s `run` (`func() -> result`) or preview 1's `_start` (`func()`).
        let m = wasm.common.method.as_deref().unwrap_or_default();
        f.command = match f.is_component {
            true => (m == RUN || m.ends_with("/run#run")) && f.signature == "func() -> result",
            false => m == START && f.signature == "func()",
        };
    }
    Ok(Some(f))
}

/// The method of a command: `wasi:cli/run`'s `run` of a component, `_start` of a core module.
const RUN: &str = "run";
const START: &str = "_start";

/// A process entry's code as a function's: without `method`, the command's entry point.
fn process_code(p: &crate::registry::ProcessWasm) -> WasmFunction {
    let mut common = p.common.clone();
    if common.method.is_none() {
        let component = match &p.code {
            Code::Binary { bytes, .. } => core::is_component(bytes),
            Code::Wat(text) => text.trim_start().starts_with("(component"),
        };
        common.method = Some(if component { RUN } else { START }.to_string());
    }
    WasmFunction { code: p.code.clone(), common }
}

fn prepare_wasm(id: &str, f: &WasmFunction, build: &Build) -> Result<Function, Vec<String>> {
    let bytes: std::borrow::Cow<'_, [u8]> = match &f.code {
        Code::Wat(text) => match wat::parse_str(text) {
            Ok(b) => b.into(),
            Err(e) => return Err(vec![wit::located("invalid WAT", &e.to_string(), 0, 0)]),
        },
        Code::Binary { bytes, .. } => (&bytes[..]).into(),
    };
    // The sha256 of a binary from a file was computed at load: it keys the caches.
    let digest = match &f.code {
        Code::Binary { sha256, .. } => Some(*sha256),
        Code::Wat(_) => None,
    };
    if core::is_component(&bytes) {
        if f.common.wit.is_some() {
            return Err(
                vec!["`wit` is only for core modules: a component carries its own types (remove `wit`)".into()],
            );
        }
        return prepare_component(id, f, &bytes, digest, build);
    }
    if matches!(f.code, Code::Binary { .. }) && !bytes.starts_with(b"\0asm") {
        return Err(vec!["not a WebAssembly binary (it does not start with the `\\0asm` magic number)".into()]);
    }
    let module = cache::module(&bytes, digest, build)
        .map_err(|e| vec![format!("invalid WebAssembly module: {}", one_line(&format!("{e:#}")))])?;
    match &f.common.wit {
        None => prepare_plain_core(id, f, module, build),
        Some(text) => prepare_core_with_wit(id, f, module, &bytes, text, build),
    }
}

fn exported_funcs(module: &Module) -> Vec<String> {
    module.exports().filter(|e| e.ty().func().is_some()).map(|e| e.name().to_string()).collect()
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".into()
    } else {
        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    }
}

/// A core module without `wit`: its export's core types are the signature.
fn prepare_plain_core(id: &str, f: &WasmFunction, module: Module, build: &Build) -> Result<Function, Vec<String>> {
    let funcs = exported_funcs(&module);
    let method = match &f.common.method {
        Some(m) => m.clone(),
        None if funcs.len() == 1 => funcs[0].clone(),
        None => {
            return Err(vec![format!(
                "`method` is required: the module exports the functions {}",
                list_or_none(&funcs)
            )])
        }
    };
    let Some(ty) = module.get_export(&method).and_then(|e| e.func().cloned()) else {
        return Err(vec![format!(
            "method `{method}` is not exported by the module (exported functions: {})",
            list_or_none(&funcs)
        )]);
    };
    let scalar = |t: wasmtime::ValType| match t {
        wasmtime::ValType::I32 => Ok(Scalar::S32),
        wasmtime::ValType::I64 => Ok(Scalar::S64),
        wasmtime::ValType::F32 => Ok(Scalar::F32),
        wasmtime::ValType::F64 => Ok(Scalar::F64),
        other => Err(format!("export `{method}` uses the core type {other}, which cannot be called from Lua")),
    };
    let params: Vec<Scalar> = ty.params().map(scalar).collect::<Result<_, _>>().map_err(|e| vec![e])?;
    let results: Vec<Scalar> = ty.results().map(scalar).collect::<Result<_, _>>().map_err(|e| vec![e])?;
    let named = |prefix: &str, list: &[Scalar]| -> Vec<Param> {
        list.iter()
            .enumerate()
            .map(|(i, s)| Param { name: format!("{prefix}{i}"), ty: s.to_ty(), wit: s.to_ty().describe() })
            .collect()
    };
    let params_named = named("p", &params);
    let results_named = named("r", &results);
    let signature = signature_text(&params_named, &results_named);
    let (pre, pre_async) = link_core(&module, &f.common)?;
    Ok(Function::new(
        id,
        params_named,
        results_named,
        signature,
        Callee::Core { pre, pre_async, export: method, params, results },
        &f.common,
        build,
    ))
}

fn signature_text(params: &[Param], results: &[Param]) -> String {
    let ps: Vec<String> = params.iter().map(|p| format!("{}: {}", p.name, p.wit)).collect();
    match results.len() {
        0 => format!("func({})", ps.join(", ")),
        1 => format!("func({}) -> {}", ps.join(", "), results[0].wit),
        _ => {
            let rs: Vec<String> = results.iter().map(|r| r.wit.clone()).collect();
            format!("func({}) -> tuple<{}>", ps.join(", "), rs.join(", "))
        }
    }
}

/// Links a core module (its preview-1 imports with `wasi1`, else denied); a second,
/// asynchronous linking when it imports preview 1 with `wasi1`.
type CorePres = (wasmtime::InstancePre<HostState>, Option<wasmtime::InstancePre<HostState>>);

fn link_core(module: &Module, common: &Common) -> Result<CorePres, Vec<String>> {
    let wasi1 = common.imports.contains(&Profile::Wasi1);
    let pre = link::core(module, wasi1, false).map_err(|e| vec![e])?;
    let pre_async = match wasi1 && link::imports_p1(module) {
        true => Some(link::core(module, true, true).map_err(|e| vec![e])?),
        false => None,
    };
    Ok((pre, pre_async))
}

/// A core module with `wit`: check every WIT export against the module, then call scalar
/// signatures directly and everything else through a component built from the module.
fn prepare_core_with_wit(
    id: &str,
    f: &WasmFunction,
    module: Module,
    bytes: &[u8],
    text: &str,
    build: &Build,
) -> Result<Function, Vec<String>> {
    let wit = wit::parse(text).map_err(|e| vec![e])?;
    let exports = wit.exports();
    if exports.is_empty() {
        return Err(vec!["`wit` declares no functions".into()]);
    }
    let chosen =
        choose_export(&exports, f.common.method.as_deref(), "`wit` declares", "is not declared in `wit` (declared")?;

    // Every WIT function must be exported, under its canonical name, `iface#name` or `name`,
    // with the core signature the canonical ABI gives it.
    let mut problems = Vec::new();
    let mut aliases = Vec::new();
    let mut core_names = Vec::new();
    let funcs = exported_funcs(&module);
    for e in &exports {
        let candidates = [e.canonical.as_str(), e.method.as_str(), e.name.as_str()];
        let Some(found) = candidates.iter().find(|n| module.get_export(n).and_then(|x| x.func().cloned()).is_some())
        else {
            problems.push(format!(
                "`wit` declares `{}`, but the module does not export it (expected a function export named `{}`; exported functions: {})",
                e.method,
                e.canonical,
                list_or_none(&funcs)
            ));
            core_names.push(String::new());
            continue;
        };
        let found = found.to_string();
        let sig = wit.resolve.wasm_signature(wit_parser::abi::AbiVariant::GuestExport, &e.func);
        let want_p: Vec<wasmtime::ValType> = sig.params.iter().map(core::flat).collect();
        let want_r: Vec<wasmtime::ValType> = sig.results.iter().map(core::flat).collect();
        if let Some(ty) = module.get_export(&found).and_then(|x| x.func().cloned()) {
            let have_p: Vec<wasmtime::ValType> = ty.params().collect();
            let have_r: Vec<wasmtime::ValType> = ty.results().collect();
            let same = |a: &[wasmtime::ValType], b: &[wasmtime::ValType]| {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| wasmtime::ValType::eq(x, y))
            };
            if !same(&want_p, &have_p) || !same(&want_r, &have_r) {
                problems.push(format!(
                    "`wit` signature of `{}` ({}) lowers to the core type {}, but the module exports `{found}` as {}",
                    e.method,
                    wit.signature(&e.func),
                    core::core_sig(&want_p, &want_r),
                    core::core_sig(&have_p, &have_r)
                ));
            }
        }
        if found != e.canonical {
            aliases.push((e.canonical.clone(), found.clone()));
            // The post-return function follows its function's name.
            aliases.push((format!("cabi_post_{}", e.canonical), format!("cabi_post_{found}")));
        }
        core_names.push(found);
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let e = &exports[chosen];
    let (params, results) = wit_params(&wit, &e.func);
    let signature = wit.signature(&e.func);
    let scalars: Option<Vec<Scalar>> = params.iter().map(|p| Scalar::from_ty(&p.ty)).collect();
    let result_scalars: Option<Vec<Scalar>> = results.iter().map(|p| Scalar::from_ty(&p.ty)).collect();
    let callee = match (scalars, result_scalars) {
        (Some(ps), Some(rs)) => {
            let (pre, pre_async) = link_core(&module, &f.common)?;
            Callee::Core { pre, pre_async, export: core_names[chosen].clone(), params: ps, results: rs }
        }
        _ => wrap_component(&wit, e, bytes, &aliases, build, wasi1_link(&module, &f.common))?,
    };
    Ok(Function::new(id, params, results, signature, callee, &f.common, build))
}

/// Embeds the WIT into the core module and encodes it as a component (wit-component).
fn wrap_component(
    wit: &wit::Wit,
    e: &wit::Export,
    bytes: &[u8],
    aliases: &[(String, String)],
    build: &Build,
    wasi: Option<Profiles>,
) -> Result<Callee, Vec<String>> {
    let mut core =
        core::add_export_aliases(bytes, aliases).map_err(|m| vec![format!("cannot rewrite module exports: {m}")])?;
    wit_component::embed_component_metadata(&mut core, &wit.resolve, wit.world, wit_component::StringEncoding::UTF8)
        .map_err(|err| vec![format!("cannot embed `wit`: {}", one_line(&format!("{err:#}")))])?;
    // A module importing preview 1 gets wasmtime's preview-1 adapter, which turns its imports
    // into preview-2 ones (linked below with the grant's profiles).
    let adapter = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    let encoded = wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|enc| match wasi {
            Some(_) => enc.adapter(link::P1, adapter),
            None => Ok(enc),
        })
        .and_then(|enc| enc.validate(true).encode())
        .map_err(|err| {
            let msg = one_line(&format!("{err:#}"));
            let hint = if msg.contains("cabi_realloc") || msg.contains("realloc") {
                " (a core module with strings or lists in its signature must export `cabi_realloc` and `memory`)"
            } else {
                ""
            };
            vec![format!("module does not match its `wit` under the canonical ABI: {msg}{hint}")]
        })?;
    let comp = cache::component(&encoded, None, build)
        .map_err(|err| vec![format!("cannot compile the wrapped component: {}", one_line(&format!("{err:#}")))])?;
    let export = component_export(&comp, &e.canonical)?;
    let Some(profiles) = wasi else {
        let linker = component::Linker::<HostState>::new(build.engine());
        let pre = linker
            .instantiate_pre(&comp)
            .map_err(|err| vec![format!("cannot link component: {}", one_line(&format!("{err:#}")))])?;
        // Nothing is imported, so one linking serves both ways of calling.
        return Ok(Callee::Component { pre_sync: pre.clone(), pre, export, sticky: Arc::default(), keep: None });
    };
    let link = |asynchronous| {
        link::component(&comp, profiles, asynchronous, true)
            .map_err(|err| vec![format!("cannot link the wrapped module: {}", one_line(&format!("{err:#}")))])
    };
    Ok(Callee::Component { pre: link(true)?, pre_sync: link(false)?, export, sticky: Arc::default(), keep: None })
}

/// For a core module importing preview 1, the preview-2 profiles its adapter is linked with:
/// with `wasi1`, those preview 1 covers; without it, none (its WASI calls are denied).
fn wasi1_link(module: &Module, common: &Common) -> Option<Profiles> {
    if !link::imports_p1(module) {
        return None;
    }
    Some(match common.imports.contains(&Profile::Wasi1) {
        true => link::P1_PROFILES,
        false => Profiles::default(),
    })
}

/// A component entry: its own WIT (decoded from the binary) gives the export and the types.
fn prepare_component(
    id: &str,
    f: &WasmFunction,
    bytes: &[u8],
    digest: Option<[u8; 32]>,
    build: &Build,
) -> Result<Function, Vec<String>> {
    let c = compiled_component(bytes, digest, build)?;
    let linked = c.linked(Profiles::granted(&f.common.imports))?;
    let (wit, exports) = (&c.wit, &c.exports);
    let chosen = choose_export(
        exports,
        f.common.method.as_deref(),
        "the component exports",
        "is not exported by the component (exported functions",
    )?;
    let e = &exports[chosen];
    let export = component_export(&c.comp, &e.canonical)?;
    let (params, results) = wit_params(wit, &e.func);
    let mut func = Function::new(
        id,
        params,
        results,
        wit.signature(&e.func),
        Callee::Component {
            pre: linked.pre.clone(),
            pre_sync: linked.pre_sync.clone(),
            export,
            sticky: linked.sticky.clone(),
            keep: Some(linked),
        },
        &f.common,
        build,
    );
    func.is_component = true;
    Ok(func)
}

/// Picks the export `method` names: `name`, `iface#name`, the canonical `ns:pkg/iface#name`, or
/// a bare function name when it is unique. Without `method`, the only function.
fn choose_export(
    exports: &[wit::Export],
    method: Option<&str>,
    listing: &str,
    missing: &str,
) -> Result<usize, Vec<String>> {
    let names = || list_or_none(&exports.iter().map(|e| e.method.clone()).collect::<Vec<_>>());
    match method {
        Some(m) => {
            if let Some(i) = exports.iter().position(|e| e.method == m || e.canonical == m) {
                return Ok(i);
            }
            let bare: Vec<usize> =
                exports.iter().enumerate().filter(|(_, e)| !m.contains('#') && e.name == m).map(|(i, _)| i).collect();
            match bare.as_slice() {
                [i] => Ok(*i),
                [] => Err(vec![format!("method `{m}` {missing}: {})", names())]),
                many => {
                    let which: Vec<String> = many.iter().map(|i| exports[*i].method.clone()).collect();
                    Err(vec![format!("method `{m}` is ambiguous: name one of {}", list_or_none(&which))])
                }
            }
        }
        None if exports.len() == 1 => Ok(0),
        None => Err(vec![format!("`method` is required: {listing} {}", names())]),
    }
}

/// Parameters and result of a WIT function, resolved for conversion and named for `describe`.
fn wit_params(wit: &wit::Wit, func: &wit_parser::Function) -> (Vec<Param>, Vec<Param>) {
    let params = func
        .params
        .iter()
        .map(|p| Param { name: p.name.clone(), ty: wit.ty(&p.ty), wit: wit.type_name(&p.ty) })
        .collect();
    let results =
        func.result.iter().map(|t| Param { name: "result".into(), ty: wit.ty(t), wit: wit.type_name(t) }).collect();
    (params, results)
}
