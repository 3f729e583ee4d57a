//! `wippy.load` and the `wippy.registry` object (SPEC §1.1, §1.4).

use std::path::PathBuf;

use mlua::{Lua, MultiValue, Table, UserData, UserDataMethods, Value};

use super::error::fail;
use super::state::data;
use crate::convert::null;
use crate::error::{Error, Kind};
use crate::registry::value::{Node, Value as NodeValue};
use crate::registry::{Entry, Spec};
use crate::runtime::{self, Loaded};

/// `wippy.load(path, opts?)` → `true` or `nil, err`.
pub fn load(lua: &Lua, (path, opts): (String, Option<Table>)) -> mlua::Result<MultiValue> {
    let mut cache_dir = None;
    if let Some(opts) = &opts {
        for pair in opts.pairs::<Value, Value>() {
            let (k, v) = pair?;
            match k.to_string()?.as_str() {
                "cache_dir" => cache_dir = Some(cache_dir_option(&v, "load")?),
                key => {
                    return Err(mlua::Error::runtime(format!(
                        "bad argument #2 to 'load' (unknown option \"{key}\"; known: cache_dir)"
                    )))
                }
            }
        }
    }
    // A child forked after wippy started (nginx's init_by_lua) cannot compile or run.
    if let Err(e) = crate::sched::wake::check_fork_pid() {
        return fail(lua, e);
    }
    match runtime::load(std::path::Path::new(&path), cache_dir) {
        Ok(warnings) => loaded_ok(lua, &warnings),
        Err(d) => fail(lua, Error::invalid(d.to_string())),
    }
}

/// `true`, and when settings cannot take effect, a list of warnings (`FILE:LINE: ENTRY: message`).
/// Also lets this state's lookup cache drop the entries the load or add replaced.
fn loaded_ok(lua: &Lua, warnings: &crate::registry::Diagnostics) -> mlua::Result<MultiValue> {
    data(lua).targets.refresh();
    if warnings.0.is_empty() {
        return Ok(MultiValue::from_iter([Value::Boolean(true)]));
    }
    let list = lua.create_table_with_capacity(warnings.0.len(), 0)?;
    for (i, w) in warnings.0.iter().enumerate() {
        list.raw_set(i + 1, w.to_string())?;
    }
    Ok(MultiValue::from_iter([Value::Boolean(true), Value::Table(list)]))
}

/// `cache_dir = "path"` or `false` (no cache).
fn cache_dir_option(v: &Value, func: &str) -> mlua::Result<Option<PathBuf>> {
    match v {
        Value::String(s) => Ok(Some(PathBuf::from(s.to_str()?.to_string()))),
        Value::Boolean(false) => Ok(None),
        other => Err(mlua::Error::runtime(format!(
            "bad option 'cache_dir' to '{func}' (a directory path or false expected, got {})",
            super::lua_type(other)
        ))),
    }
}

/// `wippy.configure{ cache_dir = }`: process-wide settings.
pub fn configure(_: &Lua, opts: Table) -> mlua::Result<bool> {
    for pair in opts.pairs::<Value, Value>() {
        let (k, v) = pair?;
        match k.to_string()?.as_str() {
            "cache_dir" => crate::engine::cache::configure(cache_dir_option(&v, "configure")?),
            "workers" => {
                let n = match v {
                    Value::Integer(n) if (1..=1024).contains(&n) => n as usize,
                    Value::Number(n) if n.fract() == 0.0 && (1.0..=1024.0).contains(&n) => n as usize,
                    other => {
                        return Err(mlua::Error::runtime(format!(
                            "bad argument #1 to 'configure' (workers must be an integer from 1 to 1024, got {})",
                            super::lua_type(&other)
                        )))
                    }
                };
                crate::sched::set_workers(n)
                    .map_err(|m| mlua::Error::runtime(format!("bad argument #1 to 'configure' ({m})")))?;
            }
            "record_keys" => match v {
                Value::String(s) if s.as_bytes().as_ref() == b"snake" => crate::convert::set_snake_keys(true),
                Value::String(s) if s.as_bytes().as_ref() == b"wit" => crate::convert::set_snake_keys(false),
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "bad argument #1 to 'configure' (record_keys must be \"wit\" or \"snake\", got {})",
                        super::guest::error_text(&other)
                    )))
                }
            },
            "strict" => match v {
                Value::Boolean(b) => crate::security::set_strict(b),
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "bad argument #1 to 'configure' (strict must be a boolean, got {})",
                        super::lua_type(&other)
                    )))
                }
            },
            "pool_idle_ms" => match v {
                Value::Integer(n) if (1..=86_400_000).contains(&n) => crate::runtime::reaper::set_idle_ms(n as u64),
                Value::Number(n) if n.fract() == 0.0 && (1.0..=86_400_000.0).contains(&n) => {
                    crate::runtime::reaper::set_idle_ms(n as u64)
                }
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "bad argument #1 to 'configure' (pool_idle_ms must be an integer from 1 to 86400000, got {})",
                        match other {
                            Value::Integer(n) => n.to_string(),
                            Value::Number(n) => n.to_string(),
                            o => super::lua_type(&o).to_string(),
                        }
                    )))
                }
            },
            "spin_us" => match v {
                Value::Integer(n) if (0..=10_000).contains(&n) => crate::sched::set_spin_us(n as u64),
                Value::Number(n) if n.fract() == 0.0 && (0.0..=10_000.0).contains(&n) => {
                    crate::sched::set_spin_us(n as u64)
                }
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "bad argument #1 to 'configure' (spin_us must be an integer from 0 to 10000, got {})",
                        match other {
                            Value::Integer(n) => n.to_string(),
                            Value::Number(n) => n.to_string(),
                            o => super::lua_type(&o).to_string(),
                        }
                    )))
                }
            },
            key => {
                let known = "cache_dir, pool_idle_ms, record_keys, spin_us, strict, workers";
                let m = format!("bad argument #1 to 'configure' (unknown option \"{key}\"; known: {known})");
                return Err(mlua::Error::runtime(m));
            }
        }
    }
    Ok(true)
}

/// `wippy.stats(id?)` (SPEC §9): with an ID, that entry's counters (or `nil`); without, every
/// WebAssembly entry's counters by ID, plus `engine` (compilations, cache hits, workers).
pub fn stats(lua: &Lua, id: Option<String>) -> mlua::Result<Value> {
    use std::sync::atomic::Ordering;
    let entry = |l: &crate::runtime::Loaded| -> mlua::Result<Table> {
        let s = l.pool.snapshot();
        let t = lua.create_table()?;
        t.set("calls", s.calls)?;
        t.set("errors", s.errors)?;
        t.set("traps", s.traps)?;
        t.set("timeouts", s.timeouts)?;
        t.set("instances", s.instances)?;
        t.set("recycled", s.recycled)?;
        t.set("busy", s.busy)?;
        t.set("running", s.running)?;
        t.set("queued", s.queued)?;
        t.set("waiting", s.waiting)?;
        t.set("p50_us", s.p50_us)?;
        t.set("p99_us", s.p99_us)?;
        Ok(t)
    };
    if let Some(id) = id {
        return match crate::runtime::get(&id) {
            Some(l) if l.func.is_some() => Ok(Value::Table(entry(&l)?)),
            _ => Ok(Value::Nil),
        };
    }
    let engine = lua.create_table()?;
    engine.set("compiled", crate::engine::cache::COMPILED.load(Ordering::Relaxed))?;
    engine.set("cache_hits", crate::engine::cache::CACHE_HITS.load(Ordering::Relaxed))?;
    engine.set("workers", crate::sched::workers())?;
    engine.set("spin_us", crate::sched::spin_us())?;
    engine.set("task_calls_yield", super::fast::task_calls_yield())?;
    let t = lua.create_table()?;
    t.set("engine", engine)?;
    for l in crate::runtime::entries() {
        if l.func.is_some() {
            t.set(l.entry.id.to_string(), entry(&l)?)?;
        }
    }
    Ok(Value::Table(t))
}

/// Converts a node (YAML value) to Lua; `null` inside sequences keeps its place.
fn node_to_lua(lua: &Lua, n: &Node, in_seq: bool) -> mlua::Result<Value> {
    Ok(match &n.value {
        NodeValue::Null if in_seq => null(),
        NodeValue::Null => Value::Nil,
        NodeValue::Bool(b) => Value::Boolean(*b),
        NodeValue::Int(i) => Value::Integer(*i),
        NodeValue::Float(f) => Value::Number(*f),
        NodeValue::Str(s) => Value::String(lua.create_string(s)?),
        NodeValue::Seq(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, node_to_lua(lua, item, true)?)?;
            }
            Value::Table(t)
        }
        NodeValue::Map(items) => {
            let t = lua.create_table_with_capacity(0, items.len())?;
            for (k, v) in items {
                t.raw_set(k.as_str(), node_to_lua(lua, v, false)?)?;
            }
            Value::Table(t)
        }
    })
}

/// Converts a Lua value given to `registry:add` to a node. Tables with only the keys
/// 1..n are sequences; others are mappings with string keys, in sorted order.
fn lua_to_node(v: &Value, path: &str) -> Result<Node, String> {
    let value = match v {
        Value::Nil => NodeValue::Null,
        Value::Boolean(b) => NodeValue::Bool(*b),
        Value::Integer(i) => NodeValue::Int(*i),
        Value::Number(f) => NodeValue::Float(*f),
        Value::String(s) => {
            NodeValue::Str(s.to_str().map_err(|_| format!("field \"{path}\": invalid UTF-8"))?.to_string())
        }
        Value::LightUserData(_) if *v == null() => NodeValue::Null,
        Value::Table(t) => {
            let len = t.raw_len();
            let mut count = 0usize;
            let mut map = Vec::new();
            for pair in t.pairs::<Value, Value>() {
                let (k, item) = pair.map_err(|e| e.to_string())?;
                count += 1;
                if let Value::String(k) = &k {
                    let key = k.to_str().map_err(|_| format!("field \"{path}\": key is not valid UTF-8"))?.to_string();
                    let sub = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    map.push((key, lua_to_node(&item, &sub)?));
                }
            }
            if len > 0 && count == len {
                let mut items = Vec::with_capacity(len);
                for i in 1..=len {
                    let item: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                    items.push(lua_to_node(&item, &format!("{path}[{i}]"))?);
                }
                NodeValue::Seq(items)
            } else if map.len() == count {
                map.sort_by(|a, b| a.0.cmp(&b.0));
                NodeValue::Map(map)
            } else {
                return Err(format!("field \"{path}\": a table must be an array or have only string keys"));
            }
        }
        other => {
            return Err(format!("field \"{path}\": {} values cannot be stored in the registry", super::lua_type(other)))
        }
    };
    Ok(Node::new(0, value))
}

/// `{id=, kind=, meta=, …fields}`.
fn entry_table(lua: &Lua, e: &Entry) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (k, v) in &e.fields {
        t.raw_set(k.as_str(), node_to_lua(lua, v, false)?)?;
    }
    t.raw_set("id", e.id.to_string())?;
    t.raw_set("kind", e.kind.as_str())?;
    let meta = node_to_lua(lua, &e.meta, false)?;
    t.raw_set("meta", if meta.is_nil() { Value::Table(lua.create_table()?) } else { meta })?;
    Ok(t)
}

fn matches_filter(l: &Loaded, kind: Option<&str>, namespace: Option<&str>) -> bool {
    let e = &l.entry;
    kind.is_none_or(|k| e.kind == k)
        && namespace.is_none_or(|ns| e.id.namespace == ns || e.id.namespace.starts_with(&format!("{ns}.")))
}

/// The `wippy.registry` object.
pub struct Registry;

impl UserData for Registry {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("get", |lua, _, id: String| match runtime::get(&id) {
            Some(l) => Ok(Value::Table(entry_table(lua, &l.entry)?)),
            None => Ok(Value::Nil),
        });
        methods.add_method("entries", |lua, _, filter: Option<Table>| {
            let kind: Option<String> = filter.as_ref().map(|f| f.get("kind")).transpose()?.flatten();
            let ns: Option<String> = filter.as_ref().map(|f| f.get("namespace")).transpose()?.flatten();
            let out = lua.create_table()?;
            for l in runtime::entries() {
                if matches_filter(&l, kind.as_deref(), ns.as_deref()) {
                    out.raw_push(entry_table(lua, &l.entry)?)?;
                }
            }
            Ok(out)
        });
        methods.add_method("add", |lua, _, entry: Table| add(lua, entry));
        methods.add_method("remove", |lua, _, id: String| {
            if runtime::remove(&id) {
                data(lua).handlers.borrow_mut().remove(&id);
                data(lua).targets.refresh();
                Ok(MultiValue::from_iter([Value::Boolean(true)]))
            } else {
                fail(lua, Error::new(Kind::NotFound, format!("entry not found: {id}")))
            }
        });
        methods.add_method("describe", |lua, _, id: String| describe(lua, &id));
        methods.add_meta_method(mlua::MetaMethod::ToString, |_, _, ()| Ok("wippy.registry"));
    }
}

fn add(lua: &Lua, entry: Table) -> mlua::Result<MultiValue> {
    let handler = match entry.raw_get::<Value>("handler")? {
        Value::Function(f) => Some(f),
        Value::Nil => None,
        other => {
            return fail(
                lua,
                Error::invalid(format!("field \"handler\": expected a function, got {}", super::lua_type(&other))),
            )
        }
    };
    let copy = lua.create_table()?;
    for pair in entry.pairs::<Value, Value>() {
        let (k, v) = pair?;
        if !matches!(&k, Value::String(s) if s.as_bytes().as_ref() == b"handler") {
            copy.raw_set(k, v)?;
        }
    }
    let node = match lua_to_node(&Value::Table(copy), "") {
        Ok(n) => n,
        Err(m) => return fail(lua, Error::invalid(m)),
    };
    let base: PathBuf = std::env::current_dir().unwrap_or_default();
    let validated = match runtime::validate_node(&node, &base, handler.is_some()) {
        Ok(e) => e,
        Err(d) => return fail(lua, Error::invalid(d.to_string())),
    };
    let id = validated.id.to_string();
    if let Err(e) = crate::sched::wake::check_fork_pid() {
        return fail(lua, e);
    }
    let warnings = match runtime::add(validated) {
        Ok(w) => w,
        Err(d) => return fail(lua, Error::invalid(d.to_string())),
    };
    let state = data(lua);
    match handler {
        Some(f) => {
            state.handlers.borrow_mut().insert(id, f);
        }
        None => {
            state.handlers.borrow_mut().remove(&id);
        }
    }
    loaded_ok(lua, &warnings)
}

fn describe(lua: &Lua, id: &str) -> mlua::Result<MultiValue> {
    let Some(l) = runtime::get(id) else {
        return fail(lua, Error::new(Kind::NotFound, format!("entry not found: {id}")));
    };
    let Some(f) = &l.func else {
        let why = match l.entry.spec {
            Spec::FunctionLua(_) => "Lua functions have no WIT signature",
            _ => "the entry is not a WebAssembly function",
        };
        return fail(lua, Error::invalid(format!("{id}: cannot describe an entry of kind `{}`: {why}", l.entry.kind)));
    };
    let list = |items: &[crate::engine::Param]| -> mlua::Result<Table> {
        let t = lua.create_table()?;
        for p in items {
            let row = lua.create_table()?;
            row.set("name", p.name.as_str())?;
            row.set("type", p.wit.as_str())?;
            t.raw_push(row)?;
        }
        Ok(t)
    };
    let t = lua.create_table()?;
    t.set("params", list(&f.params)?)?;
    t.set("results", list(&f.results)?)?;
    t.set("wit", f.signature.as_str())?;
    Ok(MultiValue::from_iter([Value::Table(t)]))
}
