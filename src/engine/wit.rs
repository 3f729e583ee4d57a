//! The `wit` field of core modules: parsed by wit-parser into a world whose exports describe
//! the module's exports.

use std::sync::Arc;

use std::collections::HashMap;

use wit_parser::{Function, FunctionKind, Resolve, Type, TypeDefKind, TypeId, WorldId, WorldItem, WorldKey};

use crate::convert::resource::ResourceInfo;

use crate::convert::ty::{Case, Field, Name, Ty};

/// The package given to WIT text that names none.
const PACKAGE: &str = "wippy:entry";

/// A parsed `wit` field and the world that exports its functions.
pub struct Wit {
    pub resolve: Resolve,
    pub world: WorldId,
    /// Resource types the world exports, by (de-aliased) type ID; empty for core modules.
    pub resources: HashMap<TypeId, Arc<ResourceInfo>>,
}

/// One function the world exports.
pub struct Export {
    /// How `method` names it: `name` or `interface#name`.
    pub method: String,
    /// The core export name the canonical ABI expects (`name` or `ns:pkg/iface#name`).
    pub canonical: String,
    /// The function's own name (`name`).
    pub name: String,
    pub func: Function,
}

fn is_full_document(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start();
        ["package ", "interface ", "world ", "use "].iter().any(|kw| line.starts_with(kw))
    })
}

/// Turns bare signatures (`add: func(a: s32) -> s32;`) into world exports, keeping every
/// newline so that parse errors point at the user's lines.
fn wrap_bare(text: &str) -> String {
    let mut out = format!("package {PACKAGE}; world entry {{ ");
    let mut at_start = true;
    let mut in_comment = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_comment {
            out.push(c);
            if c == '\n' {
                in_comment = false;
            }
            continue;
        }
        if c == '/' && chars.peek() == Some(&'/') {
            in_comment = true;
            out.push(c);
            continue;
        }
        if at_start && !c.is_whitespace() {
            out.push_str("export ");
            at_start = false;
        }
        out.push(c);
        if c == ';' {
            at_start = true;
        }
    }
    out.push_str(" }");
    out
}

/// Parses the `wit` field.
///
/// # Errors
/// The parser's message, with the line in the user's text.
pub fn parse(text: &str) -> Result<Wit, String> {
    // Text added before the user's first line; columns on line 1 shift by its length.
    let mut prefix = String::new();
    // Bare signatures get `export ` before each statement.
    let mut per_line = 0;
    let source = if is_full_document(text) {
        let mut src = String::new();
        if !text.lines().any(|l| l.trim_start().starts_with("package ")) {
            // Same line as the user's first line, so line numbers stay the same.
            prefix = format!("package {PACKAGE}; ");
            src.push_str(&prefix);
        }
        src.push_str(text);
        if !text.lines().any(|l| l.trim_start().starts_with("world ")) {
            // A world that exports every interface of the document.
            let names = interface_names(text);
            src.push_str(" world entry {");
            for n in names {
                src.push_str(&format!(" export {n};"));
            }
            src.push_str(" }");
        }
        src
    } else {
        prefix = format!("package {PACKAGE}; world entry {{ export ");
        per_line = "export ".len();
        wrap_bare(text)
    };
    let mut resolve = Resolve::default();
    let pkg = resolve
        .push_str("wit", &source)
        .map_err(|e| located("invalid `wit`", &resolve.render_error(&e), prefix.len(), per_line))?;
    let world = resolve
        .select_world(&[pkg], None)
        .map_err(|e| format!("invalid `wit`: {}", super::one_line(&format!("{e:#}"))))?;
    Ok(Wit { resolve, world, resources: HashMap::new() })
}

/// Turns a rendered parser error (`message --> file:L:C | snippet`) into
/// `what at line L, column C: message`.
pub fn located(what: &str, rendered: &str, first_line_shift: usize, other_lines_shift: usize) -> String {
    let message = rendered.lines().next().unwrap_or_default().trim();
    let location = rendered.lines().find_map(|l| l.trim().strip_prefix("--> ")).and_then(|loc| {
        let mut parts = loc.rsplitn(3, ':');
        let col: usize = parts.next()?.trim().parse().ok()?;
        let line: usize = parts.next()?.trim().parse().ok()?;
        Some((line, col))
    });
    match location {
        Some((line, col)) => {
            let shift = if line == 1 { first_line_shift } else { other_lines_shift };
            let col = col.saturating_sub(shift).max(1);
            format!("{what} at line {line}, column {col}: {message}")
        }
        None => format!("{what}: {}", super::one_line(rendered)),
    }
}

fn interface_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("interface "))
        .filter_map(|rest| rest.split(|c: char| c.is_whitespace() || c == '{').next())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

impl Wit {
    /// Follows `type x = y` (and `use`) to the type defined.
    pub fn dealias(&self, mut id: TypeId) -> TypeId {
        while let TypeDefKind::Type(Type::Id(next)) = self.resolve.types[id].kind {
            id = next;
        }
        id
    }

    /// The resource type a method belongs to, for `[method]` exports.
    pub fn method_of(f: &Function) -> Option<TypeId> {
        match f.kind {
            FunctionKind::Method(r) => Some(r),
            _ => None,
        }
    }

    /// Every function the world exports, in declaration order.
    pub fn exports(&self) -> Vec<Export> {
        let world = &self.resolve.worlds[self.world];
        let mut out = Vec::new();
        for (key, item) in &world.exports {
            match item {
                WorldItem::Function(f) => out.push(Export {
                    method: f.name.clone(),
                    canonical: f.name.clone(),
                    name: f.name.clone(),
                    func: f.clone(),
                }),
                WorldItem::Interface { id, .. } => {
                    let iface = &self.resolve.interfaces[*id];
                    let short = match key {
                        WorldKey::Name(n) => n.clone(),
                        WorldKey::Interface(_) => iface.name.clone().unwrap_or_default(),
                    };
                    let long = self.resolve.name_world_key(key);
                    for (name, f) in &iface.functions {
                        out.push(Export {
                            method: format!("{short}#{name}"),
                            canonical: format!("{long}#{name}"),
                            name: name.clone(),
                            func: f.clone(),
                        });
                    }
                }
                WorldItem::Type { .. } => {}
            }
        }
        out
    }

    /// The type as WIT writes it, named types by name.
    pub fn type_name(&self, ty: &Type) -> String {
        match ty {
            Type::Bool => "bool".into(),
            Type::U8 => "u8".into(),
            Type::U16 => "u16".into(),
            Type::U32 => "u32".into(),
            Type::U64 => "u64".into(),
            Type::S8 => "s8".into(),
            Type::S16 => "s16".into(),
            Type::S32 => "s32".into(),
            Type::S64 => "s64".into(),
            Type::F32 => "f32".into(),
            Type::F64 => "f64".into(),
            Type::Char => "char".into(),
            Type::String => "string".into(),
            Type::ErrorContext => "error-context".into(),
            Type::Id(id) => {
                let def = &self.resolve.types[*id];
                if let Some(name) = &def.name {
                    return name.clone();
                }
                match &def.kind {
                    TypeDefKind::List(t) => format!("list<{}>", self.type_name(t)),
                    TypeDefKind::Option(t) => format!("option<{}>", self.type_name(t)),
                    TypeDefKind::Tuple(t) => {
                        format!("tuple<{}>", t.types.iter().map(|t| self.type_name(t)).collect::<Vec<_>>().join(", "))
                    }
                    TypeDefKind::Result(r) => match (&r.ok, &r.err) {
                        (None, None) => "result".into(),
                        (Some(o), None) => format!("result<{}>", self.type_name(o)),
                        (None, Some(e)) => format!("result<_, {}>", self.type_name(e)),
                        (Some(o), Some(e)) => {
                            format!("result<{}, {}>", self.type_name(o), self.type_name(e))
                        }
                    },
                    TypeDefKind::Type(t) => self.type_name(t),
                    TypeDefKind::Handle(wit_parser::Handle::Own(r)) => {
                        self.resolve.types[*r].name.clone().unwrap_or_default()
                    }
                    TypeDefKind::Handle(wit_parser::Handle::Borrow(r)) => {
                        format!("borrow<{}>", self.resolve.types[*r].name.clone().unwrap_or_default())
                    }
                    TypeDefKind::Future(_) => "future".into(),
                    TypeDefKind::Stream(_) => "stream".into(),
                    other => other.as_str().into(),
                }
            }
        }
    }

    /// `func(a: s32, b: s32) -> s32`.
    pub fn signature(&self, f: &Function) -> String {
        let params: Vec<String> = f.params.iter().map(|p| format!("{}: {}", p.name, self.type_name(&p.ty))).collect();
        match &f.result {
            Some(r) => format!("func({}) -> {}", params.join(", "), self.type_name(r)),
            None => format!("func({})", params.join(", ")),
        }
    }

    /// Resolves a WIT type for conversion.
    pub fn ty(&self, ty: &Type) -> Ty {
        self.ty_named(ty, None)
    }

    /// [`Wit::ty`], a named type called `alias` when it is reached through `type alias = ...`
    /// (as [`Wit::type_name`] calls it).
    fn ty_named(&self, ty: &Type, alias: Option<&str>) -> Ty {
        match ty {
            Type::Bool => Ty::Bool,
            Type::U8 => Ty::U8,
            Type::U16 => Ty::U16,
            Type::U32 => Ty::U32,
            Type::U64 => Ty::U64,
            Type::S8 => Ty::S8,
            Type::S16 => Ty::S16,
            Type::S32 => Ty::S32,
            Type::S64 => Ty::S64,
            Type::F32 => Ty::F32,
            Type::F64 => Ty::F64,
            Type::Char => Ty::Char,
            Type::String => Ty::String,
            Type::ErrorContext => Ty::Unsupported("error-context"),
            Type::Id(id) => {
                let def = &self.resolve.types[*id];
                let name: Name = alias.or(def.name.as_deref()).map(Arc::from);
                let ty = self.def_ty(&def.kind, name.clone());
                match (name, &ty) {
                    // Types that carry their name, or are named by their resource.
                    (None, _)
                    | (Some(_), Ty::Record(..) | Ty::Variant(..) | Ty::Enum(..) | Ty::Flags(..) | Ty::Named(..))
                    | (Some(_), Ty::Own(_) | Ty::Borrow(_) | Ty::Unsupported(_)) => ty,
                    (Some(n), _) => Ty::Named(n, Box::new(ty)),
                }
            }
        }
    }

    fn def_ty(&self, kind: &TypeDefKind, name: Name) -> Ty {
        match kind {
            TypeDefKind::Record(r) => {
                Ty::Record(r.fields.iter().map(|f| Field::new(&f.name, self.ty(&f.ty))).collect::<Arc<[Field]>>(), name)
            }
            TypeDefKind::Tuple(t) => Ty::Tuple(t.types.iter().map(|t| self.ty(t)).collect()),
            TypeDefKind::Variant(v) => Ty::Variant(
                v.cases.iter().map(|c| Case { name: c.name.clone(), ty: c.ty.as_ref().map(|t| self.ty(t)) }).collect(),
                name,
            ),
            TypeDefKind::Enum(e) => Ty::Enum(e.cases.iter().map(|c| c.name.clone()).collect(), name),
            TypeDefKind::Flags(f) => Ty::Flags(f.flags.iter().map(|c| c.name.clone()).collect(), name),
            TypeDefKind::Option(t) => Ty::Option(Box::new(self.ty(t))),
            TypeDefKind::Result(r) => {
                Ty::Result(r.ok.as_ref().map(|t| Box::new(self.ty(t))), r.err.as_ref().map(|t| Box::new(self.ty(t))))
            }
            TypeDefKind::List(Type::U8) => Ty::Bytes,
            TypeDefKind::List(t) => Ty::List(Box::new(self.ty(t))),
            TypeDefKind::Type(t) => self.ty_named(t, name.as_deref()),
            TypeDefKind::Handle(wit_parser::Handle::Own(r)) => match self.resources.get(&self.dealias(*r)) {
                Some(info) => Ty::Own(info.clone()),
                None => Ty::Unsupported("resource"),
            },
            TypeDefKind::Handle(wit_parser::Handle::Borrow(r)) => match self.resources.get(&self.dealias(*r)) {
                Some(info) => Ty::Borrow(info.clone()),
                None => Ty::Unsupported("resource"),
            },
            TypeDefKind::Resource => Ty::Unsupported("resource"),
            TypeDefKind::Map(..) => Ty::Unsupported("map"),
            TypeDefKind::FixedLengthList(..) => Ty::Unsupported("fixed-length list"),
            TypeDefKind::Future(_) => Ty::Unsupported("future"),
            TypeDefKind::Stream(_) => Ty::Unsupported("stream"),
            TypeDefKind::Unknown => Ty::Unsupported("unknown type"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lines_become_world_exports() {
        let wit = parse("add: func(a: s32, b: s32) -> s32;\nneg: func(x: f64) -> f64;").unwrap();
        let names: Vec<String> = wit.exports().into_iter().map(|e| e.method).collect();
        assert_eq!(names, ["add", "neg"]);
    }

    #[test]
    fn interfaces_are_exported_with_canonical_names() {
        let wit =
            parse("interface api {\n  record point { x: s32, y: s32 }\n  shift: func(p: point) -> point;\n}").unwrap();
        let e = &wit.exports()[0];
        assert_eq!(e.method, "api#shift");
        assert_eq!(e.canonical, "wippy:entry/api#shift");
        assert_eq!(wit.signature(&e.func), "func(p: point) -> point");
    }

    #[test]
    fn parse_errors_keep_the_users_line() {
        let err = parse("add: func(a: s32) -> s32;\nbad: func(a: nope) -> s32;").err().unwrap();
        assert!(err.contains("nope"), "{err}");
        assert!(err.contains("at line 2, column 14"), "{err}");
    }
}
