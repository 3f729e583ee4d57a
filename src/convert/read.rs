//! Lua values read straight off the stack with the C API onto a value [`Tape`], by the same
//! rules and messages as the mlua path in `lua.rs` (which remains for resource handles and
//! LuaJIT's 64-bit cdata).
//!
//! Reading allocates nothing in Lua and raises no Lua error: record keys come from the
//! state's table of interned field names ([`push_keys`]), so the raw `funcs.call` can read
//! arguments without a protected call. A key missing from that table (a type this state has
//! not read yet) stops a reading that may not make it ([`ReadError::Fallback`]).

use std::ffi::c_int;

use mlua::{ffi, Lua, Value};
use wasmtime::component::Val;

use super::lua::{char_from, enum_from, float_of, int_in, integral, not_integer, u64_of, utf8};
use super::path::{ConvError, Path};
use super::tape::{self, ExtBytes, Item, Tape};
use super::ty::{of, Case, Field, Name, Ty};

#[derive(Debug)]
pub enum ReadError {
    /// The value does not fit its type.
    Conv(ConvError),
    /// The general (mlua) rules must read this value: a record key not interned in this state
    /// yet (and this reading may not intern it), or a LuaJIT `int64_t`/`uint64_t` cdata.
    Fallback,
}

impl From<ConvError> for ReadError {
    fn from(e: ConvError) -> ReadError {
        ReadError::Conv(e)
    }
}

impl ReadError {
    fn in_field(self, name: &str) -> ReadError {
        match self {
            ReadError::Conv(e) => ReadError::Conv(e.in_field(name)),
            other => other,
        }
    }

    fn in_index(self, i: usize) -> ReadError {
        match self {
            ReadError::Conv(e) => ReadError::Conv(e.in_index(i)),
            other => other,
        }
    }

    /// An error about the value an alias `ty` names ([`Ty::name_message`]).
    fn named(self, ty: &Ty) -> ReadError {
        match self {
            ReadError::Conv(mut e) if e.path.is_empty() => {
                e.message = ty.name_message(e.message);
                ReadError::Conv(e)
            }
            other => other,
        }
    }
}

type Read<T> = Result<T, ReadError>;

/// LuaJIT's type tag of cdata (`LUA_TCDATA` in lj_obj.h), which `lua_type` reports for them.
const LUA_TCDATA: c_int = 10;

/// How a reading goes.
#[derive(Clone, Copy)]
pub struct Reader {
    /// Absolute stack index of the state's key table (see [`push_keys`]).
    pub keys: c_int,
    /// Intern missing keys (allocates: only under a protected call).
    pub intern: bool,
    /// Copy strings onto the tape instead of pointing at the Lua strings (for a tape that
    /// leaves the Lua thread or outlives the values). Required with `intern`: interning
    /// allocates, an allocation may run a `__gc` finalizer, and that Lua code could drop a
    /// string the tape points at.
    pub owned: bool,
}

/// The registry key of the state's table of interned field names.
static KEYS: u8 = 0;

fn keys_key() -> *mut std::ffi::c_void {
    std::ptr::addr_of!(KEYS) as *mut std::ffi::c_void
}

/// Pushes the state's key table, creating it when `create` (allocates); without it and with
/// no table yet, pushes nothing and returns false.
///
/// # Safety
/// `l` is a valid state with room for two more values.
pub unsafe fn push_keys(l: *mut ffi::lua_State, create: bool) -> bool {
    // SAFETY: `l` is valid with two free slots (our contract); the registry is a valid pseudo-index, the key a static's
    // address, raw gets and sets call no metamethod, and only `lua_createtable` (when `create`) allocates, with nothing
    // here to drop if it raises. One value is pushed when returning true, none otherwise.
    unsafe {
        ffi::lua_pushlightuserdata(l, keys_key());
        ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX);
        if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
            return true;
        }
        ffi::lua_pop(l, 1);
        if !create {
            return false;
        }
        ffi::lua_createtable(l, 64, 0);
        ffi::lua_pushlightuserdata(l, keys_key());
        ffi::lua_pushvalue(l, -2);
        ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX);
        true
    }
}

/// Pushes the interned string for key `key` (interning `name` when allowed).
///
/// # Safety
/// `keys` is the absolute index of the key table; room for two more values.
pub unsafe fn push_key(l: *mut ffi::lua_State, keys: c_int, key: u32, name: &str, intern: bool) -> bool {
    // SAFETY: `keys` is the key table's absolute index and two slots are free (our contract); raw gets and sets call no
    // metamethod; `lua_pushlstring` copies the live `name` and allocates only with `intern`, which callers allow only
    // under a protected call. One value is pushed when returning true, none otherwise.
    unsafe {
        ffi::lua_rawgeti(l, keys, key as _);
        if ffi::lua_type(l, -1) == ffi::LUA_TSTRING {
            return true;
        }
        ffi::lua_pop(l, 1);
        if !intern {
            return false;
        }
        ffi::lua_pushlstring(l, name.as_ptr() as *const _, name.len());
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawseti(l, keys, key as _);
        true
    }
}

/// Converts the Lua value `v` to a component value of type `ty`, through a tape.
///
/// # Errors
/// The value does not fit its type (the message names the path, below `path`).
pub fn to_val(lua: &Lua, v: &Value, ty: &Ty, path: &mut Path) -> Result<Val, ConvError> {
    let mut out = None;
    // SAFETY: exec_raw pushes `v` and runs the closure in a protected call; `read` leaves the
    // stack as it found it, and the tape's references to Lua strings are used before return.
    let done = unsafe {
        lua.exec_raw::<()>(v.clone(), |l| {
            let idx = ffi::lua_gettop(l);
            if ffi::lua_checkstack(l, 8) == 0 {
                out = Some(Err(ConvError::here("Lua stack overflow")));
                return;
            }
            push_keys(l, true);
            let rd = Reader { keys: ffi::lua_gettop(l), intern: true, owned: true };
            let mut t = tape::spare();
            let r = match read(l, idx, ty, &mut t, rd) {
                Ok(()) => tape::to_val(&mut tape::Cursor::new(&t), ty).map_err(|e| ConvError::here(e.to_string())),
                Err(ReadError::Conv(e)) => Err(e),
                Err(ReadError::Fallback) => Err(ConvError::here("internal error: a value needs the mlua rules")),
            };
            tape::give_back(t);
            ffi::lua_pop(l, 1);
            out = Some(r);
        })
    };
    match (done, out) {
        (Ok(()), Some(r)) => r.map_err(|e| e.under(path)),
        (Err(e), _) => Err(ConvError::new(path, e.to_string())),
        (Ok(()), None) => Err(ConvError::new(path, "conversion did not run")),
    }
}

/// Why [`args_to_tape`] failed.
#[derive(Debug)]
pub enum ArgsError {
    /// Argument `i` (0-based) does not fit its type.
    Arg(usize, ConvError),
    /// Lua itself failed (out of memory, stack overflow).
    Lua(String),
}

/// Reads a call's arguments onto a tape that owns its bytes (it may cross to a worker):
/// `args[i]` by `types[i]`, a missing one as nil. `None` when a value needs the general rules
/// (a LuaJIT 64-bit cdata).
///
/// # Errors
/// An argument does not fit its type, or Lua failed.
pub fn args_to_tape(lua: &Lua, args: &[Value], types: &[&Ty]) -> Result<Option<Tape>, ArgsError> {
    let mut tape = Tape::default();
    let mut failed = None;
    let mut fallback = false;
    let values: mlua::MultiValue =
        types.iter().enumerate().map(|(i, _)| args.get(i).cloned().unwrap_or(Value::Nil)).collect();
    // SAFETY: exec_raw pushes the values and runs the closure in a protected call; the
    // readings leave the stack as they found it, and the tape owns its bytes.
    let done = unsafe {
        lua.exec_raw::<()>(values, |l| {
            let base = ffi::lua_gettop(l) - types.len() as c_int;
            if ffi::lua_checkstack(l, 8) == 0 {
                failed = Some(ArgsError::Lua("Lua stack overflow".into()));
                return;
            }
            push_keys(l, true);
            let rd = Reader { keys: ffi::lua_gettop(l), intern: true, owned: true };
            for (i, ty) in types.iter().enumerate() {
                match read(l, base + 1 + i as c_int, ty, &mut tape, rd) {
                    Ok(()) => {}
                    Err(ReadError::Conv(e)) => {
                        failed = Some(ArgsError::Arg(i, e));
                        break;
                    }
                    Err(ReadError::Fallback) => {
                        fallback = true;
                        break;
                    }
                }
            }
            ffi::lua_pop(l, 1);
        })
    };
    if let Err(e) = done {
        return Err(ArgsError::Lua(e.to_string()));
    }
    match failed {
        Some(f) => Err(f),
        None => Ok((!fallback).then_some(tape)),
    }
}

/// # Safety
/// `l` is a valid state and `idx` an acceptable index.
unsafe fn is_null(l: *mut ffi::lua_State, idx: c_int) -> bool {
    // SAFETY: `idx` is acceptable (our contract); `lua_type` and `lua_touserdata` only inspect the
    // slot: no allocation, no error.
    unsafe { ffi::lua_type(l, idx) == ffi::LUA_TLIGHTUSERDATA && ffi::lua_touserdata(l, idx) == super::lua::null_ptr() }
}

/// The Lua type of a stack slot as messages name it.
///
/// # Safety
/// `l` is a valid state and `idx` an acceptable index.
unsafe fn got(l: *mut ffi::lua_State, idx: c_int) -> &'static str {
    // SAFETY: `idx` is acceptable (our contract), the same contract as `is_null`; `lua_type` only
    // inspects the slot.
    unsafe {
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
}

/// # Safety
/// `l` is a valid state and `idx` an acceptable index.
unsafe fn mismatch(l: *mut ffi::lua_State, idx: c_int, expected: &str) -> ReadError {
    // SAFETY: `got` has our contract.
    let got = unsafe { got(l, idx) };
    ReadError::Conv(ConvError::here(format!("expected {expected}, got {got}")))
}

/// The empty path the shared number and string rules take (steps are added on return).
fn here() -> &'static Path {
    static EMPTY: std::sync::OnceLock<Path> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Path::new)
}

/// A number as a plain mlua value (no reference), for the number rules.
///
/// # Safety
/// `l` is a valid state and `idx` an acceptable index.
unsafe fn number(l: *mut ffi::lua_State, idx: c_int, name: &str) -> Read<Value> {
    // SAFETY: `idx` is acceptable (our contract); the number accessors run only on a slot that
    // holds a number, so they convert nothing and cannot raise.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TNUMBER if ffi::lua_isinteger(l, idx) != 0 => Ok(Value::Integer(ffi::lua_tointeger(l, idx))),
            ffi::LUA_TNUMBER => Ok(Value::Number(ffi::lua_tonumber(l, idx))),
            _ => Err(mismatch(l, idx, name)),
        }
    }
}

/// The bytes of a string slot (valid while the string is reachable).
///
/// # Safety
/// `l` is a valid state and `idx` an acceptable index; the slice must not be used after the string
/// becomes unreachable (the caller picks `'a` accordingly).
unsafe fn bytes_at<'a>(l: *mut ffi::lua_State, idx: c_int) -> Option<&'a [u8]> {
    // SAFETY: `idx` is acceptable (our contract) and holds a string (checked), so `lua_tolstring` returns its bytes
    // without converting, allocating or raising; Lua strings are immutable and never move, so the bytes stay valid
    // while the caller keeps the string reachable.
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TSTRING {
            return None;
        }
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, idx, &mut len);
        Some(std::slice::from_raw_parts(p as *const u8, len))
    }
}

fn push_text(tape: &mut Tape, b: &[u8], owned: bool) -> Read<()> {
    if owned {
        tape.push_bytes(b).map_err(|e| ConvError::here(e.to_string()))?;
    } else {
        // SAFETY: readers that do not own their bytes run while the values are on the
        // stack and no Lua code can run (no allocation: `intern` is off, see `Reader`), and
        // their tapes stay on this thread.
        tape.items.push(Item::Ext(unsafe { ExtBytes::new(b) }));
    }
    Ok(())
}

/// An array table's length, after rejecting tables with only non-array keys and empty proxies.
/// Check [`dense`] after its elements.
///
/// # Safety
/// `l` is a valid state with a table at absolute index `idx` and two free stack slots.
unsafe fn array_len(l: *mut ffi::lua_State, idx: c_int, expected: impl FnOnce() -> String) -> Read<usize> {
    // SAFETY: The table is at absolute index `idx` (our contract), so `lua_rawlen` and `lua_next`
    // read it raw, without metamethods; the key-value pair `next` pushes fits in the two
    // free slots and is popped before returning. `got` and `proxy` have our contract.
    unsafe {
        let len = ffi::lua_rawlen(l, idx);
        if len == 0 {
            ffi::lua_pushnil(l);
            if ffi::lua_next(l, idx) != 0 {
                let key = got(l, -2);
                ffi::lua_pop(l, 2);
                return Err(ConvError::here(format!(
                    "expected {} (an array table), got a table with key {key}",
                    expected()
                ))
                .into());
            }
            if proxy(l, idx) {
                return Err(ConvError::here(PROXY).into());
            }
            return Ok(0);
        }
        Ok(len as usize)
    }
}

/// Rejects a sparse array: a positive integer key past the length `len`, an element that would
/// be lost. After the elements, so that both readers report an element's error first.
///
/// # Safety
/// `l` is a valid state with a table at absolute index `idx`, and two free stack slots.
unsafe fn dense(l: *mut ffi::lua_State, idx: c_int, len: usize) -> Read<()> {
    // SAFETY: `past_len` has our contract.
    unsafe {
        match past_len(l, idx, len) {
            Some(k) if len > 0 => Err(ConvError::here(sparse(k, len)).into()),
            _ => Ok(()),
        }
    }
}

/// The `len` elements of the array table at `idx` onto the tape, in index order, then [`dense`]
/// in the same pass: `next` gives the array part in index order (each element read from it
/// at once, no second lookup), the rest — keys in the hash part, elements after a hole — are
/// read by index afterwards.
///
/// # Safety
/// `l` is a valid state with a table at absolute index `idx` whose raw length is `len`, two free
/// stack slots, and `rd` as [`read`] requires.
unsafe fn list(l: *mut ffi::lua_State, idx: c_int, len: usize, elem: &Ty, tape: &mut Tape, rd: Reader) -> Read<()> {
    // SAFETY: the table is at absolute index `idx` and two slots are free (our contract): `lua_next` pushes a key and a
    // value, `lua_rawgeti` one value, each popped before the next step; `read` leaves the stack as it found it, so the
    // key stays on top for `lua_next`, and the traversal never assigns to the table.
    unsafe {
        let mut next = 1usize;
        let mut past = None;
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, idx) != 0 {
            if ffi::lua_type(l, -2) == ffi::LUA_TNUMBER {
                let k = ffi::lua_tonumber(l, -2);
                if next <= len && k == next as f64 {
                    if let Err(e) = read(l, ffi::lua_gettop(l), elem, tape, rd) {
                        ffi::lua_pop(l, 2);
                        return Err(e.in_index(next));
                    }
                    next += 1;
                } else if past.is_none() && k.fract() == 0.0 && k > len as f64 {
                    past = Some(k);
                }
            }
            ffi::lua_pop(l, 1);
        }
        for i in next..=len {
            ffi::lua_rawgeti(l, idx, i as _);
            let item = read(l, ffi::lua_gettop(l), elem, tape, rd);
            ffi::lua_pop(l, 1);
            item.map_err(|e| e.in_index(i))?;
        }
        match past {
            Some(k) => Err(ConvError::here(sparse(k, len)).into()),
            None => Ok(()),
        }
    }
}

/// A positive integer key of the table at absolute index `idx` past its length `len` (> 0),
/// if any. Leaves the stack as it was.
///
/// # Safety
/// `l` is a valid state with a table at absolute index `idx`, and two free stack slots.
pub(super) unsafe fn past_len(l: *mut ffi::lua_State, idx: c_int, len: usize) -> Option<f64> {
    // SAFETY: the table is at absolute index `idx` and two slots are free (our contract): the value `lua_next` pushes
    // is popped each step and the key when the walk stops early, so the stack ends as it began; the walk is raw.
    unsafe {
        // Every key: the order of `next` is the array part, then the hash part, where an element
        // may come before key `len` (LuaJIT puts `{[1] = a, [3] = c}` there as 3, 1).
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, idx) != 0 {
            if ffi::lua_type(l, -2) == ffi::LUA_TNUMBER {
                let k = ffi::lua_tonumber(l, -2);
                if k.fract() == 0.0 && k > len as f64 {
                    ffi::lua_pop(l, 2);
                    return Some(k);
                }
            }
            ffi::lua_pop(l, 1);
        }
        None
    }
}

/// Whether the (empty) table at `idx` has a metatable with `__index` or `__len`: a proxy,
/// whose elements conversion would not see. The fields are read raw, as Lua looks up
/// metamethods (and as the mlua path does): a metatable's own metatable runs no code here.
///
/// # Safety
/// `l` is a valid state with a table at `idx` and two free stack slots.
unsafe fn proxy(l: *mut ffi::lua_State, idx: c_int) -> bool {
    // SAFETY: `idx` holds a table and two slots are free (our contract): the metatable and one field at a time, both
    // popped before returning; the fields are read raw (no Lua code runs) by names every state keeps interned.
    unsafe {
        if ffi::lua_getmetatable(l, idx) == 0 {
            return false;
        }
        let mut found = false;
        for name in [c"__index", c"__len"] {
            ffi::lua_pushstring(l, name.as_ptr());
            ffi::lua_rawget(l, -2);
            found |= ffi::lua_type(l, -1) != ffi::LUA_TNIL;
            ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
        found
    }
}

/// The message for an empty table whose metatable would give it elements.
pub(super) const PROXY: &str =
    "an empty table with __index or __len: tables are read raw (metamethods are not called), so \
     it would be an empty list; pass a plain array";

/// The message for an array with an element at `key` past its length `len`.
pub(super) fn sparse(key: f64, len: usize) -> String {
    format!(
        "a sparse array: index {key:.0} is past its length {len}, so it would be lost (a list has \
         elements 1..n without holes; use wippy.null for a missing element)"
    )
}

fn int(v: &Value, name: &str, lo: i64, hi: i64) -> Read<Item> {
    Ok(Item::Int(int_in(v, here(), name, lo, hi)?))
}

/// Reads the value at absolute index `idx` onto the tape.
///
/// # Safety
/// `l` is a valid state, `idx` an absolute index, `rd.keys` the key table's index.
pub unsafe fn read(l: *mut ffi::lua_State, idx: c_int, ty: &Ty, tape: &mut Tape, rd: Reader) -> Read<()> {
    // SAFETY: `idx` is a live absolute index, `rd.keys` the key table's, the helpers' contracts ours; compound values
    // reserve four slots and every helper pops what it pushed; reads are raw; only interning (`rd.intern`, under a
    // protected call) and stack growth allocate (LuaJIT raises on the latter).
    unsafe {
        // Scalars push nothing; a compound value pushes at most four slots per level.
        let compound = matches!(
            ty,
            Ty::List(_) | Ty::Record(..) | Ty::Tuple(_) | Ty::Variant(..) | Ty::Result(..) | Ty::Flags(..) | Ty::Bytes
        );
        if compound && ffi::lua_checkstack(l, 4) == 0 {
            return Err(ConvError::here("value nested too deeply").into());
        }
        let item = match ty {
            Ty::Bool => match ffi::lua_type(l, idx) {
                ffi::LUA_TBOOLEAN => Item::Bool(ffi::lua_toboolean(l, idx) != 0),
                _ => return Err(mismatch(l, idx, "bool")),
            },
            Ty::S8 => int(&number(l, idx, "s8")?, "s8", i8::MIN.into(), i8::MAX.into())?,
            Ty::U8 => int(&number(l, idx, "u8")?, "u8", 0, u8::MAX.into())?,
            Ty::S16 => int(&number(l, idx, "s16")?, "s16", i16::MIN.into(), i16::MAX.into())?,
            Ty::U16 => int(&number(l, idx, "u16")?, "u16", 0, u16::MAX.into())?,
            Ty::S32 => int(&number(l, idx, "s32")?, "s32", i32::MIN.into(), i32::MAX.into())?,
            Ty::U32 => int(&number(l, idx, "u32")?, "u32", 0, u32::MAX.into())?,
            // A LuaJIT `int64_t`/`uint64_t` cdata: the general rules read it (`int64`).
            Ty::S64 | Ty::U64 if cfg!(feature = "luajit") && ffi::lua_type(l, idx) == LUA_TCDATA => {
                return Err(ReadError::Fallback)
            }
            Ty::S64 => {
                let v = number(l, idx, "s64")?;
                Item::Int(integral(&v).ok_or_else(|| not_integer(here(), "s64", &v))?)
            }
            Ty::U64 => Item::Int(u64_of(&number(l, idx, "u64")?, here())? as i64),
            Ty::F32 => Item::F32(float_of(&number(l, idx, "f32")?, here(), "f32")? as f32),
            Ty::F64 => Item::F64(float_of(&number(l, idx, "f64")?, here(), "f64")?),
            Ty::Char => match bytes_at(l, idx) {
                Some(b) => Item::Char(char_from(b, here())?),
                None => return Err(mismatch(l, idx, "char")),
            },
            Ty::String => match bytes_at(l, idx) {
                Some(b) => {
                    utf8(b, here())?;
                    return push_text(tape, b, rd.owned);
                }
                None => return Err(mismatch(l, idx, "string")),
            },
            Ty::Bytes => return bytes(l, idx, tape, rd),
            Ty::List(elem) => {
                if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
                    return Err(mismatch(l, idx, &ty.describe()));
                }
                let len = array_len(l, idx, || ty.describe())?;
                tape.items.push(Item::Len(u32::try_from(len).map_err(|_| ConvError::here("list too long"))?));
                return list(l, idx, len, elem, tape, rd);
            }
            Ty::Record(fields, _) => {
                if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
                    return Err(mismatch(l, idx, &ty.expected()));
                }
                return record(l, idx, fields, tape, rd);
            }
            Ty::Tuple(types) => {
                if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
                    return Err(mismatch(l, idx, &ty.describe()));
                }
                let len = ffi::lua_rawlen(l, idx) as usize;
                if len != types.len() {
                    return Err(ConvError::here(format!(
                        "expected {} (an array of {} values), got an array of {len}",
                        ty.describe(),
                        types.len()
                    ))
                    .into());
                }
                for (i, elem) in types.iter().enumerate() {
                    ffi::lua_rawgeti(l, idx, (i + 1) as _);
                    let item = read(l, ffi::lua_gettop(l), elem, tape, rd);
                    ffi::lua_pop(l, 1);
                    item.map_err(|e| e.in_index(i + 1))?;
                }
                return Ok(());
            }
            Ty::Variant(cases, name) => return variant(l, idx, ty, cases, name, tape, rd),
            Ty::Enum(names, name) => match bytes_at(l, idx) {
                Some(b) => Item::Case(enum_from(b, names, name, here())? as u32),
                None => return Err(mismatch(l, idx, &ty.expected())),
            },
            Ty::Option(inner) => match ffi::lua_type(l, idx) {
                ffi::LUA_TNIL | ffi::LUA_TNONE => Item::Case(0),
                _ if is_null(l, idx) => {
                    // `wippy.null` is the inner `none` of a nested option.
                    if let Ty::Option(_) = inner.bare() {
                        tape.items.push(Item::Case(1));
                    }
                    Item::Case(0)
                }
                _ => {
                    tape.items.push(Item::Case(1));
                    return read(l, idx, inner, tape, rd);
                }
            },
            Ty::Result(ok, err) => return result(l, idx, ty, ok.as_deref(), err.as_deref(), tape, rd),
            Ty::Flags(names, name) => return flags(l, idx, ty, names, name, tape),
            Ty::Own(_) | Ty::Borrow(_) | Ty::Unsupported(_) => {
                return Err(ConvError::here(format!("{} values cannot be read here", ty.describe())).into())
            }
            Ty::Named(_, inner) => return read(l, idx, inner, tape, rd).map_err(|e| e.named(ty)),
        };
        tape.items.push(item);
        Ok(())
    }
}

/// `list<u8>`: a string, or an array of byte values.
///
/// # Safety
/// `l` is a valid state, `idx` an absolute index and two stack slots free (as [`read`] ensures).
unsafe fn bytes(l: *mut ffi::lua_State, idx: c_int, tape: &mut Tape, rd: Reader) -> Read<()> {
    // SAFETY: `idx` is absolute and two slots are free (our contract): each element `lua_rawgeti` pushes is popped at
    // once; `bytes_at` runs on a string that stays on the stack while the tape is read (`push_text` copies it unless
    // the reader points at the caller's values). The helpers' contracts are ours.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => push_text(tape, bytes_at(l, idx).unwrap_or_default(), rd.owned),
            ffi::LUA_TTABLE => {
                let len = array_len(l, idx, || "list<u8>".into())?;
                let at = tape.bytes.len();
                for i in 1..=len {
                    ffi::lua_rawgeti(l, idx, i as _);
                    let item = number(l, -1, "u8").and_then(|v| Ok(int_in(&v, here(), "u8", 0, 255)?));
                    ffi::lua_pop(l, 1);
                    tape.bytes.push(item.map_err(|e| e.in_index(i))? as u8);
                }
                dense(l, idx, len)?;
                let too_long = |_| ConvError::here("list too long");
                tape.items.push(Item::Bytes {
                    at: u32::try_from(at).map_err(too_long)?,
                    len: u32::try_from(len).map_err(too_long)?,
                });
                Ok(())
            }
            _ => Err(mismatch(l, idx, "list<u8> (a string or an array of bytes)")),
        }
    }
}

/// # Safety
/// `l` is a valid state, `idx` the absolute index of a table, two stack slots free and `rd` as
/// [`read`] requires.
unsafe fn record(l: *mut ffi::lua_State, idx: c_int, fields: &[Field], tape: &mut Tape, rd: Reader) -> Read<()> {
    // SAFETY: the table is at absolute index `idx` and `rd.keys` is the key table's (our contract): each key `push_key`
    // pushes is replaced by its value through a raw get, the field is read at its absolute index and popped before the
    // next, so one slot is used at a time.
    unsafe {
        for f in fields {
            if !push_key(l, rd.keys, f.key, &f.name, rd.intern) {
                return Err(ReadError::Fallback);
            }
            ffi::lua_rawget(l, idx);
            if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                if let Some(alias) = &f.alias {
                    ffi::lua_pop(l, 1);
                    if !push_key(l, rd.keys, f.key + 1, alias, rd.intern) {
                        return Err(ReadError::Fallback);
                    }
                    ffi::lua_rawget(l, idx);
                }
            }
            let item = if ffi::lua_type(l, -1) == ffi::LUA_TNIL && !matches!(f.ty.bare(), Ty::Option(_)) {
                Err(ConvError::here(format!("missing field (expected {})", f.ty.describe())).into())
            } else {
                read(l, ffi::lua_gettop(l), &f.ty, tape, rd)
            };
            ffi::lua_pop(l, 1);
            item.map_err(|e| e.in_field(&f.name))?;
        }
        Ok(())
    }
}

/// The key of a `{case = payload}` table, with the key and the payload pushed on top; a
/// table with another key fails first (as the mlua path checks). [`payload`] pops both.
///
/// # Safety
/// `l` is a valid state, `idx` the absolute index of a table, four stack slots free. The key slice
/// lives as long as the key stays on the stack (until [`payload`] pops it).
unsafe fn first_pair<'a>(l: *mut ffi::lua_State, idx: c_int, ty: &Ty) -> Read<&'a [u8]> {
    // SAFETY: the table is at absolute index `idx` and four slots are free (our contract): the first pair and the probe
    // for a second take at most four, a failure pops them all, and on success the key and value stay pushed for
    // `payload`, which keeps the key's bytes alive.
    unsafe {
        let fail = || ConvError::here(ty.one_key("a table with one key", "an empty or non-string-keyed table"));
        ffi::lua_pushnil(l);
        if ffi::lua_next(l, idx) == 0 {
            return Err(fail().into());
        }
        let Some(key) = bytes_at(l, -2) else {
            ffi::lua_pop(l, 2);
            return Err(fail().into());
        };
        // Another key after this one?
        ffi::lua_pushvalue(l, -2);
        if ffi::lua_next(l, idx) != 0 {
            ffi::lua_pop(l, 4);
            return Err(ConvError::here(ty.one_key("a table with exactly one key", "several keys")).into());
        }
        Ok(key)
    }
}

/// Reads the payload on top of the stack (key below it) and pops both. A case without a
/// payload type takes `nil` or `true`.
///
/// # Safety
/// `l` is a valid state with a key and a value pushed on top (by [`first_pair`]), and `rd` as
/// [`read`] requires.
unsafe fn payload(l: *mut ffi::lua_State, ty: Option<&Ty>, unit: &str, tape: &mut Tape, rd: Reader) -> Read<()> {
    // SAFETY: The key and payload are the top two slots (our contract); the payload is read at its
    // absolute index and both are popped.
    unsafe {
        let out = match ty {
            None => match ffi::lua_type(l, -1) {
                ffi::LUA_TNIL => Ok(()),
                ffi::LUA_TBOOLEAN if ffi::lua_toboolean(l, -1) != 0 => Ok(()),
                _ => Err(ConvError::here(format!("{unit} {}", got(l, -1))).into()),
            },
            Some(ty) => read(l, ffi::lua_gettop(l), ty, tape, rd),
        };
        ffi::lua_pop(l, 2);
        out
    }
}

/// # Safety
/// `l` is a valid state, `idx` an absolute index, four stack slots free and `rd` as [`read`]
/// requires.
unsafe fn variant(
    l: *mut ffi::lua_State,
    idx: c_int,
    ty: &Ty,
    cases: &[Case],
    name: &Name,
    tape: &mut Tape,
    rd: Reader,
) -> Read<()> {
    // SAFETY: `idx` is absolute with four slots free (our contract), which `first_pair` and
    // `payload` need; a name that matches no case pops the pair `first_pair` left. The case
    // name's bytes are on the stack while `find` compares them.
    unsafe {
        let find = |key: &[u8]| {
            cases.iter().position(|c| c.name.as_bytes() == key).ok_or_else(|| {
                let names = cases.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
                ReadError::Conv(ConvError::here(format!(
                    "unknown variant case \"{}\"{}, expected one of: {names}",
                    String::from_utf8_lossy(key),
                    of(name)
                )))
            })
        };
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => {
                let k = find(bytes_at(l, idx).unwrap_or_default())?;
                let case = &cases[k];
                tape.items.push(Item::Case(k as u32));
                match &case.ty {
                    None => Ok(()),
                    // A case name alone is the case with an absent optional payload.
                    Some(t) if matches!(t.bare(), Ty::Option(_)) => {
                        tape.items.push(Item::Case(0));
                        Ok(())
                    }
                    Some(ty) => Err(ConvError::here(format!("missing payload (expected {})", ty.describe()))
                        .in_field(&case.name)
                        .into()),
                }
            }
            ffi::LUA_TTABLE => {
                let key = first_pair(l, idx, ty)?;
                let k = match find(key) {
                    Ok(k) => k,
                    Err(e) => {
                        ffi::lua_pop(l, 2);
                        return Err(e);
                    }
                };
                let case = &cases[k];
                tape.items.push(Item::Case(k as u32));
                payload(l, case.ty.as_ref(), "case has no payload, got", tape, rd).map_err(|e| e.in_field(&case.name))
            }
            _ => Err(mismatch(l, idx, &ty.expected())),
        }
    }
}

/// # Safety
/// `l` is a valid state, `idx` an absolute index, four stack slots free and `rd` as [`read`]
/// requires.
unsafe fn result(
    l: *mut ffi::lua_State,
    idx: c_int,
    ty: &Ty,
    ok: Option<&Ty>,
    err: Option<&Ty>,
    tape: &mut Tape,
    rd: Reader,
) -> Read<()> {
    // SAFETY: As for `variant`: `first_pair` and `payload` get our contract, and a key that is
    // neither `ok` nor `err` pops the pair `first_pair` left (after copying the key's
    // text).
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
            return Err(mismatch(l, idx, &ty.expected()));
        }
        let name = first_pair(l, idx, ty)?;
        let (case, branch, ty) = match name {
            b"ok" => (0, "ok", ok),
            b"err" => (1, "err", err),
            other => {
                let other = String::from_utf8_lossy(other).into_owned();
                ffi::lua_pop(l, 2);
                return Err(ConvError::here(format!("expected result key \"ok\" or \"err\", got \"{other}\"")).into());
            }
        };
        tape.items.push(Item::Case(case));
        payload(l, ty, "expected true (no payload), got", tape, rd).map_err(|e| e.in_field(branch))
    }
}

/// # Safety
/// `l` is a valid state, `idx` the absolute index of a value, two stack slots free.
unsafe fn flags(
    l: *mut ffi::lua_State,
    idx: c_int,
    ty: &Ty,
    names: &[String],
    name: &Name,
    tape: &mut Tape,
) -> Read<()> {
    // SAFETY: `idx` is absolute and two slots are free (our contract): `lua_next` walks the table raw with one pair
    // pushed at a time, the value popped each step and the key when the walk stops on an error; a name's bytes are read
    // while it is on the stack.
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
            return Err(mismatch(l, idx, &ty.expected()));
        }
        let at = tape.items.len();
        let words = names.len().div_ceil(32);
        tape.items.extend(std::iter::repeat_n(Item::Flags(0), words));
        let lookup = |k: &[u8]| {
            names.iter().position(|n| n.as_bytes() == k).ok_or_else(|| {
                ConvError::here(format!(
                    "unknown flag \"{}\"{}, expected any of: {}",
                    String::from_utf8_lossy(k),
                    of(name),
                    names.join(", ")
                ))
            })
        };
        let set = |tape: &mut Tape, i: usize, on: bool| {
            if let Item::Flags(w) = &mut tape.items[at + i / 32] {
                if on {
                    *w |= 1 << (i % 32);
                } else {
                    *w &= !(1 << (i % 32));
                }
            }
        };
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, idx) != 0 {
            let step = match (ffi::lua_type(l, -2), ffi::lua_type(l, -1)) {
                (ffi::LUA_TNUMBER, ffi::LUA_TSTRING) if ffi::lua_isinteger(l, -2) != 0 => {
                    lookup(bytes_at(l, -1).unwrap_or_default()).map(|i| set(tape, i, true))
                }
                (ffi::LUA_TSTRING, ffi::LUA_TBOOLEAN) => {
                    let on = ffi::lua_toboolean(l, -1) != 0;
                    lookup(bytes_at(l, -2).unwrap_or_default()).map(|i| set(tape, i, on))
                }
                _ => Err(ConvError::here(format!(
                    "expected flags as {{name = true}} or {{\"name\"}}, got key {} with value {}",
                    got(l, -2),
                    got(l, -1)
                ))),
            };
            ffi::lua_pop(l, 1);
            if let Err(e) = step {
                ffi::lua_pop(l, 1);
                return Err(e.into());
            }
        }
        Ok(())
    }
}
