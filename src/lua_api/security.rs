//! `require("wippy").security` (also `require("security")`), `funcs.context()`, and the
//! context objects executors carry (SPEC §5.4). Actors and scopes are immutable userdata.

use std::collections::BTreeMap;
use std::sync::Arc;

use mlua::{AnyUserData, Lua, MultiValue, Table, UserData, UserDataMethods, Value};

use super::state::data;
use crate::security::{Actor, Condition, Context, Effect, Operator, Pattern, Policy, Scope, Value as SValue};

/// An actor (`security.new_actor`).
pub struct LuaActor(pub Arc<Actor>);

/// A scope (`security.new_scope`, `scope:with`, …).
pub struct LuaScope(pub Arc<Scope>);

/// What an executor sets over its caller's context: an actor, a scope, values.
#[derive(Clone, Default)]
pub struct Overrides {
    actor: Option<Arc<Actor>>,
    scope: Option<Arc<Scope>>,
    values: BTreeMap<String, SValue>,
}

/// A whole context, kept by the scheduler for a task (`core.current`, `core.enter`).
pub struct LuaContext(pub Arc<Context>);

impl UserData for LuaContext {}
impl UserData for Overrides {}

impl Overrides {
    /// The context of a call: the caller's, with these set over it (explicit values win).
    pub fn over(&self, base: &Arc<Context>) -> Arc<Context> {
        let mut values = base.values.clone();
        values.extend(self.values.iter().map(|(k, v)| (k.clone(), v.clone())));
        Arc::new(Context {
            actor: self.actor.clone().or_else(|| base.actor.clone()),
            scope: self.scope.clone().or_else(|| base.scope.clone()),
            values,
            depth: base.depth,
            chain: base.chain.clone(),
            home: base.home.clone(),
            held: base.held.clone(),
        })
    }
}

impl UserData for LuaActor {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("id", |_, this, ()| Ok(this.0.id.clone()));
        methods.add_method("meta", |lua, this, ()| map_to_lua(lua, &this.0.meta));
        methods.add_meta_method(mlua::MetaMethod::ToString, |_, this, ()| Ok(format!("actor {}", this.0.id)));
    }
}

impl UserData for LuaScope {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("with", |_, this, policy: Table| {
            Ok(LuaScope(Arc::new(this.0.with(Arc::new(policy_from_lua(&policy).map_err(bad("with"))?)))))
        });
        methods.add_method("without", |_, this, id: String| Ok(LuaScope(Arc::new(this.0.without(&id)))));
        methods.add_method("contains", |_, this, id: String| Ok(this.0.contains(&id)));
        methods.add_method("policies", |lua, this, ()| {
            let t = lua.create_table()?;
            for (i, p) in this.0.policies.iter().enumerate() {
                t.raw_set(i + 1, policy_to_lua(lua, p)?)?;
            }
            Ok(t)
        });
        methods.add_method("evaluate", |_, this, (actor, action, resource): (Value, String, String)| {
            let actor = actor_arg(&actor, "evaluate")?;
            Ok(this.0.evaluate(actor.as_deref(), &action, &resource).as_str())
        });
        methods.add_meta_method(mlua::MetaMethod::ToString, |_, this, ()| {
            Ok(format!("scope of {} policies", this.0.policies.len()))
        });
    }
}

fn bad(func: &'static str) -> impl Fn(String) -> mlua::Error {
    move |m| mlua::Error::runtime(format!("bad argument #1 to '{func}' ({m})"))
}

/// An actor argument: an actor userdata or nil.
fn actor_arg(v: &Value, func: &str) -> mlua::Result<Option<Arc<Actor>>> {
    match v {
        Value::Nil => Ok(None),
        Value::UserData(ud) => match ud.borrow::<LuaActor>() {
            Ok(a) => Ok(Some(a.0.clone())),
            Err(_) => Err(mlua::Error::runtime(format!("bad argument #1 to '{func}' (actor expected, got userdata)"))),
        },
        other => Err(mlua::Error::runtime(format!(
            "bad argument #1 to '{func}' (actor expected, got {})",
            super::lua_type(other)
        ))),
    }
}

/// A Lua value as a context or meta value.
pub fn value_from_lua(v: &Value, depth: usize) -> Result<SValue, String> {
    if depth > 32 {
        return Err("value nested too deeply".into());
    }
    Ok(match v {
        Value::Nil => SValue::Null,
        Value::Boolean(b) => SValue::Bool(*b),
        Value::Integer(i) => SValue::Num(*i as f64),
        Value::Number(n) => SValue::Num(*n),
        Value::String(s) => SValue::Str(s.to_string_lossy()),
        Value::Table(t) => {
            let n = t.raw_len();
            if n > 0 {
                let mut items = Vec::with_capacity(n);
                for i in 1..=n {
                    items.push(value_from_lua(&t.raw_get::<Value>(i).map_err(|e| e.to_string())?, depth + 1)?);
                }
                SValue::List(items)
            } else {
                let mut map = BTreeMap::new();
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, v) = pair.map_err(|e| e.to_string())?;
                    let Value::String(k) = k else { return Err("table keys must be strings".into()) };
                    map.insert(k.to_string_lossy(), value_from_lua(&v, depth + 1)?);
                }
                SValue::Map(map)
            }
        }
        other => return Err(format!("{} values cannot be kept in a security context", super::lua_type(other))),
    })
}

pub fn value_to_lua(lua: &Lua, v: &SValue) -> mlua::Result<Value> {
    Ok(match v {
        SValue::Null => Value::Nil,
        SValue::Bool(b) => Value::Boolean(*b),
        SValue::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Value::Integer(*n as i64),
        SValue::Num(n) => Value::Number(*n),
        SValue::Str(s) => Value::String(lua.create_string(s)?),
        SValue::List(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, value_to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        SValue::Map(map) => Value::Table(map_to_lua(lua, map)?),
    })
}

fn map_to_lua(lua: &Lua, map: &BTreeMap<String, SValue>) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, map.len())?;
    for (k, v) in map {
        t.raw_set(k.as_str(), value_to_lua(lua, v)?)?;
    }
    Ok(t)
}

fn strings(v: Value, field: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.to_string_lossy()]),
        Value::Table(t) => {
            let mut out = Vec::new();
            for i in 1..=t.raw_len() {
                match t.raw_get::<Value>(i).map_err(|e| e.to_string())? {
                    Value::String(s) => out.push(s.to_string_lossy()),
                    other => return Err(format!("{field}[{i}] must be a string, got {}", super::lua_type(&other))),
                }
            }
            Ok(out)
        }
        other => Err(format!("{field} must be a list of strings, got {}", super::lua_type(&other))),
    }
}

/// A policy table: `{ id =, actions =, resources =, effect =, conditions = }`.
fn policy_from_lua(t: &Table) -> Result<Policy, String> {
    let mut id = None;
    let (mut actions, mut resources, mut effect, mut conditions) = (Vec::new(), Vec::new(), None, Vec::new());
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let key = match &k {
            Value::String(s) => s.to_string_lossy(),
            other => return Err(format!("policy keys must be strings, got {}", super::lua_type(other))),
        };
        match key.as_str() {
            "id" => match v {
                Value::String(s) => id = Some(s.to_string_lossy()),
                other => return Err(format!("policy id must be a string, got {}", super::lua_type(&other))),
            },
            "actions" => actions = strings(v, "actions")?.iter().map(|a| Pattern::new(a)).collect(),
            "resources" => resources = strings(v, "resources")?.iter().map(|r| Pattern::new(r)).collect(),
            "effect" => {
                effect = Some(match v {
                    Value::String(s) if s.as_bytes().as_ref() == b"allow" => Effect::Allow,
                    Value::String(s) if s.as_bytes().as_ref() == b"deny" => Effect::Deny,
                    _ => return Err("policy effect must be \"allow\" or \"deny\"".into()),
                })
            }
            "conditions" => {
                let Value::Table(list) = v else { return Err("policy conditions must be a list".into()) };
                for i in 1..=list.raw_len() {
                    let Value::Table(c) = list.raw_get::<Value>(i).map_err(|e| e.to_string())? else {
                        return Err(format!("conditions[{i}] must be a table"));
                    };
                    let field: Option<String> = c.raw_get("field").map_err(|e| e.to_string())?;
                    let operator: Option<String> = c.raw_get("operator").map_err(|e| e.to_string())?;
                    let value: Value = c.raw_get("value").map_err(|e| e.to_string())?;
                    let field = field.ok_or_else(|| format!("conditions[{i}].field is required"))?;
                    let operator = Operator::parse(&operator.unwrap_or_else(|| "eq".into()))?;
                    conditions.push(Condition { field, operator, value: value_from_lua(&value, 0)? });
                }
            }
            other => {
                return Err(format!(
                    "unknown policy field \"{other}\"; known: id, actions, resources, effect, conditions"
                ))
            }
        }
    }
    Ok(Policy {
        id: id.ok_or("a policy needs an id")?,
        actions,
        resources,
        effect: effect.ok_or("a policy needs an effect (\"allow\" or \"deny\")")?,
        conditions,
    })
}

fn policy_to_lua(lua: &Lua, p: &Policy) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("id", p.id.as_str())?;
    t.raw_set("actions", p.actions.iter().map(|a| a.text.clone()).collect::<Vec<_>>())?;
    t.raw_set("resources", p.resources.iter().map(|r| r.text.clone()).collect::<Vec<_>>())?;
    t.raw_set("effect", if p.effect == Effect::Allow { "allow" } else { "deny" })?;
    if !p.conditions.is_empty() {
        let list = lua.create_table()?;
        for (i, c) in p.conditions.iter().enumerate() {
            let ct = lua.create_table()?;
            ct.raw_set("field", c.field.as_str())?;
            ct.raw_set("operator", Operator::NAMES[c.operator as usize])?;
            ct.raw_set("value", value_to_lua(lua, &c.value)?)?;
            list.raw_set(i + 1, ct)?;
        }
        t.raw_set("conditions", list)?;
    }
    Ok(t)
}

/// Builds the `security` table, `funcs.context`, and the scheduler's context hooks in `core`.
///
/// # Errors
/// When Lua fails to allocate.
pub fn install(lua: &Lua, module: &Table, funcs: &Table, core: &Table) -> mlua::Result<()> {
    let sec = lua.create_table()?;
    sec.set(
        "new_actor",
        lua.create_function(|_, (id, meta): (Value, Option<Table>)| {
            let Value::String(id) = id else {
                return Err(mlua::Error::runtime(format!(
                    "bad argument #1 to 'new_actor' (string expected, got {})",
                    super::lua_type(&id)
                )));
            };
            let meta = match meta {
                None => BTreeMap::new(),
                Some(t) => match value_from_lua(&Value::Table(t), 0).map_err(bad("new_actor"))? {
                    SValue::Map(m) => m,
                    SValue::List(l) if l.is_empty() => BTreeMap::new(),
                    _ => {
                        return Err(mlua::Error::runtime(
                            "bad argument #2 to 'new_actor' (meta must be a table with string keys)",
                        ))
                    }
                },
            };
            Ok(LuaActor(Arc::new(Actor { id: id.to_string_lossy(), meta })))
        })?,
    )?;
    sec.set(
        "new_scope",
        lua.create_function(|_, policies: Option<Table>| {
            let mut scope = Scope::default();
            if let Some(list) = policies {
                for i in 1..=list.raw_len() {
                    let Value::Table(p) = list.raw_get::<Value>(i)? else {
                        return Err(mlua::Error::runtime(format!(
                            "bad argument #1 to 'new_scope' (policy {i} must be a table)"
                        )));
                    };
                    scope = scope.with(Arc::new(policy_from_lua(&p).map_err(bad("new_scope"))?));
                }
            }
            Ok(LuaScope(Arc::new(scope)))
        })?,
    )?;
    sec.set(
        "can",
        lua.create_function(|lua, (action, resource): (String, String)| {
            Ok(data(lua).current.borrow().can(&action, &resource))
        })?,
    )?;
    sec.set(
        "actor",
        lua.create_function(|lua, ()| {
            let actor = data(lua).current.borrow().actor.clone();
            actor.map(|a| lua.create_userdata(LuaActor(a))).transpose()
        })?,
    )?;
    sec.set(
        "scope",
        lua.create_function(|lua, ()| {
            let scope = data(lua).current.borrow().scope.clone();
            scope.map(|s| lua.create_userdata(LuaScope(s))).transpose()
        })?,
    )?;
    module.set("security", sec.clone())?;
    funcs.set(
        "context",
        lua.create_function(|lua, ()| {
            let ctx = data(lua).current.borrow().clone();
            map_to_lua(lua, &ctx.values)
        })?,
    )?;

    // Executors: `core.overrides(prev, kind, value)` → new overrides; the scheduler's tasks keep
    // the context they were spawned in (`core.current`, `core.enter`).
    core.set(
        "overrides",
        lua.create_function(|_, (prev, kind, value): (Option<AnyUserData>, String, Value)| {
            let mut o = match prev {
                Some(ud) => ud.borrow::<Overrides>()?.clone(),
                None => Overrides::default(),
            };
            match kind.as_str() {
                "actor" => o.actor = actor_arg(&value, "with_actor")?,
                "scope" => {
                    o.scope = match &value {
                        Value::UserData(ud) => Some(
                            ud.borrow::<LuaScope>()
                                .map_err(|_| {
                                    mlua::Error::runtime(
                                        "bad argument #1 to 'with_scope' (scope expected, got userdata)",
                                    )
                                })?
                                .0
                                .clone(),
                        ),
                        Value::Nil => None,
                        other => {
                            return Err(mlua::Error::runtime(format!(
                                "bad argument #1 to 'with_scope' (scope expected, got {})",
                                super::lua_type(other)
                            )))
                        }
                    }
                }
                _ => match value_from_lua(&value, 0).map_err(bad("with_context"))? {
                    SValue::Map(m) => o.values.extend(m),
                    SValue::List(l) if l.is_empty() => {}
                    _ => {
                        return Err(mlua::Error::runtime(
                            "bad argument #1 to 'with_context' (a table with string keys expected)",
                        ))
                    }
                },
            }
            Ok(o)
        })?,
    )?;
    core.set("current", lua.create_function(|lua, ()| Ok(LuaContext(data(lua).current.borrow().clone())))?)?;
    // `core.enter(ctx)` makes ctx current and returns what to restore: the previous context,
    // or `true` when ctx was current already (the usual case: nothing to swap, nothing made).
    // `core.enter(true)` does nothing.
    core.set(
        "enter",
        lua.create_function(|lua, ctx: Value| {
            let next = match &ctx {
                Value::UserData(ud) => ud.borrow::<LuaContext>()?.0.clone(),
                Value::Boolean(true) => return Ok(Value::Boolean(true)),
                _ => data(lua).root.clone(),
            };
            let state = data(lua);
            if Arc::ptr_eq(&state.current.borrow(), &next) {
                return Ok(Value::Boolean(true));
            }
            let previous = state.current.replace(next);
            Ok(Value::UserData(lua.create_userdata(LuaContext(previous))?))
        })?,
    )?;

    let package: Table = lua.globals().get("package")?;
    let preload: Table = package.get("preload")?;
    if preload.raw_get::<Value>("security")?.is_nil() {
        preload.raw_set("security", lua.create_function(move |_, _: MultiValue| Ok(sec.clone()))?)?;
    }
    Ok(())
}

/// The context of a call made through an executor with `overrides` (or none).
pub fn context_for(lua: &Lua, overrides: Option<&AnyUserData>) -> mlua::Result<Arc<Context>> {
    let base = data(lua).current.borrow().clone();
    match overrides {
        None => Ok(base),
        Some(ud) => Ok(ud.borrow::<Overrides>()?.over(&base)),
    }
}
