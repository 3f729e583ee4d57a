//! The caller's security context (SPEC §5.4): actors, scopes of policies, and their evaluation.
//!
//! Every call carries a [`Context`]; `call::authorize` evaluates its scope for the action
//! `funcs.call` on the target's ID. No Lua here: `lua_api::security` builds these from Lua
//! values.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A JSON-like value of actor metadata, context values and condition operands.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

/// Who is calling.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Actor {
    pub id: String,
    pub meta: BTreeMap<String, Value>,
}

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// How a condition compares an actor's meta field with its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    In,
    NotIn,
    Exists,
    NotExists,
    Contains,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Operator {
    /// The names conditions are written with.
    pub const NAMES: &'static [&'static str] =
        &["eq", "ne", "in", "not_in", "exists", "not_exists", "contains", "gt", "gte", "lt", "lte"];

    /// Parses an operator name (`eq`, `==`, `in`, …).
    ///
    /// # Errors
    /// An unknown name; the message lists the known ones.
    pub fn parse(name: &str) -> Result<Operator, String> {
        Ok(match name {
            "eq" | "==" | "equals" => Operator::Eq,
            "ne" | "!=" | "not_equals" => Operator::Ne,
            "in" => Operator::In,
            "not_in" => Operator::NotIn,
            "exists" => Operator::Exists,
            "not_exists" => Operator::NotExists,
            "contains" => Operator::Contains,
            "gt" | ">" => Operator::Gt,
            "gte" | ">=" => Operator::Gte,
            "lt" | "<" => Operator::Lt,
            "lte" | "<=" => Operator::Lte,
            other => {
                return Err(format!("unknown condition operator {other:?}; known: {}", Operator::NAMES.join(", ")))
            }
        })
    }
}

/// A condition on the actor's metadata: `meta[field] <operator> value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub field: String,
    pub operator: Operator,
    pub value: Value,
}

impl Condition {
    fn holds(&self, actor: Option<&Actor>) -> bool {
        let found = actor.and_then(|a| a.meta.get(&self.field));
        match (self.operator, found) {
            (Operator::Exists, f) => f.is_some(),
            (Operator::NotExists, f) => f.is_none(),
            (_, None) => matches!(self.operator, Operator::Ne | Operator::NotIn),
            (Operator::Eq, Some(v)) => loose_eq(v, &self.value),
            (Operator::Ne, Some(v)) => !loose_eq(v, &self.value),
            (Operator::In, Some(v)) => {
                matches!(&self.value, Value::List(items) if items.iter().any(|i| loose_eq(v, i)))
            }
            (Operator::NotIn, Some(v)) => {
                !matches!(&self.value, Value::List(items) if items.iter().any(|i| loose_eq(v, i)))
            }
            (Operator::Contains, Some(Value::List(items))) => items.iter().any(|i| loose_eq(i, &self.value)),
            (Operator::Contains, Some(Value::Str(s))) => {
                matches!(&self.value, Value::Str(sub) if s.contains(sub.as_str()))
            }
            (Operator::Contains, Some(_)) => false,
            (op, Some(v)) => match (number(v), number(&self.value)) {
                (Some(a), Some(b)) => match op {
                    Operator::Gt => a > b,
                    Operator::Gte => a >= b,
                    Operator::Lt => a < b,
                    _ => a <= b,
                },
                _ => false,
            },
        }
    }
}

/// Equal, with numbers compared by value and a number equal to its decimal text.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Num(x), Value::Str(s)) | (Value::Str(s), Value::Num(x)) => s.parse::<f64>().ok() == Some(*x),
        _ => a == b,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Num(n) => Some(*n),
        Value::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// An action or resource pattern, sorted once into the shapes policies use most (every checked
/// call matches them).
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    pub text: String,
    shape: Shape,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Exact,
    Any,
    /// `prefix*`
    Prefix,
    General,
}

impl Pattern {
    pub fn new(text: &str) -> Pattern {
        let shape = match text.find('*') {
            None => Shape::Exact,
            Some(_) if text == "*" => Shape::Any,
            Some(i) if i == text.len() - 1 => Shape::Prefix,
            Some(_) => Shape::General,
        };
        Pattern { text: text.to_string(), shape }
    }

    #[inline]
    pub fn matches(&self, s: &str) -> bool {
        match self.shape {
            Shape::Exact => self.text == s,
            Shape::Any => true,
            Shape::Prefix => s.starts_with(&self.text[..self.text.len() - 1]),
            Shape::General => glob(&self.text, s),
        }
    }
}

/// One policy of a scope.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub id: String,
    /// Action patterns (`funcs.call`, `fs.*`, `*`).
    pub actions: Vec<Pattern>,
    /// Resource patterns (`app:*`, `app:compute`).
    pub resources: Vec<Pattern>,
    pub effect: Effect,
    pub conditions: Vec<Condition>,
}

impl Policy {
    /// Whether the policy applies to this actor, action and resource.
    fn applies(&self, actor: Option<&Actor>, action: &str, resource: &str) -> bool {
        self.actions.iter().any(|a| a.matches(action))
            && self.resources.iter().any(|r| r.matches(resource))
            && self.conditions.iter().all(|c| c.holds(actor))
    }
}

/// What a scope says of an action on a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// No policy applies.
    Undefined,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Undefined => "undefined",
        }
    }
}

/// An immutable set of policies; `with` and `without` make new scopes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope {
    pub policies: Vec<Arc<Policy>>,
}

impl Scope {
    /// Any applicable deny → deny; an applicable allow and no deny → allow; else undefined.
    pub fn evaluate(&self, actor: Option<&Actor>, action: &str, resource: &str) -> Decision {
        let mut allowed = false;
        for p in &self.policies {
            if p.applies(actor, action, resource) {
                match p.effect {
                    Effect::Deny => return Decision::Deny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::Undefined
        }
    }

    /// This scope with `policy` added (replacing one with the same ID).
    pub fn with(&self, policy: Arc<Policy>) -> Scope {
        let mut policies: Vec<Arc<Policy>> = self.policies.iter().filter(|p| p.id != policy.id).cloned().collect();
        policies.push(policy);
        Scope { policies }
    }

    /// This scope without the policy `id`.
    pub fn without(&self, id: &str) -> Scope {
        Scope { policies: self.policies.iter().filter(|p| p.id != id).cloned().collect() }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.policies.iter().any(|p| p.id == id)
    }
}

/// `*` matches any run of characters; everything else matches itself. Allocates nothing: it
/// runs on every checked call.
pub fn glob(pattern: &str, text: &str) -> bool {
    let Some((head, last)) = pattern.rsplit_once('*') else {
        return pattern == text;
    };
    let (first, middle) = head.split_once('*').unwrap_or((head, ""));
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in middle.split('*').filter(|p| !p.is_empty()) {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// `wippy.configure{ strict = true }`: an undefined decision denies.
static STRICT: AtomicBool = AtomicBool::new(false);

pub fn set_strict(on: bool) {
    STRICT.store(on, Ordering::Relaxed);
}

#[inline]
pub fn strict() -> bool {
    STRICT.load(Ordering::Relaxed)
}

/// How deep registry calls may nest (a Lua function calling entries that call entries …).
pub const MAX_DEPTH: u32 = 64;

/// The security context of one call: actor, scope and context values.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub actor: Option<Arc<Actor>>,
    pub scope: Option<Arc<Scope>>,
    /// Context values (`funcs.context()`).
    pub values: BTreeMap<String, Value>,
    /// How many registry calls are running inside one another here (0 at the top level), and
    /// the first entry of that chain.
    pub depth: u32,
    pub chain: Option<Arc<str>>,
    /// The Lua state the outermost call came from: `function.lua` entries a guest calls run on
    /// its thread (`None`: a context made outside any Lua state).
    pub home: Option<Home>,
    /// The pools whose calls this one runs inside (innermost first): a call nested in a call
    /// of the same pool does not wait for that pool's slot, which its caller holds.
    pub held: Option<Arc<Held>>,
}

/// The Lua state a context belongs to, by its inbox (see [`crate::sched::Job`]).
#[derive(Clone)]
pub struct Home(pub Arc<crate::sched::Inbox>);

impl std::fmt::Debug for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Home({:p})", Arc::as_ptr(&self.0))
    }
}

/// One pool in a context's chain of calls (an address: only compared, never followed).
#[derive(Debug)]
pub struct Held {
    pub pool: usize,
    pub up: Option<Arc<Held>>,
}

impl Context {
    /// The context of a call made from the top level: no actor, no scope, no values.
    pub fn root() -> Arc<Context> {
        Arc::new(Context::default())
    }

    /// The context inside a call of entry `id` made in this one: one level deeper.
    ///
    /// # Errors
    /// The chain is [`MAX_DEPTH`] deep already; the message names its first entry.
    pub fn nested(self: &Arc<Self>, id: &str) -> Result<Arc<Context>, String> {
        if self.depth >= MAX_DEPTH {
            let first = self.chain.as_deref().unwrap_or(id);
            return Err(format!(
                "{first}: registry calls nested more than {MAX_DEPTH} deep (a function calling itself through the registry?)"
            ));
        }
        let mut inner = (**self).clone();
        inner.depth += 1;
        if inner.chain.is_none() {
            inner.chain = Some(id.into());
        }
        Ok(Arc::new(inner))
    }

    /// The context inside a call of WebAssembly entry `id` running in pool `pool` that may
    /// call the registry: one level deeper, with the pool held.
    ///
    /// # Errors
    /// As [`Context::nested`].
    pub fn inside(self: &Arc<Self>, id: &str, pool: usize) -> Result<Arc<Context>, String> {
        let mut inner = self.nested(id)?;
        let c = Arc::make_mut(&mut inner);
        c.held = Some(Arc::new(Held { pool, up: c.held.take() }));
        Ok(inner)
    }

    /// Whether this context runs inside a call of `pool`.
    pub fn holds(&self, pool: usize) -> bool {
        let mut h = self.held.as_deref();
        while let Some(held) = h {
            if held.pool == pool {
                return true;
            }
            h = held.up.as_deref();
        }
        false
    }

    /// Whether this context may do `action` on a resource known by several names (an address
    /// and the host names that led to it): a deny of any denies, else an allow of any allows,
    /// else the undefined rule.
    pub fn can_any(&self, action: &str, resources: &[String]) -> bool {
        let Some(scope) = &self.scope else { return !strict() };
        let mut allowed = false;
        for r in resources {
            match scope.evaluate(self.actor.as_deref(), action, r) {
                Decision::Deny => return false,
                Decision::Allow => allowed = true,
                Decision::Undefined => {}
            }
        }
        allowed || !strict()
    }

    /// Whether this context may do `action` on `resource`: a deny denies; undefined is allowed
    /// unless strict mode is on. Without a scope, nothing applies (undefined).
    #[inline]
    pub fn can(&self, action: &str, resource: &str) -> bool {
        let decision = match &self.scope {
            None => Decision::Undefined,
            Some(scope) => scope.evaluate(self.actor.as_deref(), action, resource),
        };
        match decision {
            Decision::Allow => true,
            Decision::Deny => false,
            Decision::Undefined => !strict(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(id: &str, actions: &[&str], resources: &[&str], effect: Effect) -> Arc<Policy> {
        Arc::new(Policy {
            id: id.into(),
            actions: actions.iter().map(|s| Pattern::new(s)).collect(),
            resources: resources.iter().map(|s| Pattern::new(s)).collect(),
            effect,
            conditions: Vec::new(),
        })
    }

    #[test]
    fn deny_wins_allow_needs_a_match_else_undefined() {
        let scope = Scope::default().with(policy("p1", &["funcs.call"], &["app:*"], Effect::Allow)).with(policy(
            "p2",
            &["funcs.call"],
            &["app:secret"],
            Effect::Deny,
        ));
        assert_eq!(scope.evaluate(None, "funcs.call", "app:compute"), Decision::Allow);
        assert_eq!(scope.evaluate(None, "funcs.call", "app:secret"), Decision::Deny);
        assert_eq!(scope.evaluate(None, "funcs.call", "other:x"), Decision::Undefined);
        assert_eq!(scope.evaluate(None, "fs.get", "app:compute"), Decision::Undefined);
        assert!(scope.contains("p2") && !scope.without("p2").contains("p2"));
        assert_eq!(scope.without("p2").evaluate(None, "funcs.call", "app:secret"), Decision::Allow);
    }

    #[test]
    fn conditions_read_the_actor_meta() {
        let mut p = (*policy("admins", &["*"], &["*"], Effect::Allow)).clone();
        p.conditions.push(Condition {
            field: "role".into(),
            operator: Operator::Eq,
            value: Value::Str("admin".into()),
        });
        let scope = Scope::default().with(Arc::new(p));
        let admin = Actor { id: "u1".into(), meta: [("role".to_string(), Value::Str("admin".into()))].into() };
        let guest = Actor { id: "u2".into(), meta: [("role".to_string(), Value::Str("guest".into()))].into() };
        assert_eq!(scope.evaluate(Some(&admin), "funcs.call", "a:b"), Decision::Allow);
        assert_eq!(scope.evaluate(Some(&guest), "funcs.call", "a:b"), Decision::Undefined);
        assert_eq!(scope.evaluate(None, "funcs.call", "a:b"), Decision::Undefined);
        let level = Condition { field: "level".into(), operator: Operator::Gte, value: Value::Num(3.0) };
        let a = Actor { id: "x".into(), meta: [("level".to_string(), Value::Num(4.0))].into() };
        assert!(level.holds(Some(&a)));
        let within = Condition {
            field: "level".into(),
            operator: Operator::In,
            value: Value::List(vec![Value::Num(1.0), Value::Num(4.0)]),
        };
        assert!(within.holds(Some(&a)));
        assert!(Operator::parse("sometimes").is_err());
    }

    #[test]
    fn patterns_match_as_globs() {
        for (p, t) in
            [("app:*", "app:x"), ("*", "x"), ("exact", "exact"), ("a*c", "abc"), ("a*c", "ab"), ("app:*", "ap")]
        {
            assert_eq!(Pattern::new(p).matches(t), glob(p, t), "{p} {t}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("app:*", "app:x"));
        assert!(glob("*", ""));
        assert!(glob("fs.*", "fs.get"));
        assert!(!glob("app:*", "other:x"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abde"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
        assert!(glob("a**b", "ab") && glob("*x*", "axb") && !glob("*x*", "ab"));
        assert!(!glob("ab*ba", "aba") && glob("ab*ba", "abba"));
    }
}
