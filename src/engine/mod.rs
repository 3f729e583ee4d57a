//! The one wasmtime [`Engine`], and turning a registry entry into a callable [`Function`]:
//! compile, check the export and its signature, link, and resolve types once.

pub mod cache;
pub mod core;
pub mod wit;

use std::sync::{Arc, OnceLock};

use wasmtime::component::ResourceTable;
use wasmtime::component::{self, ComponentExportIndex};
use wasmtime::{Config, Engine, Module, ResourceLimiter, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::host::net::Policy;
use crate::sched::Control;

use crate::convert::resource::{Method, ResourceInfo};
use crate::convert::{Scalar, Ty};
use crate::registry::{Code, Common, Entry, Limits, Profile, Spec, WasmFunction};
use crate::security::Context;

/// What an entry's code is compiled for: the engine with the pooling allocator
/// (`pool.isolate`), and fuel metering (only entries with `limits.fuel`: the metering costs
/// every guest about a fifth of its speed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flavor {
    pub isolate: bool,
    pub fuel: bool,
}

fn base_config(fuel: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // Epoch checks let `limits.max_execution_ms` stop a guest even in a tight loop.
    config.epoch_interruption(true);
    config.consume_fuel(fuel);
    config
}

/// The process-wide engine without fuel metering: compiled code is shared by every Lua state.
pub fn engine() -> &'static Engine {
    plain_engine(false)
}

/// The process-wide engine (with or without fuel metering) for entries without `isolate`.
fn plain_engine(fuel: bool) -> &'static Engine {
    static ENGINES: [OnceLock<Engine>; 2] = [OnceLock::new(), OnceLock::new()];
    ENGINES[usize::from(fuel)].get_or_init(|| {
        // A failed config here is a build-time mistake, not user input: fall back to defaults.
        let engine = Engine::new(&base_config(fuel)).unwrap_or_default();
        start_ticker(engine.clone());
        engine
    })
}

/// Largest linear memory of an entry with `pool.isolate` (its pooling slots are this big).
pub const ISOLATE_MAX_MEMORY: u64 = 1 << 30;

/// The engine of `pool.isolate` entries: the pooling allocator keeps memories, tables and
/// stacks of finished instances in slots and resets them, so a fresh instance per call costs
/// no `mmap`/`munmap` and no page faults on memory it touched before. Slots are reserved
/// address space, so their number and size are bounded (see docs/registry.md).
pub fn isolate_engine(fuel: bool) -> &'static Engine {
    static ENGINES: [OnceLock<Engine>; 2] = [OnceLock::new(), OnceLock::new()];
    ENGINES[usize::from(fuel)].get_or_init(|| {
        let mut pooling = wasmtime::PoolingAllocationConfig::new();
        pooling
            .total_component_instances(512)
            .total_core_instances(4096)
            .total_memories(1024)
            .total_tables(2048)
            .total_stacks(512)
            .max_core_instances_per_component(32)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .max_memory_size(ISOLATE_MAX_MEMORY as usize)
            .linear_memory_keep_resident(64 << 10)
            .table_keep_resident(64 << 10);
        let mut config = base_config(fuel);
        config.memory_reservation(ISOLATE_MAX_MEMORY);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
        match Engine::new(&config) {
            Ok(engine) => {
                start_ticker(engine.clone());
                engine
            }
            // Address space too small for the slots (a `ulimit -v`): isolate without pooling.
            Err(_) => plain_engine(fuel).clone(),
        }
    })
}

thread_local! {
    /// What the entry being prepared on this thread compiles for.
    static FLAVOR: std::cell::Cell<Flavor> = const { std::cell::Cell::new(Flavor { isolate: false, fuel: false }) };
}

/// The engine the entry being prepared on this thread compiles for.
pub fn compile_engine() -> &'static Engine {
    let flavor = FLAVOR.with(|c| c.get());
    if flavor.isolate {
        isolate_engine(flavor.fuel)
    } else {
        plain_engine(flavor.fuel)
    }
}

/// How often the engine's epoch advances.
pub const TICK_MS: u64 = 5;

/// A deadline far enough that it never comes (and `current + delta` cannot overflow).
const NO_DEADLINE: u64 = 1 << 60;

/// Advances the epoch every [`TICK_MS`] for as long as the process lives.
fn start_ticker(engine: Engine) {
    let spawned = std::thread::Builder::new().name("wippy-epoch".into()).spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(TICK_MS));
        engine.increment_epoch();
    });
    // Without the ticker, time limits cannot fire; calls still run.
    drop(spawned);
}

/// The epoch deadline (in ticks from now) for a call limited to `max_ms` (0 = no limit).
pub fn deadline_ticks(max_ms: u64) -> u64 {
    if max_ms == 0 {
        NO_DEADLINE
    } else {
        max_ms.div_ceil(TICK_MS).max(1)
    }
}

/// Per-store host data: the caller's context, WASI state and the store's limits.
pub struct HostState {
    /// The security context of the call running in this store.
    pub ctx: Arc<Context>,
    pub memory_bytes: u64,
    /// Set when the guest asked for more memory than `limits.memory_bytes`.
    pub memory_denied: bool,
    /// The largest linear memory of the instance so far, for `limits.max_retained_memory_bytes`.
    pub memory_size: u64,
    /// Cancel flag and deadline of the call running in this store.
    pub control: Option<Arc<Control>>,
    /// When `limits.max_execution_ms` of the running call is up.
    pub deadline: Option<std::time::Instant>,
    /// The call runs asynchronously: a long computation yields to the executor at each tick.
    pub yielding: bool,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub hooks: crate::host::http::Hooks,
    pub table: ResourceTable,
}

impl HostState {
    /// The epoch deadline of a store between calls: none (instantiation included).
    pub const IDLE_DEADLINE: u64 = NO_DEADLINE;

    pub fn new(entry: &str, limits: &Limits, net: &Arc<Policy>) -> HostState {
        // Functions get no arguments, environment or preopens (capabilities come with the
        // `imports` profiles); their stdout and stderr go to the host's stderr, each line
        // prefixed with the entry ID. Sockets follow the entry's network policy.
        let out = crate::host::output::Prefixed::new(entry);
        let mut b = WasiCtxBuilder::new();
        b.stdout(out.clone()).stderr(out);
        if net.enabled {
            let policy = net.clone();
            b.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(true).socket_addr_check(move |addr, usage| {
                use wasmtime_wasi::sockets::SocketAddrUse as Use;
                let ok = match usage {
                    // Outbound traffic follows the policy.
                    Use::TcpConnect | Use::UdpSend | Use::UdpReceive => policy.allows(None, addr),
                    // The implicit bind of a client socket (wildcard address, any port).
                    Use::TcpBind | Use::UdpBind => addr.ip().is_unspecified() && addr.port() == 0,
                    // Functions are clients: no listening sockets.
                    Use::TcpListen | Use::TcpAccept => false,
                };
                Box::pin(async move { ok })
            });
        }
        HostState {
            ctx: Context::root(),
            memory_bytes: limits.memory_bytes,
            memory_denied: false,
            memory_size: 0,
            control: None,
            deadline: None,
            yielding: false,
            wasi: b.build(),
            http: WasiHttpCtx::new(),
            hooks: crate::host::http::Hooks::new(net.clone()),
            table: ResourceTable::new(),
        }
    }

    /// Called by wasmtime at every epoch tick while the guest runs: stops a canceled or
    /// overdue call, and lets an asynchronous call yield so other calls progress.
    fn on_tick(&self) -> wasmtime::Result<UpdateDeadline> {
        if let Some(c) = &self.control {
            if c.is_canceled() {
                return Err(wasmtime::Error::new(Stopped::Canceled));
            }
            if c.expired() {
                return Err(Trap::Interrupt.into());
            }
        }
        let now = std::time::Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            return Err(Trap::Interrupt.into());
        }
        if self.yielding {
            return Ok(UpdateDeadline::Yield(1));
        }
        if self.control.is_some() {
            return Ok(UpdateDeadline::Continue(1));
        }
        // Nothing to watch but the time limit: sleep until it is due (at least one tick: a
        // limit less than a millisecond away must not read as "no limit").
        Ok(UpdateDeadline::Continue(match self.deadline {
            Some(d) => ((d - now).as_millis() as u64).div_ceil(TICK_MS).max(1),
            None => NO_DEADLINE,
        }))
    }
}

/// Why the epoch callback stopped a guest besides a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Canceled,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call was canceled")
    }
}

impl std::error::Error for Stopped {}

/// A store for an entry's instances, with its limiter and epoch callback installed.
pub fn new_store(f: &Function) -> wasmtime::Store<HostState> {
    let mut store = wasmtime::Store::new(&f.engine, HostState::new(&f.id, &f.limits, &f.net));
    store.limiter(|s| s);
    store.epoch_deadline_callback(|ctx| ctx.data().on_tick());
    store.set_epoch_deadline(HostState::IDLE_DEADLINE);
    store
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let ok = desired as u64 <= self.memory_bytes;
        if ok {
            self.memory_size = self.memory_size.max(desired as u64);
        } else {
            self.memory_denied = true;
        }
        Ok(ok)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

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
    Core { pre: wasmtime::InstancePre<HostState>, export: String, params: Vec<Scalar>, results: Vec<Scalar> },
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
        /// Keeps the compiled binary shared by the entries naming it while any of them lives
        /// (the process-wide table of compiled components holds it weakly).
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
    /// Where the guest may connect (`imports` and `wasi.allowed_hosts`).
    pub net: Arc<Policy>,
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
    fn new(
        id: &str,
        params: Vec<Param>,
        results: Vec<Param>,
        signature: String,
        callee: Callee,
        common: &Common,
    ) -> Function {
        let limits = &common.limits;
        let network = common.imports.iter().any(|p| matches!(p, Profile::Sockets | Profile::Http));
        let net = Arc::new(Policy::new(network, common.wasi.allowed_hosts.as_deref()));
        let has_resources = params.iter().chain(&results).any(|p| p.ty.has_resources());
        let numeric = |t: &Ty| Scalar::from_ty(t).filter(|s| !matches!(s, Scalar::Char | Scalar::Enum(_)));
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
        Function {
            id: id.to_string(),
            params,
            results,
            signature,
            callee,
            limits: limits.clone(),
            pool: common.pool.clone(),
            net,
            engine: compile_engine().clone(),
            has_resources,
            flat,
            tape,
        }
    }
}

/// Compiles and checks an executable entry. `Ok(None)` for entries that are not WebAssembly.
///
/// # Errors
/// One message per problem, to be reported at the entry's line.
pub fn prepare(entry: &Entry) -> Result<Option<Function>, Vec<String>> {
    let (wasm, id) = match &entry.spec {
        Spec::FunctionWat(f) | Spec::FunctionWasm(f) => (f, entry.id.to_string()),
        _ => return Ok(None),
    };
    if wasm.common.pool.isolate && wasm.common.limits.memory_bytes > ISOLATE_MAX_MEMORY {
        return Err(vec![format!(
            "`pool.isolate` entries may use at most {} MiB of linear memory, but limits.memory_bytes is {} (lower it, or drop `isolate`)",
            ISOLATE_MAX_MEMORY >> 20,
            wasm.common.limits.memory_bytes
        )]);
    }
    let flavor = Flavor { isolate: wasm.common.pool.isolate, fuel: wasm.common.limits.fuel > 0 };
    let previous = FLAVOR.with(|c| c.replace(flavor));
    let prepared = prepare_wasm(&id, wasm).map(Some);
    FLAVOR.with(|c| c.set(previous));
    prepared
}

fn prepare_wasm(id: &str, f: &WasmFunction) -> Result<Function, Vec<String>> {
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
        return prepare_component(id, f, &bytes, digest);
    }
    if matches!(f.code, Code::Binary { .. }) && !bytes.starts_with(b"\0asm") {
        return Err(vec!["not a WebAssembly binary (it does not start with the `\\0asm` magic number)".into()]);
    }
    let module = cache::module(&bytes, digest)
        .map_err(|e| vec![format!("invalid WebAssembly module: {}", one_line(&format!("{e:#}")))])?;
    if let Some(import) = module.imports().next() {
        return Err(vec![format!(
            "core module imports `{}`.`{}`, but this version links no imports into core modules (remove the import)",
            import.module(),
            import.name()
        )]);
    }
    match &f.common.wit {
        None => prepare_plain_core(id, f, module),
        Some(text) => prepare_core_with_wit(id, f, module, &bytes, text),
    }
}

pub(crate) fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
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
fn prepare_plain_core(id: &str, f: &WasmFunction, module: Module) -> Result<Function, Vec<String>> {
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
    let pre = link_core(&module)?;
    Ok(Function::new(
        id,
        params_named,
        results_named,
        signature,
        Callee::Core { pre, export: method, params, results },
        &f.common,
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

fn link_core(module: &Module) -> Result<wasmtime::InstancePre<HostState>, Vec<String>> {
    let linker = wasmtime::Linker::<HostState>::new(compile_engine());
    linker.instantiate_pre(module).map_err(|e| vec![format!("cannot link module: {}", one_line(&format!("{e:#}")))])
}

/// A core module with `wit`: check every WIT export against the module, then call scalar
/// signatures directly and everything else through a component built from the module.
fn prepare_core_with_wit(
    id: &str,
    f: &WasmFunction,
    module: Module,
    bytes: &[u8],
    text: &str,
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
            Callee::Core { pre: link_core(&module)?, export: core_names[chosen].clone(), params: ps, results: rs }
        }
        _ => wrap_component(&wit, e, bytes, &aliases)?,
    };
    Ok(Function::new(id, params, results, signature, callee, &f.common))
}

/// Embeds the WIT into the core module and encodes it as a component (wit-component).
fn wrap_component(
    wit: &wit::Wit,
    e: &wit::Export,
    bytes: &[u8],
    aliases: &[(String, String)],
) -> Result<Callee, Vec<String>> {
    let mut core =
        core::add_export_aliases(bytes, aliases).map_err(|m| vec![format!("cannot rewrite module exports: {m}")])?;
    wit_component::embed_component_metadata(&mut core, &wit.resolve, wit.world, wit_component::StringEncoding::UTF8)
        .map_err(|err| vec![format!("cannot embed `wit`: {}", one_line(&format!("{err:#}")))])?;
    let encoded = wit_component::ComponentEncoder::default()
        .module(&core)
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
    let comp = cache::component(&encoded, None)
        .map_err(|err| vec![format!("cannot compile the wrapped component: {}", one_line(&format!("{err:#}")))])?;
    let export = component_export(&comp, &e.canonical)?;
    let linker = component::Linker::<HostState>::new(compile_engine());
    let pre = linker
        .instantiate_pre(&comp)
        .map_err(|err| vec![format!("cannot link component: {}", one_line(&format!("{err:#}")))])?;
    // Nothing is imported, so one linking serves both ways of calling.
    Ok(Callee::Component { pre_sync: pre.clone(), pre, export, sticky: Arc::default(), keep: None })
}

/// A component compiled once per distinct binary and [`Flavor`]: entries naming different
/// exports of one file (with the same `isolate` and fuel settings) share its code, its
/// resource types and its linking, so a resource made through one entry can be passed to
/// another.
struct Compiled {
    comp: component::Component,
    wit: wit::Wit,
    exports: Vec<wit::Export>,
    pre: component::InstancePre<HostState>,
    pre_sync: component::InstancePre<HostState>,
    sticky: Arc<crate::pool::Sticky>,
}

fn compiled_component(bytes: &[u8], digest: Option<[u8; 32]>) -> Result<Arc<Compiled>, Vec<String>> {
    use sha2::Digest;
    type Key = ([u8; 32], Flavor);
    // Weak: a binary no entry names any more is freed with its last entry.
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<Key, std::sync::Weak<Compiled>>>> =
        OnceLock::new();
    let sha256: [u8; 32] = digest.unwrap_or_else(|| sha2::Sha256::digest(bytes).into());
    let key: Key = (sha256, FLAVOR.with(|c| c.get()));
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(&key).and_then(std::sync::Weak::upgrade)) {
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
    let comp = cache::component(bytes, Some(sha256))
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
    let pre = link_component(&comp, true)?;
    let pre_sync = link_component(&comp, false)?;
    let compiled = Arc::new(Compiled { comp, wit, exports, pre, pre_sync, sticky: Arc::default() });
    if let Ok(mut c) = cache.lock() {
        c.retain(|_, w| w.strong_count() > 0);
        c.insert(key, Arc::downgrade(&compiled));
    }
    Ok(compiled)
}

/// Links WASI (with `wasi:http`) into a component, asynchronously or synchronously, and stubs
/// every other import.
fn link_component(
    comp: &component::Component,
    asynchronous: bool,
) -> Result<component::InstancePre<HostState>, Vec<String>> {
    let mut linker = component::Linker::<HostState>::new(compile_engine());
    let wasi = if asynchronous {
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
    } else {
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker))
    };
    wasi.map_err(|err| vec![format!("cannot link WASI: {}", one_line(&format!("{err:#}")))])?;
    stub_unknown_imports(&mut linker, comp)
        .map_err(|err| vec![format!("cannot link component imports: {}", one_line(&format!("{err:#}")))])?;
    linker
        .instantiate_pre(comp)
        .map_err(|err| vec![format!("cannot link component: {}", one_line(&format!("{err:#}")))])
}

/// A component entry: its own WIT (decoded from the binary) gives the export and the types.
fn prepare_component(
    id: &str,
    f: &WasmFunction,
    bytes: &[u8],
    digest: Option<[u8; 32]>,
) -> Result<Function, Vec<String>> {
    let c = compiled_component(bytes, digest)?;
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
    Ok(Function::new(
        id,
        params,
        results,
        wit.signature(&e.func),
        Callee::Component {
            pre: c.pre.clone(),
            pre_sync: c.pre_sync.clone(),
            export,
            sticky: c.sticky.clone(),
            keep: Some(c.clone()),
        },
        &f.common,
    ))
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

/// The export index of `iface#name` or `name` in a component.
fn component_export(comp: &component::Component, canonical: &str) -> Result<ComponentExportIndex, Vec<String>> {
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

/// The interfaces the WASI linkers provide (any 0.2.x version).
const WASI_P2: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/ip-name-lookup",
    "wasi:http/types",
    "wasi:http/outgoing-handler",
];

/// Imports the host does not provide still link, and trap when the guest calls them.
///
/// WASI (`wasi:*`) is left to the WASI linker, which matches versions semver-compatibly: stubbing
/// an exact `wasi:cli/stdout@0.2.6` would shadow the host's 0.2.12.
fn stub_unknown_imports(
    linker: &mut component::Linker<HostState>,
    comp: &component::Component,
) -> wasmtime::Result<()> {
    use component::types::ComponentItem;
    let ty = comp.component_type();
    for (name, ext) in ty.imports(compile_engine()) {
        let unversioned = name.split('@').next().unwrap_or(name);
        if WASI_P2.contains(&unversioned) {
            continue;
        }
        match ext.ty {
            ComponentItem::ComponentInstance(inst) => {
                let mut li = linker.instance(name)?;
                for (item, ext) in inst.exports(compile_engine()) {
                    match ext.ty {
                        ComponentItem::ComponentFunc(_) => {
                            let full = format!("{name}#{item}");
                            li.func_new(item, move |_, _, _, _| {
                                wasmtime::bail!("unknown import: `{full}` is not provided by this host")
                            })?;
                        }
                        ComponentItem::Resource(_) => {
                            li.resource(item, component::ResourceType::host::<StubResource>(), |_, _| Ok(()))?;
                        }
                        _ => {}
                    }
                }
            }
            ComponentItem::ComponentFunc(_) => {
                let full = name.to_string();
                linker.root().func_new(name, move |_, _, _, _| {
                    wasmtime::bail!("unknown import: `{full}` is not provided by this host")
                })?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The host type behind stubbed imported resources.
struct StubResource;
