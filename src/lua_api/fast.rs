//! The raw `funcs.call`: a C function over the Lua stack for the common case — a cached
//! target, a core function with number or boolean arguments — so a call costs a lookup, a
//! few stack reads and the WebAssembly call. Everything else (a cache miss, strings, tables,
//! wrong counts or types, a Lua function) goes to the mlua implementation in `funcs`, which
//! produces the same results and every error message.
//!
//! Upvalues of the closure: 1 the mlua `funcs.call`, 2 the function returning the pending
//! error, 3 a userdata keeping the state data alive, 4 that data's address.

use std::ffi::c_int;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use mlua::{ffi, Function, Lua, MultiValue, UserData};
use wasmtime::ValRaw;

use super::error::fail;
use super::state::{data, StateData};
use crate::call::{self, Bound, Caller, Route};
use crate::convert::read::{push_keys, read, ReadError, Reader};
use crate::convert::tape::{self, Cursor, Tape};
use crate::convert::{self, Num, Scalar, Ty};
use crate::engine::Callee;
use crate::pool::Io;

/// Longest parameter or result list the raw path handles (on the stack, no allocation).
const MAX_FLAT: usize = 16;

/// Keeps the state data alive while the closure exists.
struct Keep(#[allow(dead_code)] Rc<StateData>);

impl UserData for Keep {}

/// A result to push once no Rust frame of the call is left (a push may raise a Lua error).
enum Ret {
    Nothing,
    Int(i64),
    Num(f64),
    Bool(bool),
    Str(Box<str>),
}

enum Outcome {
    /// Handled: push this result.
    Done(Ret),
    /// Handled: push the results on this tape, of the function of this entry. Neither needs
    /// dropping, so a Lua error while pushing skips nothing (it leaks them).
    Tape(ManuallyDrop<Tape>, ManuallyDrop<Arc<crate::runtime::Loaded>>),
    /// Not handled here: forward the call to the mlua implementation.
    Slow,
    /// The call failed: `StateData::pending` holds the error.
    Failed,
}

/// Builds the `funcs.call` closure.
///
/// # Errors
/// When Lua fails to allocate.
pub fn create_call(lua: &Lua, slow: Function) -> mlua::Result<Function> {
    let state = data(lua);
    let take_error = lua.create_function(|lua, _: MultiValue| {
        let err = data(lua).pending.borrow_mut().take();
        match err {
            Some(e) => fail(lua, e),
            None => Ok(MultiValue::new()),
        }
    })?;
    let keep = lua.create_userdata(Keep(state.clone()))?;
    let addr = Rc::as_ptr(&state) as *mut std::ffi::c_void;
    // SAFETY: the three values are pushed by exec_raw; the closure captures them with the
    // address, which stays valid while upvalue 3 holds the Rc.
    unsafe {
        lua.exec_raw::<Function>((slow, take_error, keep), |l| {
            ffi::lua_pushlightuserdata(l, addr);
            ffi::lua_pushcclosure(l, raw_call, 4);
        })
    }
}

/// The C function behind `funcs.call`.
///
/// # Safety
/// Called by Lua only, as the closure [`create_call`] makes: `l` is a running state whose
/// frame has LUA_MINSTACK free slots, and upvalues 1–4 are as the module documentation says.
unsafe extern "C-unwind" fn raw_call(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls us with a valid state (our contract); slot 1 is an acceptable index even
    // when absent. `luaL_argerror` raises: nothing with a destructor is alive in this frame yet.
    unsafe {
        if ffi::lua_type(l, 1) != ffi::LUA_TSTRING {
            // A programming error: raise like any Lua library (nothing with a destructor is alive).
            let got: &std::ffi::CStr = match ffi::lua_type(l, 1) {
                ffi::LUA_TNONE => c"string expected, got no value",
                ffi::LUA_TNIL => c"string expected, got nil",
                ffi::LUA_TNUMBER => c"string expected, got number",
                ffi::LUA_TBOOLEAN => c"string expected, got boolean",
                ffi::LUA_TTABLE => c"string expected, got table",
                ffi::LUA_TFUNCTION => c"string expected, got function",
                ffi::LUA_TTHREAD => c"string expected, got thread",
                _ => c"string expected, got userdata",
            };
            return ffi::luaL_argerror(l, 1, got.as_ptr());
        }
    }
    // SAFETY: upvalue 4 is the address of the `StateData` that upvalue 3 (`Keep`) holds an `Rc`
    // of, so it is alive for as long as this closure is; it is only ever borrowed shared.
    let state = unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(4)) as *const StateData) };
    // SAFETY: `l` is the running state (our contract).
    let (in_task, in_ngx) = unsafe { in_task(l, state) };
    let caller = match (in_task, in_ngx) {
        (true, false) => Caller::Task,
        (_, true) => Caller::Ngx,
        _ => Caller::Block,
    };
    // A panic must not unwind through Lua's C frames. It may come after the guest ran, so
    // it becomes an error rather than a second try on the slow path.
    // SAFETY: `l` is the running state with the call's arguments at 1..=top (our contract).
    let outcome = catch_unwind(AssertUnwindSafe(|| unsafe { fast_call(l, state, caller) })).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        *state.pending.borrow_mut() =
            Some(crate::error::Error::internal(format!("funcs.call: internal error (a panic: {what})")));
        Outcome::Failed
    });
    // SAFETY: pushes may raise or yield (a longjmp past this frame): the owned values alive (`Outcome::Tape`'s
    // `ManuallyDrop`s, a `Ret::Str`'s box) are then leaked, never dropped twice; results fit (`push_ret` one value in
    // LUA_MINSTACK, `push_tape` reserves its own), and `forward` calls upvalues 1 and 2 that `create_call` set.
    unsafe {
        match outcome {
            Outcome::Done(ret) => push_ret(l, ret),
            Outcome::Tape(out, loaded) => {
                let n = push_tape(l, &out, &loaded);
                tape::give_back(ManuallyDrop::into_inner(out));
                drop(ManuallyDrop::into_inner(loaded));
                n
            }
            Outcome::Slow => {
                state.in_task.set(in_task || in_ngx);
                state.in_ngx.set(in_ngx);
                let n = forward(l, 1);
                state.in_task.set(false);
                state.in_ngx.set(false);
                // The call waits (a future), or is a Lua function for the task to run (it may wait
                // in turn): yield the marker and what to wait for to the scheduler, which resumes
                // this task with the call's results (they become this function's results). In
                // nginx, the marker goes back to the Lua wrapper, which waits through nginx.
                if in_task
                    && n >= 2
                    && ffi::lua_type(l, 1) == ffi::LUA_TLIGHTUSERDATA
                    && super::sched::is_marker(ffi::lua_topointer(l, 1))
                {
                    return ffi::lua_yield(l, n);
                }
                n
            }
            Outcome::Failed => forward(l, 2),
        }
    }
}

#[cfg(feature = "luajit")]
extern "C-unwind" {
    fn lua_isyieldable(l: *mut ffi::lua_State) -> c_int;
}

#[cfg(any(feature = "lua54", feature = "lua53"))]
use ffi::lua_isyieldable;

/// Lua 5.1 and 5.2 have no `lua_isyieldable`: this reads the counters their `lua_yield` checks
/// before it raises "attempt to yield across a C-call boundary" (5.1: `nCcalls > baseCcalls`;
/// 5.2: `nny > 0`), at their offsets in `struct lua_State` of 5.1.5 and 5.2.4 (x86-64 and other
/// LP64 targets). [`check_layout`] verifies the offsets on a fresh thread once per process; if
/// they do not match, no call yields from `funcs.call` (calls block, with the same results).
///
/// # Safety
/// `l` is a valid state.
#[cfg(any(feature = "lua51", feature = "lua52"))]
unsafe fn lua_isyieldable(l: *mut ffi::lua_State) -> c_int {
    if LAYOUT.load(std::sync::atomic::Ordering::Relaxed) != 1 {
        return 0;
    }
    // SAFETY: `l` is a valid state (our contract) whose layout `check_layout` verified: both
    // fields are `unsigned short`s inside the struct, read without writing.
    let (a, b) = unsafe { (read_u16(l, NCCALLS_AT), read_u16(l, BASE_AT)) };
    if cfg!(feature = "lua51") {
        (a <= b) as c_int
    } else {
        (a == 0) as c_int
    }
}

/// 5.1: `nCcalls` and `baseCcalls`, after `stacksize` and `size_ci`.
#[cfg(feature = "lua51")]
const NCCALLS_AT: usize = 96;
#[cfg(feature = "lua51")]
const BASE_AT: usize = 98;
#[cfg(feature = "lua51")]
const STACKSIZE_AT: usize = 88;
/// 5.2: `nny` (read as the first counter; the second is unused), after `stacksize`.
#[cfg(feature = "lua52")]
const NCCALLS_AT: usize = 68;
#[cfg(feature = "lua52")]
const BASE_AT: usize = 70;
#[cfg(feature = "lua52")]
const STACKSIZE_AT: usize = 64;

/// 0 not checked yet, 1 the offsets hold, 2 they do not.
#[cfg(any(feature = "lua51", feature = "lua52"))]
static LAYOUT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Reads the `unsigned short` at byte `at` of the state.
///
/// # Safety
/// `l` is valid and `at + 2` lies inside its `struct lua_State`.
#[cfg(any(feature = "lua51", feature = "lua52"))]
unsafe fn read_u16(l: *mut ffi::lua_State, at: usize) -> u16 {
    // SAFETY: in bounds of the struct (our contract); unaligned read, so alignment does not matter.
    unsafe { std::ptr::read_unaligned((l as *const u8).add(at) as *const u16) }
}

/// Verifies once per process that a fresh thread has the fields where [`lua_isyieldable`] reads
/// them, with the values `lua_newthread` gives them (5.1: stack of 45 slots, 8 call infos,
/// both counters 0; 5.2: stack of 40 slots, `nny` 1, `nCcalls` 0).
///
/// # Errors
/// When Lua fails to allocate the thread.
#[cfg(any(feature = "lua51", feature = "lua52"))]
pub fn check_layout(lua: &Lua) -> mlua::Result<()> {
    use std::sync::atomic::Ordering;
    if LAYOUT.load(Ordering::Relaxed) != 0 {
        return Ok(());
    }
    let mut ok = false;
    // SAFETY: `exec_raw` gives a valid state with room for the new thread, popped before return;
    // the reads stay inside the thread's struct, whose size is at least the offsets read (the
    // largest, 5.1's `baseCcalls` at 98, is followed by more fields in both versions).
    unsafe {
        lua.exec_raw::<()>((), |l| {
            let t = ffi::lua_newthread(l);
            let stack = std::ptr::read_unaligned((t as *const u8).add(STACKSIZE_AT) as *const c_int);
            let (a, b) = (read_u16(t, NCCALLS_AT), read_u16(t, BASE_AT));
            ok = if cfg!(feature = "lua51") {
                let size_ci = std::ptr::read_unaligned((t as *const u8).add(STACKSIZE_AT + 4) as *const c_int);
                stack == 45 && size_ci == 8 && a == 0 && b == 0
            } else {
                stack == 40 && a == 1 && b == 0
            };
            ffi::lua_pop(l, 1);
        })?;
    }
    LAYOUT.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
    if !ok {
        // Correct but slower: say so once, where the user will see it.
        eprintln!(
            "wippy: this Lua's lua_State layout is not the one wippy reads (Lua {}): calls inside tasks will block \
             their Lua state instead of yielding (wippy.stats().engine.task_calls_yield is false; docs/lua-api.md, \
             \"Lua versions\")",
            if cfg!(feature = "lua51") { "5.1.5" } else { "5.2.4" }
        );
    }
    Ok(())
}

/// Whether a `funcs.call` inside a task yields while it waits: always on 5.3, 5.4 and LuaJIT; on
/// 5.1 and 5.2 when [`check_layout`] found the fields it reads.
pub fn task_calls_yield() -> bool {
    #[cfg(any(feature = "lua51", feature = "lua52"))]
    return LAYOUT.load(std::sync::atomic::Ordering::Relaxed) == 1;
    #[cfg(not(any(feature = "lua51", feature = "lua52")))]
    true
}

/// `core.yieldable()` (also `core.isyieldable()`): whether the caller may yield, where Lua or
/// OpenResty has no `coroutine.isyieldable`.
///
/// # Safety
/// Called by Lua only, as a C function with one free stack slot.
pub unsafe extern "C-unwind" fn yieldable(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: `l` is the running state with a free slot (our contract); called straight from
    // Lua code, this frame adds no C-call boundary of its own.
    unsafe {
        ffi::lua_pushboolean(l, lua_isyieldable(l));
    }
    1
}

/// Whether the caller is a task of this state's scheduler that may yield, and whether it is a
/// coroutine nginx runs that may yield (OpenResty: not a task, `StateData::ngx` set).
///
/// # Safety
/// `l` is a valid state.
unsafe fn in_task(l: *mut ffi::lua_State, state: &StateData) -> (bool, bool) {
    let tasks = state.tasks.borrow();
    let task = !tasks.is_empty() && tasks.contains(&(l as usize));
    if !task && !state.ngx.get() {
        return (false, false);
    }
    // SAFETY: `l` is valid (our contract); `lua_isyieldable` only reads its call status.
    let yieldable = unsafe { lua_isyieldable(l) } != 0;
    (task && yieldable, !task && yieldable)
}

/// Pushes a result; returns the number of values pushed.
///
/// # Safety
/// `l` is a valid state with a free stack slot.
unsafe fn push_ret(l: *mut ffi::lua_State, ret: Ret) -> c_int {
    // SAFETY: one free slot (our contract). `lua_pushlstring` copies the live string.
    unsafe {
        match ret {
            Ret::Nothing => return 0,
            Ret::Int(i) => ffi::lua_pushinteger(l, i),
            Ret::Num(n) => ffi::lua_pushnumber(l, n),
            Ret::Bool(b) => ffi::lua_pushboolean(l, b as c_int),
            // If this raises (out of memory), the box leaks; nothing else is lost.
            Ret::Str(s) => {
                ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
            }
        }
    }
    1
}

/// Calls upvalue `up` with every argument and returns all its results. No Rust value with a
/// destructor is alive here, as a Lua error may unwind through this frame.
///
/// # Safety
/// `l` is the state running `raw_call`, with a free stack slot and a function at upvalue `up`.
unsafe fn forward(l: *mut ffi::lua_State, up: c_int) -> c_int {
    // SAFETY: upvalue `up` of the running C closure exists and one slot is free for it (our
    // contract); `lua_call` may raise or yield through this frame, which holds nothing to drop.
    unsafe {
        let n = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(up));
        ffi::lua_insert(l, 1);
        ffi::lua_call(l, n, ffi::LUA_MULTRET);
        ffi::lua_gettop(l)
    }
}

/// Reads a number or boolean argument; anything else is for the slow path.
///
/// # Safety
/// `l` is a valid state and `idx` an acceptable index.
#[inline(always)]
unsafe fn arg(l: *mut ffi::lua_State, idx: c_int) -> Option<Num> {
    // SAFETY: `idx` is acceptable (our contract); the accessors run on a slot of their own type,
    // so they convert nothing, allocate nothing and cannot raise.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TNUMBER => Some(if ffi::lua_isinteger(l, idx) != 0 {
                Num::Int(ffi::lua_tointeger(l, idx))
            } else {
                Num::Float(ffi::lua_tonumber(l, idx))
            }),
            ffi::LUA_TBOOLEAN => Some(Num::Bool(ffi::lua_toboolean(l, idx) != 0)),
            _ => None,
        }
    }
}

/// The fast path of `funcs.call`: calls that need no Lua allocation and no protected call.
///
/// # Safety
/// `l` is the state running `raw_call`, with the call's arguments at 1..=top. Nothing here may
/// raise a Lua error: Rust values with destructors are alive.
unsafe fn fast_call(l: *mut ffi::lua_State, state: &StateData, caller: Caller) -> Outcome {
    // SAFETY: slot 1 holds a string (checked), so `lua_tolstring` returns its bytes without
    // converting (no allocation, no error); the string stays in slot 1, so alive, for this call.
    let (n, target) = unsafe {
        let n = ffi::lua_gettop(l);
        if n < 1 || ffi::lua_type(l, 1) != ffi::LUA_TSTRING {
            return Outcome::Slow;
        }
        let mut len = 0usize;
        let ptr = ffi::lua_tolstring(l, 1, &mut len);
        (n, std::slice::from_raw_parts(ptr as *const u8, len))
    };
    // The call path's steps 1–4 (docs/design.md): the target from this state's cache, the
    // route; only calls that run here and now are made here, the rest go to the slow path.
    let Some(loaded) = state.targets.cached(target) else {
        return Outcome::Slow;
    };
    let Some(f) = loaded.func.as_ref() else {
        return Outcome::Slow;
    };
    // A guest that may call the registry runs Lua inside the call: the context must not stay
    // borrowed here.
    if f.calls_registry {
        return Outcome::Slow;
    }
    if call::route(f, loaded.pool.kind, caller, 0) != Route::Here {
        return Outcome::Slow;
    }
    let ctx = state.current.borrow();
    let bound = match call::bind(&loaded, f, &ctx) {
        Ok(b) => b,
        Err(e) => {
            *state.pending.borrow_mut() = Some(e);
            return Outcome::Failed;
        }
    };
    // On LuaJIT a 64-bit result may need a cdata, which only pushing from a tape makes.
    let wide = |r: Option<&Scalar>| cfg!(feature = "luajit") && matches!(r, Some(Scalar::S64 | Scalar::U64));
    if let Some((params, result)) = f.flat.as_ref().filter(|(_, r)| !wide(r.as_ref())) {
        // SAFETY: our contract, and `n` is the argument count.
        return unsafe { flat_component(l, state, &bound, params, result.as_ref(), n) };
    }
    if f.tape && !convert::general_only() {
        // SAFETY: our contract, and `n` is the argument count.
        return unsafe { tape_component(l, state, &bound, &loaded, n) };
    }
    let Callee::Core { params, results, .. } = &f.callee else { return Outcome::Slow };
    // On LuaJIT a 64-bit result may need a cdata, which the mlua path makes.
    let wide = cfg!(feature = "luajit") && matches!(results.first(), Some(Scalar::S64 | Scalar::U64));
    if wide || params.len() > MAX_FLAT || results.len() > 1 || (n - 1) as usize != params.len() {
        return Outcome::Slow;
    }
    let mut raw = [ValRaw::i32(0); MAX_FLAT];
    for (i, s) in params.iter().enumerate() {
        // SAFETY: `l` is valid (our contract); argument `i + 2` is an acceptable index.
        let Some(v) = (unsafe { arg(l, i as c_int + 2) }) else {
            return Outcome::Slow;
        };
        let Some(r) = convert::scalar_raw(v, s) else {
            return Outcome::Slow;
        };
        raw[i] = r;
    }
    let width = params.len().max(results.len());
    if let Err(e) = bound.core_now(&mut raw[..width]) {
        *state.pending.borrow_mut() = Some(e);
        return Outcome::Failed;
    }
    let Some(s) = results.first() else {
        return Outcome::Done(Ret::Nothing);
    };
    match scalar_ret(&raw[0], s) {
        Ok(ret) => Outcome::Done(ret),
        Err(message) => {
            *state.pending.borrow_mut() = Some(crate::error::Error::internal(format!("{}: {message}", f.id)));
            Outcome::Failed
        }
    }
}

/// A core result as the canonical ABI lifts it.
fn scalar_ret(raw: &ValRaw, s: &Scalar) -> Result<Ret, String> {
    let i32v = raw.get_i32();
    Ok(match s {
        Scalar::Bool => Ret::Bool(i32v != 0),
        Scalar::S8 => Ret::Int((i32v as i8).into()),
        Scalar::U8 => Ret::Int((i32v as u8).into()),
        Scalar::S16 => Ret::Int((i32v as i16).into()),
        Scalar::U16 => Ret::Int((i32v as u16).into()),
        Scalar::S32 => Ret::Int(i32v.into()),
        Scalar::U32 => Ret::Int((i32v as u32).into()),
        Scalar::S64 | Scalar::U64 => Ret::Int(raw.get_i64()),
        Scalar::F32 => Ret::Num(f32::from_bits(raw.get_f32()).into()),
        Scalar::F64 => Ret::Num(f64::from_bits(raw.get_f64())),
        Scalar::Char => {
            let c = char::from_u32(i32v as u32)
                .ok_or_else(|| format!("guest returned {:#x}, which is not a valid char", i32v as u32))?;
            Ret::Str(c.to_string().into())
        }
        Scalar::Enum(names, _) => {
            let i = i32v as u32 as usize;
            let name = names
                .get(i)
                .ok_or_else(|| format!("guest returned enum index {i}, but the enum has {} cases", names.len()))?;
            Ret::Str(name.as_str().into())
        }
    })
}

/// A component function with number and boolean parameters and result.
///
/// # Safety
/// As [`fast_call`]; `n` is the number of values on the stack.
unsafe fn flat_component(
    l: *mut ffi::lua_State,
    state: &StateData,
    bound: &Bound<'_>,
    params: &[Scalar],
    result: Option<&Scalar>,
    n: c_int,
) -> Outcome {
    let f = bound.f;
    if params.len() > MAX_FLAT || (n - 1) as usize != params.len() {
        return Outcome::Slow;
    }
    let mut raw = [ValRaw::i32(0); MAX_FLAT];
    for (i, s) in params.iter().enumerate() {
        // SAFETY: `l` is valid (our contract); argument `i + 2` is an acceptable index.
        let Some(v) = (unsafe { arg(l, i as c_int + 2) }) else { return Outcome::Slow };
        let Some(r) = convert::scalar_raw(v, s) else { return Outcome::Slow };
        raw[i] = r;
    }
    let mut out = ValRaw::i32(0);
    let io = Io::Raw { args: &raw[..params.len()], result: &mut out };
    if let Err(e) = bound.component_now(io, None) {
        *state.pending.borrow_mut() = Some(e);
        return Outcome::Failed;
    }
    let Some(s) = result else {
        return Outcome::Done(Ret::Nothing);
    };
    match scalar_ret(&out, s) {
        Ok(ret) => Outcome::Done(ret),
        Err(message) => {
            *state.pending.borrow_mut() = Some(crate::error::Error::internal(format!("{}: {message}", f.id)));
            Outcome::Failed
        }
    }
}

/// A component function whose values convert on the Lua stack, called with value tapes: the
/// arguments are read off the stack (no Lua allocation, no protected call), lowered by
/// wasmtime's typed call straight into guest memory, and the results lifted onto a tape that
/// `raw_call` pushes once no Rust frame of the call is left.
///
/// # Safety
/// As [`fast_call`]; `n` is the number of values on the stack.
unsafe fn tape_component(
    l: *mut ffi::lua_State,
    state: &StateData,
    bound: &Bound<'_>,
    loaded: &Arc<crate::runtime::Loaded>,
    n: c_int,
) -> Outcome {
    let f = bound.f;
    // The argument count as `funcs.call` checks it: trailing nils beyond the parameters are
    // dropped, missing ones must be options; anything else is for the slow path to report.
    let params = &f.params;
    let mut given = (n - 1) as usize;
    // SAFETY: `given + 1` stays within 1..=n, acceptable indices of the arguments.
    while given > params.len() && unsafe { ffi::lua_type(l, given as c_int + 1) } == ffi::LUA_TNIL {
        given -= 1;
    }
    if given > params.len() || !params[given..].iter().all(|p| matches!(p.ty.bare(), Ty::Option(_))) {
        return Outcome::Slow;
    }
    // SAFETY: `lua_checkstack` makes room for every parameter and the key table before
    // `lua_settop` grows the stack to them (new slots are nil) and `push_keys` pushes the table
    // (without creating it: no allocation). Neither raises.
    let keys = unsafe {
        if ffi::lua_checkstack(l, params.len() as c_int + 8) == 0 {
            return Outcome::Slow;
        }
        // Missing arguments read as nil; the key table goes above them.
        ffi::lua_settop(l, params.len() as c_int + 1);
        if !push_keys(l, false) {
            return Outcome::Slow;
        }
        ffi::lua_gettop(l)
    };
    let rd = Reader { keys, intern: false, owned: false };
    let mut args = state.args_tape.take();
    args.clear();
    let mut failed = None;
    for (i, p) in params.iter().enumerate() {
        // SAFETY: argument `i + 2` is an absolute index of the settled stack and `keys` the key table's; with `intern`
        // and `owned` off, `read` runs no Lua code and raises nothing (short of LuaJIT failing to grow its stack), and
        // the tape's string pointers stay valid: the arguments stay on the stack until the call below returns.
        match unsafe { read(l, i as c_int + 2, &p.ty, &mut args, rd) } {
            Ok(()) => {}
            Err(ReadError::Conv(e)) => {
                failed = Some(Outcome::Failed);
                *state.pending.borrow_mut() = Some(super::funcs::arg_error(f, i, e));
                break;
            }
            // A record key this state has not interned yet (the slow path interns it), or a
            // LuaJIT 64-bit cdata (the slow path reads it).
            Err(ReadError::Fallback) => {
                failed = Some(Outcome::Slow);
                break;
            }
        }
    }
    // SAFETY: pops the key table pushed above.
    unsafe { ffi::lua_pop(l, 1) };
    if let Some(outcome) = failed {
        state.args_tape.set(args.recycled());
        return outcome;
    }
    let mut out = Tape::default();
    let called = bound.component_now(Io::Tape { args: &args, results: &mut out }, None);
    state.args_tape.set(args.recycled());
    match called {
        Ok(_) => Outcome::Tape(ManuallyDrop::new(out), ManuallyDrop::new(loaded.clone())),
        Err(e) => {
            *state.pending.borrow_mut() = Some(e);
            Outcome::Failed
        }
    }
}

/// Pushes the results on a tape; returns how many.
///
/// # Safety
/// `l` is the state running `raw_call`; `out` was lifted with `loaded`'s result type.
unsafe fn push_tape(l: *mut ffi::lua_State, out: &Tape, loaded: &crate::runtime::Loaded) -> c_int {
    let Some(result) = loaded.func.as_ref().and_then(|f| f.results.first()) else {
        return 0;
    };
    // SAFETY: `with_keys` passes `push_results` the key table's absolute index, and
    // `push_results` pushes exactly the count it returns, as `with_keys` requires. A lifted
    // tape owns its bytes.
    unsafe {
        convert::push::with_keys(l, |keys| convert::push::push_results(l, &mut Cursor::new(out), &result.ty, keys))
    }
}
