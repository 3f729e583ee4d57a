//! A call's values as a flat sequence, a *tape*: the items a walk of the WIT type meets, in
//! order. Lua values are read onto a tape (`read`), lowered from it straight into guest memory
//! under the canonical ABI ([`Args`]), lifted from guest memory onto a tape ([`Rets`]) and
//! pushed from it onto the Lua stack (`push`) — no `Val` tree, no allocation per value: a tape
//! is two vectors a Lua state reuses from call to call.
//!
//! The lowering and lifting walk wasmtime's own type of the export (`InterfaceType`), so the
//! memory layout is wasmtime's by construction; scalars and strings go through wasmtime's own
//! `Lower`/`Lift` implementations. A tape that does not match the type is an error, never a
//! wrong write.

use std::mem::MaybeUninit;
use std::slice::{Iter, IterMut};

use wasmtime::component::__internal::wasmtime_environ::component::{
    StringEncoding, TypeTuple, VariantInfo, MAX_FLAT_PARAMS,
};
use wasmtime::component::__internal::{
    CanonicalAbiInfo, ComponentTypes, InstanceType, InterfaceType, LiftContext, LowerContext,
};
use wasmtime::component::{ComponentNamedList, ComponentType, Lift, Lower, Val};
use wasmtime::{bail, Result, ValRaw};

use super::ty::Ty;

/// One value, or the head of a compound one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Item {
    Bool(bool),
    /// Any integer type, sign- or zero-extended (`u64` as its bits).
    Int(i64),
    F32(f32),
    F64(f64),
    Char(char),
    /// A string (valid UTF-8) or `list<u8>` held by the tape: `bytes[at..at + len]`.
    Bytes {
        at: u32,
        len: u32,
    },
    /// A string (valid UTF-8) or `list<u8>` held elsewhere: a Lua string that outlives the
    /// call (an argument on the caller's stack, or reachable from one). Made only through the
    /// unsafe [`ExtBytes::new`].
    Ext(ExtBytes),
    /// A list's length; its elements follow.
    Len(u32),
    /// The case of a variant, enum, option (0 none, 1 some) or result (0 ok, 1 err); its
    /// payload follows when the case has one.
    Case(u32),
    /// Thirty-two flags (one item per started group of 32).
    Flags(u32),
}

/// Bytes a tape points at but does not own (see `Item::Ext`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExtBytes {
    ptr: *const u8,
    len: usize,
}

impl ExtBytes {
    /// # Safety
    /// The bytes must stay valid and unchanged for as long as any tape holding them is read,
    /// and such a tape must stay on the thread of the Lua state that owns them.
    pub unsafe fn new(bytes: &[u8]) -> ExtBytes {
        ExtBytes { ptr: bytes.as_ptr(), len: bytes.len() }
    }
}

#[derive(Default, Debug)]
pub struct Tape {
    pub items: Vec<Item>,
    pub bytes: Vec<u8>,
}

// SAFETY: `Ext` items point at immutable Lua strings; a tape holding them is used only on the
// Lua thread while the strings are reachable (a blocking call). A tape that crosses to a
// worker is read with `Reader::owned` (no `Ext` items) or lifted (owned bytes only).
unsafe impl Send for Tape {}
// SAFETY: shared access only reads the items, and an `Ext` item's bytes are immutable Lua
// strings; the same thread rule as for `Send` applies.
unsafe impl Sync for Tape {}

impl Tape {
    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes.clear();
    }

    /// Appends bytes owned by the tape.
    pub fn push_bytes(&mut self, b: &[u8]) -> Result<()> {
        let at = u32::try_from(self.bytes.len())?;
        let len = u32::try_from(b.len())?;
        self.bytes.extend_from_slice(b);
        self.items.push(Item::Bytes { at, len });
        Ok(())
    }

    /// The bytes of a `Bytes` or `Ext` item.
    ///
    /// # Safety
    /// An `Ext` item's pointer must still be valid.
    pub unsafe fn bytes_of(&self, item: &Item) -> Option<&[u8]> {
        match *item {
            Item::Bytes { at, len } => self.bytes.get(at as usize..at as usize + len as usize),
            // SAFETY: `e` was made by `ExtBytes::new` from a slice, whose contract keeps the
            // bytes valid and unchanged while tapes holding them are read, and the caller
            // guarantees this is still the case.
            Item::Ext(e) => Some(unsafe { std::slice::from_raw_parts(e.ptr, e.len) }),
            _ => None,
        }
    }

    /// Room the tape keeps for reuse, in bytes.
    fn footprint(&self) -> usize {
        self.bytes.capacity() + self.items.capacity() * std::mem::size_of::<Item>()
    }

    /// The tape emptied for reuse, or a fresh one when it grew past what is worth keeping
    /// (one huge call must not pin its buffers for good).
    pub fn recycled(mut self) -> Tape {
        if self.footprint() > KEEP_BYTES {
            return Tape::default();
        }
        self.clear();
        self
    }
}

/// Walks a tape's items in order.
pub struct Cursor<'a> {
    tape: &'a Tape,
    items: Iter<'a, Item>,
}

impl<'a> Cursor<'a> {
    pub fn new(tape: &'a Tape) -> Cursor<'a> {
        Cursor { tape, items: tape.items.iter() }
    }

    pub fn tape(&self) -> &'a Tape {
        self.tape
    }

    pub fn item(&mut self) -> Result<Item> {
        match self.items.next() {
            Some(i) => Ok(*i),
            None => bail!("value tape ended early"),
        }
    }

    fn int(&mut self) -> Result<i64> {
        match self.item()? {
            Item::Int(i) => Ok(i),
            other => bail!("value tape: expected an integer, found {other:?}"),
        }
    }

    pub fn case(&mut self) -> Result<u32> {
        match self.item()? {
            Item::Case(c) => Ok(c),
            other => bail!("value tape: expected a case, found {other:?}"),
        }
    }

    pub fn list_len(&mut self) -> Result<usize> {
        match self.item()? {
            Item::Len(n) => Ok(n as usize),
            other => bail!("value tape: expected a list length, found {other:?}"),
        }
    }

    pub fn flags(&mut self) -> Result<u32> {
        match self.item()? {
            Item::Flags(w) => Ok(w),
            other => bail!("value tape: expected flags, found {other:?}"),
        }
    }

    /// The next item when it is bytes; `None` (nothing consumed) when it is not.
    pub fn try_bytes(&mut self) -> Option<&'a [u8]> {
        let mut peek = self.items.clone();
        let item = peek.next()?;
        // SAFETY: `Ext` items point at Lua strings kept alive for the call (see `Item::Ext`).
        let b = unsafe { self.tape.bytes_of(item) }?;
        self.items = peek;
        Some(b)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        match self.try_bytes() {
            Some(b) => Ok(b),
            None => bail!("value tape: expected bytes, found {:?}", self.items.clone().next()),
        }
    }

    pub fn str(&mut self) -> Result<&'a str> {
        Ok(std::str::from_utf8(self.bytes()?)?)
    }
}

/// The arguments of a call, lowered from a tape. Always the flat form of up to 16 core
/// values wasmtime passes on the stack; longer parameter lists are stored in guest memory
/// here, as the canonical ABI asks, and passed by pointer.
pub struct Args<'a>(pub &'a Tape);

// SAFETY: `Lower` is `[ValRaw; MAX_FLAT_PARAMS]`, a sequence of `ValRaw`s as required, and
// the lowering below writes the parameters of the function's real type (wasmtime passes that
// type in); `ABI` only serves the heap form of parameters, which wasmtime never picks for a
// flat count of 16.
unsafe impl ComponentType for Args<'_> {
    type Lower = [ValRaw; MAX_FLAT_PARAMS];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::SCALAR4;

    fn typecheck(_: &InterfaceType, _: &InstanceType<'_>) -> Result<()> {
        // The function is made with `TypedFunc::new_unchecked`: lowering follows the real type.
        Ok(())
    }
}

// SAFETY: see `ComponentType` above.
unsafe impl ComponentNamedList for Args<'_> {}

// SAFETY: writes exactly the core values (or the pointer) the parameter types flatten to.
unsafe impl Lower for Args<'_> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> Result<()> {
        let types = cx.types;
        let params = tuple(types, ty)?;
        // SAFETY: an array of `MaybeUninit` may be viewed as initialized.
        let dst: &mut [MaybeUninit<ValRaw>; MAX_FLAT_PARAMS] =
            unsafe { &mut *(dst as *mut MaybeUninit<Self::Lower>).cast() };
        let mut cur = Cursor::new(self.0);
        let mut lw = Low::new(cx);
        if params.abi.flat_count(MAX_FLAT_PARAMS).is_some() {
            let mut out = dst.iter_mut();
            for ty in params.types.iter() {
                lower(&mut lw, *ty, &mut cur, &mut out)?;
            }
        } else {
            let ptr = lw.alloc(params.abi.align32, params.abi.size32 as usize)?;
            let mut offset = ptr;
            for ty in params.types.iter() {
                let at = types.canonical_abi(ty).next_field32_size(&mut offset);
                store(&mut lw, *ty, &mut cur, at)?;
            }
            dst[0].write(ValRaw::i64(ptr as i64));
        }
        Ok(())
    }

    fn linear_lower_to_memory<T>(&self, _: &mut LowerContext<'_, T>, _: InterfaceType, _: usize) -> Result<()> {
        bail!("the argument list is never stored as one value")
    }
}

/// The results of a call, lifted onto a tape (taken from the thread's spare, see [`spare`]).
pub struct Rets(pub Tape);

// SAFETY: `Lower` is one `ValRaw`, as for every result list wasmtime calls with (one flat
// value, or the pointer to the results in memory, which `linear_lift_from_flat` follows as the
// canonical ABI says). `ABI` serves only the heap form, never chosen for one flat value.
unsafe impl ComponentType for Rets {
    type Lower = [ValRaw; 1];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::SCALAR4;

    fn typecheck(_: &InterfaceType, _: &InstanceType<'_>) -> Result<()> {
        Ok(())
    }
}

// SAFETY: see `ComponentType` above.
unsafe impl ComponentNamedList for Rets {}

// SAFETY: reads only what the result types say, bounds-checked against guest memory.
unsafe impl Lift for Rets {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> Result<Self> {
        let types = cx.types;
        let results = tuple(types, ty)?;
        let mut tape = spare();
        if results.abi.flat_count(1).is_some() {
            let mut src = src.iter();
            for ty in results.types.iter() {
                lift(cx, *ty, &mut src, &mut tape)?;
            }
        } else {
            let ptr = src[0].get_u32() as usize;
            if !ptr.is_multiple_of(results.abi.align32 as usize) {
                bail!("return pointer not aligned");
            }
            let bytes = cx
                .memory()
                .get(ptr..)
                .and_then(|b| b.get(..results.abi.size32 as usize))
                .ok_or_else(|| wasmtime::format_err!("pointer out of bounds of memory"))?;
            let mut offset = 0;
            for ty in results.types.iter() {
                let abi = types.canonical_abi(ty);
                let at = abi.next_field32_size(&mut offset);
                load(cx, *ty, &bytes[at..][..abi.size32 as usize], &mut tape)?;
            }
        }
        Ok(Rets(tape))
    }

    fn linear_lift_from_memory(_: &mut LiftContext<'_>, _: InterfaceType, _: &[u8]) -> Result<Self> {
        bail!("the result list is never loaded as one value")
    }
}

/// Parameters already lowered to core values (all flat scalars), passed as they are.
pub struct RawArgs<'a>(pub &'a [ValRaw]);

// SAFETY: `Lower` is a sequence of `ValRaw`s; the values are written as given, and the caller
// (`pool::typed_raw`) uses this only for functions of scalar parameters lowered by the
// canonical ABI, at most 16 of them.
unsafe impl ComponentType for RawArgs<'_> {
    type Lower = [ValRaw; MAX_FLAT_PARAMS];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::SCALAR4;

    fn typecheck(_: &InterfaceType, _: &InstanceType<'_>) -> Result<()> {
        Ok(())
    }
}

// SAFETY: see `ComponentType` above.
unsafe impl ComponentNamedList for RawArgs<'_> {}

// SAFETY: writes the given core values, no more than fit.
unsafe impl Lower for RawArgs<'_> {
    fn linear_lower_to_flat<T>(
        &self,
        _: &mut LowerContext<'_, T>,
        _: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> Result<()> {
        if self.0.len() > MAX_FLAT_PARAMS {
            bail!("too many flat parameters");
        }
        // SAFETY: an array of `MaybeUninit` may be viewed as initialized.
        let dst: &mut [MaybeUninit<ValRaw>; MAX_FLAT_PARAMS] =
            unsafe { &mut *(dst as *mut MaybeUninit<Self::Lower>).cast() };
        for (d, v) in dst.iter_mut().zip(self.0) {
            d.write(*v);
        }
        Ok(())
    }

    fn linear_lower_to_memory<T>(&self, _: &mut LowerContext<'_, T>, _: InterfaceType, _: usize) -> Result<()> {
        bail!("the argument list is never stored as one value")
    }
}

/// A result of at most one core value, as the guest returned it (undefined without one).
pub struct RawRet(pub ValRaw);

// SAFETY: one `ValRaw`, as every flat result list wasmtime calls with.
unsafe impl ComponentType for RawRet {
    type Lower = [ValRaw; 1];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::SCALAR4;

    fn typecheck(_: &InterfaceType, _: &InstanceType<'_>) -> Result<()> {
        Ok(())
    }
}

// SAFETY: see `ComponentType` above.
unsafe impl ComponentNamedList for RawRet {}

// SAFETY: copies the core value; the caller lifts it by the scalar's type.
unsafe impl Lift for RawRet {
    fn linear_lift_from_flat(_: &mut LiftContext<'_>, _: InterfaceType, src: &Self::Lower) -> Result<Self> {
        Ok(RawRet(src[0]))
    }

    fn linear_lift_from_memory(_: &mut LiftContext<'_>, _: InterfaceType, _: &[u8]) -> Result<Self> {
        bail!("a scalar result is never loaded from memory")
    }
}

thread_local! {
    static SPARE: std::cell::Cell<Option<Tape>> = const { std::cell::Cell::new(None) };
}

/// An empty tape, reusing this thread's spare one (its buffers keep their capacity).
pub fn spare() -> Tape {
    let mut t = SPARE.with(|s| s.take()).unwrap_or_default();
    t.clear();
    t
}

/// Largest tape kept for reuse.
const KEEP_BYTES: usize = 1 << 20;

/// Hands a tape back for the next [`spare`] (unless it grew too big to keep).
pub fn give_back(t: Tape) {
    SPARE.with(|s| s.set(Some(t.recycled())));
}

fn tuple(types: &ComponentTypes, ty: InterfaceType) -> Result<&TypeTuple> {
    match ty {
        InterfaceType::Tuple(i) => Ok(&types[i]),
        _ => bail!("expected a parameter or result list"),
    }
}

fn slot<'a>(out: &mut IterMut<'a, MaybeUninit<ValRaw>>) -> Result<&'a mut MaybeUninit<ValRaw>> {
    match out.next() {
        Some(s) => Ok(s),
        None => bail!("too many flat values"),
    }
}

/// The discriminant of a case and the payload type it carries.
fn case_of(types: &ComponentTypes, ty: InterfaceType, case: u32) -> Result<Option<InterfaceType>> {
    let payload = match ty {
        InterfaceType::Variant(i) => match types[i].cases.get_index(case as usize) {
            Some((_, t)) => *t,
            None => bail!("variant case {case} out of range"),
        },
        InterfaceType::Enum(i) if (case as usize) < types[i].names.len() => None,
        InterfaceType::Option(i) if case <= 1 => (case == 1).then_some(types[i].ty),
        InterfaceType::Result(i) if case <= 1 => {
            let r = &types[i];
            if case == 0 {
                r.ok
            } else {
                r.err
            }
        }
        _ => bail!("case {case} out of range"),
    };
    Ok(payload)
}

fn variant_info(types: &ComponentTypes, ty: InterfaceType) -> Option<&VariantInfo> {
    Some(match ty {
        InterfaceType::Variant(i) => &types[i].info,
        InterfaceType::Enum(i) => &types[i].info,
        InterfaceType::Option(i) => &types[i].info,
        InterfaceType::Result(i) => &types[i].info,
        _ => return None,
    })
}

fn flag_count(types: &ComponentTypes, ty: InterfaceType) -> usize {
    match ty {
        InterfaceType::Flags(i) => types[i].names.len(),
        _ => 0,
    }
}

/// Lowering's access to the guest: the context, and its memory as a slice fetched once after
/// each `cabi_realloc` (only guest code, which runs inside `realloc`, can move or grow it), so
/// storing a field costs a bounds check, not a lookup of the instance's memory.
struct Low<'c, 'a, T: 'static> {
    cx: &'c mut LowerContext<'a, T>,
    types: &'a ComponentTypes,
    /// The guest takes UTF-8 strings (else wasmtime transcodes).
    utf8: bool,
    mem: *mut u8,
    len: usize,
    stale: bool,
}

impl<'c, 'a, T: 'static> Low<'c, 'a, T> {
    fn new(cx: &'c mut LowerContext<'a, T>) -> Self {
        let types = cx.types;
        let utf8 = cx.options().string_encoding == StringEncoding::Utf8;
        Low { cx, types, utf8, mem: std::ptr::null_mut(), len: 0, stale: true }
    }

    /// A fresh block of guest memory (`cabi_realloc(0, 0, align, size)`).
    fn alloc(&mut self, align: u32, size: usize) -> Result<usize> {
        let ptr = self.cx.realloc(0, 0, align, size)?;
        self.stale = true;
        Ok(ptr)
    }

    /// Writes `bytes` at `at` in guest memory.
    fn put(&mut self, at: usize, bytes: &[u8]) -> Result<()> {
        if self.stale {
            let m = self.cx.as_slice_mut();
            self.mem = m.as_mut_ptr();
            self.len = m.len();
            self.stale = false;
        }
        // SAFETY: `mem`/`len` describe the guest memory as it is since the last `alloc` (no
        // guest code ran since, so it has not moved); `self` holds the context exclusively.
        let m = unsafe { std::slice::from_raw_parts_mut(self.mem, self.len) };
        match at.checked_add(bytes.len()).and_then(|end| m.get_mut(at..end)) {
            Some(d) => {
                d.copy_from_slice(bytes);
                Ok(())
            }
            None => bail!("store out of bounds of guest memory"),
        }
    }
}

/// Lowers the next value of type `ty` to its flat core values.
fn lower<T>(
    lw: &mut Low<'_, '_, T>,
    ty: InterfaceType,
    cur: &mut Cursor<'_>,
    out: &mut IterMut<'_, MaybeUninit<ValRaw>>,
) -> Result<()> {
    let types = lw.types;
    let cx = &mut *lw.cx;
    match ty {
        InterfaceType::Bool => match cur.item()? {
            Item::Bool(b) => b.linear_lower_to_flat(cx, ty, slot(out)?),
            other => bail!("value tape: expected a bool, found {other:?}"),
        },
        InterfaceType::S8 => (cur.int()? as i8).linear_lower_to_flat(cx, ty, slot(out)?),
        InterfaceType::U8 => (cur.int()? as u8).linear_lower_to_flat(cx, ty, slot(out)?),
        InterfaceType::S16 => (cur.int()? as i16).linear_lower_to_flat(cx, ty, slot(out)?),
        InterfaceType::U16 => (cur.int()? as u16).linear_lower_to_flat(cx, ty, slot(out)?),
        InterfaceType::S32 => (cur.int()? as i32).linear_lower_to_flat(cx, ty, slot(out)?),
        InterfaceType::U32 => (cur.int()? as u32).linear_lower_to_flat(cx, ty, slot(out)?),
        InterfaceType::S64 => cur.int()?.linear_lower_to_flat(cx, ty, slot(out)?),
        InterfaceType::U64 => (cur.int()? as u64).linear_lower_to_flat(cx, ty, slot(out)?),
        InterfaceType::Float32 => match cur.item()? {
            Item::F32(f) => f.linear_lower_to_flat(cx, ty, slot(out)?),
            other => bail!("value tape: expected an f32, found {other:?}"),
        },
        InterfaceType::Float64 => match cur.item()? {
            Item::F64(f) => f.linear_lower_to_flat(cx, ty, slot(out)?),
            other => bail!("value tape: expected an f64, found {other:?}"),
        },
        InterfaceType::Char => match cur.item()? {
            Item::Char(c) => c.linear_lower_to_flat(cx, ty, slot(out)?),
            other => bail!("value tape: expected a char, found {other:?}"),
        },
        InterfaceType::String | InterfaceType::List(_) => {
            let (ptr, len) = lower_list(lw, ty, cur)?;
            slot(out)?.write(ValRaw::i64(ptr as i64));
            slot(out)?.write(ValRaw::i64(len as i64));
            Ok(())
        }
        InterfaceType::Record(i) => {
            for f in types[i].fields.iter() {
                lower(lw, f.ty, cur, out)?;
            }
            Ok(())
        }
        InterfaceType::Tuple(i) => {
            for t in types[i].types.iter() {
                lower(lw, *t, cur, out)?;
            }
            Ok(())
        }
        InterfaceType::Variant(_) | InterfaceType::Enum(_) | InterfaceType::Option(_) | InterfaceType::Result(_) => {
            let case = cur.case()?;
            let payload = case_of(types, ty, case)?;
            slot(out)?.write(ValRaw::u32(case));
            let written = match payload {
                Some(p) => {
                    lower(lw, p, cur, out)?;
                    types.canonical_abi(&p).flat_count(usize::MAX).unwrap_or(0)
                }
                None => 0,
            };
            // The rest of the joined payload slots are zero, as wasmtime writes them.
            let total = types.canonical_abi(&ty).flat_count(usize::MAX).unwrap_or(1);
            for _ in (1 + written)..total {
                slot(out)?.write(ValRaw::u64(0));
            }
            Ok(())
        }
        InterfaceType::Flags(_) => {
            let words = types.canonical_abi(&ty).flat_count(usize::MAX).unwrap_or(0);
            for _ in 0..words {
                slot(out)?.write(ValRaw::u32(cur.flags()?));
            }
            Ok(())
        }
        other => bail!("values of type {other:?} are not carried on a value tape"),
    }
}

/// Longest string or byte list the canonical ABI copies (as wasmtime checks it).
const MAX_BYTES: usize = (1 << 31) - 1;

/// Copies the next string or list into guest memory; returns its pointer and length.
fn lower_list<T>(lw: &mut Low<'_, '_, T>, ty: InterfaceType, cur: &mut Cursor<'_>) -> Result<(usize, usize)> {
    let types = lw.types;
    let bytes = if ty == InterfaceType::String {
        if !lw.utf8 {
            // Another encoding: wasmtime transcodes.
            let mut pair = MaybeUninit::<[ValRaw; 2]>::uninit();
            cur.str()?.linear_lower_to_flat(lw.cx, ty, &mut pair)?;
            lw.stale = true;
            // SAFETY: written by the lowering above.
            let pair = unsafe { pair.assume_init() };
            return Ok((pair[0].get_u32() as usize, pair[1].get_u32() as usize));
        }
        // Tape strings are valid UTF-8 (checked where they were made); a copy is all it takes.
        Some(cur.bytes()?)
    } else {
        let InterfaceType::List(i) = ty else { bail!("expected a list type") };
        let elem = types[i].element;
        match elem {
            InterfaceType::U8 => cur.try_bytes(),
            _ => None,
        }
    };
    if let Some(b) = bytes {
        if b.len() > MAX_BYTES {
            bail!("string or byte list of {} bytes too large to copy into wasm", b.len());
        }
        let ptr = lw.alloc(1, b.len())?;
        lw.put(ptr, b)?;
        return Ok((ptr, b.len()));
    }
    let InterfaceType::List(i) = ty else { bail!("expected a list type") };
    let elem = types[i].element;
    let n = cur.list_len()?;
    let abi = types.canonical_abi(&elem);
    let size =
        n.checked_mul(abi.size32 as usize).ok_or_else(|| wasmtime::format_err!("size overflow copying a list"))?;
    let ptr = lw.alloc(abi.align32, size)?;
    for k in 0..n {
        store(lw, elem, cur, ptr + k * abi.size32 as usize)?;
    }
    Ok((ptr, n))
}

fn store_discriminant<T>(lw: &mut Low<'_, '_, T>, info: &VariantInfo, case: u32, at: usize) -> Result<()> {
    match u32::from(info.size) {
        1 => lw.put(at, &[case as u8]),
        2 => lw.put(at, &(case as u16).to_le_bytes()),
        _ => lw.put(at, &case.to_le_bytes()),
    }
}

/// How flags are stored in memory (the canonical ABI's `FlagsSize`).
enum FlagsSize {
    Size0,
    Size1,
    Size2,
    Size4Plus(usize),
}

impl FlagsSize {
    fn from_count(n: usize) -> FlagsSize {
        match n {
            0 => FlagsSize::Size0,
            1..=8 => FlagsSize::Size1,
            9..=16 => FlagsSize::Size2,
            n => FlagsSize::Size4Plus(n.div_ceil(32)),
        }
    }
}

/// Stores the next value of type `ty` at `at` in guest memory (little-endian, as wasmtime's
/// own `linear_lower_to_memory` writes each scalar).
fn store<T>(lw: &mut Low<'_, '_, T>, ty: InterfaceType, cur: &mut Cursor<'_>, at: usize) -> Result<()> {
    let types = lw.types;
    match ty {
        InterfaceType::Bool => match cur.item()? {
            Item::Bool(b) => lw.put(at, &[u8::from(b)]),
            other => bail!("value tape: expected a bool, found {other:?}"),
        },
        InterfaceType::S8 | InterfaceType::U8 => lw.put(at, &[cur.int()? as u8]),
        InterfaceType::S16 | InterfaceType::U16 => lw.put(at, &(cur.int()? as u16).to_le_bytes()),
        InterfaceType::S32 | InterfaceType::U32 => lw.put(at, &(cur.int()? as u32).to_le_bytes()),
        InterfaceType::S64 | InterfaceType::U64 => lw.put(at, &cur.int()?.to_le_bytes()),
        InterfaceType::Float32 => match cur.item()? {
            Item::F32(f) => lw.put(at, &f.to_bits().to_le_bytes()),
            other => bail!("value tape: expected an f32, found {other:?}"),
        },
        InterfaceType::Float64 => match cur.item()? {
            Item::F64(f) => lw.put(at, &f.to_bits().to_le_bytes()),
            other => bail!("value tape: expected an f64, found {other:?}"),
        },
        InterfaceType::Char => match cur.item()? {
            Item::Char(c) => lw.put(at, &u32::from(c).to_le_bytes()),
            other => bail!("value tape: expected a char, found {other:?}"),
        },
        InterfaceType::String | InterfaceType::List(_) => {
            let (ptr, len) = lower_list(lw, ty, cur)?;
            let mut pair = [0u8; 8];
            pair[..4].copy_from_slice(&u32::try_from(ptr)?.to_le_bytes());
            pair[4..].copy_from_slice(&u32::try_from(len)?.to_le_bytes());
            lw.put(at, &pair)
        }
        InterfaceType::Record(i) => {
            let mut offset = at;
            for f in types[i].fields.iter() {
                let field_at = types.canonical_abi(&f.ty).next_field32_size(&mut offset);
                store(lw, f.ty, cur, field_at)?;
            }
            Ok(())
        }
        InterfaceType::Tuple(i) => {
            let mut offset = at;
            for t in types[i].types.iter() {
                let field_at = types.canonical_abi(t).next_field32_size(&mut offset);
                store(lw, *t, cur, field_at)?;
            }
            Ok(())
        }
        InterfaceType::Variant(_) | InterfaceType::Enum(_) | InterfaceType::Option(_) | InterfaceType::Result(_) => {
            let Some(info) = variant_info(types, ty) else { bail!("not a variant type") };
            let case = cur.case()?;
            let payload = case_of(types, ty, case)?;
            store_discriminant(lw, info, case, at)?;
            match payload {
                Some(p) => store(lw, p, cur, at + info.payload_offset32 as usize),
                None => Ok(()),
            }
        }
        InterfaceType::Flags(_) => match FlagsSize::from_count(flag_count(types, ty)) {
            FlagsSize::Size0 => Ok(()),
            FlagsSize::Size1 => lw.put(at, &[cur.flags()? as u8]),
            FlagsSize::Size2 => lw.put(at, &(cur.flags()? as u16).to_le_bytes()),
            FlagsSize::Size4Plus(n) => {
                for k in 0..n {
                    lw.put(at + 4 * k, &cur.flags()?.to_le_bytes())?;
                }
                Ok(())
            }
        },
        other => bail!("values of type {other:?} are not carried on a value tape"),
    }
}

fn next_raw<'a>(src: &mut Iter<'a, ValRaw>) -> Result<&'a ValRaw> {
    match src.next() {
        Some(v) => Ok(v),
        None => bail!("too few flat values"),
    }
}

/// Lifts a value of type `ty` from flat core values (results of one flat value).
fn lift(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &mut Iter<'_, ValRaw>, tape: &mut Tape) -> Result<()> {
    let types = cx.types;
    let item = match ty {
        InterfaceType::Bool => Item::Bool(bool::linear_lift_from_flat(cx, ty, next_raw(src)?)?),
        InterfaceType::S8 => Item::Int(i8::linear_lift_from_flat(cx, ty, next_raw(src)?)?.into()),
        InterfaceType::U8 => Item::Int(u8::linear_lift_from_flat(cx, ty, next_raw(src)?)?.into()),
        InterfaceType::S16 => Item::Int(i16::linear_lift_from_flat(cx, ty, next_raw(src)?)?.into()),
        InterfaceType::U16 => Item::Int(u16::linear_lift_from_flat(cx, ty, next_raw(src)?)?.into()),
        InterfaceType::S32 => Item::Int(i32::linear_lift_from_flat(cx, ty, next_raw(src)?)?.into()),
        InterfaceType::U32 => Item::Int(u32::linear_lift_from_flat(cx, ty, next_raw(src)?)?.into()),
        InterfaceType::S64 => Item::Int(i64::linear_lift_from_flat(cx, ty, next_raw(src)?)?),
        InterfaceType::U64 => Item::Int(u64::linear_lift_from_flat(cx, ty, next_raw(src)?)? as i64),
        InterfaceType::Float32 => Item::F32(f32::linear_lift_from_flat(cx, ty, next_raw(src)?)?),
        InterfaceType::Float64 => Item::F64(f64::linear_lift_from_flat(cx, ty, next_raw(src)?)?),
        InterfaceType::Char => Item::Char(char::linear_lift_from_flat(cx, ty, next_raw(src)?)?),
        InterfaceType::String | InterfaceType::List(_) => {
            let ptr = next_raw(src)?.get_u32() as usize;
            let len = next_raw(src)?.get_u32() as usize;
            return load_list(cx, ty, ptr, len, tape);
        }
        InterfaceType::Record(i) => {
            for f in types[i].fields.iter() {
                lift(cx, f.ty, src, tape)?;
            }
            return Ok(());
        }
        InterfaceType::Tuple(i) => {
            for t in types[i].types.iter() {
                lift(cx, *t, src, tape)?;
            }
            return Ok(());
        }
        InterfaceType::Variant(_) | InterfaceType::Enum(_) | InterfaceType::Option(_) | InterfaceType::Result(_) => {
            let case = next_raw(src)?.get_u32();
            let payload = case_of(types, ty, case)?;
            tape.items.push(Item::Case(case));
            let read = match payload {
                Some(p) => {
                    lift(cx, p, src, tape)?;
                    types.canonical_abi(&p).flat_count(usize::MAX).unwrap_or(0)
                }
                None => 0,
            };
            let total = types.canonical_abi(&ty).flat_count(usize::MAX).unwrap_or(1);
            for _ in (1 + read)..total {
                next_raw(src)?;
            }
            return Ok(());
        }
        InterfaceType::Flags(_) => {
            let words = types.canonical_abi(&ty).flat_count(usize::MAX).unwrap_or(0);
            for _ in 0..words {
                tape.items.push(Item::Flags(next_raw(src)?.get_u32()));
            }
            return Ok(());
        }
        other => bail!("values of type {other:?} are not carried on a value tape"),
    };
    tape.items.push(item);
    Ok(())
}

/// Copies a string or list at `ptr` (`len` elements) out of guest memory onto the tape.
fn load_list(cx: &mut LiftContext<'_>, ty: InterfaceType, ptr: usize, len: usize, tape: &mut Tape) -> Result<()> {
    let types = cx.types;
    let memory = cx.memory();
    if ty == InterfaceType::String {
        if cx.options().string_encoding == StringEncoding::Utf8 {
            let bytes = ptr
                .checked_add(len)
                .and_then(|end| memory.get(ptr..end))
                .ok_or_else(|| wasmtime::format_err!("string pointer/length out of bounds of memory"))?;
            cx.consume_fuel(len)?;
            std::str::from_utf8(bytes)?;
            return tape.push_bytes(bytes);
        }
        // Another encoding: wasmtime transcodes.
        let mut pair = [0u8; 8];
        pair[..4].copy_from_slice(&(ptr as u32).to_le_bytes());
        pair[4..].copy_from_slice(&(len as u32).to_le_bytes());
        let s = String::linear_lift_from_memory(cx, ty, &pair)?;
        return tape.push_bytes(s.as_bytes());
    }
    let InterfaceType::List(i) = ty else { bail!("expected a list type") };
    let elem = types[i].element;
    let abi = types.canonical_abi(&elem);
    let size = abi.size32 as usize;
    match len.checked_mul(size).and_then(|n| ptr.checked_add(n)) {
        // Host-call fuel for what the tape will hold: one item per element, or the bytes.
        Some(end) if end <= memory.len() => {
            let per = if elem == InterfaceType::U8 { 1 } else { std::mem::size_of::<Item>().max(size) };
            cx.consume_fuel_array(len, per)?
        }
        _ => bail!("list pointer/length out of bounds of memory"),
    }
    if !ptr.is_multiple_of(abi.align32 as usize) {
        bail!("list pointer is not aligned");
    }
    if elem == InterfaceType::U8 {
        return tape.push_bytes(&memory[ptr..ptr + len]);
    }
    tape.items.push(Item::Len(u32::try_from(len)?));
    for k in 0..len {
        load(cx, elem, &memory[ptr + k * size..][..size], tape)?;
    }
    Ok(())
}

fn load_discriminant(info: &VariantInfo, bytes: &[u8]) -> u32 {
    match u32::from(info.size) {
        1 => bytes[0].into(),
        2 => u16::from_le_bytes([bytes[0], bytes[1]]).into(),
        _ => u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
    }
}

/// Loads a value of type `ty` from its bytes in guest memory.
fn load(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8], tape: &mut Tape) -> Result<()> {
    let types = cx.types;
    let item = match ty {
        InterfaceType::Bool => Item::Bool(bool::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::S8 => Item::Int(i8::linear_lift_from_memory(cx, ty, bytes)?.into()),
        InterfaceType::U8 => Item::Int(u8::linear_lift_from_memory(cx, ty, bytes)?.into()),
        InterfaceType::S16 => Item::Int(i16::linear_lift_from_memory(cx, ty, bytes)?.into()),
        InterfaceType::U16 => Item::Int(u16::linear_lift_from_memory(cx, ty, bytes)?.into()),
        InterfaceType::S32 => Item::Int(i32::linear_lift_from_memory(cx, ty, bytes)?.into()),
        InterfaceType::U32 => Item::Int(u32::linear_lift_from_memory(cx, ty, bytes)?.into()),
        InterfaceType::S64 => Item::Int(i64::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::U64 => Item::Int(u64::linear_lift_from_memory(cx, ty, bytes)? as i64),
        InterfaceType::Float32 => Item::F32(f32::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::Float64 => Item::F64(f64::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::Char => Item::Char(char::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::String | InterfaceType::List(_) => {
            let ptr = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
            return load_list(cx, ty, ptr, len, tape);
        }
        InterfaceType::Record(i) => {
            let mut offset = 0;
            for f in types[i].fields.iter() {
                let abi = types.canonical_abi(&f.ty);
                let at = abi.next_field32_size(&mut offset);
                load(cx, f.ty, &bytes[at..][..abi.size32 as usize], tape)?;
            }
            return Ok(());
        }
        InterfaceType::Tuple(i) => {
            let mut offset = 0;
            for t in types[i].types.iter() {
                let abi = types.canonical_abi(t);
                let at = abi.next_field32_size(&mut offset);
                load(cx, *t, &bytes[at..][..abi.size32 as usize], tape)?;
            }
            return Ok(());
        }
        InterfaceType::Variant(_) | InterfaceType::Enum(_) | InterfaceType::Option(_) | InterfaceType::Result(_) => {
            let Some(info) = variant_info(types, ty) else { bail!("not a variant type") };
            let case = load_discriminant(info, bytes);
            let payload = case_of(types, ty, case)?;
            tape.items.push(Item::Case(case));
            if let Some(p) = payload {
                let at = info.payload_offset32 as usize;
                let size = types.canonical_abi(&p).size32 as usize;
                load(cx, p, &bytes[at..][..size], tape)?;
            }
            return Ok(());
        }
        InterfaceType::Flags(_) => {
            match FlagsSize::from_count(flag_count(types, ty)) {
                FlagsSize::Size0 => {}
                FlagsSize::Size1 => tape.items.push(Item::Flags(bytes[0].into())),
                FlagsSize::Size2 => tape.items.push(Item::Flags(u16::from_le_bytes([bytes[0], bytes[1]]).into())),
                FlagsSize::Size4Plus(n) => {
                    for k in 0..n {
                        let w = &bytes[4 * k..4 * k + 4];
                        tape.items.push(Item::Flags(u32::from_le_bytes([w[0], w[1], w[2], w[3]])));
                    }
                }
            }
            return Ok(());
        }
        other => bail!("values of type {other:?} are not carried on a value tape"),
    };
    tape.items.push(item);
    Ok(())
}

/// Puts a component value on a tape, walking its type (the `Val` paths use tapes too, so
/// that Lua sees one set of rules).
pub fn from_val(v: &Val, ty: &Ty, tape: &mut Tape) -> Result<()> {
    match (v, ty) {
        (v, Ty::Named(_, inner)) => from_val(v, inner, tape)?,
        (Val::Bool(b), _) => tape.items.push(Item::Bool(*b)),
        (Val::S8(i), _) => tape.items.push(Item::Int((*i).into())),
        (Val::U8(i), _) => tape.items.push(Item::Int((*i).into())),
        (Val::S16(i), _) => tape.items.push(Item::Int((*i).into())),
        (Val::U16(i), _) => tape.items.push(Item::Int((*i).into())),
        (Val::S32(i), _) => tape.items.push(Item::Int((*i).into())),
        (Val::U32(i), _) => tape.items.push(Item::Int((*i).into())),
        (Val::S64(i), _) => tape.items.push(Item::Int(*i)),
        (Val::U64(i), _) => tape.items.push(Item::Int(*i as i64)),
        (Val::Float32(f), _) => tape.items.push(Item::F32(*f)),
        (Val::Float64(f), _) => tape.items.push(Item::F64(*f)),
        (Val::Char(c), _) => tape.items.push(Item::Char(*c)),
        (Val::String(s), _) => tape.push_bytes(s.as_bytes())?,
        (Val::List(items), Ty::Bytes) => {
            let bytes: Vec<u8> = items.iter().map(|v| if let Val::U8(b) = v { *b } else { 0 }).collect();
            tape.push_bytes(&bytes)?;
        }
        (Val::List(items), Ty::List(elem)) => {
            tape.items.push(Item::Len(u32::try_from(items.len())?));
            for item in items {
                from_val(item, elem, tape)?;
            }
        }
        (Val::Record(fields), Ty::Record(types, _)) => {
            for ((_, item), f) in fields.iter().zip(types.iter()) {
                from_val(item, &f.ty, tape)?;
            }
        }
        (Val::Tuple(items), Ty::Tuple(types)) => {
            for (item, t) in items.iter().zip(types.iter()) {
                from_val(item, t, tape)?;
            }
        }
        (Val::Variant(name, payload), Ty::Variant(cases, _)) => {
            let Some(k) = cases.iter().position(|c| &c.name == name) else { bail!("unknown variant case {name}") };
            tape.items.push(Item::Case(k as u32));
            if let (Some(p), Some(t)) = (payload, &cases[k].ty) {
                from_val(p, t, tape)?;
            }
        }
        (Val::Enum(name), Ty::Enum(names, _)) => {
            let Some(k) = names.iter().position(|n| n == name) else { bail!("unknown enum case {name}") };
            tape.items.push(Item::Case(k as u32));
        }
        (Val::Option(None), Ty::Option(_)) => tape.items.push(Item::Case(0)),
        (Val::Option(Some(inner)), Ty::Option(t)) => {
            tape.items.push(Item::Case(1));
            from_val(inner, t, tape)?;
        }
        (Val::Result(r), Ty::Result(ok, err)) => {
            let (case, payload, t) = match r {
                Ok(p) => (0, p, ok),
                Err(p) => (1, p, err),
            };
            tape.items.push(Item::Case(case));
            if let (Some(p), Some(t)) = (payload, t) {
                from_val(p, t, tape)?;
            }
        }
        (Val::Flags(set), Ty::Flags(names, _)) => {
            let mut words = vec![0u32; names.len().div_ceil(32)];
            for n in set {
                if let Some(k) = names.iter().position(|x| x == n) {
                    words[k / 32] |= 1 << (k % 32);
                }
            }
            tape.items.extend(words.into_iter().map(Item::Flags));
        }
        (v, ty) => bail!("a {} value does not match the type {}", super::lua::val_kind(v), ty.describe()),
    }
    Ok(())
}

/// Builds a component value of type `ty` from the next items of a tape.
pub fn to_val(cur: &mut Cursor<'_>, ty: &Ty) -> Result<Val> {
    Ok(match ty {
        Ty::Bool => match cur.item()? {
            Item::Bool(b) => Val::Bool(b),
            other => bail!("value tape: expected a bool, found {other:?}"),
        },
        Ty::S8 => Val::S8(cur.int()? as i8),
        Ty::U8 => Val::U8(cur.int()? as u8),
        Ty::S16 => Val::S16(cur.int()? as i16),
        Ty::U16 => Val::U16(cur.int()? as u16),
        Ty::S32 => Val::S32(cur.int()? as i32),
        Ty::U32 => Val::U32(cur.int()? as u32),
        Ty::S64 => Val::S64(cur.int()?),
        Ty::U64 => Val::U64(cur.int()? as u64),
        Ty::F32 => match cur.item()? {
            Item::F32(f) => Val::Float32(f),
            other => bail!("value tape: expected an f32, found {other:?}"),
        },
        Ty::F64 => match cur.item()? {
            Item::F64(f) => Val::Float64(f),
            other => bail!("value tape: expected an f64, found {other:?}"),
        },
        Ty::Char => match cur.item()? {
            Item::Char(c) => Val::Char(c),
            other => bail!("value tape: expected a char, found {other:?}"),
        },
        Ty::String => Val::String(cur.str()?.to_string()),
        Ty::Bytes => Val::List(cur.bytes()?.iter().map(|b| Val::U8(*b)).collect()),
        Ty::List(elem) => {
            if let Some(b) = cur.try_bytes() {
                // A list of an alias of `u8`, lifted as bytes.
                return Ok(Val::List(b.iter().map(|x| Val::U8(*x)).collect()));
            }
            let n = cur.list_len()?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(to_val(cur, elem)?);
            }
            Val::List(out)
        }
        Ty::Record(fields, _) => {
            let mut out = Vec::with_capacity(fields.len());
            for f in fields.iter() {
                out.push((f.name.clone(), to_val(cur, &f.ty)?));
            }
            Val::Record(out)
        }
        Ty::Tuple(types) => Val::Tuple(types.iter().map(|t| to_val(cur, t)).collect::<Result<_>>()?),
        Ty::Variant(cases, _) => {
            let k = cur.case()? as usize;
            let Some(case) = cases.get(k) else { bail!("variant case {k} out of range") };
            let payload = match &case.ty {
                Some(t) => Some(Box::new(to_val(cur, t)?)),
                None => None,
            };
            Val::Variant(case.name.clone(), payload)
        }
        Ty::Enum(names, _) => {
            let k = cur.case()? as usize;
            match names.get(k) {
                Some(n) => Val::Enum(n.clone()),
                None => bail!("enum case {k} out of range"),
            }
        }
        Ty::Option(inner) => match cur.case()? {
            0 => Val::Option(None),
            _ => Val::Option(Some(Box::new(to_val(cur, inner)?))),
        },
        Ty::Result(ok, err) => {
            let case = cur.case()?;
            let t = if case == 0 { ok } else { err };
            let payload = match t {
                Some(t) => Some(Box::new(to_val(cur, t)?)),
                None => None,
            };
            Val::Result(if case == 0 { Ok(payload) } else { Err(payload) })
        }
        Ty::Flags(names, _) => {
            let mut set = Vec::new();
            for w in 0..names.len().div_ceil(32) {
                let bits = cur.flags()?;
                for b in 0..32 {
                    if bits & (1 << b) != 0 {
                        if let Some(n) = names.get(w * 32 + b) {
                            set.push(n.clone());
                        }
                    }
                }
            }
            Val::Flags(set)
        }
        Ty::Own(_) | Ty::Borrow(_) | Ty::Unsupported(_) => {
            bail!("{} values are not carried on a value tape", ty.describe())
        }
        Ty::Named(_, inner) => to_val(cur, inner)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_small_buffers_and_drops_big_ones() {
        let mut t = Tape::default();
        t.push_bytes(b"hello").unwrap();
        t.items.push(Item::Int(1));
        let t = t.recycled();
        assert!(t.items.is_empty() && t.bytes.is_empty());
        assert!(t.bytes.capacity() >= 5, "a small tape keeps its room");
        let mut big = Tape::default();
        big.push_bytes(&vec![0u8; 2 << 20]).unwrap();
        let big = big.recycled();
        assert_eq!(big.bytes.capacity(), 0, "a tape past the limit is not kept");
    }

    #[test]
    fn values_round_trip_through_a_tape() {
        use crate::convert::ty::{Case, Field};
        use std::sync::Arc;
        let ty = Ty::Record(
            Arc::from(vec![
                Field::new("name", Ty::String),
                Field::new("tags", Ty::List(Box::new(Ty::String))),
                Field::new("raw", Ty::Bytes),
                Field::new("maybe", Ty::Option(Box::new(Ty::Option(Box::new(Ty::U8))))),
                Field::new(
                    "shape",
                    Ty::Variant(
                        Arc::from(vec![
                            Case { name: "circle".into(), ty: Some(Ty::F64) },
                            Case { name: "empty".into(), ty: None },
                        ]),
                        None,
                    ),
                ),
                Field::new("perms", Ty::Flags(Arc::from((0..40).map(|i| format!("f{i}")).collect::<Vec<_>>()), None)),
                Field::new("r", Ty::Result(None, Some(Box::new(Ty::Char)))),
            ]),
            None,
        );
        let v = Val::Record(vec![
            ("name".into(), Val::String("héllo".into())),
            ("tags".into(), Val::List(vec![Val::String("a".into()), Val::String(String::new())])),
            ("raw".into(), Val::List(vec![Val::U8(0), Val::U8(255)])),
            ("maybe".into(), Val::Option(Some(Box::new(Val::Option(None))))),
            ("shape".into(), Val::Variant("circle".into(), Some(Box::new(Val::Float64(1.5))))),
            ("perms".into(), Val::Flags(vec!["f1".into(), "f33".into()])),
            ("r".into(), Val::Result(Err(Some(Box::new(Val::Char('é')))))),
        ]);
        let mut t = Tape::default();
        from_val(&v, &ty, &mut t).unwrap();
        let back = to_val(&mut Cursor::new(&t), &ty).unwrap();
        assert_eq!(back, v);
        // Two flag words for 40 flags: f1 in the first, f33 (bit 1) in the second.
        assert_eq!(t.items.iter().filter(|i| **i == Item::Flags(1 << 1)).count(), 2);
    }

    /// The guest of [`wasmtime_reads_what_we_write_and_back`]: `put` keeps the address of its
    /// parameters (passed in memory: they flatten to more than 16 values) and `get` returns it
    /// as the address of its result, so a value lowered by one side is lifted by the other with
    /// no guest code in between. `flat` copies its ten flat parameters to `dump`'s list;
    /// `reset` rewinds the bump allocator so that two calls allocate at the same addresses.
    const ABI_WIT: &str = r#"package test:abi;
world abi {
  variant shape { circle(f64), empty }
  flags perms { p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, p16, p17, p18, p19,
    p20, p21, p22, p23, p24, p25, p26, p27, p28, p29, p30, p31 }
  flags mid { m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11 }
  flags few { x, y, z }
  enum abc { a, b, c }
  record big {
    name: string, tags: list<string>, raw: list<u8>, maybe: option<option<u8>>, shape: shape,
    perms: perms, mid: mid, few: few, r: result<_, char>, n: s64, small: u16, pair: tuple<bool, f32>,
    e: abc, nums: list<u32>, tiny: s8,
  }
  export put: func(x: big);
  export get: func() -> big;
  export flat: func(a: string, b: option<u32>, c: abc, d: bool, f: f32, g: s64, h: shape);
  export dump: func() -> list<u64>;
  export reset: func();
}"#;

    const ABI_CORE: &str = r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (global $kept (mut i32) (i32.const 0))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.const 1)))))
    (local.get $p))
  (func (export "put") (param i32) (global.set $kept (local.get 0)))
  (func (export "get") (result i32) (global.get $kept))
  (func (export "reset") (global.set $heap (i32.const 1024)))
  (func (export "flat") (param i32 i32 i32 i32 i32 i32 f32 i64 i32 f64)
    (i64.store offset=64 (i32.const 0) (i64.extend_i32_u (local.get 0)))
    (i64.store offset=72 (i32.const 0) (i64.extend_i32_u (local.get 1)))
    (i64.store offset=80 (i32.const 0) (i64.extend_i32_u (local.get 2)))
    (i64.store offset=88 (i32.const 0) (i64.extend_i32_u (local.get 3)))
    (i64.store offset=96 (i32.const 0) (i64.extend_i32_u (local.get 4)))
    (i64.store offset=104 (i32.const 0) (i64.extend_i32_u (local.get 5)))
    (i64.store offset=112 (i32.const 0) (i64.extend_i32_u (i32.reinterpret_f32 (local.get 6))))
    (i64.store offset=120 (i32.const 0) (local.get 7))
    (i64.store offset=128 (i32.const 0) (i64.extend_i32_u (local.get 8)))
    (i64.store offset=136 (i32.const 0) (i64.reinterpret_f64 (local.get 9))))
  (func (export "dump") (result i32)
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 10))
    (i32.const 16))
)"#;

    fn val_of(v: &str) -> Val {
        Val::String(v.into())
    }

    /// What the tape code takes from `wasmtime::component::__internal` (wasmtime pinned to
    /// `=48.0.8` for it): the canonical ABI's sizes, alignments, offsets, discriminant widths
    /// and flat forms as wasmtime computes them, the choice between flat and in-memory
    /// parameters and results for `TypedFunc`s whose `Lower` is 16 or 1 `ValRaw`s, and the
    /// zeros wasmtime writes in unused variant slots. Each is checked against wasmtime's own
    /// lowering and lifting (`Func::call` with `Val`s) on a real component: a wasmtime that
    /// lays values out otherwise, or calls typed functions otherwise, fails here.
    #[test]
    fn wasmtime_reads_what_we_write_and_back() {
        use crate::engine::wit;
        use wasmtime::component::{Component, Linker, TypedFunc};
        use wasmtime::{Engine, Store};

        let wit = wit::parse(ABI_WIT).unwrap();
        let mut core = wat::parse_str(ABI_CORE).unwrap();
        wit_component::embed_component_metadata(
            &mut core,
            &wit.resolve,
            wit.world,
            wit_component::StringEncoding::UTF8,
        )
        .unwrap();
        let bytes = wit_component::ComponentEncoder::default().module(&core).unwrap().validate(true).encode().unwrap();
        let engine = Engine::default();
        let component = Component::new(&engine, &bytes).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Linker::<()>::new(&engine).instantiate(&mut store, &component).unwrap();
        let func = |store: &mut Store<()>, name: &str| instance.get_func(&mut *store, name).unwrap();
        let exports = wit.exports();
        let params = |name: &str| -> Vec<Ty> {
            let e = exports.iter().find(|e| e.name == name).unwrap();
            e.func.params.iter().map(|p| wit.ty(&p.ty)).collect()
        };
        // SAFETY: `Args` and `Rets` lower and lift by the type wasmtime hands them, as in
        // `pool::typed`, which is what is under test.
        let typed = |f| unsafe { TypedFunc::<Args<'_>, Rets>::new_unchecked(f) };

        let big_ty = params("put").remove(0);
        let flags = |names: &[&str]| Val::Flags(names.iter().map(|n| n.to_string()).collect());
        let big = Val::Record(vec![
            ("name".into(), val_of("héllo")),
            ("tags".into(), Val::List(vec![val_of("a"), val_of(""), val_of("ccc")])),
            ("raw".into(), Val::List(vec![Val::U8(0), Val::U8(255), Val::U8(7)])),
            ("maybe".into(), Val::Option(Some(Box::new(Val::Option(None))))),
            ("shape".into(), Val::Variant("circle".into(), Some(Box::new(Val::Float64(-1.5))))),
            ("perms".into(), flags(&["p0", "p17", "p31"])),
            ("mid".into(), flags(&["m1", "m11"])),
            ("few".into(), flags(&["y"])),
            ("r".into(), Val::Result(Err(Some(Box::new(Val::Char('é')))))),
            ("n".into(), Val::S64(-(1 << 40))),
            ("small".into(), Val::U16(65535)),
            ("pair".into(), Val::Tuple(vec![Val::Bool(true), Val::Float32(0.25)])),
            ("e".into(), Val::Enum("c".into())),
            ("nums".into(), Val::List(vec![Val::U32(1), Val::U32(u32::MAX)])),
            ("tiny".into(), Val::S8(-128)),
        ]);
        let mut tape = Tape::default();
        from_val(&big, &big_ty, &mut tape).unwrap();

        // Lowered here, lifted by wasmtime.
        let put = func(&mut store, "put");
        let get = func(&mut store, "get");
        typed(put).call(&mut store, Args(&tape)).unwrap();
        let mut out = [Val::Bool(false)];
        get.call(&mut store, &[], &mut out).unwrap();
        assert_eq!(out[0], big, "wasmtime lifts what `Args` stored");

        // Lowered by wasmtime, lifted here.
        func(&mut store, "reset").call(&mut store, &[], &mut []).unwrap();
        put.call(&mut store, std::slice::from_ref(&big), &mut []).unwrap();
        let Rets(back) = typed(get).call(&mut store, Args(&Tape::default())).unwrap();
        assert_eq!(to_val(&mut Cursor::new(&back), &big_ty).unwrap(), big, "`Rets` lifts what wasmtime stored");

        // Flat parameters: the same ten core values either way (the string at the same address).
        let flat_tys = params("flat");
        let cases = [
            vec![
                val_of("flat"),
                Val::Option(None),
                Val::Enum("b".into()),
                Val::Bool(true),
                Val::Float32(-2.5),
                Val::S64(i64::MIN),
                Val::Variant("empty".into(), None),
            ],
            vec![
                val_of(""),
                Val::Option(Some(Box::new(Val::U32(7)))),
                Val::Enum("a".into()),
                Val::Bool(false),
                Val::Float32(f32::MAX),
                Val::S64(-1),
                Val::Variant("circle".into(), Some(Box::new(Val::Float64(3.0)))),
            ],
        ];
        let flat = func(&mut store, "flat");
        let reset = func(&mut store, "reset");
        let dump = func(&mut store, "dump");
        let dumped = |store: &mut Store<()>| {
            let mut out = [Val::Bool(false)];
            dump.call(&mut *store, &[], &mut out).unwrap();
            out[0].clone()
        };
        for args in cases {
            reset.call(&mut store, &[], &mut []).unwrap();
            flat.call(&mut store, &args, &mut []).unwrap();
            let theirs = dumped(&mut store);
            let mut tape = Tape::default();
            for (v, t) in args.iter().zip(&flat_tys) {
                from_val(v, t, &mut tape).unwrap();
            }
            reset.call(&mut store, &[], &mut []).unwrap();
            typed(flat).call(&mut store, Args(&tape)).unwrap();
            assert_eq!(dumped(&mut store), theirs, "flat parameters of {args:?}");
        }
    }
}
