//! Types resolved once per entry, so a call walks plain Rust data instead of wasmtime's
//! type handles, and record field names (with their snake_case aliases) are ready to use.

use std::sync::Arc;

/// A WIT value type as conversion needs it.
#[derive(Clone, Debug)]
pub enum Ty {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    /// `list<u8>`: a Lua string.
    Bytes,
    List(Box<Ty>),
    /// A record: its fields, and its WIT name (`address`), which messages use.
    Record(Arc<[Field]>, Name),
    Tuple(Arc<[Ty]>),
    Variant(Arc<[Case]>, Name),
    Enum(Arc<[String]>, Name),
    Option(Box<Ty>),
    Result(Option<Box<Ty>>, Option<Box<Ty>>),
    Flags(Arc<[String]>, Name),
    /// An owned resource handle: the userdata is given away by the call.
    Own(Arc<super::resource::ResourceInfo>),
    /// A borrowed resource handle: the userdata stays usable.
    Borrow(Arc<super::resource::ResourceInfo>),
    /// A type this version cannot convert yet (futures, streams, maps).
    Unsupported(&'static str),
    /// `type name = ...` of a type that has no name of its own (a list, option, tuple, result,
    /// primitive): converts as the type it stands for, messages name it (`ids (list<u32>)`).
    /// Records, variants, enums and flags carry an alias as their own name instead.
    Named(Arc<str>, Box<Ty>),
}

/// The WIT name of a named type (`address`; an alias `type a = b` gives `a`), read only when a
/// message is made. `None` for types built without WIT (tests, core signatures).
pub type Name = Option<Arc<str>>;

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    /// The snake_case spelling of a kebab-case name, accepted on input.
    pub alias: Option<String>,
    pub ty: Ty,
    /// The index of the name in a Lua state's table of interned field names (the alias is
    /// at `key + 1`), so conversions find the key string without making it; see [`Field::new`].
    pub key: u32,
}

static NEXT_KEY: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

impl Field {
    /// A field with its snake_case alias (for kebab-case names) and fresh name keys.
    pub fn new(name: &str, ty: Ty) -> Field {
        let alias = name.contains('-').then(|| name.replace('-', "_"));
        let key = NEXT_KEY.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
        Field { name: name.to_string(), alias, ty, key }
    }
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub ty: Option<Ty>,
}

impl Ty {
    /// The type itself without the alias that names it: what the value must be.
    #[inline]
    pub fn bare(&self) -> &Ty {
        match self {
            Ty::Named(_, inner) => inner,
            other => other,
        }
    }

    /// True when `leaf` holds for every type this one is made of (itself, if not compound).
    fn all_leaves(&self, leaf: &impl Fn(&Ty) -> bool) -> bool {
        match self {
            Ty::List(t) | Ty::Option(t) | Ty::Named(_, t) => t.all_leaves(leaf),
            Ty::Record(fields, _) => fields.iter().all(|f| f.ty.all_leaves(leaf)),
            Ty::Tuple(ts) => ts.iter().all(|t| t.all_leaves(leaf)),
            Ty::Variant(cases, _) => cases.iter().all(|c| c.ty.as_ref().is_none_or(|t| t.all_leaves(leaf))),
            Ty::Result(ok, err) => {
                ok.as_deref().is_none_or(|t| t.all_leaves(leaf)) && err.as_deref().is_none_or(|t| t.all_leaves(leaf))
            }
            other => leaf(other),
        }
    }

    /// True when values of this type convert on the Lua stack with the C API (`read`, `push`)
    /// also for the `Val` paths: no resource handles, and on LuaJIT no 64-bit integers (which
    /// may be cdata).
    pub fn stack_convertible(&self) -> bool {
        self.all_leaves(&|t| match t {
            Ty::Own(_) | Ty::Borrow(_) | Ty::Unsupported(_) => false,
            Ty::S64 | Ty::U64 => !cfg!(feature = "luajit"),
            _ => true,
        })
    }

    /// True when values of this type travel on a value tape (`convert::tape`): no resource
    /// handles. (LuaJIT 64-bit cdata arguments send a call to the general rules.)
    pub fn tape_convertible(&self) -> bool {
        self.all_leaves(&|t| !matches!(t, Ty::Own(_) | Ty::Borrow(_) | Ty::Unsupported(_)))
    }

    /// True when values of this type can hold resource handles.
    pub fn has_resources(&self) -> bool {
        !self.all_leaves(&|t| !matches!(t, Ty::Own(_) | Ty::Borrow(_)))
    }

    /// The type as WIT writes it, named types by their names (`list<line-item>`, `address`) as
    /// `describe` prints them; a type without a name is spelled out (`record { a: s32 }`).
    pub fn describe(&self) -> String {
        match self {
            Ty::Record(_, Some(n))
            | Ty::Variant(_, Some(n))
            | Ty::Enum(_, Some(n))
            | Ty::Flags(_, Some(n))
            | Ty::Named(n, _) => n.to_string(),
            Ty::Bool => "bool".into(),
            Ty::S8 => "s8".into(),
            Ty::U8 => "u8".into(),
            Ty::S16 => "s16".into(),
            Ty::U16 => "u16".into(),
            Ty::S32 => "s32".into(),
            Ty::U32 => "u32".into(),
            Ty::S64 => "s64".into(),
            Ty::U64 => "u64".into(),
            Ty::F32 => "f32".into(),
            Ty::F64 => "f64".into(),
            Ty::Char => "char".into(),
            Ty::String => "string".into(),
            Ty::Bytes => "list<u8>".into(),
            Ty::List(t) => format!("list<{}>", t.describe()),
            Ty::Record(fields, None) => {
                let inner: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.name, f.ty.describe())).collect();
                format!("record {{ {} }}", inner.join(", "))
            }
            Ty::Tuple(ts) => {
                let inner: Vec<String> = ts.iter().map(Ty::describe).collect();
                format!("tuple<{}>", inner.join(", "))
            }
            Ty::Variant(cases, None) => {
                let inner: Vec<String> = cases
                    .iter()
                    .map(|c| match &c.ty {
                        Some(t) => format!("{}({})", c.name, t.describe()),
                        None => c.name.clone(),
                    })
                    .collect();
                format!("variant {{ {} }}", inner.join(", "))
            }
            Ty::Enum(names, None) => format!("enum {{ {} }}", names.join(", ")),
            Ty::Option(t) => format!("option<{}>", t.describe()),
            Ty::Result(ok, err) => match (ok, err) {
                (None, None) => "result".into(),
                (Some(o), None) => format!("result<{}>", o.describe()),
                (None, Some(e)) => format!("result<_, {}>", e.describe()),
                (Some(o), Some(e)) => format!("result<{}, {}>", o.describe(), e.describe()),
            },
            Ty::Flags(names, None) => format!("flags {{ {} }}", names.join(", ")),
            Ty::Own(r) => r.name.clone(),
            Ty::Borrow(r) => format!("borrow<{}>", r.name),
            Ty::Unsupported(what) => (*what).into(),
        }
    }

    /// What a message says a value of this type must be, after "expected": the type's name and,
    /// for named types, what kind of Lua value that is (`address (a record: a table)`).
    /// Made only on the error path.
    pub fn expected(&self) -> String {
        match self {
            Ty::Record(_, n) => named(n, "a record", "a table"),
            Ty::Variant(_, n) => named(n, "a variant", "{case = payload} or a case name"),
            Ty::Enum(names, n) => named(n, "an enum case", &names.join("|")),
            Ty::Flags(_, n) => named(n, "flags", "a set table or an array of names"),
            Ty::Bytes => "list<u8> (a string or an array of bytes)".into(),
            Ty::Result(..) => format!("{} ({{ok = value}} or {{err = value}})", self.describe()),
            Ty::Named(n, inner) => match inner.expected().strip_prefix(inner.describe().as_str()) {
                Some(form) if form.starts_with(" (") => format!("{n} ({}: {}", inner.describe(), &form[2..]),
                _ => format!("{n} ({})", inner.describe()),
            },
            other => other.describe(),
        }
    }

    /// A message made for the type this alias stands for, at the aliased value itself, naming
    /// the alias: `expected u16, got -1 (…)` → `expected port (u16), got -1 (…)`, `expected
    /// list<u8> (a string …), got …` → `expected blob (list<u8>: a string …), got …`. Other
    /// messages (about an element, or already naming the alias) are returned unchanged. Made
    /// only on the error path.
    pub fn name_message(&self, message: String) -> String {
        let Ty::Named(n, inner) = self else { return message };
        let spelled = inner.describe();
        let Some(rest) = message.strip_prefix("expected ").and_then(|m| m.strip_prefix(spelled.as_str())) else {
            return message;
        };
        match rest.strip_prefix(" (") {
            Some(form) => format!("expected {n} ({spelled}: {form}"),
            None if rest.is_empty() || rest.starts_with(',') => format!("expected {n} ({spelled}){rest}"),
            None => message,
        }
    }

    /// A variant or result given as a table without exactly one key: `rule` is what it must be
    /// (`a table with one key`), `got` what it is.
    pub fn one_key(&self, rule: &str, got: &str) -> String {
        let form = match self {
            Ty::Variant(..) => "a variant {case = payload}",
            _ => "{ok = value} or {err = value}",
        };
        format!("expected {} ({form}, {rule}), got {got}", self.describe())
    }
}

/// `address (a record: a table)`, or `a record (a table)` without a name.
pub fn named(n: &Name, kind: &str, how: &str) -> String {
    match n {
        Some(n) => format!("{n} ({kind}: {how})"),
        None => format!("{kind} ({how})"),
    }
}

/// ` of color` after "unknown enum case \"x\"", or nothing without a name.
pub fn of(n: &Name) -> String {
    n.as_ref().map(|n| format!(" of {n}")).unwrap_or_default()
}

/// A WIT type that lowers to exactly one core value, so a core module can be called
/// directly without the canonical ABI's memory traffic.
#[derive(Clone, Debug)]
pub enum Scalar {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    Enum(Arc<[String]>, Name),
}

impl Scalar {
    pub fn from_ty(ty: &Ty) -> Option<Scalar> {
        Some(match ty {
            Ty::Bool => Scalar::Bool,
            Ty::S8 => Scalar::S8,
            Ty::U8 => Scalar::U8,
            Ty::S16 => Scalar::S16,
            Ty::U16 => Scalar::U16,
            Ty::S32 => Scalar::S32,
            Ty::U32 => Scalar::U32,
            Ty::S64 => Scalar::S64,
            Ty::U64 => Scalar::U64,
            Ty::F32 => Scalar::F32,
            Ty::F64 => Scalar::F64,
            Ty::Char => Scalar::Char,
            Ty::Enum(names, n) => Scalar::Enum(names.clone(), n.clone()),
            // Messages about the argument itself name the alias (`lua_api::funcs::arg_error`).
            Ty::Named(_, inner) => return Scalar::from_ty(inner),
            _ => return None,
        })
    }

    pub fn to_ty(&self) -> Ty {
        match self {
            Scalar::Bool => Ty::Bool,
            Scalar::S8 => Ty::S8,
            Scalar::U8 => Ty::U8,
            Scalar::S16 => Ty::S16,
            Scalar::U16 => Ty::U16,
            Scalar::S32 => Ty::S32,
            Scalar::U32 => Ty::U32,
            Scalar::S64 => Ty::S64,
            Scalar::U64 => Ty::U64,
            Scalar::F32 => Ty::F32,
            Scalar::F64 => Ty::F64,
            Scalar::Char => Ty::Char,
            Scalar::Enum(names, n) => Ty::Enum(names.clone(), n.clone()),
        }
    }

    /// A core value as the untyped form `Func::call_unchecked` takes.
    pub fn to_raw(v: &wasmtime::Val) -> wasmtime::ValRaw {
        match *v {
            wasmtime::Val::I32(i) => wasmtime::ValRaw::i32(i),
            wasmtime::Val::I64(i) => wasmtime::ValRaw::i64(i),
            wasmtime::Val::F32(b) => wasmtime::ValRaw::f32(b),
            wasmtime::Val::F64(b) => wasmtime::ValRaw::f64(b),
            _ => wasmtime::ValRaw::i32(0),
        }
    }

    /// Reads a core result of this scalar's core type.
    pub fn from_raw(&self, raw: &wasmtime::ValRaw) -> wasmtime::Val {
        match self.core() {
            wasmtime::ValType::I64 => wasmtime::Val::I64(raw.get_i64()),
            wasmtime::ValType::F32 => wasmtime::Val::F32(raw.get_f32()),
            wasmtime::ValType::F64 => wasmtime::Val::F64(raw.get_f64()),
            _ => wasmtime::Val::I32(raw.get_i32()),
        }
    }

    /// The core value type it lowers to.
    pub fn core(&self) -> wasmtime::ValType {
        match self {
            Scalar::S64 | Scalar::U64 => wasmtime::ValType::I64,
            Scalar::F32 => wasmtime::ValType::F32,
            Scalar::F64 => wasmtime::ValType::F64,
            _ => wasmtime::ValType::I32,
        }
    }
}
