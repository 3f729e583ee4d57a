//! Lua values read straight off the stack with the C API (no mlua references) into component
//! values, by the same rules and messages as [`super::to_val`], for types that need nothing
//! from mlua (no resource handles; on LuaJIT no 64-bit integers, which may come as cdata).

use std::ffi::c_int;

use mlua::{ffi, Lua, Value};
use wasmtime::component::Val;

use super::lua::{char_from, enum_from, float_of, int_in, integral, not_integer, string_from, u64_of};
use super::path::{ConvError, Path};
use super::ty::{Case, Field, Ty};

/// Converts the Lua value `v` to a component value of type `ty`.
///
/// # Errors
/// The value does not fit its type (the message names the path).
pub fn to_val(lua: &Lua, v: &Value, ty: &Ty, path: &mut Path) -> Result<Val, ConvError> {
    let mut out = None;
    // SAFETY: exec_raw pushes `v` and runs the closure in a protected call; `read` leaves the
    // stack as it found it.
    let done = unsafe {
        lua.exec_raw::<()>(v.clone(), |l| {
            out = Some(read(l, ffi::lua_gettop(l), ty, path));
        })
    };
    match (done, out) {
        (Ok(()), Some(r)) => r,
        (Err(e), _) => Err(ConvError::new(path, e.to_string())),
        (Ok(()), None) => Err(ConvError::new(path, "conversion did not run")),
    }
}

unsafe fn is_null(l: *mut ffi::lua_State, idx: c_int) -> bool {
    ffi::lua_type(l, idx) == ffi::LUA_TLIGHTUSERDATA && ffi::lua_touserdata(l, idx) == super::lua::null_ptr()
}

/// The Lua type of a stack slot as messages name it.
unsafe fn got(l: *mut ffi::lua_State, idx: c_int) -> &'static str {
    match ffi::lua_type(l, idx) {
        ffi::LUA_TNIL | ffi::LUA_TNONE => "nil",
        ffi::LUA_TBOOLEAN => "boolean",
        ffi::LUA_TNUMBER => "number",
        ffi::LUA_TSTRING => "string",
        ffi::LUA_TTABLE => "table",
        ffi::LUA_TFUNCTION => "function",
        ffi::LUA_TTHREAD => "thread",
        ffi::LUA_TLIGHTUSERDATA if is_null(l, idx) => "wippy.null",
        _ => "userdata",
    }
}

unsafe fn mismatch(l: *mut ffi::lua_State, idx: c_int, path: &Path, expected: &str) -> ConvError {
    ConvError::new(path, format!("expected {expected}, got {}", got(l, idx)))
}

/// A number, boolean or nil as a plain mlua value (no reference), for the number rules.
unsafe fn scalar_at(l: *mut ffi::lua_State, idx: c_int) -> Value {
    match ffi::lua_type(l, idx) {
        ffi::LUA_TNUMBER if ffi::lua_isinteger(l, idx) != 0 => Value::Integer(ffi::lua_tointeger(l, idx)),
        ffi::LUA_TNUMBER => Value::Number(ffi::lua_tonumber(l, idx)),
        ffi::LUA_TBOOLEAN => Value::Boolean(ffi::lua_toboolean(l, idx) != 0),
        _ => Value::Nil,
    }
}

/// The bytes of a string slot (valid while the slot is).
unsafe fn bytes_at<'a>(l: *mut ffi::lua_State, idx: c_int) -> Option<&'a [u8]> {
    if ffi::lua_type(l, idx) != ffi::LUA_TSTRING {
        return None;
    }
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, idx, &mut len);
    Some(std::slice::from_raw_parts(p as *const u8, len))
}

unsafe fn number(l: *mut ffi::lua_State, idx: c_int, path: &Path, name: &str) -> Result<Value, ConvError> {
    if ffi::lua_type(l, idx) == ffi::LUA_TNUMBER {
        Ok(scalar_at(l, idx))
    } else {
        Err(mismatch(l, idx, path, name))
    }
}

/// An array table's length, after rejecting tables with only non-array keys.
unsafe fn array_len(
    l: *mut ffi::lua_State,
    idx: c_int,
    path: &Path,
    expected: impl FnOnce() -> String,
) -> Result<usize, ConvError> {
    let len = ffi::lua_rawlen(l, idx);
    if len == 0 {
        ffi::lua_pushnil(l);
        if ffi::lua_next(l, idx) != 0 {
            let key = got(l, -2);
            ffi::lua_pop(l, 2);
            return Err(ConvError::new(
                path,
                format!("expected {} (an array table), got a table with key {key}", expected()),
            ));
        }
    }
    Ok(len as usize)
}

/// Reads the value at absolute index `idx`.
unsafe fn read(l: *mut ffi::lua_State, idx: c_int, ty: &Ty, path: &mut Path) -> Result<Val, ConvError> {
    if ffi::lua_checkstack(l, 4) == 0 {
        return Err(ConvError::new(path, "value nested too deeply"));
    }
    Ok(match ty {
        Ty::Bool => match ffi::lua_type(l, idx) {
            ffi::LUA_TBOOLEAN => Val::Bool(ffi::lua_toboolean(l, idx) != 0),
            _ => return Err(mismatch(l, idx, path, "bool")),
        },
        Ty::S8 => Val::S8(int_in(&number(l, idx, path, "s8")?, path, "s8", i8::MIN.into(), i8::MAX.into())? as i8),
        Ty::U8 => Val::U8(int_in(&number(l, idx, path, "u8")?, path, "u8", 0, u8::MAX.into())? as u8),
        Ty::S16 => {
            Val::S16(int_in(&number(l, idx, path, "s16")?, path, "s16", i16::MIN.into(), i16::MAX.into())? as i16)
        }
        Ty::U16 => Val::U16(int_in(&number(l, idx, path, "u16")?, path, "u16", 0, u16::MAX.into())? as u16),
        Ty::S32 => {
            Val::S32(int_in(&number(l, idx, path, "s32")?, path, "s32", i32::MIN.into(), i32::MAX.into())? as i32)
        }
        Ty::U32 => Val::U32(int_in(&number(l, idx, path, "u32")?, path, "u32", 0, u32::MAX.into())? as u32),
        Ty::S64 => {
            let v = number(l, idx, path, "s64")?;
            Val::S64(integral(&v).ok_or_else(|| not_integer(path, "s64", &v))?)
        }
        Ty::U64 => Val::U64(u64_of(&number(l, idx, path, "u64")?, path)?),
        Ty::F32 => Val::Float32(float_of(&number(l, idx, path, "f32")?, path, "f32")? as f32),
        Ty::F64 => Val::Float64(float_of(&number(l, idx, path, "f64")?, path, "f64")?),
        Ty::Char => match bytes_at(l, idx) {
            Some(b) => Val::Char(char_from(b, path)?),
            None => return Err(mismatch(l, idx, path, "char")),
        },
        Ty::String => match bytes_at(l, idx) {
            Some(b) => Val::String(string_from(b, path)?),
            None => return Err(mismatch(l, idx, path, "string")),
        },
        Ty::Bytes => match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => Val::List(bytes_at(l, idx).unwrap_or_default().iter().map(|b| Val::U8(*b)).collect()),
            ffi::LUA_TTABLE => {
                let len = array_len(l, idx, path, || "list<u8>".into())?;
                let mut out = Vec::with_capacity(len);
                for i in 1..=len {
                    ffi::lua_rawgeti(l, idx, i as _);
                    path.push_index(i);
                    let item = number(l, -1, path, "u8").and_then(|v| int_in(&v, path, "u8", 0, 255));
                    ffi::lua_pop(l, 1);
                    out.push(Val::U8(item? as u8));
                    path.pop();
                }
                Val::List(out)
            }
            _ => return Err(mismatch(l, idx, path, "list<u8> (a string or an array of bytes)")),
        },
        Ty::List(elem) => {
            if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
                return Err(mismatch(l, idx, path, &ty.describe()));
            }
            let len = array_len(l, idx, path, || ty.describe())?;
            let mut out = Vec::with_capacity(len);
            for i in 1..=len {
                ffi::lua_rawgeti(l, idx, i as _);
                path.push_index(i);
                let item = read(l, ffi::lua_gettop(l), elem, path);
                ffi::lua_pop(l, 1);
                out.push(item?);
                path.pop();
            }
            Val::List(out)
        }
        Ty::Record(fields) => {
            if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
                return Err(mismatch(l, idx, path, "record (a table)"));
            }
            Val::Record(record(l, idx, fields, path)?)
        }
        Ty::Tuple(types) => {
            if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
                return Err(mismatch(l, idx, path, &ty.describe()));
            }
            let len = ffi::lua_rawlen(l, idx) as usize;
            if len != types.len() {
                return Err(ConvError::new(
                    path,
                    format!("expected {} (an array of {} values), got an array of {len}", ty.describe(), types.len()),
                ));
            }
            let mut out = Vec::with_capacity(len);
            for (i, elem) in types.iter().enumerate() {
                ffi::lua_rawgeti(l, idx, (i + 1) as _);
                path.push_index(i + 1);
                let item = read(l, ffi::lua_gettop(l), elem, path);
                ffi::lua_pop(l, 1);
                out.push(item?);
                path.pop();
            }
            Val::Tuple(out)
        }
        Ty::Variant(cases) => variant(l, idx, cases, path)?,
        Ty::Enum(names) => match bytes_at(l, idx) {
            Some(b) => Val::Enum(names[enum_from(b, names, path)?].clone()),
            None => return Err(mismatch(l, idx, path, &format!("enum case ({})", names.join("|")))),
        },
        Ty::Option(inner) => match ffi::lua_type(l, idx) {
            ffi::LUA_TNIL | ffi::LUA_TNONE => Val::Option(None),
            _ if is_null(l, idx) => match **inner {
                Ty::Option(_) => Val::Option(Some(Box::new(Val::Option(None)))),
                _ => Val::Option(None),
            },
            _ => Val::Option(Some(Box::new(read(l, idx, inner, path)?))),
        },
        Ty::Result(ok, err) => result(l, idx, ok.as_deref(), err.as_deref(), path)?,
        Ty::Flags(names) => Val::Flags(flags(l, idx, names, path)?),
        Ty::Own(_) | Ty::Borrow(_) | Ty::Unsupported(_) => {
            return Err(ConvError::new(path, format!("{} values cannot be read here", ty.describe())))
        }
    })
}

unsafe fn push_str(l: *mut ffi::lua_State, s: &str) {
    ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
}

unsafe fn record(
    l: *mut ffi::lua_State,
    idx: c_int,
    fields: &[Field],
    path: &mut Path,
) -> Result<Vec<(String, Val)>, ConvError> {
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        push_str(l, &f.name);
        ffi::lua_rawget(l, idx);
        if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
            if let Some(alias) = &f.alias {
                ffi::lua_pop(l, 1);
                push_str(l, alias);
                ffi::lua_rawget(l, idx);
            }
        }
        path.push_field(&f.name);
        let missing = ffi::lua_type(l, -1) == ffi::LUA_TNIL && !matches!(f.ty, Ty::Option(_));
        let item = if missing {
            Err(ConvError::new(path, format!("missing field (expected {})", f.ty.describe())))
        } else {
            read(l, ffi::lua_gettop(l), &f.ty, path)
        };
        ffi::lua_pop(l, 1);
        out.push((f.name.clone(), item?));
        path.pop();
    }
    Ok(out)
}

/// The name of the single key of a `{case = payload}` table, with the payload pushed on top.
/// The caller pops the payload and then calls [`only_key`].
unsafe fn first_pair(l: *mut ffi::lua_State, idx: c_int, path: &Path, what: &str) -> Result<String, ConvError> {
    ffi::lua_pushnil(l);
    if ffi::lua_next(l, idx) == 0 {
        return Err(ConvError::new(
            path,
            format!("expected {what} (a table with one key), got an empty or non-string-keyed table"),
        ));
    }
    match bytes_at(l, -2) {
        Some(k) => Ok(String::from_utf8_lossy(k).into_owned()),
        None => {
            ffi::lua_pop(l, 2);
            Err(ConvError::new(
                path,
                format!("expected {what} (a table with one key), got an empty or non-string-keyed table"),
            ))
        }
    }
}

/// After the payload was popped (key on top): fails when the table has another key.
unsafe fn only_key(l: *mut ffi::lua_State, idx: c_int, path: &Path, what: &str) -> Result<(), ConvError> {
    if ffi::lua_next(l, idx) != 0 {
        ffi::lua_pop(l, 2);
        return Err(ConvError::new(path, format!("expected {what} (a table with exactly one key), got several keys")));
    }
    Ok(())
}

/// Reads the payload on top of the stack (key below it) and pops it; on failure pops the key
/// too. A case without a payload type takes `nil` or `true`.
unsafe fn payload(
    l: *mut ffi::lua_State,
    ty: Option<&Ty>,
    path: &mut Path,
    unit: &str,
) -> Result<Option<Box<Val>>, ConvError> {
    let out = match ty {
        None => match ffi::lua_type(l, -1) {
            ffi::LUA_TNIL => Ok(None),
            ffi::LUA_TBOOLEAN if ffi::lua_toboolean(l, -1) != 0 => Ok(None),
            _ => Err(ConvError::new(path, format!("{unit} {}", got(l, -1)))),
        },
        Some(ty) => read(l, ffi::lua_gettop(l), ty, path).map(|v| Some(Box::new(v))),
    };
    ffi::lua_pop(l, 1);
    if out.is_err() {
        ffi::lua_pop(l, 1);
    }
    out
}

unsafe fn variant(l: *mut ffi::lua_State, idx: c_int, cases: &[Case], path: &mut Path) -> Result<Val, ConvError> {
    const WHAT: &str = "variant {case = payload}";
    let names = || cases.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
    let find = |name: &str, path: &Path| {
        cases.iter().find(|c| c.name == name).ok_or_else(|| {
            ConvError::new(path, format!("unknown variant case \"{name}\", expected one of: {}", names()))
        })
    };
    match ffi::lua_type(l, idx) {
        ffi::LUA_TSTRING => {
            let name = String::from_utf8_lossy(bytes_at(l, idx).unwrap_or_default()).into_owned();
            let case = find(&name, path)?;
            path.push_field(&case.name);
            let out = match &case.ty {
                None => Ok(Val::Variant(case.name.clone(), None)),
                Some(Ty::Option(_)) => Ok(Val::Variant(case.name.clone(), Some(Box::new(Val::Option(None))))),
                Some(ty) => Err(ConvError::new(path, format!("missing payload (expected {})", ty.describe()))),
            };
            path.pop();
            out
        }
        ffi::LUA_TTABLE => {
            let name = first_pair(l, idx, path, WHAT)?;
            let case = match find(&name, path) {
                Ok(c) => c,
                Err(e) => {
                    ffi::lua_pop(l, 2);
                    return Err(e);
                }
            };
            path.push_field(&case.name);
            let payload = payload(l, case.ty.as_ref(), path, "case has no payload, got")?;
            path.pop();
            only_key(l, idx, path, WHAT)?;
            Ok(Val::Variant(case.name.clone(), payload))
        }
        _ => Err(mismatch(l, idx, path, "variant ({case = payload} or a case name)")),
    }
}

unsafe fn result(
    l: *mut ffi::lua_State,
    idx: c_int,
    ok: Option<&Ty>,
    err: Option<&Ty>,
    path: &mut Path,
) -> Result<Val, ConvError> {
    const WHAT: &str = "result {ok = value} or {err = value}";
    if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
        return Err(mismatch(l, idx, path, "result ({ok = value} or {err = value})"));
    }
    let name = first_pair(l, idx, path, WHAT)?;
    let ty = match name.as_str() {
        "ok" => ok,
        "err" => err,
        other => {
            ffi::lua_pop(l, 2);
            return Err(ConvError::new(path, format!("expected result key \"ok\" or \"err\", got \"{other}\"")));
        }
    };
    path.push_field(&name);
    let payload = payload(l, ty, path, "expected true (no payload), got")?;
    path.pop();
    only_key(l, idx, path, WHAT)?;
    Ok(Val::Result(if name == "ok" { Ok(payload) } else { Err(payload) }))
}

unsafe fn flags(l: *mut ffi::lua_State, idx: c_int, names: &[String], path: &Path) -> Result<Vec<String>, ConvError> {
    if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
        return Err(mismatch(l, idx, path, "flags (a set table or an array of names)"));
    }
    let mut set = vec![false; names.len()];
    let lookup = |k: &[u8]| {
        names.iter().position(|n| n.as_bytes() == k).ok_or_else(|| {
            ConvError::new(
                path,
                format!("unknown flag \"{}\", expected any of: {}", String::from_utf8_lossy(k), names.join(", ")),
            )
        })
    };
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, idx) != 0 {
        let step = match (ffi::lua_type(l, -2), ffi::lua_type(l, -1)) {
            (ffi::LUA_TNUMBER, ffi::LUA_TSTRING) => lookup(bytes_at(l, -1).unwrap_or_default()).map(|i| set[i] = true),
            (ffi::LUA_TSTRING, ffi::LUA_TBOOLEAN) => {
                let on = ffi::lua_toboolean(l, -1) != 0;
                lookup(bytes_at(l, -2).unwrap_or_default()).map(|i| set[i] = on)
            }
            _ => Err(ConvError::new(
                path,
                format!(
                    "expected flags as {{name = true}} or {{\"name\"}}, got key {} with value {}",
                    got(l, -2),
                    got(l, -1)
                ),
            )),
        };
        ffi::lua_pop(l, 1);
        if let Err(e) = step {
            ffi::lua_pop(l, 1);
            return Err(e);
        }
    }
    Ok(names.iter().zip(set).filter(|(_, on)| *on).map(|(n, _)| n.clone()).collect())
}
