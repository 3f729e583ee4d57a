//! The process-wide registry: validated entries with their prepared functions, replaced as a
//! whole snapshot so a running call keeps the generation it started with.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::engine::{self, Function};
use crate::host::grant::Grant;
use crate::pool::Pool;
use crate::registry::{self, Code, Diagnostic, Diagnostics, Entry, Id, Origin, Spec};

/// An entry as the runtime holds it.
pub struct Loaded {
    /// The entry's ID as text (the resource of its `funcs.call` permission check).
    pub id: String,
    pub entry: Arc<Entry>,
    /// The prepared WebAssembly function, for executable wasm entries.
    pub func: Option<Arc<Function>>,
    /// The prepared code of a `process.wasm` entry (run by `wippy.command` and `process.spawn`,
    /// not by `funcs.call`).
    pub program: Option<Arc<Function>>,
    /// What it may reach (empty for entries that are not WebAssembly).
    pub grant: Arc<Grant>,
    pub pool: Pool,
    /// Bumped on every update of this entry; callers cache by it.
    pub generation: u64,
}

impl Loaded {
    /// The WebAssembly code of a function or a process.
    pub fn code(&self) -> Option<&Function> {
        self.func.as_deref().or(self.program.as_deref())
    }
}

type Snapshot = Arc<BTreeMap<String, Arc<Loaded>>>;

static ENTRIES: RwLock<Option<Snapshot>> = RwLock::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Changes whenever any entry changes: Lua states drop their lookup caches when it moves.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

fn snapshot() -> Snapshot {
    ENTRIES.read().ok().and_then(|g| g.clone()).unwrap_or_default()
}

/// The entry with this ID.
pub fn get(id: &str) -> Option<Arc<Loaded>> {
    snapshot().get(id).cloned()
}

/// Every entry, ordered by ID.
pub fn entries() -> Vec<Arc<Loaded>> {
    snapshot().values().cloned().collect()
}

struct Current(Snapshot);

impl registry::Known for Current {
    fn get(&self, id: &Id) -> Option<Arc<Entry>> {
        self.0.get(&id.to_string()).map(|l| l.entry.clone())
    }
}

fn diagnostic(entry: &Entry, message: String) -> Diagnostic {
    let (file, line) = match &entry.origin {
        Origin::File { file, line } => (Some(file.clone()), *line),
        Origin::Api => (None, 0),
    };
    Diagnostic { file, line, entry: entry.id.to_string(), message }
}

fn diagnostic_at(entry: &Entry, line: u32, message: String) -> Diagnostic {
    let mut d = diagnostic(entry, message);
    if line > 0 {
        d.line = line;
    }
    d
}

/// Prepared entries, with the warnings found while preparing them.
type Prepared = (Vec<(Entry, Option<Function>)>, Vec<Diagnostic>);

/// Compiles and checks every entry: the prepared functions, their warnings, and the problems.
fn compile(entries: Vec<Entry>, cache_dir: Option<&Path>) -> (Prepared, Vec<Diagnostic>) {
    let mut out = Vec::with_capacity(entries.len());
    let mut warnings = Vec::new();
    let mut problems = Vec::new();
    for entry in entries {
        match engine::prepare(&entry, cache_dir) {
            Ok(func) => {
                if let Some(f) = &func {
                    let found = engine::warn::check(&entry, f);
                    warnings.extend(found.into_iter().map(|(line, m)| diagnostic_at(&entry, line, m)));
                }
                out.push((entry, func));
            }
            Err(messages) => problems.extend(messages.into_iter().map(|m| diagnostic(&entry, m))),
        }
    }
    ((out, warnings), problems)
}

/// True when a reloaded entry is the same as the one loaded: then it keeps its compiled
/// code, warm instances and generation.
fn same_definition(new: &Entry, old: &Entry) -> bool {
    let code = |e: &Entry| match &e.spec {
        Spec::FunctionWasm(f) | Spec::FunctionWat(f) => match &f.code {
            Code::Binary { bytes, .. } => Some(bytes.clone()),
            Code::Wat(_) => None,
        },
        Spec::ProcessWasm(p) => match &p.code {
            Code::Binary { bytes, .. } => Some(bytes.clone()),
            Code::Wat(_) => None,
        },
        _ => None,
    };
    new.kind == old.kind
        && new.meta == old.meta
        && new.fields == old.fields
        && matches!(new.origin, Origin::File { .. })
        && code(new) == code(old)
}

/// Creates missing `fs.directory` directories that ask for it (`auto_init`), with their mode.
fn init_directories(entries: &[(Entry, Option<Function>)]) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for (entry, _) in entries {
        let Spec::FsDirectory(dir) = &entry.spec else {
            continue;
        };
        if !dir.auto_init || dir.path.is_dir() {
            continue;
        }
        if let Err(e) = std::fs::create_dir_all(&dir.path) {
            problems.push(diagnostic(entry, format!("cannot create directory {}: {e}", dir.path.display())));
            continue;
        }
        #[cfg(unix)]
        if let Some(mode) = dir.mode {
            use std::os::unix::fs::PermissionsExt;
            if let Err(e) = std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(mode)) {
                problems.push(diagnostic(entry, format!("cannot set mode {mode:o} on {}: {e}", dir.path.display())));
            }
        }
    }
    problems
}

/// Validates and compiles a directory or file: everything or every problem, registry and
/// engine problems together. Entries identical to the loaded ones are left out (they stay).
fn prepare_path(
    path: &Path,
    current: &Snapshot,
    create_dirs: bool,
    cache_dir: Option<&Path>,
) -> Result<Prepared, Diagnostics> {
    let mut batch = registry::load_batch(path, &Current(current.clone()));
    let changed: Vec<Entry> = std::mem::take(&mut batch.entries)
        .into_iter()
        .filter(|e| !current.get(&e.id.to_string()).is_some_and(|old| same_definition(e, &old.entry)))
        .collect();
    let (prepared, mut problems) = compile(changed, cache_dir);
    if create_dirs && batch.problems.is_empty() && problems.is_empty() {
        problems = init_directories(&prepared.0);
    }
    if batch.problems.is_empty() && problems.is_empty() {
        Ok(prepared)
    } else {
        Err(batch.into_diagnostics(problems))
    }
}

fn prepare_all(entries: Vec<Entry>) -> Result<Prepared, Diagnostics> {
    let cache_dir = engine::cache::dir_for(None);
    let (prepared, problems) = compile(entries, cache_dir.as_deref());
    if problems.is_empty() {
        Ok(prepared)
    } else {
        Err(Diagnostics(problems))
    }
}

fn apply(prepared: Vec<(Entry, Option<Function>)>, removed: &[String]) {
    let Ok(mut guard) = ENTRIES.write() else {
        return;
    };
    let mut map: BTreeMap<String, Arc<Loaded>> = guard.as_deref().cloned().unwrap_or_default();
    let mut changed: Vec<String> = removed.to_vec();
    for id in removed {
        map.remove(id);
    }
    let mut added = Vec::new();
    for (entry, func) in prepared {
        changed.push(entry.id.to_string());
        added.push((Arc::new(entry), func.map(Arc::new)));
    }
    for (entry, _) in &added {
        // Grants resolve against the new map: entries first, then their grants.
        let placeholder = Loaded {
            id: entry.id.to_string(),
            entry: entry.clone(),
            func: None,
            program: None,
            grant: Arc::default(),
            pool: Pool::default(),
            generation: 0,
        };
        map.insert(entry.id.to_string(), Arc::new(placeholder));
    }
    let find = |id: &Id| map.get(&id.to_string()).map(|l| l.entry.clone());
    let mut built = Vec::new();
    for (entry, func) in added {
        built.push(loaded(entry, func, &find));
    }
    // Entries whose grant names a changed `fs.directory` or `env.variable` get it resolved
    // again, with a fresh pool: running calls finish on the old one.
    let dependents: Vec<(Arc<Entry>, Option<Arc<Function>>)> = map
        .values()
        .filter(|l| l.func.is_some() && !changed.contains(&l.entry.id.to_string()))
        .filter(|l| changed.iter().any(|id| l.grant.depends_on(id)))
        .map(|l| (l.entry.clone(), l.func.clone()))
        .collect();
    for (entry, func) in dependents {
        built.push(loaded(entry, func, &find));
    }
    let mut fresh = Vec::new();
    for l in built {
        let l = Arc::new(l);
        map.insert(l.entry.id.to_string(), l.clone());
        fresh.push(l);
    }
    *guard = Some(Arc::new(map));
    GENERATION.fetch_add(1, Ordering::AcqRel);
    drop(guard);
    // After the lock: a start function may call the registry.
    for l in fresh {
        if let Some(f) = &l.func {
            l.pool.prewarm(f, &l.grant);
        }
        if l.pool.kind == crate::registry::PoolKind::Adaptive {
            reaper::watch(&l);
        }
    }
}

/// Shrinks `adaptive` pools: every `pool_idle_ms` (`wippy.configure`, default 30 s) each drops
/// the idle instances beyond the most calls it ran at once meanwhile (`Pool::shrink`). One
/// thread, started with the first adaptive pool; it holds the pools weakly.
pub mod reaper {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, Weak};
    use std::time::Duration;

    use super::Loaded;

    static IDLE_MS: AtomicU64 = AtomicU64::new(30_000);
    static POOLS: Mutex<Vec<Weak<Loaded>>> = Mutex::new(Vec::new());
    static STARTED: std::sync::Once = std::sync::Once::new();

    /// `wippy.configure{ pool_idle_ms = }`.
    pub fn set_idle_ms(ms: u64) {
        IDLE_MS.store(ms.max(1), Ordering::Relaxed);
    }

    pub fn idle_ms() -> u64 {
        IDLE_MS.load(Ordering::Relaxed)
    }

    pub(super) fn watch(l: &Arc<Loaded>) {
        if let Ok(mut pools) = POOLS.lock() {
            pools.retain(|w| w.strong_count() > 0);
            pools.push(Arc::downgrade(l));
        }
        STARTED.call_once(|| {
            let _ = std::thread::Builder::new().name("wippy-reaper".into()).spawn(run);
        });
    }

    fn run() {
        // Short naps, so a new `pool_idle_ms` takes effect soon.
        let mut slept = 0;
        loop {
            let nap = idle_ms().min(100);
            std::thread::sleep(Duration::from_millis(nap));
            slept += nap;
            if slept < idle_ms() {
                continue;
            }
            slept = 0;
            let live: Vec<Arc<Loaded>> = match POOLS.lock() {
                Ok(mut pools) => {
                    pools.retain(|w| w.strong_count() > 0);
                    pools.iter().filter_map(Weak::upgrade).collect()
                }
                Err(_) => return,
            };
            for l in live {
                l.pool.shrink();
            }
        }
    }
}

/// A new runtime entry with its grant resolved and a fresh pool.
fn loaded(entry: Arc<Entry>, func: Option<Arc<Function>>, find: &dyn Fn(&Id) -> Option<Arc<Entry>>) -> Loaded {
    let generation = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
    let (grant, pool) = match (&func, &entry.spec) {
        (Some(f), Spec::FunctionWasm(w) | Spec::FunctionWat(w)) => {
            (Arc::new(Grant::new(&w.common, find)), Pool::new(&f.pool))
        }
        (Some(f), Spec::ProcessWasm(p)) => (Arc::new(Grant::new(&p.common, find)), Pool::new(&f.pool)),
        _ => (Arc::default(), Pool::default()),
    };
    let (func, program) = match &entry.spec {
        Spec::ProcessWasm(_) => (None, func),
        _ => (func, None),
    };
    Loaded { id: entry.id.to_string(), entry, func, program, grant, pool, generation }
}

/// Loads a directory or YAML file: validates and compiles everything, then applies it all,
/// or nothing. Returns the load warnings (settings that cannot take effect).
///
/// # Errors
/// Every problem found, one per line as `FILE:LINE: ENTRY: message`.
pub fn load(path: &Path, cache_dir: Option<Option<std::path::PathBuf>>) -> Result<Diagnostics, Diagnostics> {
    let cache_dir = engine::cache::dir_for(cache_dir);
    // Processes loading together (nginx's workers) take turns: the first compiles, the others
    // then find every artifact in the cache.
    let _turn = cache_dir.as_deref().and_then(engine::cache::lock_dir);
    let (prepared, warnings) = prepare_path(path, &snapshot(), true, cache_dir.as_deref())?;
    apply(prepared, &[]);
    Ok(Diagnostics(warnings))
}

/// Adds or replaces one validated entry (from `registry:add`). Returns its load warnings.
///
/// # Errors
/// The entry's problems.
pub fn add(entry: Entry) -> Result<Diagnostics, Diagnostics> {
    let (prepared, warnings) = prepare_all(vec![entry])?;
    apply(prepared, &[]);
    Ok(Diagnostics(warnings))
}

/// Validates a Lua-given entry against the current registry.
///
/// # Errors
/// The entry's problems.
pub fn validate_node(node: &registry::value::Node, base_dir: &Path, has_handler: bool) -> Result<Entry, Diagnostics> {
    registry::entry_from_node(node, base_dir, has_handler, &Current(snapshot()))
}

/// Removes an entry. Returns whether it existed.
pub fn remove(id: &str) -> bool {
    let existed = snapshot().contains_key(id);
    if existed {
        apply(Vec::new(), &[id.to_string()]);
    }
    existed
}

/// Runs every check `load` runs, without applying anything. Returns the load warnings.
///
/// # Errors
/// The diagnostics text.
pub fn check_path(path: &Path) -> Result<String, String> {
    prepare_path(path, &Snapshot::default(), false, None)
        .map(|(_, w)| Diagnostics(w).to_string())
        .map_err(|d| d.to_string())
}
