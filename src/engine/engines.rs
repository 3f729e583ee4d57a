//! The wasmtime engines code is compiled for: one per [`Flavor`], created on first use and
//! shared by every Lua state of the process.

use std::path::PathBuf;
use std::sync::OnceLock;

use wasmtime::{Config, Engine};

use crate::host::state::TICK_MS;

/// What an entry's code is compiled for: the engine with the pooling allocator
/// (`pool.isolate`), and fuel metering (only entries with `limits.fuel`: the metering costs
/// every guest about a fifth of its speed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flavor {
    pub isolate: bool,
    pub fuel: bool,
}

impl Flavor {
    /// The engine of this flavor.
    pub fn engine(self) -> &'static Engine {
        if self.isolate {
            isolate_engine(self.fuel)
        } else {
            plain_engine(self.fuel)
        }
    }
}

/// How one load compiles: for which engine, and where compiled artifacts are cached.
#[derive(Clone, Debug, Default)]
pub struct Build {
    pub flavor: Flavor,
    /// `None`: no artifact cache.
    pub cache_dir: Option<PathBuf>,
}

impl Build {
    pub fn engine(&self) -> &'static Engine {
        self.flavor.engine()
    }
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

/// The process-wide engine without fuel metering or pooling.
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
fn isolate_engine(fuel: bool) -> &'static Engine {
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

/// Advances the epoch every [`TICK_MS`] for as long as the process lives.
fn start_ticker(engine: Engine) {
    crate::sched::wake::started();
    let spawned = std::thread::Builder::new().name("wippy-epoch".into()).spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(TICK_MS));
        engine.increment_epoch();
    });
    // Without the ticker, time limits cannot fire; calls still run.
    drop(spawned);
}
