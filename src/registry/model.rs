//! The validated form of registry entries: what the engine and the Lua API consume.
//!
//! CONTRACT shared by `registry` (producer) and `engine` / `runtime` / `lua_api` (consumers).
//! Change field names only together with their users.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::value::Node;

/// An entry ID: `namespace:name`, split at the first `:`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.name)
    }
}

/// Where an entry was declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An `_index.yaml` file; `line` is the 1-based line of the entry's sequence item.
    File { file: PathBuf, line: u32 },
    /// `registry:add` from Lua.
    Api,
}

/// One validated registry entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: Id,
    /// The kind as written (`function.wat`, `my.custom.kind`, ...).
    pub kind: String,
    /// Free-form `meta` mapping (Null when absent).
    pub meta: Node,
    /// Every other field of the entry as written, after `file://` substitution
    /// (without `name`, `kind`, `meta`); returned by `registry:get`.
    pub fields: Vec<(String, Node)>,
    pub origin: Origin,
    pub spec: Spec,
}

#[derive(Clone, Debug)]
pub enum Spec {
    FsDirectory(FsDirectory),
    EnvVariable(EnvVariable),
    FunctionWat(WasmFunction),
    FunctionWasm(WasmFunction),
    ProcessWasm(ProcessWasm),
    FunctionLua(LuaFunction),
    /// A kind this version does not know: kept, visible, not executable.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsDirectory {
    /// Absolute (or load-root-joined) path of the directory.
    pub path: PathBuf,
    pub auto_init: bool,
    /// Unix mode for `auto_init` (parsed from an octal string like "0755" or an integer).
    pub mode: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVariable {
    pub variable: String,
    pub default: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Code {
    /// WAT text (inline or from `file://`).
    Wat(String),
    /// A binary read at load and verified against `hash` when given; `sha256` is its digest
    /// (computed once per file and load, and reused as the compile-cache key).
    Binary { path: PathBuf, bytes: Arc<[u8]>, sha256: [u8; 32] },
}

#[derive(Clone, Debug)]
pub struct WasmFunction {
    pub code: Code,
    pub common: Common,
}

#[derive(Clone, Debug)]
pub struct ProcessWasm {
    pub code: Code,
    pub common: Common,
    pub command: Option<Command>,
    /// `options` as written (mailbox, limits, pool are read from here later).
    pub options: Node,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub short: Option<String>,
}

/// Fields shared by `function.wat`, `function.wasm` and `process.wasm`.
#[derive(Clone, Debug, Default)]
pub struct Common {
    pub method: Option<String>,
    pub wit: Option<String>,
    pub imports: Vec<Profile>,
    pub wasi: Wasi,
    pub pool: Pool,
    pub limits: Limits,
}

/// Host capability profiles of SPEC §5.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    Io,
    Poll,
    Clocks,
    Random,
    Cli,
    Filesystem,
    Sockets,
    Http,
    Funcs,
    Actor,
    Wasi1,
}

#[derive(Clone, Debug, Default)]
pub struct Wasi {
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub env: Vec<WasiEnv>,
    pub mounts: Vec<Mount>,
    /// `None` = the default policy (public hosts allowed, private denied).
    pub allowed_hosts: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasiEnv {
    /// The referenced `env.variable` entry (resolved to a full ID).
    pub id: Id,
    /// Name of the variable inside the guest (defaults to the OS variable name).
    pub name: Option<String>,
    pub required: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The referenced `fs.directory` entry (resolved to a full ID).
    pub fs: Id,
    pub guest: String,
    pub read_only: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PoolKind {
    Inline,
    #[default]
    Lazy,
    Static,
    Adaptive,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pool {
    pub kind: PoolKind,
    pub size: Option<u32>,
    pub workers: Option<u32>,
    pub buffer: Option<u32>,
    pub max_size: Option<u32>,
    pub isolate: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// 0 = none.
    pub max_execution_ms: u64,
    pub memory_bytes: u64,
    /// 0 = none.
    pub fuel: u64,
    pub max_retained_memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_execution_ms: 0, memory_bytes: 256 << 20, fuel: 0, max_retained_memory_bytes: 64 << 20 }
    }
}

#[derive(Clone, Debug)]
pub struct LuaFunction {
    pub source: LuaSource,
    /// Key of the function in the table the chunk returns; `None` = the chunk returns a function.
    pub method: Option<String>,
}

#[derive(Clone, Debug)]
pub enum LuaSource {
    /// Lua source text; `chunk_name` is `@path` for `file://` sources, else `=ns:name`.
    Code { text: String, chunk_name: String },
    /// `registry:add{ handler = fn }`: the function lives in the adding Lua state.
    Handler,
}
