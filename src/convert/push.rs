//! Values pushed from a [`Tape`] onto the Lua stack with the C API: no mlua references, one
//! table or string per value, record keys from the state's interned names. Used for results
//! whose types need nothing from mlua (no resource handles; on LuaJIT no 64-bit integers,
//! which may need cdata).
//!
//! Pushing allocates and may raise a Lua error (out of memory); the functions here keep no
//! Rust value that needs dropping, so such an error unwinds through them harmlessly.

use std::ffi::c_int;

use mlua::{ffi, Lua, Value};
use wasmtime::component::Val;

use super::read::{push_key, push_keys};
use super::tape::{self, Cursor, Item};
use super::ty::Ty;

/// Converts `v` to a Lua value through the stack (see [`super::from_val`] for the rules).
///
/// # Errors
/// Only when Lua fails (out of memory, stack overflow on absurdly deep values).
pub fn to_lua(lua: &Lua, v: Val, ty: &Ty, slot: bool) -> mlua::Result<Value> {
    let mut t = tape::spare();
    tape::from_val(&v, ty, &mut t).map_err(|e| mlua::Error::runtime(e.to_string()))?;
    drop(v);
    // SAFETY: exec_raw runs the closure in a protected call on this state; `push` leaves
    // exactly one value on the stack above the key table, which is removed.
    let out = unsafe {
        lua.exec_raw::<Value>((), |l| {
            with_keys(l, |keys| {
                push(l, &mut Cursor::new(&t), ty, slot, keys);
                1
            });
        })
    };
    tape::give_back(t);
    out
}

/// The results on a tape as `funcs.call` returns them (see [`push_results`]); nothing for a
/// function without a result.
///
/// # Errors
/// Only when Lua fails.
pub fn results_to_lua(lua: &Lua, t: &tape::Tape, ty: Option<&Ty>) -> mlua::Result<mlua::MultiValue> {
    let Some(ty) = ty else { return Ok(mlua::MultiValue::new()) };
    // SAFETY: exec_raw runs the closure in a protected call; what it leaves above the stack it
    // found (the results, once the key table is removed) becomes the returned values.
    unsafe {
        lua.exec_raw::<mlua::MultiValue>((), |l| {
            with_keys(l, |keys| push_results(l, &mut Cursor::new(t), ty, keys));
        })
    }
}

/// Runs `push` with the state's key table on the stack (its index given), then removes the
/// table from below what `push` pushed; returns `push`'s count. Keeps no value that needs
/// dropping, so a Lua error inside unwinds through it harmlessly.
///
/// # Safety
/// `l` is a valid state; `push` pushes exactly the count it returns.
pub unsafe fn with_keys(l: *mut ffi::lua_State, push: impl FnOnce(c_int) -> c_int) -> c_int {
    // SAFETY: `l` is valid, `keys` the key table's absolute index and `push` pushes exactly `n` values above it (our
    // contract): the eight slots asked of `lua_checkstack` exist in a C function's frame (LUA_MINSTACK), `lua_remove`
    // takes out the table alone, and nothing here needs dropping if a Lua error unwinds through this frame.
    unsafe {
        ffi::lua_checkstack(l, 8);
        push_keys(l, true);
        let keys = ffi::lua_gettop(l);
        let n = push(keys);
        ffi::lua_remove(l, keys);
        n
    }
}

/// Pushes the next value of type `ty` from the cursor. `slot`: a `none` here must be
/// `wippy.null` (list and tuple elements, payloads). A tape that does not match its type
/// pushes `nil` for the rest (cannot happen for a tape lifted with this type).
///
/// # Safety
/// `keys` is the absolute index of the state's key table (see [`push_keys`]).
pub unsafe fn push(l: *mut ffi::lua_State, cur: &mut Cursor<'_>, ty: &Ty, slot: bool, keys: c_int) {
    // SAFETY: `keys` is the key table's absolute index (our contract); each level reserves the four slots it uses at
    // most (a table, key, value; LuaJIT's 64-bit helper and its arguments), raw sets call no metamethod, nothing here
    // needs dropping if allocation raises, and tape bytes are valid while the tape is (see `Item::Ext`).
    unsafe {
        if ffi::lua_checkstack(l, 4) == 0 {
            ffi::lua_pushnil(l);
            return;
        }
        // Records and tuples have no head item on the tape, nor have flags without names.
        match ty {
            Ty::Named(_, inner) => return push(l, cur, inner, slot, keys),
            Ty::Record(fields, _) => {
                ffi::lua_createtable(l, 0, fields.len().min(c_int::MAX as usize) as c_int);
                let snake = super::snake_keys();
                for f in fields.iter() {
                    match &f.alias {
                        // The alias is interned at `key + 1`.
                        Some(alias) if snake => push_key(l, keys, f.key + 1, alias, true),
                        _ => push_key(l, keys, f.key, &f.name, true),
                    };
                    push(l, cur, &f.ty, false, keys);
                    if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                        ffi::lua_pop(l, 2);
                    } else {
                        ffi::lua_rawset(l, -3);
                    }
                }
                return;
            }
            Ty::Tuple(types) => {
                ffi::lua_createtable(l, types.len().min(c_int::MAX as usize) as c_int, 0);
                for (i, t) in types.iter().enumerate() {
                    push(l, cur, t, true, keys);
                    ffi::lua_rawseti(l, -2, (i + 1) as _);
                }
                return;
            }
            Ty::Flags(names, _) if names.is_empty() => {
                ffi::lua_createtable(l, 0, 0);
                return;
            }
            _ => {}
        }
        let Ok(item) = cur.item() else {
            ffi::lua_pushnil(l);
            return;
        };
        match (item, ty) {
            (Item::Bool(b), _) => ffi::lua_pushboolean(l, b as c_int),
            // LuaJIT numbers are doubles: beyond 2^53 a 64-bit value comes back as a cdata.
            (Item::Int(i), Ty::S64 | Ty::U64) if cfg!(feature = "luajit") => {
                super::int64::push_raw(l, i, matches!(ty, Ty::S64))
            }
            (Item::Int(i), _) => ffi::lua_pushinteger(l, i as _),
            (Item::F32(f), _) => ffi::lua_pushnumber(l, f.into()),
            (Item::F64(f), _) => ffi::lua_pushnumber(l, f),
            (Item::Char(c), _) => push_str(l, c.encode_utf8(&mut [0; 4])),
            // A `list<T>` whose `T` is an alias of `u8` is lifted as bytes too, but is an array of
            // numbers in Lua (only `list<u8>` itself is a string, SPEC §3).
            (Item::Bytes { .. } | Item::Ext(_), Ty::List(_)) => {
                // SAFETY: as for every tape item (see `Item::Ext`).
                let b = cur.tape().bytes_of(&item).unwrap_or_default();
                ffi::lua_createtable(l, b.len().min(c_int::MAX as usize) as c_int, 0);
                for (i, byte) in b.iter().enumerate() {
                    ffi::lua_pushinteger(l, (*byte).into());
                    ffi::lua_rawseti(l, -2, (i + 1) as _);
                }
            }
            (Item::Bytes { .. } | Item::Ext(_), _) => {
                // SAFETY: as for every tape item (see `Item::Ext`).
                let b = cur.tape().bytes_of(&item).unwrap_or_default();
                ffi::lua_pushlstring(l, b.as_ptr() as *const _, b.len());
            }
            (Item::Len(n), Ty::List(elem)) => {
                ffi::lua_createtable(l, n.min(c_int::MAX as u32) as c_int, 0);
                for i in 1..=n {
                    push(l, cur, elem, true, keys);
                    ffi::lua_rawseti(l, -2, i as _);
                }
            }
            (Item::Case(k), Ty::Variant(cases, _)) => match cases.get(k as usize) {
                Some(case) => match &case.ty {
                    Some(t) => {
                        ffi::lua_createtable(l, 0, 1);
                        push_str(l, &case.name);
                        push(l, cur, t, true, keys);
                        ffi::lua_rawset(l, -3);
                    }
                    None => push_str(l, &case.name),
                },
                None => ffi::lua_pushnil(l),
            },
            (Item::Case(k), Ty::Enum(names, _)) => match names.get(k as usize) {
                Some(n) => push_str(l, n),
                None => ffi::lua_pushnil(l),
            },
            (Item::Case(0), Ty::Option(_)) => {
                if slot {
                    ffi::lua_pushlightuserdata(l, super::lua::null_ptr());
                } else {
                    ffi::lua_pushnil(l);
                }
            }
            (Item::Case(_), Ty::Option(t)) => push(l, cur, t, slot || matches!(t.bare(), Ty::Option(_)), keys),
            (Item::Case(k), Ty::Result(ok, err)) => {
                let (key, t) = if k == 0 { ("ok", ok) } else { ("err", err) };
                ffi::lua_createtable(l, 0, 1);
                push_str(l, key);
                match t {
                    Some(t) => push(l, cur, t, true, keys),
                    None => ffi::lua_pushboolean(l, 1),
                }
                ffi::lua_rawset(l, -3);
            }
            (Item::Flags(first), Ty::Flags(names, _)) => {
                ffi::lua_createtable(l, 0, 0);
                let mut bits = first;
                for (i, n) in names.iter().enumerate() {
                    if i > 0 && i % 32 == 0 {
                        bits = cur.flags().unwrap_or(0);
                    }
                    if bits & (1 << (i % 32)) != 0 {
                        push_str(l, n);
                        ffi::lua_pushboolean(l, 1);
                        ffi::lua_rawset(l, -3);
                    }
                }
            }
            _ => ffi::lua_pushnil(l),
        }
    }
}

/// # Safety
/// `l` is a valid state with a free stack slot.
unsafe fn push_str(l: *mut ffi::lua_State, s: &str) {
    // SAFETY: one free slot (our contract); `lua_pushlstring` copies `s`, which is live for the
    // call.
    unsafe {
        ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
    }
}

/// Pushes the results of a call with result type `ty` as `funcs.call` returns them: a
/// top-level `result<T, E>` as `value, nil` or `nil, e` (§2.1). Returns how many it pushed.
///
/// # Safety
/// As [`push`].
pub unsafe fn push_results(l: *mut ffi::lua_State, cur: &mut Cursor<'_>, ty: &Ty, keys: c_int) -> c_int {
    // SAFETY: `keys` is the key table's absolute index (our contract); an error's leading `nil` takes a slot
    // `with_keys` reserved, `push` reserves four and fills one (room for a success's trailing `nil`); nothing here
    // needs dropping.
    unsafe {
        if let Ty::Result(ok, err) = ty.bare() {
            let Ok(Item::Case(k)) = cur.item() else {
                ffi::lua_pushnil(l);
                return 1;
            };
            let t = if k == 0 { ok } else { err };
            if k != 0 {
                ffi::lua_pushnil(l);
            }
            match t {
                Some(t) => push(l, cur, t, false, keys),
                None => ffi::lua_pushboolean(l, 1),
            }
            if k == 0 {
                ffi::lua_pushnil(l);
            }
            return 2;
        }
        push(l, cur, ty, false, keys);
        1
    }
}
