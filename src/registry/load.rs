//! Loading a batch of entries: find `_index.yaml` files, parse and check every entry, then
//! the checks that need the whole batch (duplicate IDs, references, wasm files).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::id::{check_name, check_namespace, is_name, is_namespace, parse_id};
use super::model::*;
use super::paths::{inside, normalize, outside, parent_dir, Outside};
use super::validate::{
    check_entry, mismatch, read_file, string, suggest, type_name, Head, PendingWasm, Place, Ref, Report,
};
use super::value::{Node, Value};
use super::{yaml, Diagnostic, Diagnostics, Known};

/// The name of registry files in a directory tree.
pub const INDEX_FILE: &str = "_index.yaml";

/// One entry between its own checks and the batch checks.
struct Draft {
    id: Option<Id>,
    label: String,
    file: Option<PathBuf>,
    line: u32,
    kind: Option<String>,
    meta: Node,
    fields: Vec<(String, Node)>,
    origin: Origin,
    spec: Option<Spec>,
    refs: Vec<Ref>,
    wasm: Option<PendingWasm>,
    yaml_dir: PathBuf,
}

/// Loads `path`: a directory scanned recursively for files named `_index.yaml` (files of a
/// directory before its subdirectories, each in name order; directories starting with `.` are
/// skipped), or one YAML file. The load root is that directory (or the file's directory).
///
/// # Errors
/// Every problem of every file, in file order, when there is any problem at all.
pub fn load_path(path: &Path, known: &dyn Known) -> Result<Vec<Entry>, Diagnostics> {
    let batch = load_batch(path, known);
    if batch.problems.is_empty() {
        Ok(batch.entries)
    } else {
        Err(batch.into_diagnostics(Vec::new()))
    }
}

/// What a load found: the entries that validated, every problem, and the files read (their
/// order sorts the problems).
pub struct Batch {
    pub entries: Vec<Entry>,
    pub problems: Vec<Diagnostic>,
    files: Vec<PathBuf>,
}

impl Batch {
    /// All problems, with `more` found by later checks of the valid entries, in file order
    /// (problems of directories before any file), then line order.
    pub fn into_diagnostics(self, more: Vec<Diagnostic>) -> Diagnostics {
        let files = self.files;
        let mut diags = self.problems;
        diags.extend(more);
        let order = |d: &Diagnostic| {
            let file = d.file.as_ref().and_then(|f| files.iter().position(|x| x == f)).map_or(0, |i| i + 1);
            (file, d.line)
        };
        diags.sort_by_key(order);
        Diagnostics(diags)
    }
}

/// Like [`load_path`], but keeps the entries that validated next to the problems of the others,
/// so later checks (compiling) can report their problems in the same list.
pub fn load_batch(path: &Path, known: &dyn Known) -> Batch {
    let mut diags = Vec::new();
    let (root, files) = if path.is_dir() {
        let mut files = Vec::new();
        let mut seen = HashSet::new();
        find_index_files(path, &mut files, &mut seen, &mut diags);
        if files.is_empty() && diags.is_empty() {
            diags.push(file_problem(path, 0, format!("no {INDEX_FILE} file found in this directory or below it")));
        }
        (path.to_path_buf(), files)
    } else if path.is_file() {
        (parent_dir(path), vec![path.to_path_buf()])
    } else {
        let message = if path.exists() { "not a file or a directory" } else { "no such file or directory" };
        diags.push(file_problem(path, 0, message.into()));
        return Batch { entries: Vec::new(), problems: diags, files: Vec::new() };
    };

    let mut drafts = Vec::new();
    for file in &files {
        load_file(file, &root, &mut drafts, &mut diags);
    }
    let entries = finish(drafts, known, &mut diags);
    Batch { entries, problems: diags, files }
}

/// Validates one entry given from Lua (`registry:add`): `node` is a mapping with `id` (or
/// `namespace` + `name`), `kind`, optional `meta`, and the kind's fields. Relative paths and
/// `file://` resolve against `base_dir`, which is also the root `file://` may not leave.
///
/// `has_handler`: the Lua table had `handler = <function>` (removed by the caller); only valid
/// for `function.lua`, where it replaces `source`/`method` ([`LuaSource::Handler`]).
///
/// # Errors
/// Every problem of the entry; the diagnostics have no file.
pub fn entry_from_node(
    node: &Node,
    base_dir: &Path,
    has_handler: bool,
    known: &dyn Known,
) -> Result<Entry, Diagnostics> {
    let mut diags = Vec::new();
    let mut r = Report::new(&mut diags, None, "-".into());
    let Value::Map(items) = &node.value else {
        mismatch(&mut r, node, "entry", "a table with \"id\" and \"kind\"");
        return Err(Diagnostics(diags));
    };
    let field = |key: &str| items.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let mut id = None;
    match (field("id"), field("namespace"), field("name")) {
        (Some(id_node), namespace, name) => {
            if let Some(text) = string(&mut r, id_node, "id") {
                match parse_id(&text) {
                    Ok(parsed) => {
                        let agrees = |node: Option<&Node>, part: &str| node.is_none_or(|n| n.as_str() == Some(part));
                        if agrees(namespace, &parsed.namespace) && agrees(name, &parsed.name) {
                            id = Some(parsed);
                        } else {
                            r.error(
                                id_node.line,
                                format!(
                                    "\"id\" {text:?} does not match \"namespace\" and \"name\"; \
                                     give \"id\" alone"
                                ),
                            );
                        }
                    }
                    Err(why) => r.error(id_node.line, format!("field \"id\": {why}")),
                }
            }
        }
        (None, Some(ns_node), Some(name_node)) => {
            let namespace = string(&mut r, ns_node, "namespace");
            let name = string(&mut r, name_node, "name");
            if let (Some(namespace), Some(name)) = (namespace, name) {
                let ns_ok = check_namespace(&namespace).map_err(|why| r.error(ns_node.line, why));
                let name_ok = check_name(&name).map_err(|why| r.error(name_node.line, why));
                if ns_ok.is_ok() && name_ok.is_ok() {
                    id = Some(Id { namespace, name });
                }
            }
        }
        (None, _, _) => r.error(node.line, "missing required field \"id\" (or \"namespace\" and \"name\")"),
    }
    if let Some(id) = &id {
        r.entry = id.to_string();
    }
    let kind = entry_kind(&mut r, node, field("kind"));
    let mut meta = field("meta").cloned().unwrap_or_else(Node::null);
    let mut fields: Vec<(String, Node)> = items
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "id" | "namespace" | "name" | "kind" | "meta"))
        .cloned()
        .collect();
    let place = Place { yaml_dir: base_dir.to_path_buf(), root: base_dir.to_path_buf() };
    let namespace = id.as_ref().map(|id| id.namespace.clone());
    let head = Head { namespace: namespace.as_deref(), kind: kind.as_deref(), line: node.line, api: true };
    let checked = check_entry(&mut r, &place, &head, &mut meta, &mut fields, has_handler);
    let label = r.entry.clone();
    let draft = Draft {
        id,
        label,
        file: None,
        line: node.line,
        kind,
        meta,
        fields,
        origin: Origin::Api,
        spec: checked.spec,
        refs: checked.refs,
        wasm: checked.wasm,
        yaml_dir: base_dir.to_path_buf(),
    };
    let mut entries = finish(vec![draft], known, &mut diags);
    match entries.pop() {
        Some(entry) if diags.is_empty() => Ok(entry),
        _ => Err(Diagnostics(diags)),
    }
}

fn file_problem(file: &Path, line: u32, message: String) -> Diagnostic {
    Diagnostic { file: Some(file.to_path_buf()), line, entry: "-".into(), message }
}

fn find_index_files(dir: &Path, files: &mut Vec<PathBuf>, seen: &mut HashSet<PathBuf>, diags: &mut Vec<Diagnostic>) {
    // Symbolic links may loop back to a directory already scanned.
    if let Ok(canonical) = dir.canonicalize() {
        if !seen.insert(canonical) {
            return;
        }
    }
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) => {
            diags.push(file_problem(dir, 0, format!("cannot read directory: {e}")));
            return;
        }
    };
    let mut names: Vec<_> = listing.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    names.sort();
    let mut subdirs = Vec::new();
    for name in names {
        let path = dir.join(&name);
        if path.is_dir() {
            if !name.to_string_lossy().starts_with('.') {
                subdirs.push(path);
            }
        } else if name == INDEX_FILE {
            files.push(path);
        }
    }
    for sub in subdirs {
        find_index_files(&sub, files, seen, diags);
    }
}

/// A file that is not UTF-8, at the line and column of the first bad byte (found by fuzzing:
/// every problem of a file names a line).
fn not_utf8(file: &Path, bytes: &[u8], at: usize) -> Diagnostic {
    let before = &bytes[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    // Columns count characters; the bytes before `at` are valid UTF-8.
    let column = std::str::from_utf8(&before[start..]).map_or(at - start, |s| s.chars().count()) + 1;
    file_problem(
        file,
        u32::try_from(line).unwrap_or(u32::MAX),
        format!("the file is not valid UTF-8 text (column {column}: byte 0x{:02x})", bytes[at]),
    )
}

fn load_file(file: &Path, root: &Path, drafts: &mut Vec<Draft>, diags: &mut Vec<Diagnostic>) {
    let bytes = match read_file(file) {
        Ok(bytes) => bytes,
        Err(why) => {
            diags.push(file_problem(file, 0, why));
            return;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            diags.push(not_utf8(file, e.as_bytes(), e.utf8_error().valid_up_to()));
            return;
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let doc = match yaml::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            diags.push(file_problem(file, e.line, e.message));
            return;
        }
    };
    let mut r = Report::new(diags, Some(file.to_path_buf()), "-".into());
    let Value::Map(top) = &doc.value else {
        let message = match doc.value {
            Value::Null => "the file is empty; expected \"namespace\" and \"entries\"".to_string(),
            ref other => format!(
                "expected a mapping with \"namespace\" and \"entries\" at the top level, got {}",
                type_name(other)
            ),
        };
        r.error(doc.line, message);
        return;
    };
    for (key, node) in top {
        const TOP: &[&str] = &["version", "namespace", "entries"];
        if !TOP.contains(&key.as_str()) {
            let message = match suggest(key, TOP) {
                Some(close) => format!("unknown top-level field {key:?}; did you mean {close:?}?"),
                None => format!(
                    "unknown top-level field {key:?}; a registry file has \"version\", \
                     \"namespace\" and \"entries\""
                ),
            };
            r.error(node.line, message);
        }
    }
    let field = |key: &str| top.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    if let Some(node) = field("version") {
        if !matches!(node.value, Value::Str(_)) {
            r.error(
                node.line,
                format!(
                    "field \"version\": expected a string, got {}; quote it, like version: \"1.0\"",
                    type_name(&node.value)
                ),
            );
        }
    }
    let namespace = match field("namespace") {
        None => {
            r.error(doc.line, "missing required field \"namespace\" (like namespace: app)");
            None
        }
        Some(node) => string(&mut r, node, "namespace")
            .and_then(|ns| check_namespace(&ns).map_err(|why| r.error(node.line, why)).ok().map(|_| ns)),
    };
    let entries = match field("entries") {
        None => {
            r.error(doc.line, "missing required field \"entries\" (a list of entries)");
            return;
        }
        Some(node) => match &node.value {
            Value::Seq(items) => items,
            _ => {
                mismatch(&mut r, node, "entries", "a sequence");
                return;
            }
        },
    };
    let place = Place { yaml_dir: parent_dir(file), root: root.to_path_buf() };
    for (index, item) in entries.iter().enumerate() {
        drafts.push(load_entry(diags, file, &place, namespace.as_deref(), index, item));
    }
}

fn load_entry(
    diags: &mut Vec<Diagnostic>,
    file: &Path,
    place: &Place,
    namespace: Option<&str>,
    index: usize,
    item: &Node,
) -> Draft {
    let mut r = Report::new(diags, Some(file.to_path_buf()), format!("entries[{index}]"));
    let mut draft = Draft {
        id: None,
        label: String::new(),
        file: Some(file.to_path_buf()),
        line: item.line,
        kind: None,
        meta: Node::null(),
        fields: Vec::new(),
        origin: Origin::File { file: file.to_path_buf(), line: item.line },
        spec: None,
        refs: Vec::new(),
        wasm: None,
        yaml_dir: place.yaml_dir.clone(),
    };
    let Value::Map(items) = &item.value else {
        r.error(
            item.line,
            format!("expected an entry (a mapping with \"name\" and \"kind\"), got {}", type_name(&item.value)),
        );
        draft.label = r.entry;
        return draft;
    };
    let field = |key: &str| items.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    match field("name") {
        None => r.error(item.line, "missing required field \"name\""),
        Some(node) => {
            if let Some(name) = string(&mut r, node, "name") {
                if !is_name(&name) {
                    if let Err(why) = check_name(&name) {
                        r.error(node.line, why);
                    }
                } else if let Some(ns) = namespace.filter(|ns| is_namespace(ns)) {
                    draft.id = Some(Id { namespace: ns.to_string(), name });
                }
            }
        }
    }
    if let Some(id) = &draft.id {
        r.entry = id.to_string();
    }
    draft.kind = entry_kind(&mut r, item, field("kind"));
    draft.meta = field("meta").cloned().unwrap_or_else(Node::null);
    draft.fields = items.iter().filter(|(k, _)| !matches!(k.as_str(), "name" | "kind" | "meta")).cloned().collect();
    let head = Head { namespace, kind: draft.kind.as_deref(), line: item.line, api: false };
    let checked = check_entry(&mut r, place, &head, &mut draft.meta, &mut draft.fields, false);
    draft.label = r.entry;
    draft.spec = checked.spec;
    draft.refs = checked.refs;
    draft.wasm = checked.wasm;
    draft
}

fn entry_kind(r: &mut Report<'_>, entry: &Node, node: Option<&Node>) -> Option<String> {
    let Some(node) = node else {
        r.error(entry.line, "missing required field \"kind\" (like kind: function.wasm)");
        return None;
    };
    let kind = string(r, node, "kind")?;
    if kind.is_empty() {
        r.error(node.line, "field \"kind\": must not be empty");
        return None;
    }
    Some(kind)
}

/// What a reference points to.
struct Target {
    kind: String,
    /// The directory, when the target is a valid `fs.directory`.
    fs_path: Option<PathBuf>,
}

/// The batch checks; returns the entries that passed every check.
fn finish(mut drafts: Vec<Draft>, known: &dyn Known, diags: &mut Vec<Diagnostic>) -> Vec<Entry> {
    let error = |diags: &mut Vec<Diagnostic>, d: &Draft, line: u32, message: String| {
        diags.push(Diagnostic { file: d.file.clone(), line, entry: d.label.clone(), message })
    };
    let mut first: HashMap<Id, usize> = HashMap::new();
    let mut failed = vec![false; drafts.len()];
    for (i, d) in drafts.iter().enumerate() {
        let Some(id) = &d.id else { continue };
        match first.get(id) {
            Some(&j) => {
                let at = match &drafts[j].file {
                    Some(file) => format!("{}:{}", file.display(), drafts[j].line),
                    None => "registry:add".into(),
                };
                error(diags, d, d.line, format!("duplicate entry ID {id} (first declared at {at})"));
                failed[i] = true;
            }
            None => {
                first.insert(id.clone(), i);
            }
        }
    }

    // The kind (and fs.directory path) of a referenced entry: this batch wins over `known`.
    let target = |id: &Id| -> Option<Target> {
        if let Some(&j) = first.get(id) {
            let fs_path = match &drafts[j].spec {
                Some(Spec::FsDirectory(fs)) => Some(fs.path.clone()),
                _ => None,
            };
            let kind = drafts[j].kind.clone()?;
            return Some(Target { kind, fs_path });
        }
        let entry = known.get(id)?;
        let fs_path = match &entry.spec {
            Spec::FsDirectory(fs) => Some(fs.path.clone()),
            _ => None,
        };
        let kind = entry.kind.clone();
        Some(Target { kind, fs_path })
    };
    let mut binaries: Vec<Option<Code>> = Vec::with_capacity(drafts.len());
    let mut files = Files::new();
    for (i, d) in drafts.iter().enumerate() {
        let mut refs_ok = true;
        for rf in &d.refs {
            let place = if rf.field == rf.what { String::new() } else { format!(" in {:?}", rf.field) };
            match target(&rf.id) {
                None => {
                    error(
                        diags,
                        d,
                        rf.line,
                        format!("{} reference {:?}{place} not found (no {} entry {})", rf.what, rf.raw, rf.want, rf.id),
                    );
                    refs_ok = false;
                }
                Some(Target { kind, .. }) if kind != rf.want => {
                    error(
                        diags,
                        d,
                        rf.line,
                        format!(
                            "{} reference {:?}{place} points to {} of kind {kind}; expected \
                             kind {}",
                            rf.what, rf.raw, rf.id, rf.want
                        ),
                    );
                    refs_ok = false;
                }
                Some(_) => {}
            }
        }
        failed[i] |= !refs_ok;
        let code = match &d.wasm {
            Some(wasm) if refs_ok => read_wasm(diags, d, wasm, &target, &mut files),
            _ => None,
        };
        failed[i] |= d.wasm.is_some() && code.is_none();
        binaries.push(code);
    }

    let mut entries = Vec::new();
    for ((d, failed), code) in drafts.drain(..).zip(failed).zip(binaries) {
        let (Some(id), Some(kind), Some(mut spec), false) = (d.id, d.kind, d.spec, failed) else {
            continue;
        };
        if let Some(code) = code {
            match &mut spec {
                Spec::FunctionWasm(f) => f.code = code,
                Spec::ProcessWasm(p) => p.code = code,
                _ => {}
            }
        }
        entries.push(Entry { id, kind, meta: d.meta, fields: d.fields, origin: d.origin, spec });
    }
    entries
}

/// Reads a wasm binary and checks its hash. `None` after a reported problem, or when the `fs`
/// entry is broken.
///
/// With `fs`, the path names a file inside that directory (a leading `/` is its root) and may
/// not leave it, by `..` or through a symbolic link. Without, it is relative to the YAML file's
/// directory, or absolute: the author's choice of file.
fn read_wasm(
    diags: &mut Vec<Diagnostic>,
    d: &Draft,
    wasm: &PendingWasm,
    target: &dyn Fn(&Id) -> Option<Target>,
    files: &mut Files,
) -> Option<Code> {
    let mut push = |line: u32, message: String| {
        diags.push(Diagnostic { file: d.file.clone(), line, entry: d.label.clone(), message })
    };
    let path = match &wasm.fs {
        Some(fs) => {
            // A broken fs.directory entry has already been reported.
            let dir = target(fs)?.fs_path?;
            let checked = match inside(Path::new(&wasm.path)) {
                None => Err(Outside::Lexically),
                Some(inside) => {
                    let path = normalize(&dir.join(inside));
                    outside(&dir, &path).map_or(Ok(path), Err)
                }
            };
            match checked {
                Ok(path) => path,
                Err(how) => {
                    let how = match how {
                        Outside::Lexically => "leaves".to_string(),
                        Outside::Link(real) => {
                            format!("resolves through a symbolic link to {}, outside", real.display())
                        }
                    };
                    push(
                        wasm.line,
                        format!(
                            "field \"path\": {:?} {how} the directory of fs entry {fs} ({}); a path \
                             with fs names a file inside that directory",
                            wasm.path,
                            dir.display()
                        ),
                    );
                    return None;
                }
            }
        }
        None => normalize(&d.yaml_dir.join(&wasm.path)),
    };
    // Entries naming the same file share one read and one digest.
    let (bytes, actual) = match files.get(&path) {
        Some(hit) => hit.clone(),
        None => match read_file(&path) {
            Ok(bytes) => {
                let digest: [u8; 32] = Sha256::digest(&bytes).into();
                let read = (Arc::<[u8]>::from(bytes), digest);
                files.insert(path.clone(), read.clone());
                read
            }
            Err(why) => {
                push(wasm.line, format!("field \"path\": wasm file {why}"));
                return None;
            }
        },
    };
    if let Some(hash) = &wasm.hash {
        if actual != hash.digest {
            push(
                hash.line,
                format!(
                    "field \"hash\": sha256 of {} does not match: expected {}, actual \
                     sha256:{}; update \"hash\" if the file changed on purpose",
                    path.display(),
                    hash.written,
                    hex(&actual)
                ),
            );
            return None;
        }
    }
    Some(Code::Binary { path, bytes, sha256: actual })
}

/// Binaries read by one load: path → (bytes, sha256).
type Files = HashMap<PathBuf, (Arc<[u8]>, [u8; 32])>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic generator (xorshift) for structured random documents.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    const KEYS: &[&str] = &[
        "name",
        "kind",
        "meta",
        "source",
        "method",
        "wit",
        "imports",
        "wasi",
        "pool",
        "limits",
        "options",
        "transport",
        "fs",
        "path",
        "hash",
        "directory",
        "base",
        "auto_init",
        "mode",
        "variable",
        "default",
        "args",
        "env",
        "mounts",
        "id",
        "guest",
        "read_only",
        "type",
        "size",
        "command",
        "short",
        "allowed_hosts",
        "cwd",
        "fuel",
        "x",
    ];
    const SCALARS: &[&str] = &[
        "function.wat",
        "function.wasm",
        "process.wasm",
        "function.lua",
        "fs.directory",
        "env.variable",
        "x",
        "app:x",
        ":",
        "",
        "-1",
        "1.5",
        "true",
        "~",
        "0755",
        "file://a",
        "file://../x",
        "file:///",
        "sha256:00",
        "wasi:io",
        "static",
        "payload",
        "module",
        "\"q\"",
        "9999999999999",
    ];

    fn value(rng: &mut Rng, depth: usize) -> Value {
        match rng.next(if depth > 3 { 3 } else { 5 }) {
            0 | 1 => Value::Str(SCALARS[rng.next(SCALARS.len())].into()),
            2 => Value::Int(rng.next(2000) as i64 - 1000),
            3 => Value::Seq((0..rng.next(3)).map(|_| node(rng, depth + 1)).collect()),
            _ => Value::Map(
                (0..rng.next(4)).map(|_| (KEYS[rng.next(KEYS.len())].to_string(), node(rng, depth + 1))).collect(),
            ),
        }
    }

    fn node(rng: &mut Rng, depth: usize) -> Node {
        Node::new(rng.next(9) as u32, value(rng, depth))
    }

    #[test]
    fn random_entries_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let base = std::env::temp_dir();
        for _ in 0..3000 {
            let mut entry = node(&mut rng, 0);
            if let Value::Map(items) = &mut entry.value {
                items.push(("id".into(), Node::new(1, Value::Str("app:x".into()))));
                let kind = SCALARS[rng.next(6)];
                items.push(("kind".into(), Node::new(1, Value::Str(kind.into()))));
            }
            let handler = rng.next(2) == 0;
            let _ = entry_from_node(&entry, &base, handler, &());
        }
    }
}
