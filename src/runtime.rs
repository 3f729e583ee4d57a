//! The process-wide registry: validated entries with their prepared functions, replaced as a
//! whole snapshot so a running call keeps the generation it started with.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::engine::{self, Function};
use crate::pool::Pool;
use crate::registry::{self, Code, Diagnostic, Diagnostics, Entry, Id, Origin, Spec};

/// An entry as the runtime holds it.
pub struct Loaded {
    pub entry: Arc<Entry>,
    /// The prepared WebAssembly function, for executable wasm entries.
    pub func: Option<Arc<Function>>,
    pub pool: Pool,
    /// Bumped on every update of this entry; callers cache by it.
    pub generation: u64,
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

/// Compiles and checks every entry: the prepared functions and the problems found.
fn compile(entries: Vec<Entry>) -> (Vec<(Entry, Option<Function>)>, Vec<Diagnostic>) {
    let mut out = Vec::with_capacity(entries.len());
    let mut problems = Vec::new();
    for entry in entries {
        match engine::prepare(&entry) {
            Ok(func) => out.push((entry, func)),
            Err(messages) => problems.extend(messages.into_iter().map(|m| diagnostic(&entry, m))),
        }
    }
    (out, problems)
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
) -> Result<Vec<(Entry, Option<Function>)>, Diagnostics> {
    let mut batch = registry::load_batch(path, &Current(current.clone()));
    let changed: Vec<Entry> = std::mem::take(&mut batch.entries)
        .into_iter()
        .filter(|e| !current.get(&e.id.to_string()).is_some_and(|old| same_definition(e, &old.entry)))
        .collect();
    let (prepared, mut problems) = compile(changed);
    if create_dirs && batch.problems.is_empty() && problems.is_empty() {
        problems = init_directories(&prepared);
    }
    if batch.problems.is_empty() && problems.is_empty() {
        Ok(prepared)
    } else {
        Err(batch.into_diagnostics(problems))
    }
}

fn prepare_all(entries: Vec<Entry>) -> Result<Vec<(Entry, Option<Function>)>, Diagnostics> {
    let (prepared, problems) = compile(entries);
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
    for id in removed {
        map.remove(id);
    }
    for (entry, func) in prepared {
        let generation = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
        let pool = func.as_ref().map(|f| Pool::new(&f.pool)).unwrap_or_default();
        let loaded = Loaded { entry: Arc::new(entry), func: func.map(Arc::new), pool, generation };
        map.insert(loaded.entry.id.to_string(), Arc::new(loaded));
    }
    *guard = Some(Arc::new(map));
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Loads a directory or YAML file: validates and compiles everything, then applies it all,
/// or nothing. Returns the number of entries added or changed.
///
/// # Errors
/// Every problem found, one per line as `FILE:LINE: ENTRY: message`.
pub fn load(path: &Path, cache_dir: Option<Option<std::path::PathBuf>>) -> Result<usize, Diagnostics> {
    let prepared = engine::cache::with_dir(cache_dir, || prepare_path(path, &snapshot(), true))?;
    let n = prepared.len();
    apply(prepared, &[]);
    Ok(n)
}

/// Adds or replaces one validated entry (from `registry:add`).
///
/// # Errors
/// The entry's problems.
pub fn add(entry: Entry) -> Result<(), Diagnostics> {
    let prepared = prepare_all(vec![entry])?;
    apply(prepared, &[]);
    Ok(())
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

/// Runs every check `load` runs, without applying anything.
///
/// # Errors
/// The diagnostics text.
pub fn check_path(path: &Path) -> Result<(), String> {
    prepare_path(path, &Snapshot::default(), false).map(|_| ()).map_err(|d| d.to_string())
}
