//! Lua values ⇄ wasmtime values.

use mlua::{LightUserData, Lua, Table, Value};
use wasmtime::component::Val;

use super::path::{ConvError, Path};
use super::resource::ResourceHooks;
use super::ty::{named, of, Case, Field, Name, Scalar, Ty};

/// Address whose identity is `wippy.null`.
static NULL_ANCHOR: u8 = 0;

/// The address behind `wippy.null`.
pub(crate) fn null_ptr() -> *mut std::ffi::c_void {
    std::ptr::addr_of!(NULL_ANCHOR) as *mut _
}

/// The `wippy.null` sentinel: an inner or element `none` where `nil` would be ambiguous.
pub fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::addr_of!(NULL_ANCHOR) as *mut _))
}

pub fn is_null(v: &Value) -> bool {
    matches!(v, Value::LightUserData(p) if std::ptr::eq(p.0 as *const u8, std::ptr::addr_of!(NULL_ANCHOR)))
}

/// How a Lua value is named in messages: its Lua type (`number`, `string`, `table`).
fn got(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Boolean(_) => "boolean".into(),
        Value::Integer(_) | Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Table(_) => "table".into(),
        Value::Function(_) => "function".into(),
        Value::LightUserData(_) if is_null(v) => "wippy.null".into(),
        other => other.type_name().into(),
    }
}

pub(super) fn mismatch(path: &Path, expected: &str, v: &Value) -> ConvError {
    ConvError::new(path, format!("expected {expected}, got {}", got(v)))
}

/// An integral Lua number as i64, or None.
pub(super) fn integral(v: &Value) -> Option<i64> {
    match *v {
        Value::Integer(i) => Some(i),
        Value::Number(n) if n.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) => {
            Some(n as i64)
        }
        _ => None,
    }
}

pub(super) fn int_in(v: &Value, path: &Path, name: &str, lo: i64, hi: i64) -> Result<i64, ConvError> {
    match integral(v) {
        Some(i) if (lo..=hi).contains(&i) => Ok(i),
        Some(i) => Err(ConvError::new(path, format!("expected {name}, got {i} (out of range {lo}..={hi})"))),
        None => Err(not_integer(path, name, v)),
    }
}

/// A number that is not integral (or too large for an integer) names its value.
pub(super) fn not_integer(path: &Path, name: &str, v: &Value) -> ConvError {
    match v {
        Value::Number(n) if n.fract() == 0.0 => {
            ConvError::new(path, format!("expected {name}, got {} (out of range)", short_num(*n)))
        }
        Value::Number(n) => ConvError::new(path, format!("expected {name}, got {} (not an integer)", short_num(*n))),
        _ => mismatch(path, name, v),
    }
}

/// A number as Lua's `%.14g` would print it: `1.5`, `1e+300`, `9.2233720368548e+18`.
fn short_num(n: f64) -> String {
    if n.is_finite() && n.abs() < 1e15 {
        format!("{n}")
    } else if n.is_finite() {
        format!("{n:.13e}").replace(".0000000000000e", "e").replace("e", "e+").replace("e+-", "e-")
    } else {
        format!("{n}")
    }
}

pub(super) fn u64_of(v: &Value, path: &Path) -> Result<u64, ConvError> {
    if let Some(i) = integral(v) {
        // Negative integers are the bits of values of 2^63 and above, as `string.pack("J")`.
        return Ok(i as u64);
    }
    match *v {
        // Above 2^63 only a float can carry the value (LuaJIT).
        Value::Number(n) if n.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&n) => Ok(n as u64),
        _ => Err(not_integer(path, "u64", v)),
    }
}

/// An `s64` argument: an integer, an integral float, or (LuaJIT) a 64-bit cdata.
fn s64_of(lua: &Lua, v: &Value, path: &Path) -> Result<i64, ConvError> {
    if let Some(i) = integral(v) {
        return Ok(i);
    }
    match super::int64::read(lua, v) {
        Some((bits, true)) => Ok(bits),
        Some((bits, false)) if bits >= 0 => Ok(bits),
        Some((bits, false)) => {
            Err(ConvError::new(path, format!("expected s64, got {}ULL (out of range)", bits as u64)))
        }
        None => Err(not_integer(path, "s64", v)),
    }
}

/// A `u64` argument: as [`u64_of`], or (LuaJIT) a 64-bit cdata.
fn u64_any(lua: &Lua, v: &Value, path: &Path) -> Result<u64, ConvError> {
    match super::int64::read(lua, v) {
        Some((bits, false)) => Ok(bits as u64),
        Some((bits, true)) if bits >= 0 => Ok(bits as u64),
        Some((bits, true)) => Err(ConvError::new(path, format!("expected u64, got {bits}LL (negative)"))),
        None => u64_of(v, path),
    }
}

/// A 64-bit result: a Lua integer on 5.3+; on LuaJIT a number when exact, else a cdata.
fn int64_out(lua: &Lua, bits: i64, signed: bool) -> mlua::Result<Value> {
    if cfg!(feature = "luajit") {
        super::int64::push(lua, bits, signed)
    } else {
        Ok(Value::Integer(bits))
    }
}

pub(super) fn float_of(v: &Value, path: &Path, name: &str) -> Result<f64, ConvError> {
    match *v {
        Value::Integer(i) => Ok(i as f64),
        Value::Number(n) => Ok(n),
        _ => Err(mismatch(path, name, v)),
    }
}

fn char_of(v: &Value, path: &Path) -> Result<char, ConvError> {
    let Value::String(s) = v else {
        return Err(mismatch(path, "char", v));
    };
    char_from(&s.as_bytes(), path)
}

pub(super) fn char_from(bytes: &[u8], path: &Path) -> Result<char, ConvError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ConvError::new(path, "expected char, got invalid UTF-8"))?;
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(ConvError::new(
            path,
            format!("expected char (a string of one code point), got a string of {} code points", text.chars().count()),
        )),
    }
}

fn string_of(v: &Value, path: &Path) -> Result<String, ConvError> {
    let Value::String(s) = v else {
        return Err(mismatch(path, "string", v));
    };
    string_from(&s.as_bytes(), path)
}

pub(super) fn string_from(bytes: &[u8], path: &Path) -> Result<String, ConvError> {
    utf8(bytes, path).map(str::to_string)
}

/// The bytes as text, or the error a `string` parameter gives for them.
pub(super) fn utf8<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, ConvError> {
    std::str::from_utf8(bytes).map_err(|e| {
        ConvError::new(
            path,
            format!(
                "expected string, got invalid UTF-8 at byte {} (use list<u8> for binary data)",
                e.valid_up_to() + 1
            ),
        )
    })
}

fn enum_index(v: &Value, names: &[String], name: &Name, path: &Path) -> Result<usize, ConvError> {
    let Value::String(s) = v else {
        return Err(mismatch(path, &named(name, "an enum case", &names.join("|")), v));
    };
    enum_from(&s.as_bytes(), names, name, path)
}

pub(super) fn enum_from(bytes: &[u8], names: &[String], name: &Name, path: &Path) -> Result<usize, ConvError> {
    names.iter().position(|n| n.as_bytes() == bytes).ok_or_else(|| {
        ConvError::new(
            path,
            format!(
                "unknown enum case \"{}\"{}, expected one of: {}",
                String::from_utf8_lossy(bytes),
                of(name),
                names.join(", ")
            ),
        )
    })
}

/// Reads an array table: its length, after rejecting tables with only non-array keys and empty
/// proxies (as the fast path does). Check [`dense`] after its elements.
fn array_len(t: &Table, path: &Path, expected: impl FnOnce() -> String) -> Result<usize, ConvError> {
    let len = t.raw_len();
    if len == 0 {
        if let Ok(Some((k, _))) = t.pairs::<Value, Value>().next().transpose() {
            return Err(ConvError::new(
                path,
                format!("expected {} (an array table), got a table with key {}", expected(), got(&k)),
            ));
        }
        let proxy = t.metatable().is_some_and(|m| {
            m.raw_get::<Value>("__index").is_ok_and(|v| !v.is_nil())
                || m.raw_get::<Value>("__len").is_ok_and(|v| !v.is_nil())
        });
        if proxy {
            return Err(ConvError::new(path, super::read::PROXY));
        }
    }
    Ok(len)
}

/// Rejects a sparse array (a positive integer key past the length `len`: an element that would
/// be lost), after its elements, as the fast path does.
fn dense(lua: &Lua, t: &Table, len: usize, path: &Path) -> Result<(), ConvError> {
    if len == 0 {
        return Ok(());
    }
    let mut past = None;
    // SAFETY: exec_raw pushes the table and runs the closure in a protected call (with stack
    // room); the table is at the top; `past_len` leaves the stack as it found it.
    let _ = unsafe {
        lua.exec_raw::<()>(t.clone(), |l| {
            past = super::read::past_len(l, mlua::ffi::lua_gettop(l), len);
        })
    };
    match past {
        Some(k) => Err(ConvError::new(path, super::read::sparse(k, len))),
        None => Ok(()),
    }
}

/// Converts a Lua value to a component value of type `ty`.
pub fn to_val(lua: &Lua, v: &Value, ty: &Ty, path: &mut Path) -> Result<Val, ConvError> {
    Ok(match ty {
        Ty::Bool => match v {
            Value::Boolean(b) => Val::Bool(*b),
            _ => return Err(mismatch(path, "bool", v)),
        },
        Ty::S8 => Val::S8(int_in(v, path, "s8", i8::MIN.into(), i8::MAX.into())? as i8),
        Ty::U8 => Val::U8(int_in(v, path, "u8", 0, u8::MAX.into())? as u8),
        Ty::S16 => Val::S16(int_in(v, path, "s16", i16::MIN.into(), i16::MAX.into())? as i16),
        Ty::U16 => Val::U16(int_in(v, path, "u16", 0, u16::MAX.into())? as u16),
        Ty::S32 => Val::S32(int_in(v, path, "s32", i32::MIN.into(), i32::MAX.into())? as i32),
        Ty::U32 => Val::U32(int_in(v, path, "u32", 0, u32::MAX.into())? as u32),
        Ty::S64 => Val::S64(s64_of(lua, v, path)?),
        Ty::U64 => Val::U64(u64_any(lua, v, path)?),
        Ty::F32 => Val::Float32(float_of(v, path, "f32")? as f32),
        Ty::F64 => Val::Float64(float_of(v, path, "f64")?),
        Ty::Char => Val::Char(char_of(v, path)?),
        Ty::String => Val::String(string_of(v, path)?),
        Ty::Bytes => match v {
            Value::String(s) => Val::List(s.as_bytes().iter().map(|b| Val::U8(*b)).collect()),
            Value::Table(t) => {
                let len = array_len(t, path, || "list<u8>".into())?;
                let mut out = Vec::with_capacity(len);
                for i in 1..=len {
                    let item: Value = t.raw_get(i).unwrap_or(Value::Nil);
                    path.push_index(i);
                    out.push(Val::U8(int_in(&item, path, "u8", 0, 255)? as u8));
                    path.pop();
                }
                dense(lua, t, len, path)?;
                Val::List(out)
            }
            _ => return Err(mismatch(path, "list<u8> (a string or an array of bytes)", v)),
        },
        Ty::List(elem) => {
            let Value::Table(t) = v else {
                return Err(mismatch(path, &ty.describe(), v));
            };
            let len = array_len(t, path, || ty.describe())?;
            let mut out = Vec::with_capacity(len);
            for i in 1..=len {
                let item: Value = t.raw_get(i).unwrap_or(Value::Nil);
                path.push_index(i);
                out.push(to_val(lua, &item, elem, path)?);
                path.pop();
            }
            dense(lua, t, len, path)?;
            Val::List(out)
        }
        Ty::Record(fields, _) => {
            let Value::Table(t) = v else {
                return Err(mismatch(path, &ty.expected(), v));
            };
            Val::Record(record_in(lua, t, fields, path)?)
        }
        Ty::Tuple(types) => {
            let Value::Table(t) = v else {
                return Err(mismatch(path, &ty.describe(), v));
            };
            let len = t.raw_len();
            if len != types.len() {
                return Err(ConvError::new(
                    path,
                    format!("expected {} (an array of {} values), got an array of {len}", ty.describe(), types.len()),
                ));
            }
            let mut out = Vec::with_capacity(len);
            for (i, elem) in types.iter().enumerate() {
                let item: Value = t.raw_get(i + 1).unwrap_or(Value::Nil);
                path.push_index(i + 1);
                out.push(to_val(lua, &item, elem, path)?);
                path.pop();
            }
            Val::Tuple(out)
        }
        Ty::Variant(cases, name) => variant_in(lua, v, ty, cases, name, path)?,
        Ty::Enum(names, name) => Val::Enum(names[enum_index(v, names, name, path)?].clone()),
        Ty::Option(inner) => option_in(lua, v, inner, path)?,
        Ty::Result(ok, err) => result_in(lua, v, ty, ok.as_deref(), err.as_deref(), path)?,
        Ty::Flags(names, name) => Val::Flags(flags_in(v, ty, names, name, path)?),
        Ty::Own(info) | Ty::Borrow(info) => {
            let own = matches!(ty, Ty::Own(_));
            let hooks = lua
                .app_data_ref::<ResourceHooks>()
                .ok_or_else(|| ConvError::new(path, "resources are not available in this Lua state"))?;
            Val::Resource((hooks.unwrap)(lua, v, info, own).map_err(|m| ConvError::new(path, m))?)
        }
        Ty::Unsupported(what) => return Err(ConvError::new(path, format!("{what} values are not supported yet"))),
        Ty::Named(_, inner) => {
            return to_val(lua, v, inner, path).map_err(|mut e| {
                if e.path == path.to_string() {
                    e.message = ty.name_message(e.message);
                }
                e
            })
        }
    })
}

fn record_in(lua: &Lua, t: &Table, fields: &[Field], path: &mut Path) -> Result<Vec<(String, Val)>, ConvError> {
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let mut item: Value = t.raw_get(f.name.as_str()).unwrap_or(Value::Nil);
        if item.is_nil() {
            if let Some(alias) = &f.alias {
                item = t.raw_get(alias.as_str()).unwrap_or(Value::Nil);
            }
        }
        path.push_field(&f.name);
        if item.is_nil() && !matches!(f.ty.bare(), Ty::Option(_)) {
            return Err(ConvError::new(path, format!("missing field (expected {})", f.ty.describe())));
        }
        out.push((f.name.clone(), to_val(lua, &item, &f.ty, path)?));
        path.pop();
    }
    Ok(out)
}

fn option_in(lua: &Lua, v: &Value, inner: &Ty, path: &mut Path) -> Result<Val, ConvError> {
    if v.is_nil() {
        return Ok(Val::Option(None));
    }
    if is_null(v) {
        // `wippy.null` is the inner none of option<option<T>>, and a plain none elsewhere.
        return Ok(match inner.bare() {
            Ty::Option(_) => Val::Option(Some(Box::new(Val::Option(None)))),
            _ => Val::Option(None),
        });
    }
    Ok(Val::Option(Some(Box::new(to_val(lua, v, inner, path)?))))
}

/// The single `key = value` pair of a `{case = payload}` table.
fn single_pair(t: &Table, path: &Path, ty: &Ty) -> Result<(String, Value), ConvError> {
    let mut pairs = t.pairs::<Value, Value>();
    let first = pairs.next().transpose().map_err(|e| ConvError::new(path, e.to_string()))?;
    let Some((Value::String(k), payload)) = first else {
        return Err(ConvError::new(path, ty.one_key("a table with one key", "an empty or non-string-keyed table")));
    };
    if pairs.next().is_some() {
        return Err(ConvError::new(path, ty.one_key("a table with exactly one key", "several keys")));
    }
    Ok((String::from_utf8_lossy(&k.as_bytes()).into_owned(), payload))
}

fn variant_in(lua: &Lua, v: &Value, ty: &Ty, cases: &[Case], tname: &Name, path: &mut Path) -> Result<Val, ConvError> {
    let names = || cases.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
    let (name, payload) = match v {
        Value::String(s) => (String::from_utf8_lossy(&s.as_bytes()).into_owned(), Value::Nil),
        Value::Table(t) => single_pair(t, path, ty)?,
        _ => return Err(mismatch(path, &ty.expected(), v)),
    };
    let Some(case) = cases.iter().find(|c| c.name == name) else {
        return Err(ConvError::new(
            path,
            format!("unknown variant case \"{name}\"{}, expected one of: {}", of(tname), names()),
        ));
    };
    path.push_field(&case.name);
    let payload = match &case.ty {
        None => match payload {
            Value::Nil | Value::Boolean(true) => None,
            other => return Err(ConvError::new(path, format!("case has no payload, got {}", got(&other)))),
        },
        Some(ty) => {
            if payload.is_nil() && !matches!(ty.bare(), Ty::Option(_)) {
                return Err(ConvError::new(path, format!("missing payload (expected {})", ty.describe())));
            }
            Some(Box::new(to_val(lua, &payload, ty, path)?))
        }
    };
    path.pop();
    Ok(Val::Variant(case.name.clone(), payload))
}

fn result_in(
    lua: &Lua,
    v: &Value,
    rty: &Ty,
    ok: Option<&Ty>,
    err: Option<&Ty>,
    path: &mut Path,
) -> Result<Val, ConvError> {
    let Value::Table(t) = v else {
        return Err(mismatch(path, &rty.expected(), v));
    };
    let (name, payload) = single_pair(t, path, rty)?;
    let ty = match name.as_str() {
        "ok" => ok,
        "err" => err,
        other => return Err(ConvError::new(path, format!("expected result key \"ok\" or \"err\", got \"{other}\""))),
    };
    path.push_field(&name);
    let payload = match ty {
        None => match payload {
            Value::Boolean(true) | Value::Nil => None,
            other => return Err(ConvError::new(path, format!("expected true (no payload), got {}", got(&other)))),
        },
        Some(ty) => Some(Box::new(to_val(lua, &payload, ty, path)?)),
    };
    path.pop();
    Ok(Val::Result(if name == "ok" { Ok(payload) } else { Err(payload) }))
}

fn flags_in(v: &Value, ty: &Ty, names: &[String], name: &Name, path: &Path) -> Result<Vec<String>, ConvError> {
    let Value::Table(t) = v else {
        return Err(mismatch(path, &ty.expected(), v));
    };
    let mut set = vec![false; names.len()];
    let lookup = |k: &[u8]| {
        names.iter().position(|n| n.as_bytes() == k).ok_or_else(|| {
            ConvError::new(
                path,
                format!(
                    "unknown flag \"{}\"{}, expected any of: {}",
                    String::from_utf8_lossy(k),
                    of(name),
                    names.join(", ")
                ),
            )
        })
    };
    for pair in t.pairs::<Value, Value>() {
        let (k, val) = pair.map_err(|e| ConvError::new(path, e.to_string()))?;
        match (k, val) {
            (Value::Integer(_), Value::String(s)) => set[lookup(&s.as_bytes())?] = true,
            (Value::String(s), Value::Boolean(b)) => set[lookup(&s.as_bytes())?] = b,
            (k, val) => {
                return Err(ConvError::new(
                    path,
                    format!(
                        "expected flags as {{name = true}} or {{\"name\"}}, got key {} with value {}",
                        got(&k),
                        got(&val)
                    ),
                ))
            }
        }
    }
    Ok(names.iter().zip(set).filter(|(_, on)| *on).map(|(n, _)| n.clone()).collect())
}

/// Converts a component value to Lua. `slot` says whether a `none` here must be
/// `wippy.null` (list and tuple elements, payloads) rather than `nil`.
pub fn from_val(lua: &Lua, v: Val, ty: &Ty, slot: bool) -> mlua::Result<Value> {
    Ok(match (v, ty) {
        (v, Ty::Named(_, inner)) => return from_val(lua, v, inner, slot),
        (Val::Bool(b), _) => Value::Boolean(b),
        (Val::S8(i), _) => Value::Integer(i.into()),
        (Val::U8(i), _) => Value::Integer(i.into()),
        (Val::S16(i), _) => Value::Integer(i.into()),
        (Val::U16(i), _) => Value::Integer(i.into()),
        (Val::S32(i), _) => Value::Integer(i.into()),
        (Val::U32(i), _) => Value::Integer(i.into()),
        (Val::S64(i), _) => int64_out(lua, i, true)?,
        (Val::U64(i), _) => int64_out(lua, i as i64, false)?,
        (Val::Float32(f), _) => Value::Number(f.into()),
        (Val::Float64(f), _) => Value::Number(f),
        (Val::Char(c), _) => Value::String(lua.create_string(c.encode_utf8(&mut [0; 4]).as_bytes())?),
        (Val::String(s), _) => Value::String(lua.create_string(&s)?),
        (Val::List(items), Ty::Bytes) => {
            let bytes: Vec<u8> = items.into_iter().map(|v| if let Val::U8(b) = v { b } else { 0 }).collect();
            Value::String(lua.create_string(&bytes)?)
        }
        (Val::List(items), Ty::List(elem)) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, from_val(lua, item, elem, true)?)?;
            }
            Value::Table(t)
        }
        (Val::Record(fields), Ty::Record(types, _)) => {
            let t = lua.create_table_with_capacity(0, fields.len())?;
            let snake = super::snake_keys();
            for ((name, item), f) in fields.into_iter().zip(types.iter()) {
                let value = from_val(lua, item, &f.ty, false)?;
                if !value.is_nil() {
                    match &f.alias {
                        Some(alias) if snake => t.raw_set(alias.as_str(), value)?,
                        _ => t.raw_set(name, value)?,
                    }
                }
            }
            Value::Table(t)
        }
        (Val::Tuple(items), Ty::Tuple(types)) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, (item, ty)) in items.into_iter().zip(types.iter()).enumerate() {
                t.raw_set(i + 1, from_val(lua, item, ty, true)?)?;
            }
            Value::Table(t)
        }
        (Val::Variant(name, payload), Ty::Variant(cases, _)) => {
            let case_ty = cases.iter().find(|c| c.name == name).and_then(|c| c.ty.as_ref());
            match (payload, case_ty) {
                (Some(p), Some(ty)) => {
                    let t = lua.create_table_with_capacity(0, 1)?;
                    t.raw_set(name, from_val(lua, *p, ty, true)?)?;
                    Value::Table(t)
                }
                _ => Value::String(lua.create_string(&name)?),
            }
        }
        (Val::Enum(name), _) => Value::String(lua.create_string(&name)?),
        (Val::Option(None), Ty::Option(_)) => {
            if slot {
                null()
            } else {
                Value::Nil
            }
        }
        (Val::Option(Some(inner)), Ty::Option(ty)) => {
            // Inside option<option<T>> the inner none must stay visible.
            from_val(lua, *inner, ty, slot || matches!(ty.bare(), Ty::Option(_)))?
        }
        (Val::Result(r), Ty::Result(ok, err)) => {
            let (key, payload, ty) = match r {
                Ok(p) => ("ok", p, ok),
                Err(p) => ("err", p, err),
            };
            let value = match (payload, ty) {
                (Some(p), Some(ty)) => from_val(lua, *p, ty, true)?,
                _ => Value::Boolean(true),
            };
            let t = lua.create_table_with_capacity(0, 1)?;
            t.raw_set(key, value)?;
            Value::Table(t)
        }
        (Val::Resource(r), Ty::Own(info) | Ty::Borrow(info)) => {
            let hooks = lua
                .app_data_ref::<ResourceHooks>()
                .ok_or_else(|| mlua::Error::runtime("resources are not available in this Lua state"))?;
            (hooks.wrap)(lua, r, info)?
        }
        (Val::Flags(names), _) => {
            let t = lua.create_table_with_capacity(0, names.len())?;
            for n in names {
                t.raw_set(n, true)?;
            }
            Value::Table(t)
        }
        (other, ty) => {
            return Err(mlua::Error::runtime(format!(
                "cannot convert a {} value returned as {} to Lua",
                val_kind(&other),
                ty.describe()
            )))
        }
    })
}

/// Converts a Lua value for a parameter that lowers to a single core value.
pub fn scalar_to_core(lua: &Lua, v: &Value, s: &Scalar, path: &Path) -> Result<wasmtime::Val, ConvError> {
    use wasmtime::Val as W;
    Ok(match s {
        Scalar::Bool => match v {
            Value::Boolean(b) => W::I32(*b as i32),
            _ => return Err(mismatch(path, "bool", v)),
        },
        Scalar::S8 => W::I32(int_in(v, path, "s8", i8::MIN.into(), i8::MAX.into())? as i32),
        Scalar::U8 => W::I32(int_in(v, path, "u8", 0, u8::MAX.into())? as i32),
        Scalar::S16 => W::I32(int_in(v, path, "s16", i16::MIN.into(), i16::MAX.into())? as i32),
        Scalar::U16 => W::I32(int_in(v, path, "u16", 0, u16::MAX.into())? as i32),
        Scalar::S32 => W::I32(int_in(v, path, "s32", i32::MIN.into(), i32::MAX.into())? as i32),
        Scalar::U32 => W::I32(int_in(v, path, "u32", 0, u32::MAX.into())? as u32 as i32),
        Scalar::S64 => W::I64(s64_of(lua, v, path)?),
        Scalar::U64 => W::I64(u64_any(lua, v, path)? as i64),
        Scalar::F32 => W::F32((float_of(v, path, "f32")? as f32).to_bits()),
        Scalar::F64 => W::F64(float_of(v, path, "f64")?.to_bits()),
        Scalar::Char => W::I32(char_of(v, path)? as i32),
        Scalar::Enum(names, name) => W::I32(enum_index(v, names, name, path)? as i32),
    })
}

/// Lifts a core result value as the canonical ABI does (narrow integers are truncated).
///
/// # Errors
/// A `char` that is not a Unicode scalar value or an enum index out of range: the guest broke
/// its own signature.
pub fn scalar_from_core(lua: &Lua, v: &wasmtime::Val, s: &Scalar) -> Result<Value, String> {
    use wasmtime::Val as W;
    let i32_of = || if let W::I32(i) = v { *i } else { 0 };
    Ok(match s {
        Scalar::Bool => Value::Boolean(i32_of() != 0),
        Scalar::S8 => Value::Integer((i32_of() as i8).into()),
        Scalar::U8 => Value::Integer((i32_of() as u8).into()),
        Scalar::S16 => Value::Integer((i32_of() as i16).into()),
        Scalar::U16 => Value::Integer((i32_of() as u16).into()),
        Scalar::S32 => Value::Integer(i32_of().into()),
        Scalar::U32 => Value::Integer((i32_of() as u32).into()),
        Scalar::S64 | Scalar::U64 => {
            let bits = if let W::I64(i) = v { *i } else { 0 };
            int64_out(lua, bits, matches!(s, Scalar::S64)).map_err(|e| e.to_string())?
        }
        Scalar::F32 => Value::Number(if let W::F32(b) = v { f32::from_bits(*b).into() } else { 0.0 }),
        Scalar::F64 => Value::Number(if let W::F64(b) = v { f64::from_bits(*b) } else { 0.0 }),
        Scalar::Char => {
            let c = char::from_u32(i32_of() as u32)
                .ok_or_else(|| format!("guest returned {:#x}, which is not a valid char", i32_of() as u32))?;
            Value::String(lua.create_string(c.encode_utf8(&mut [0; 4]).as_bytes()).map_err(|e| e.to_string())?)
        }
        Scalar::Enum(names, _) => {
            let i = i32_of() as u32 as usize;
            let name = names
                .get(i)
                .ok_or_else(|| format!("guest returned enum index {i}, but the enum has {} cases", names.len()))?;
            Value::String(lua.create_string(name).map_err(|e| e.to_string())?)
        }
    })
}

/// A number or boolean read straight off the Lua stack.
#[derive(Clone, Copy, Debug)]
pub enum Num {
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// The raw core value for `v` when it fits `s`; `None` when it does not (or needs a string),
/// and the caller takes the path that explains why.
#[inline]
pub fn scalar_raw(v: Num, s: &Scalar) -> Option<wasmtime::ValRaw> {
    use wasmtime::ValRaw as R;
    let int = || match v {
        Num::Int(i) => Some(i),
        Num::Float(f) if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) => {
            Some(f as i64)
        }
        _ => None,
    };
    let ranged = |lo: i64, hi: i64| int().filter(|i| (lo..=hi).contains(i)).map(|i| R::i32(i as i32));
    let float = || match v {
        Num::Int(i) => Some(i as f64),
        Num::Float(f) => Some(f),
        Num::Bool(_) => None,
    };
    match s {
        Scalar::Bool => match v {
            Num::Bool(b) => Some(R::i32(b as i32)),
            _ => None,
        },
        Scalar::S8 => ranged(i8::MIN.into(), i8::MAX.into()),
        Scalar::U8 => ranged(0, u8::MAX.into()),
        Scalar::S16 => ranged(i16::MIN.into(), i16::MAX.into()),
        Scalar::U16 => ranged(0, u16::MAX.into()),
        Scalar::S32 => ranged(i32::MIN.into(), i32::MAX.into()),
        Scalar::U32 => int().filter(|i| (0..=u32::MAX as i64).contains(i)).map(|i| R::u32(i as u32)),
        Scalar::S64 => int().map(R::i64),
        Scalar::U64 => match v {
            Num::Int(i) => Some(R::i64(i)),
            Num::Float(f) if f.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&f) => {
                Some(R::u64(f as u64))
            }
            _ => None,
        },
        Scalar::F32 => float().map(|f| R::f32((f as f32).to_bits())),
        Scalar::F64 => float().map(|f| R::f64(f.to_bits())),
        Scalar::Char | Scalar::Enum(..) => None,
    }
}

/// A short name of a value's kind, for messages.
pub(super) fn val_kind(v: &Val) -> &'static str {
    match v {
        Val::Bool(_) => "bool",
        Val::S8(_) | Val::U8(_) | Val::S16(_) | Val::U16(_) | Val::S32(_) | Val::U32(_) | Val::S64(_) | Val::U64(_) => {
            "integer"
        }
        Val::Float32(_) | Val::Float64(_) => "float",
        Val::Char(_) => "char",
        Val::String(_) => "string",
        Val::List(_) | Val::FixedLengthList(_) => "list",
        Val::Map(_) => "map",
        Val::Record(_) => "record",
        Val::Tuple(_) => "tuple",
        Val::Variant(..) => "variant",
        Val::Enum(_) => "enum",
        Val::Option(_) => "option",
        Val::Result(_) => "result",
        Val::Flags(_) => "flags",
        Val::Resource(_) => "resource",
        Val::Future(_) => "future",
        Val::Stream(_) => "stream",
        Val::ErrorContext(_) => "error-context",
    }
}
