//! Checks of one entry: `file://` substitution, then the fields of its kind.
//!
//! Each check pushes its problems and carries on, so one pass reports everything wrong with
//! an entry. What needs the whole batch (references to other entries, and reading wasm files
//! that may live in a referenced `fs.directory`) is handed back as [`Ref`]s and a
//! [`PendingWasm`] for `load` to finish.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::id::parse_ref;
use super::model::*;
use super::paths::{normalize, outside, Outside};
use super::profile::parse_profile;
use super::value::{Node, Value};
use super::Diagnostic;

/// Where an entry's relative paths resolve.
pub(crate) struct Place {
    /// Directory of the YAML file (`file://`, wasm `path` without `fs`, `base: module`).
    pub yaml_dir: PathBuf,
    /// The load root (`base: project`, and the limit of `file://`).
    pub root: PathBuf,
}

/// Collects the problems of one entry.
pub(crate) struct Report<'a> {
    diags: &'a mut Vec<Diagnostic>,
    file: Option<PathBuf>,
    /// The entry ID, `entries[N]`, or `-`.
    pub entry: String,
    errors: usize,
}

impl<'a> Report<'a> {
    pub fn new(diags: &'a mut Vec<Diagnostic>, file: Option<PathBuf>, entry: String) -> Self {
        Report { diags, file, entry, errors: 0 }
    }

    pub fn error(&mut self, line: u32, message: impl Into<String>) {
        self.errors += 1;
        self.diags.push(Diagnostic {
            file: self.file.clone(),
            line,
            entry: self.entry.clone(),
            message: message.into(),
        });
    }

    pub fn errors(&self) -> usize {
        self.errors
    }
}

/// A reference to another entry, checked once the batch is known.
#[derive(Clone, Debug)]
pub(crate) struct Ref {
    pub id: Id,
    /// As written (`data`, `app:data`).
    pub raw: String,
    /// Field path (`fs`, `wasi.mounts[0].fs`).
    pub field: String,
    pub line: u32,
    /// `fs` or `env`: how the message names the reference.
    pub what: &'static str,
    /// The kind the target must have.
    pub want: &'static str,
}

/// A wasm binary to read once the `fs` reference (if any) is resolved.
#[derive(Clone, Debug)]
pub(crate) struct PendingWasm {
    pub fs: Option<Id>,
    pub path: String,
    pub line: u32,
    pub hash: Option<Hash>,
}

#[derive(Clone, Debug)]
pub(crate) struct Hash {
    pub written: String,
    pub digest: [u8; 32],
    pub line: u32,
}

/// The outcome of [`check_entry`].
pub(crate) struct Checked {
    /// `None` when the entry had a problem (or no kind).
    pub spec: Option<Spec>,
    pub refs: Vec<Ref>,
    pub wasm: Option<PendingWasm>,
}

/// What [`check_entry`] needs to know about the entry besides its fields.
pub(crate) struct Head<'a> {
    /// Namespace for bare references; `None` when the entry's namespace is invalid.
    pub namespace: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// The line of the entry (missing fields are reported here).
    pub line: u32,
    /// Whether the entry came from `registry:add` (changes some hints).
    pub api: bool,
}

const COMMON: &[&str] = &["method", "wit", "imports", "wasi", "pool", "limits", "options", "transport"];

/// Substitutes `file://` values in `meta` and `fields`, then checks the fields of the kind.
pub(crate) fn check_entry(
    r: &mut Report<'_>,
    place: &Place,
    head: &Head<'_>,
    meta: &mut Node,
    fields: &mut [(String, Node)],
    has_handler: bool,
) -> Checked {
    let mut files = Vec::new();
    substitute(r, place, meta, "meta", &mut files);
    for (key, node) in fields.iter_mut() {
        substitute(r, place, node, key, &mut files);
    }
    if !matches!(meta.value, Value::Null | Value::Map(_)) {
        mismatch(r, meta, "meta", "a mapping");
    }
    let mut checked = Checked { spec: None, refs: Vec::new(), wasm: None };
    let Some(kind) = head.kind else {
        return checked;
    };
    if has_handler && kind != "function.lua" {
        r.error(head.line, format!("\"handler\" is only allowed for function.lua entries, not {kind}"));
    }
    let top = Obj::new(fields, "");
    let mut k = KindCheck { r, place, head, kind, refs: &mut checked.refs };
    let spec = match kind {
        "fs.directory" => k.fs_directory(&top).map(Spec::FsDirectory),
        "env.variable" => k.env_variable(&top).map(Spec::EnvVariable),
        "function.wat" => k.function_wat(&top).map(Spec::FunctionWat),
        "function.wasm" => {
            let (code, common, wasm) = k.wasm_code_and_common(&top, false);
            checked.wasm = wasm;
            Some(Spec::FunctionWasm(WasmFunction { code, common }))
        }
        "process.wasm" => {
            let (code, common, wasm) = k.wasm_code_and_common(&top, true);
            checked.wasm = wasm;
            let command = k.command(meta);
            let options = top.get("options").cloned().unwrap_or_else(Node::null);
            Some(Spec::ProcessWasm(ProcessWasm { code, common, command, options }))
        }
        "function.lua" => k.function_lua(&top, has_handler, &files),
        _ => Some(Spec::Unknown),
    };
    if r.errors() == 0 {
        checked.spec = spec;
    }
    checked
}

/// Replaces every string starting with `file://` by the contents of that file.
fn substitute(r: &mut Report<'_>, place: &Place, node: &mut Node, path: &str, files: &mut Vec<(String, PathBuf)>) {
    match &mut node.value {
        Value::Str(s) => {
            let Some(rel) = s.strip_prefix("file://") else {
                return;
            };
            if rel.is_empty() {
                r.error(node.line, format!("field {path:?}: empty file:// path"));
                return;
            }
            let file = normalize(&place.yaml_dir.join(rel));
            if let Some(how) = outside(&place.root, &file) {
                let resolved = resolution(&file, how);
                r.error(
                    node.line,
                    format!(
                        "field {path:?}: {s:?} {resolved}, outside the load root {}; \
                         file:// may only read files under the loaded directory",
                        place.root.display()
                    ),
                );
                return;
            }
            match read_text(&file) {
                Ok(text) => {
                    *s = text;
                    files.push((path.to_string(), file));
                }
                Err(why) => r.error(node.line, format!("field {path:?}: cannot read {s:?}: {why}")),
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(r, place, item, &format!("{path}[{i}]"), files);
            }
        }
        Value::Map(items) => {
            for (key, item) in items.iter_mut() {
                substitute(r, place, item, &format!("{path}.{key}"), files);
            }
        }
        _ => {}
    }
}

/// Where a path that left its root went, for messages: `resolves to F` (as normalised), or
/// through a symbolic link.
fn resolution(file: &Path, how: Outside) -> String {
    match how {
        Outside::Lexically => format!("resolves to {}", file.display()),
        Outside::Link(real) => format!("resolves through a symbolic link to {}", real.display()),
    }
}

fn read_text(file: &Path) -> Result<String, String> {
    let bytes = read_file(file)?;
    // A NUL byte is valid UTF-8 but no text file has one: it marks a binary.
    match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Ok(text),
        _ => Err(format!(
            "{} is binary, not UTF-8 text; file:// inserts text (load wasm binaries \
             with function.wasm \"path\")",
            file.display()
        )),
    }
}

/// Reads a file; the messages start with the path and, for the usual failures, leave out the
/// OS error number.
pub(crate) fn read_file(file: &Path) -> Result<Vec<u8>, String> {
    if file.is_dir() {
        return Err(format!("{} is a directory, not a file", file.display()));
    }
    std::fs::read(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{} not found", file.display()),
        std::io::ErrorKind::PermissionDenied => {
            format!("{} is not readable (permission denied)", file.display())
        }
        _ => format!("{}: {e}", file.display()),
    })
}

struct KindCheck<'r, 'd, 'p> {
    r: &'r mut Report<'d>,
    place: &'p Place,
    head: &'p Head<'p>,
    kind: &'p str,
    refs: &'r mut Vec<Ref>,
}

impl KindCheck<'_, '_, '_> {
    fn required_string(&mut self, obj: &Obj<'_>, key: &str) -> Option<(String, u32)> {
        let Some(node) = obj.get(key) else {
            let hint = match (self.kind, key, self.head.api) {
                ("function.lua", "source", true) => " (or \"handler\")",
                _ => "",
            };
            self.r.error(
                self.head.line,
                format!("missing required field {:?}{hint} for kind {}", obj.path(key), self.kind),
            );
            return None;
        };
        let value = non_empty_string(self.r, node, &obj.path(key))?;
        Some((value, node.line))
    }

    fn reference(&mut self, node: &Node, field: String, what: &'static str, want: &'static str) -> Option<Id> {
        let raw = non_empty_string(self.r, node, &field)?;
        match self.head.namespace {
            // A bare name cannot be resolved without a namespace; that error is reported.
            None if !raw.contains(':') => None,
            namespace => match parse_ref(&raw, namespace.unwrap_or_default()) {
                Ok(id) => {
                    self.refs.push(Ref { id: id.clone(), raw, field, line: node.line, what, want });
                    Some(id)
                }
                Err(why) => {
                    self.r.error(node.line, format!("field {field:?}: {why}"));
                    None
                }
            },
        }
    }

    fn fs_directory(&mut self, top: &Obj<'_>) -> Option<FsDirectory> {
        check_keys(self.r, top, &["directory", "base", "auto_init", "mode"]);
        let base = match top.get("base") {
            None => Some(&self.place.root),
            Some(node) => match string(self.r, node, "base").as_deref() {
                Some("project") => Some(&self.place.root),
                Some("module") => Some(&self.place.yaml_dir),
                Some(other) => {
                    self.r
                        .error(node.line, format!("field \"base\": expected \"project\" or \"module\", got {other:?}"));
                    None
                }
                None => None,
            },
        };
        let auto_init = top.get("auto_init").and_then(|n| boolean(self.r, n, "auto_init")).unwrap_or(false);
        let mode = top.get("mode").and_then(|n| mode(self.r, n));
        let (directory, line) = self.required_string(top, "directory")?;
        let path = normalize(&base?.join(&directory));
        if path.exists() && !path.is_dir() {
            self.r.error(line, format!("field \"directory\": {} exists but is not a directory", path.display()));
        } else if !path.exists() && !auto_init {
            self.r.error(
                line,
                format!(
                    "field \"directory\": directory {} does not exist; create it, or set \
                     \"auto_init: true\" to create it at load",
                    path.display()
                ),
            );
        }
        Some(FsDirectory { path, auto_init, mode })
    }

    fn env_variable(&mut self, top: &Obj<'_>) -> Option<EnvVariable> {
        check_keys(self.r, top, &["variable", "default"]);
        let default = top.get("default").and_then(|node| match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                mismatch(self.r, node, "default", "a string");
                None
            }
        });
        let (variable, line) = self.required_string(top, "variable")?;
        if variable.contains(['=', '\0']) {
            self.r.error(
                line,
                format!(
                    "field \"variable\": {variable:?} is not a valid environment variable name \
                     (no \"=\" or NUL)"
                ),
            );
        }
        Some(EnvVariable { variable, default })
    }

    fn function_wat(&mut self, top: &Obj<'_>) -> Option<WasmFunction> {
        let allowed: Vec<&str> = ["source"].iter().chain(COMMON).copied().collect();
        check_keys(self.r, top, &allowed);
        let common = self.common(top, false);
        let (source, _) = self.required_string(top, "source")?;
        Some(WasmFunction { code: Code::Wat(source), common })
    }

    fn wasm_code_and_common(&mut self, top: &Obj<'_>, process: bool) -> (Code, Common, Option<PendingWasm>) {
        let allowed: Vec<&str> =
            ["fs", "path", "hash"].iter().chain(COMMON).copied().filter(|k| !process || *k != "pool").collect();
        if process {
            if let Some(node) = top.get("pool") {
                self.r.error(
                    node.line,
                    format!(
                        "unknown field \"pool\" in entry {}; process.wasm takes its pool settings \
                         from \"options.pool\"",
                        self.r.entry
                    ),
                );
            }
            let others: Vec<_> = top.items.iter().filter(|(k, _)| k != "pool").cloned().collect();
            check_keys(self.r, &Obj::new(&others, ""), &allowed);
        } else {
            check_keys(self.r, top, &allowed);
        }
        let common = self.common(top, process);
        let fs = top.get("fs").and_then(|n| self.reference(n, "fs".into(), "fs", "fs.directory"));
        let hash = top.get("hash").and_then(|node| {
            let written = string(self.r, node, "hash")?;
            match parse_hash(&written) {
                Some(digest) => Some(Hash { written, digest, line: node.line }),
                None => {
                    let hint = if parse_hash(&format!("sha256:{written}")).is_some() {
                        "; add the \"sha256:\" prefix"
                    } else {
                        ""
                    };
                    self.r.error(
                        node.line,
                        format!(
                            "field \"hash\": expected \"sha256:\" followed by 64 hex digits, \
                             got {written:?}{hint}"
                        ),
                    );
                    None
                }
            }
        });
        let placeholder = Code::Binary { path: PathBuf::new(), bytes: Arc::from(Vec::new()), sha256: [0; 32] };
        let Some((path, line)) = self.required_string(top, "path") else {
            return (placeholder, common, None);
        };
        let has_fs = top.get("fs").is_some();
        if has_fs && fs.is_none() {
            // The reference is broken (already reported): there is no directory to read from.
            return (placeholder, common, None);
        }
        // With `fs`, the path is checked against that directory once the reference resolves.
        // Without it, the path is the author's own choice of file (relative to the YAML file,
        // or absolute), as in Wippy: only `fs` confines it.
        let pending = PendingWasm { fs, path, line, hash };
        (placeholder, common, Some(pending))
    }

    fn common(&mut self, top: &Obj<'_>, process: bool) -> Common {
        let r = &mut *self.r;
        let method = top.get("method").and_then(|n| non_empty_string(r, n, "method"));
        let wit = top.get("wit").and_then(|n| string(r, n, "wit"));
        let mut imports = Vec::new();
        if let Some(items) = top.get("imports").and_then(|n| sequence(r, n, "imports")) {
            for (i, item) in items.iter().enumerate() {
                let path = format!("imports[{i}]");
                let Some(name) = string(r, item, &path) else {
                    continue;
                };
                match parse_profile(&name) {
                    Ok(p) if !imports.contains(&p) => imports.push(p),
                    Ok(_) => {}
                    Err(why) => r.error(item.line, format!("field {path:?}: {why}")),
                }
            }
        }
        if let Some(node) = top.get("transport") {
            if let Some(t) = string(r, node, "transport") {
                // `wasi-http` is Wippy's HTTP adapter: such an entry loads and Lua calls it like
                // `payload` (serving HTTP is a later stage).
                if t != "payload" && t != "wasi-http" {
                    r.error(
                        node.line,
                        format!(
                            "field \"transport\": unsupported transport {t:?}; expected \"payload\" \
                             or \"wasi-http\""
                        ),
                    );
                }
            }
        }
        let options = top.get("options").and_then(|n| mapping(r, n, "options"));
        let options = Obj::new(options.unwrap_or_default(), "options.");
        if !process {
            check_keys(r, &options, &["pool", "limits"]);
        } else if let Some(mb) = options.get("mailbox") {
            mailbox(r, mb, &options.path("mailbox"));
        }
        let pool = match self.aliased(top, &options, "pool") {
            Some((node, path)) => pool(self.r, node, &path),
            None => Pool::default(),
        };
        let limits = match self.aliased(top, &options, "limits") {
            Some((node, path)) => limits(self.r, node, &path),
            None => Limits::default(),
        };
        let wasi = match top.get("wasi") {
            Some(node) => self.wasi(node),
            None => Wasi::default(),
        };
        Common { method, wit, imports, wasi, pool, limits }
    }

    /// `key` at the top level or as `options.key`; both is an error.
    fn aliased<'n>(&mut self, top: &Obj<'n>, options: &Obj<'n>, key: &str) -> Option<(&'n Node, String)> {
        match (top.get(key), options.get(key)) {
            (Some(_), Some(alias)) => {
                self.r.error(alias.line, format!("\"{key}\" and \"options.{key}\" set the same thing; keep one"));
                None
            }
            (Some(node), None) => Some((node, format!("{key}."))),
            (None, Some(node)) => Some((node, format!("options.{key}."))),
            (None, None) => None,
        }
    }

    fn wasi(&mut self, node: &Node) -> Wasi {
        let mut wasi = Wasi::default();
        let Some(items) = mapping(self.r, node, "wasi") else {
            return wasi;
        };
        let obj = Obj::new(items, "wasi.");
        check_keys(self.r, &obj, &["args", "cwd", "env", "mounts", "allowed_hosts"]);
        if let Some(n) = obj.get("args") {
            wasi.args = strings(self.r, n, "wasi.args");
        }
        wasi.cwd = obj.get("cwd").and_then(|n| {
            let cwd = string(self.r, n, "wasi.cwd")?;
            if !cwd.starts_with('/') {
                self.r.error(
                    n.line,
                    format!("field \"wasi.cwd\": {cwd:?} must be an absolute guest path, like \"/data\""),
                );
                return None;
            }
            Some(cwd)
        });
        if let Some(n) = obj.get("allowed_hosts") {
            wasi.allowed_hosts = Some(strings(self.r, n, "wasi.allowed_hosts"));
        }
        if let Some(list) = obj.get("env").and_then(|n| sequence(self.r, n, "wasi.env")) {
            for (i, item) in list.iter().enumerate() {
                let prefix = format!("wasi.env[{i}].");
                let Some(fields) = mapping(self.r, item, &prefix[..prefix.len() - 1]) else {
                    continue;
                };
                let item_obj = Obj::new(fields, &prefix);
                check_keys(self.r, &item_obj, &["id", "name", "required"]);
                let name = item_obj.get("name").and_then(|n| non_empty_string(self.r, n, &format!("{prefix}name")));
                let required = item_obj
                    .get("required")
                    .and_then(|n| boolean(self.r, n, &format!("{prefix}required")))
                    .unwrap_or(false);
                let id = match item_obj.get("id") {
                    Some(n) => self.reference(n, format!("{prefix}id"), "env", "env.variable"),
                    None => {
                        self.r.error(item.line, format!("missing required field \"{prefix}id\""));
                        None
                    }
                };
                if let Some(id) = id {
                    wasi.env.push(WasiEnv { id, name, required });
                }
            }
        }
        if let Some(list) = obj.get("mounts").and_then(|n| sequence(self.r, n, "wasi.mounts")) {
            for (i, item) in list.iter().enumerate() {
                let prefix = format!("wasi.mounts[{i}].");
                let Some(fields) = mapping(self.r, item, &prefix[..prefix.len() - 1]) else {
                    continue;
                };
                let item_obj = Obj::new(fields, &prefix);
                check_keys(self.r, &item_obj, &["fs", "guest", "read_only"]);
                let read_only = item_obj
                    .get("read_only")
                    .and_then(|n| boolean(self.r, n, &format!("{prefix}read_only")))
                    .unwrap_or(false);
                let guest = match item_obj.get("guest") {
                    Some(n) => non_empty_string(self.r, n, &format!("{prefix}guest")).and_then(|g| {
                        if !g.starts_with('/') {
                            self.r.error(
                                n.line,
                                format!(
                                    "field \"{prefix}guest\": {g:?} must be an absolute guest path, like \"/data\""
                                ),
                            );
                            return None;
                        }
                        if wasi.mounts.iter().any(|m| m.guest.trim_end_matches('/') == g.trim_end_matches('/')) {
                            self.r.error(n.line, format!("field \"{prefix}guest\": {g:?} is mounted twice"));
                            return None;
                        }
                        Some(g)
                    }),
                    None => {
                        self.r.error(
                            item.line,
                            format!(
                                "missing required field \"{prefix}guest\" (the directory \
                                 path inside the guest, like \"/data\")"
                            ),
                        );
                        None
                    }
                };
                let fs = match item_obj.get("fs") {
                    Some(n) => self.reference(n, format!("{prefix}fs"), "fs", "fs.directory"),
                    None => {
                        self.r.error(item.line, format!("missing required field \"{prefix}fs\""));
                        None
                    }
                };
                if let (Some(fs), Some(guest)) = (fs, guest) {
                    wasi.mounts.push(Mount { fs, guest, read_only });
                }
            }
        }
        wasi
    }

    fn command(&mut self, meta: &Node) -> Option<Command> {
        let node = meta.get("command")?;
        if matches!(node.value, Value::Null) {
            return None;
        }
        let fields = mapping(self.r, node, "meta.command")?;
        let obj = Obj::new(fields, "meta.command.");
        check_keys(self.r, &obj, &["name", "short"]);
        let short = obj.get("short").and_then(|n| string(self.r, n, "meta.command.short"));
        let Some(name) = obj.get("name") else {
            self.r.error(node.line, "missing required field \"meta.command.name\" (the command's name)");
            return None;
        };
        let name = non_empty_string(self.r, name, "meta.command.name")?;
        Some(Command { name, short })
    }

    fn function_lua(&mut self, top: &Obj<'_>, has_handler: bool, files: &[(String, PathBuf)]) -> Option<Spec> {
        check_keys(self.r, top, &["source", "method"]);
        if has_handler {
            for key in ["source", "method"] {
                if let Some(node) = top.get(key) {
                    self.r.error(node.line, format!("\"{key}\" cannot be combined with \"handler\"; give one of them"));
                }
            }
            return Some(Spec::FunctionLua(LuaFunction { source: LuaSource::Handler, method: None }));
        }
        let method = top.get("method").and_then(|n| non_empty_string(self.r, n, "method"));
        let (text, _) = self.required_string(top, "source")?;
        let chunk_name = match files.iter().find(|(field, _)| field == "source") {
            Some((_, file)) => format!("@{}", file.display()),
            None => format!("={}", self.r.entry),
        };
        Some(Spec::FunctionLua(LuaFunction { source: LuaSource::Code { text, chunk_name }, method }))
    }
}

fn pool(r: &mut Report<'_>, node: &Node, prefix: &str) -> Pool {
    let mut pool = Pool::default();
    let Some(items) = mapping(r, node, &prefix[..prefix.len() - 1]) else {
        return pool;
    };
    let obj = Obj::new(items, prefix);
    check_keys(r, &obj, &["type", "size", "workers", "buffer", "max_size", "isolate"]);
    if let Some(n) = obj.get("type") {
        let path = obj.path("type");
        pool.kind = match string(r, n, &path).as_deref() {
            Some("inline") => PoolKind::Inline,
            Some("lazy") => PoolKind::Lazy,
            Some("static") => PoolKind::Static,
            Some("adaptive") => PoolKind::Adaptive,
            Some(other) => {
                r.error(
                    n.line,
                    format!(
                        "field {path:?}: unknown pool type {other:?}; expected one of inline, \
                         lazy, static, adaptive"
                    ),
                );
                PoolKind::default()
            }
            None => PoolKind::default(),
        };
    }
    let u32_field = |r: &mut Report<'_>, key: &str| {
        let n = obj.get(key)?;
        let value = uint(r, n, &obj.path(key))?;
        match u32::try_from(value) {
            Ok(v) => Some(v),
            Err(_) => {
                r.error(n.line, format!("field {:?}: {value} is too large (at most {})", obj.path(key), u32::MAX));
                None
            }
        }
    };
    pool.size = u32_field(r, "size");
    pool.workers = u32_field(r, "workers");
    pool.buffer = u32_field(r, "buffer");
    pool.max_size = u32_field(r, "max_size");
    pool.isolate = obj.get("isolate").and_then(|n| boolean(r, n, &obj.path("isolate"))).unwrap_or(false);
    pool
}

fn limits(r: &mut Report<'_>, node: &Node, prefix: &str) -> Limits {
    let mut limits = Limits::default();
    let Some(items) = mapping(r, node, &prefix[..prefix.len() - 1]) else {
        return limits;
    };
    let obj = Obj::new(items, prefix);
    check_keys(r, &obj, &["max_execution_ms", "memory_bytes", "fuel", "max_retained_memory_bytes"]);
    let mut field = |key: &str, slot: &mut u64| {
        if let Some(v) = obj.get(key).and_then(|n| uint(r, n, &obj.path(key))) {
            *slot = v;
        }
    };
    field("max_execution_ms", &mut limits.max_execution_ms);
    field("memory_bytes", &mut limits.memory_bytes);
    field("fuel", &mut limits.fuel);
    field("max_retained_memory_bytes", &mut limits.max_retained_memory_bytes);
    limits
}

/// `options.mailbox` of a process: `capacity`, `bytes`, `message_bytes`, each a count ≥ 1 (read
/// by `mailbox::limits_of` when an actor starts).
fn mailbox(r: &mut Report<'_>, node: &Node, path: &str) {
    let Some(items) = mapping(r, node, path) else { return };
    let prefix = format!("{path}.");
    let obj = Obj::new(items, &prefix);
    check_keys(r, &obj, &["capacity", "bytes", "message_bytes"]);
    for key in ["capacity", "bytes", "message_bytes"] {
        if let Some(n) = obj.get(key) {
            if uint(r, n, &obj.path(key)) == Some(0) {
                r.error(n.line, format!("field \"{}\": must be at least 1", obj.path(key)));
            }
        }
    }
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let hex = s.strip_prefix("sha256:")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `mode: "0755"`, `mode: 755` and `mode: 0755` all mean rwxr-xr-x: an integer's decimal
/// digits are read as octal, because that is how people write modes (and YAML 1.2 reads
/// `0755` as the integer 755).
fn mode(r: &mut Report<'_>, node: &Node) -> Option<u32> {
    let digits = match &node.value {
        Value::Str(s) => s.strip_prefix("0o").unwrap_or(s).to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.fract() == 0.0 && *f >= 0.0 && *f < 1e6 => format!("{f:.0}"),
        _ => {
            mismatch(r, node, "mode", "an octal mode like \"0755\"");
            return None;
        }
    };
    let parsed = (!digits.is_empty() && digits.len() <= 5)
        .then(|| u32::from_str_radix(&digits, 8).ok())
        .flatten()
        .filter(|m| *m <= 0o7777);
    if parsed.is_none() {
        r.error(node.line, format!("field \"mode\": expected an octal mode like \"0755\", got {}", shown(&node.value)));
    }
    parsed
}

/// A mapping's fields with the path prefix used in messages (`""`, `"pool."`).
struct Obj<'n> {
    items: &'n [(String, Node)],
    prefix: String,
}

impl<'n> Obj<'n> {
    fn new(items: &'n [(String, Node)], prefix: &str) -> Self {
        Obj { items, prefix: prefix.to_string() }
    }

    fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The value of `key`; an explicit null counts as absent.
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.items.iter().find(|(k, _)| k == key).map(|(_, v)| v).filter(|v| !matches!(v.value, Value::Null))
    }
}

fn check_keys(r: &mut Report<'_>, obj: &Obj<'_>, allowed: &[&str]) {
    for (key, node) in obj.items {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        let mut message = format!("unknown field {:?} in entry {}", obj.path(key), r.entry);
        if let Some(close) = suggest(key, allowed) {
            message.push_str(&format!("; did you mean {:?}?", obj.path(close)));
        }
        r.error(node.line, message);
    }
}

/// The allowed name closest to a misspelt `key`, if any is close.
pub(crate) fn suggest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let limit = if key.chars().count() <= 4 { 1 } else { 2 };
    allowed
        .iter()
        .map(|a| (edit_distance(key, a), *a))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Int(_) => "integer",
        Value::Float(_) => "float",
        Value::Str(_) => "string",
        Value::Seq(_) => "sequence",
        Value::Map(_) => "mapping",
    }
}

/// A scalar as the user wrote it, for messages.
fn shown(value: &Value) -> String {
    match value {
        Value::Str(s) => format!("{s:?}"),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        other => type_name(other).to_string(),
    }
}

pub(crate) fn mismatch(r: &mut Report<'_>, node: &Node, path: &str, expected: &str) {
    r.error(node.line, format!("field {path:?}: expected {expected}, got {}", type_name(&node.value)));
}

pub(crate) fn string(r: &mut Report<'_>, node: &Node, path: &str) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        _ => {
            mismatch(r, node, path, "a string");
            None
        }
    }
}

fn non_empty_string(r: &mut Report<'_>, node: &Node, path: &str) -> Option<String> {
    let s = string(r, node, path)?;
    if s.is_empty() {
        r.error(node.line, format!("field {path:?}: must not be empty"));
        return None;
    }
    Some(s)
}

fn boolean(r: &mut Report<'_>, node: &Node, path: &str) -> Option<bool> {
    match node.value {
        Value::Bool(b) => Some(b),
        _ => {
            mismatch(r, node, path, "true or false");
            None
        }
    }
}

/// A non-negative integer; integral floats count (LuaJIT has no integers).
fn uint(r: &mut Report<'_>, node: &Node, path: &str) -> Option<u64> {
    let value = match node.value {
        Value::Int(i) => u64::try_from(i).ok(),
        Value::Float(f) if f.fract() == 0.0 && (0.0..1.8e19).contains(&f) => Some(f as u64),
        _ => None,
    };
    if value.is_none() {
        let got = match node.value {
            Value::Int(_) | Value::Float(_) => shown(&node.value),
            ref other => type_name(other).to_string(),
        };
        r.error(node.line, format!("field {path:?}: expected a non-negative integer, got {got}"));
    }
    value
}

/// A sequence; an empty mapping counts as an empty sequence (an empty Lua table).
fn sequence<'n>(r: &mut Report<'_>, node: &'n Node, path: &str) -> Option<&'n [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        Value::Map(items) if items.is_empty() => Some(&[]),
        _ => {
            mismatch(r, node, path, "a sequence");
            None
        }
    }
}

/// A mapping; an empty sequence counts as an empty mapping (an empty Lua table).
pub(crate) fn mapping<'n>(r: &mut Report<'_>, node: &'n Node, path: &str) -> Option<&'n [(String, Node)]> {
    match &node.value {
        Value::Map(items) => Some(items),
        Value::Seq(items) if items.is_empty() => Some(&[]),
        _ => {
            mismatch(r, node, path, "a mapping");
            None
        }
    }
}

fn strings(r: &mut Report<'_>, node: &Node, path: &str) -> Vec<String> {
    let Some(items) = sequence(r, node, path) else {
        return Vec::new();
    };
    items.iter().enumerate().filter_map(|(i, item)| string(r, item, &format!("{path}[{i}]"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(value: Value) -> Node {
        Node::new(3, value)
    }

    #[test]
    fn hashes() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_hash(&format!("sha256:{hex}")), Some([0xab; 32]));
        assert_eq!(parse_hash(&format!("sha256:{}", hex.to_uppercase())), Some([0xab; 32]));
        for bad in ["", "ab", "sha1:ab", &format!("sha256:{}", &hex[..62]), &format!("sha256:{}zz", &hex[..62])] {
            assert_eq!(parse_hash(bad), None, "{bad}");
        }
        assert_eq!(parse_hash(&format!("sha256:{}", "+a".repeat(32))), None);
        // Multi-byte characters must not panic the slicing.
        assert_eq!(parse_hash(&format!("sha256:{}é", &hex[..62])), None);
    }

    #[test]
    fn modes() {
        let cases: &[(Value, Option<u32>)] = &[
            (Value::Str("0755".into()), Some(0o755)),
            (Value::Str("755".into()), Some(0o755)),
            (Value::Str("0o700".into()), Some(0o700)),
            (Value::Int(755), Some(0o755)),
            (Value::Int(644), Some(0o644)),
            (Value::Float(600.0), Some(0o600)),
            (Value::Int(493), None),
            (Value::Str("rwx".into()), None),
            (Value::Str("".into()), None),
            (Value::Int(-1), None),
            (Value::Int(77777), None),
            (Value::Bool(true), None),
        ];
        for (value, expected) in cases {
            let mut diags = Vec::new();
            let mut r = Report::new(&mut diags, None, "app:x".into());
            assert_eq!(mode(&mut r, &node(value.clone())), *expected, "{value:?}");
            assert_eq!(diags.is_empty(), expected.is_some(), "{value:?}: {diags:?}");
        }
    }

    #[test]
    fn unsigned_integers() {
        let cases: &[(Value, Result<u64, &str>)] = &[
            (Value::Int(5), Ok(5)),
            (Value::Float(5.0), Ok(5)),
            (Value::Int(-1), Err("expected a non-negative integer, got -1")),
            (Value::Float(1.5), Err("expected a non-negative integer, got 1.5")),
            (Value::Str("4".into()), Err("expected a non-negative integer, got string")),
        ];
        for (value, expected) in cases {
            let mut diags = Vec::new();
            let mut r = Report::new(&mut diags, None, "app:x".into());
            let got = uint(&mut r, &node(value.clone()), "pool.size");
            match expected {
                Ok(v) => assert_eq!(got, Some(*v)),
                Err(text) => {
                    assert_eq!(got, None);
                    assert_eq!(diags[0].message, format!("field \"pool.size\": {text}"));
                }
            }
        }
    }

    #[test]
    fn suggestions() {
        let allowed = ["method", "source", "imports", "max_size"];
        assert_eq!(suggest("metod", &allowed), Some("method"));
        assert_eq!(suggest("import", &allowed), Some("imports"));
        assert_eq!(suggest("maxsize", &allowed), Some("max_size"));
        assert_eq!(suggest("colour", &allowed), None);
        assert_eq!(suggest("x", &allowed), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
