//! 64-bit integers on LuaJIT, whose numbers are doubles: `int64_t` / `uint64_t` cdata are
//! accepted for `s64` / `u64`, and results that a double cannot hold exactly come back as
//! such cdata (SPEC §3). On Lua 5.3+ integers are 64-bit and this is not used.

use mlua::{Function, Lua, Value};

/// Helpers written with LuaJIT's `ffi` module, made once per Lua state.
pub struct Int64 {
    /// `kind(v)`: 1 for `int64_t` cdata, 2 for `uint64_t` cdata, 0 otherwise.
    kind: Function,
    /// `make(hi, lo, signed)`: the cdata with bits `hi << 32 | lo`.
    make: Function,
}

const HELPERS: &str = r#"
local ffi = require("ffi")
local i64, u64 = ffi.typeof("int64_t"), ffi.typeof("uint64_t")
local function kind(v)
  if ffi.istype(i64, v) then return 1 elseif ffi.istype(u64, v) then return 2 end
  return 0
end
local function make(hi, lo, signed)
  local v = ffi.cast("uint64_t", hi) * 4294967296ULL + lo
  if signed then return ffi.cast("int64_t", v) end
  return v
end
return kind, make
"#;

/// Installs the helpers when the state has LuaJIT's `ffi`; elsewhere nothing.
pub fn install(lua: &Lua) {
    if let Ok((kind, make)) = lua.load(HELPERS).set_name("=wippy.int64").call::<(Function, Function)>(()) {
        // Also where pushing from a tape (raw C API) finds it.
        let _ = lua.set_named_registry_value(MAKE_KEY, make.clone());
        lua.set_app_data(Int64 { kind, make });
    }
}

/// The registry field holding `make` (a C string for `lua_getfield`).
const MAKE_KEY: &str = "wippy.int64.make";

/// Pushes a 64-bit result: a number when a double holds it exactly, else the cdata `make`
/// builds (without the helpers, the nearest number). May raise a Lua error (out of memory).
///
/// # Safety
/// `l` is a valid LuaJIT state with room for four more values.
pub unsafe fn push_raw(l: *mut mlua::ffi::lua_State, bits: i64, signed: bool) {
    use mlua::ffi;
    const EXACT: u64 = 1 << 53;
    let exact = if signed { bits.unsigned_abs() <= EXACT } else { (bits as u64) <= EXACT };
    let number = if signed { bits as f64 } else { bits as u64 as f64 };
    // SAFETY: `l` is a valid LuaJIT state with four free slots (our contract): the registry field, or `install`'s
    // helper and its three arguments. The registry has no metatable, so `lua_getfield` runs no Lua code; `lua_call`
    // runs the helper, and if it raises, nothing in this frame needs dropping.
    unsafe {
        if !exact {
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"wippy.int64.make".as_ptr());
            if ffi::lua_type(l, -1) == ffi::LUA_TFUNCTION {
                let u = bits as u64;
                ffi::lua_pushnumber(l, (u >> 32) as f64);
                ffi::lua_pushnumber(l, (u & 0xffff_ffff) as f64);
                ffi::lua_pushboolean(l, signed as _);
                ffi::lua_call(l, 3, 1);
                return;
            }
            ffi::lua_pop(l, 1);
        }
        ffi::lua_pushnumber(l, number);
    }
}

/// The bits of an `int64_t` / `uint64_t` cdata, and whether it is signed.
pub fn read(lua: &Lua, v: &Value) -> Option<(i64, bool)> {
    let Value::Other(_) = v else { return None };
    // Cloned out: Lua code must not run while the app data is borrowed.
    let kind_fn = lua.app_data_ref::<Int64>()?.kind.clone();
    let kind: i64 = kind_fn.call(v.clone()).ok()?;
    if kind == 0 {
        return None;
    }
    let ptr = v.to_pointer() as *const i64;
    if ptr.is_null() {
        return None;
    }
    // SAFETY: LuaJIT's lua_topointer gives the payload of a cdata, here an 8-byte integer.
    Some((unsafe { ptr.read_unaligned() }, kind == 1))
}

/// A 64-bit result: a number when a double holds it exactly, else a cdata.
pub fn push(lua: &Lua, bits: i64, signed: bool) -> mlua::Result<Value> {
    const EXACT: u64 = 1 << 53;
    let exact = if signed { bits.unsigned_abs() <= EXACT } else { (bits as u64) <= EXACT };
    if exact {
        return Ok(Value::Number(if signed { bits as f64 } else { bits as u64 as f64 }));
    }
    let Some(make) = lua.app_data_ref::<Int64>().map(|h| h.make.clone()) else {
        return Ok(Value::Number(if signed { bits as f64 } else { bits as u64 as f64 }));
    };
    let u = bits as u64;
    make.call(((u >> 32) as f64, (u & 0xffff_ffff) as f64, signed))
}
