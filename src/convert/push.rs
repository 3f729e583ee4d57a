//! Component values pushed straight onto the Lua stack with the C API: no mlua references,
//! one table or string per value. Used for results whose types need nothing from mlua (no
//! resource handles; on LuaJIT no 64-bit integers, which may need cdata).

use std::ffi::c_int;

use mlua::{ffi, Lua, Value};
use wasmtime::component::Val;

use super::ty::Ty;

/// Converts `v` to a Lua value through the stack (see [`super::from_val`] for the rules).
///
/// # Errors
/// Only when Lua fails (out of memory, stack overflow on absurdly deep values).
pub fn to_lua(lua: &Lua, v: Val, ty: &Ty, slot: bool) -> mlua::Result<Value> {
    // SAFETY: exec_raw runs the closure in a protected call on this state; `push` leaves
    // exactly one value on the stack, which exec_raw turns into the returned Value.
    unsafe { lua.exec_raw::<Value>((), move |l| push(l, v, ty, slot)) }
}

unsafe fn push_str(l: *mut ffi::lua_State, s: &str) {
    ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
}

/// Pushes one value; anything that does not match its type pushes `nil` (cannot happen for
/// values wasmtime lifted with this type).
unsafe fn push(l: *mut ffi::lua_State, v: Val, ty: &Ty, slot: bool) {
    if ffi::lua_checkstack(l, 4) == 0 {
        ffi::lua_pushnil(l);
        return;
    }
    match (v, ty) {
        (Val::Bool(b), _) => ffi::lua_pushboolean(l, b as c_int),
        (Val::S8(i), _) => ffi::lua_pushinteger(l, i.into()),
        (Val::U8(i), _) => ffi::lua_pushinteger(l, i.into()),
        (Val::S16(i), _) => ffi::lua_pushinteger(l, i.into()),
        (Val::U16(i), _) => ffi::lua_pushinteger(l, i.into()),
        (Val::S32(i), _) => ffi::lua_pushinteger(l, i.into()),
        (Val::U32(i), _) => ffi::lua_pushinteger(l, i.into()),
        (Val::S64(i), _) => ffi::lua_pushinteger(l, i),
        (Val::U64(i), _) => ffi::lua_pushinteger(l, i as i64),
        (Val::Float32(f), _) => ffi::lua_pushnumber(l, f.into()),
        (Val::Float64(f), _) => ffi::lua_pushnumber(l, f),
        (Val::Char(c), _) => push_str(l, c.encode_utf8(&mut [0; 4])),
        (Val::String(s), _) => push_str(l, &s),
        (Val::List(items), Ty::Bytes) => {
            let bytes: Vec<u8> = items.into_iter().map(|v| if let Val::U8(b) = v { b } else { 0 }).collect();
            ffi::lua_pushlstring(l, bytes.as_ptr() as *const _, bytes.len());
        }
        (Val::List(items), Ty::List(elem)) => {
            ffi::lua_createtable(l, items.len().min(c_int::MAX as usize) as c_int, 0);
            for (i, item) in items.into_iter().enumerate() {
                push(l, item, elem, true);
                ffi::lua_rawseti(l, -2, (i + 1) as _);
            }
        }
        (Val::Record(fields), Ty::Record(types)) => {
            ffi::lua_createtable(l, 0, fields.len().min(c_int::MAX as usize) as c_int);
            for ((name, item), f) in fields.into_iter().zip(types.iter()) {
                push(l, item, &f.ty, false);
                if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                    ffi::lua_pop(l, 1);
                } else {
                    push_str(l, &name);
                    ffi::lua_insert(l, -2);
                    ffi::lua_rawset(l, -3);
                }
            }
        }
        (Val::Tuple(items), Ty::Tuple(types)) => {
            ffi::lua_createtable(l, items.len().min(c_int::MAX as usize) as c_int, 0);
            for (i, (item, ty)) in items.into_iter().zip(types.iter()).enumerate() {
                push(l, item, ty, true);
                ffi::lua_rawseti(l, -2, (i + 1) as _);
            }
        }
        (Val::Variant(name, payload), Ty::Variant(cases)) => {
            let case_ty = cases.iter().find(|c| c.name == name).and_then(|c| c.ty.as_ref());
            match (payload, case_ty) {
                (Some(p), Some(ty)) => {
                    ffi::lua_createtable(l, 0, 1);
                    push_str(l, &name);
                    push(l, *p, ty, true);
                    ffi::lua_rawset(l, -3);
                }
                _ => push_str(l, &name),
            }
        }
        (Val::Enum(name), _) => push_str(l, &name),
        (Val::Option(None), Ty::Option(_)) => {
            if slot {
                ffi::lua_pushlightuserdata(l, super::lua::null_ptr());
            } else {
                ffi::lua_pushnil(l);
            }
        }
        (Val::Option(Some(inner)), Ty::Option(ty)) => push(l, *inner, ty, slot || matches!(**ty, Ty::Option(_))),
        (Val::Result(r), Ty::Result(ok, err)) => {
            let (key, payload, ty) = match r {
                Ok(p) => ("ok", p, ok),
                Err(p) => ("err", p, err),
            };
            ffi::lua_createtable(l, 0, 1);
            push_str(l, key);
            match (payload, ty) {
                (Some(p), Some(ty)) => push(l, *p, ty, true),
                _ => ffi::lua_pushboolean(l, 1),
            }
            ffi::lua_rawset(l, -3);
        }
        (Val::Flags(names), _) => {
            ffi::lua_createtable(l, 0, names.len().min(c_int::MAX as usize) as c_int);
            for n in names {
                push_str(l, &n);
                ffi::lua_pushboolean(l, 1);
                ffi::lua_rawset(l, -3);
            }
        }
        _ => ffi::lua_pushnil(l),
    }
}
