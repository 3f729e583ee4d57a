//! Fuzzing conversion (issue 12, 1b): random WIT types × random Lua values through every call
//! path, against a core module that echoes them.
//!
//! For each case a WIT type `T` is generated (named records, variants, enums and flags in an
//! interface; lists, tuples, options, results; every scalar) and the entry
//! `echo: func(x: T, p: P) -> tuple<T, P>` is loaded, `P` being 17 `u32`s: the parameters then
//! travel in memory by pointer and the result is returned by pointer with the same layout, so
//! the core function is `local.get 0` (the module is wrapped into a component by wit-component
//! at load, as any core module with `wit`). Then values — canonical ones, accepted other
//! spellings (kebab aliases, `3.0` for an integer, flags as arrays, …) and, in some, one wrong
//! value at a known path — go through:
//!
//! - both readers on the value alone (`read::to_val` off the stack, `lua::to_val` through
//!   mlua): they agree;
//! - `funcs.call` twice (the first call may be a cache miss, through mlua `funcs.call`; the
//!   second takes the raw C path), `funcs.async(...):result()`, `funcs.call` inside a
//!   `wippy.run` task, and `funcs.call` with every conversion forced onto the general (mlua)
//!   path ([`super::set_general_only`]).
//!
//! Oracle: all paths return the same thing. When the readers accept the value, the echo reads
//! back to the same component value, equals the value both result writers make of it, and —
//! for a canonical input — equals the input itself (floats by bits, any NaN equal to any NaN).
//! When the readers refuse it, every path fails with an `INVALID` error whose message holds
//! the reader's message, with the path where the wrong value was put. Never a crash.
//!
//! `WIPPY_FUZZ_SECS` (default 25), `WIPPY_FUZZ_SEED`, `WIPPY_FUZZ_CASE`: as the integration
//! harnesses (tests/all/fuzz_util.rs).

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use mlua::{Function, Lua, Table, Value};

use super::{lua as general, push, read, Path, Ty};

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// A generated WIT type.
#[derive(Clone, Debug)]
enum G {
    Bool,
    Int(&'static str, i128, i128),
    F32,
    F64,
    Char,
    Str,
    Bytes,
    List(Box<G>),
    Tuple(Vec<G>),
    Option(Box<G>),
    Result(Option<Box<G>>, Option<Box<G>>),
    Record(String, Vec<(String, G)>),
    Variant(String, Vec<(String, Option<G>)>),
    Enum(String, Vec<String>),
    Flags(String, Vec<String>),
    /// `type aN = T` of a type without a name of its own (`Ty::Named`).
    Alias(String, Box<G>),
}

impl G {
    /// The type an alias stands for.
    fn bare(&self) -> &G {
        match self {
            G::Alias(_, g) => g,
            g => g,
        }
    }
}

const INTS: &[(&str, i128, i128)] = &[
    ("s8", -128, 127),
    ("u8", 0, 255),
    ("s16", -32768, 32767),
    ("u16", 0, 65535),
    ("s32", i32::MIN as i128, i32::MAX as i128),
    ("u32", 0, u32::MAX as i128),
    ("s64", i64::MIN as i128, i64::MAX as i128),
    // Lua holds a u64 as the i64 with its bits.
    ("u64", i64::MIN as i128, i64::MAX as i128),
];

const FIELD_NAMES: &[&str] = &["a", "id", "nick-name", "x1", "value", "ok", "err", "big-number-two", "z"];

struct Types {
    decls: Vec<String>,
    next: usize,
}

impl Types {
    fn name(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    /// A type, named by a `type` alias one time in five when it has no name of its own.
    fn gen(&mut self, rng: &mut Rng, depth: usize) -> G {
        let g = self.gen_bare(rng, depth);
        if matches!(g, G::Record(..) | G::Variant(..) | G::Enum(..) | G::Flags(..)) || !rng.one_in(5) {
            return g;
        }
        let name = self.name("a");
        self.decls.push(format!("type {name} = {};", wit(&g)));
        G::Alias(name, Box::new(g))
    }

    fn gen_bare(&mut self, rng: &mut Rng, depth: usize) -> G {
        let leaf = depth == 0 || rng.one_in(3);
        if leaf {
            return match rng.below(9) {
                0 => G::Bool,
                1 | 2 => {
                    let (n, lo, hi) = INTS[rng.below(INTS.len())];
                    G::Int(n, lo, hi)
                }
                3 => G::F32,
                4 => G::F64,
                5 => G::Char,
                6 => G::Bytes,
                7 => {
                    let name = self.name("e");
                    let cases: Vec<String> = (0..1 + rng.below(5)).map(|i| format!("k{i}")).collect();
                    self.decls.push(format!("enum {name} {{ {} }}", cases.join(", ")));
                    G::Enum(name, cases)
                }
                _ => G::Str,
            };
        }
        match rng.below(7) {
            // `list<u8>` is `Bytes` (a string is its canonical spelling).
            0 => match self.gen(rng, depth - 1) {
                G::Int("u8", ..) => G::Bytes,
                e => G::List(Box::new(e)),
            },
            1 => G::Tuple((0..1 + rng.below(4)).map(|_| self.gen(rng, depth - 1)).collect()),
            2 => {
                // option<option<T>> has spellings of its own (nil vs wippy.null); kept out.
                let inner = loop {
                    let g = self.gen(rng, depth - 1);
                    if !matches!(g.bare(), G::Option(_)) {
                        break g;
                    }
                };
                G::Option(Box::new(inner))
            }
            3 => {
                let mut side = |rng: &mut Rng| (!rng.one_in(3)).then(|| Box::new(self.gen(rng, depth - 1)));
                let ok = side(rng);
                let err = side(rng);
                G::Result(ok, err)
            }
            4 => {
                let name = self.name("r");
                let mut names: Vec<&str> = FIELD_NAMES.to_vec();
                let n = 1 + rng.below(4);
                let mut fields = Vec::new();
                for _ in 0..n {
                    let f = names.remove(rng.below(names.len()));
                    fields.push((f.to_string(), self.gen(rng, depth - 1)));
                }
                let body: Vec<String> = fields.iter().map(|(f, g)| format!("{f}: {}", wit(g))).collect();
                self.decls.push(format!("record {name} {{ {} }}", body.join(", ")));
                G::Record(name, fields)
            }
            5 => {
                let name = self.name("v");
                let cases: Vec<(String, Option<G>)> = (0..1 + rng.below(4))
                    .map(|i| (format!("c{i}"), (!rng.one_in(3)).then(|| self.gen(rng, depth - 1))))
                    .collect();
                let body: Vec<String> = cases
                    .iter()
                    .map(|(c, g)| match g {
                        Some(g) => format!("{c}({})", wit(g)),
                        None => c.clone(),
                    })
                    .collect();
                self.decls.push(format!("variant {name} {{ {} }}", body.join(", ")));
                G::Variant(name, cases)
            }
            _ => {
                let name = self.name("f");
                let flags: Vec<String> = (0..1 + rng.below(32)).map(|i| format!("b{i}")).collect();
                self.decls.push(format!("flags {name} {{ {} }}", flags.join(", ")));
                G::Flags(name, flags)
            }
        }
    }
}

fn wit(g: &G) -> String {
    match g {
        G::Bool => "bool".into(),
        G::Int(n, ..) => (*n).into(),
        G::F32 => "f32".into(),
        G::F64 => "f64".into(),
        G::Char => "char".into(),
        G::Str => "string".into(),
        G::Bytes => "list<u8>".into(),
        G::List(e) => format!("list<{}>", wit(e)),
        G::Tuple(es) => format!("tuple<{}>", es.iter().map(wit).collect::<Vec<_>>().join(", ")),
        G::Option(e) => format!("option<{}>", wit(e)),
        G::Result(None, None) => "result".into(),
        G::Result(Some(o), None) => format!("result<{}>", wit(o)),
        G::Result(None, Some(e)) => format!("result<_, {}>", wit(e)),
        G::Result(Some(o), Some(e)) => format!("result<{}, {}>", wit(o), wit(e)),
        G::Record(n, _) | G::Variant(n, _) | G::Enum(n, _) | G::Flags(n, _) | G::Alias(n, _) => n.clone(),
    }
}

/// A Lua string literal of these bytes.
fn lua_bytes(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        let _ = write!(s, "\\{c}");
    }
    s.push('"');
    s
}

fn random_char(rng: &mut Rng) -> char {
    loop {
        let c = match rng.below(4) {
            0 => rng.below(0x80) as u32,
            1 => 0x80 + rng.below(0x780) as u32,
            2 => 0x800 + rng.below(0xF800) as u32,
            _ => 0x10000 + rng.below(0x100000) as u32,
        };
        if let Some(c) = char::from_u32(c) {
            return c;
        }
    }
}

/// A generated Lua value: its source, whether it is the spelling results use, and where a
/// wrong value was put (`None`: none was).
struct Gen<'a> {
    rng: &'a mut Rng,
    /// Chance (1 in n) of a wrong value at a node, until one is put.
    wrong_odds: usize,
    wrong: Option<String>,
    canonical: bool,
}

const WRONG: &[&str] = &["print", "(coroutine.running())", "io.stdout"];

impl Gen<'_> {
    /// `slot`: a `none` here is `wippy.null` (list and tuple elements, payloads).
    fn val(&mut self, g: &G, slot: bool, path: &str) -> String {
        let odds = if path.is_empty() { self.wrong_odds * 4 } else { self.wrong_odds };
        if self.wrong.is_none() && odds > 0 && self.rng.one_in(odds) {
            self.wrong = Some(path.to_string());
            let w = WRONG[self.rng.below(WRONG.len())];
            return match g {
                G::Bool => "1".into(),
                G::Str | G::Char | G::Enum(..) => "42".into(),
                G::Int(..) | G::F32 | G::F64 => "'7'".into(),
                _ => w.into(),
            };
        }
        if let G::Alias(_, inner) = g {
            return self.val(inner, slot, path);
        }
        let rng = &mut *self.rng;
        match g {
            G::Bool => if rng.one_in(2) { "true" } else { "false" }.into(),
            G::Int(_, lo, hi) => {
                let v: i128 = match rng.below(4) {
                    0 => *lo,
                    1 => *hi,
                    2 => rng.below(200) as i128 - 100,
                    _ => lo + (rng.next_u64() as i128 % (hi - lo + 1)),
                }
                .clamp(*lo, *hi);
                if v == i64::MIN as i128 {
                    "math.mininteger".into()
                } else if rng.one_in(6) && v.abs() < (1 << 52) {
                    self.canonical = false;
                    format!("{v}.0")
                } else {
                    v.to_string()
                }
            }
            G::F32 => {
                let f = match rng.below(6) {
                    0 => [0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MIN_POSITIVE][rng.below(6)],
                    1 => rng.below(1000) as f32 - 500.0,
                    _ => f32::from_bits(rng.next_u64() as u32),
                };
                format!("(string.unpack('<f', {}))", lua_bytes(&f.to_le_bytes()))
            }
            G::F64 => {
                if rng.one_in(8) {
                    self.canonical = false;
                    return (rng.below(1000) as i64 - 500).to_string();
                }
                let f = match rng.below(6) {
                    0 => [0.0f64, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 5e-324][rng.below(6)],
                    1 => rng.below(1000) as f64 / 8.0,
                    _ => f64::from_bits(rng.next_u64()),
                };
                format!("(string.unpack('<d', {}))", lua_bytes(&f.to_le_bytes()))
            }
            G::Char => {
                let mut b = [0; 4];
                lua_bytes(random_char(rng).encode_utf8(&mut b).as_bytes())
            }
            G::Str => {
                let n = if rng.one_in(10) { rng.below(400) } else { rng.below(12) };
                let s: String = (0..n).map(|_| random_char(rng)).collect();
                lua_bytes(s.as_bytes())
            }
            G::Bytes => {
                let n = if rng.one_in(10) { rng.below(300) } else { rng.below(12) };
                let b: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                if rng.one_in(5) {
                    self.canonical = false;
                    format!("{{{}}}", b.iter().map(u8::to_string).collect::<Vec<_>>().join(", "))
                } else {
                    lua_bytes(&b)
                }
            }
            G::List(e) => {
                let n = if rng.one_in(12) { rng.below(40) } else { rng.below(4) };
                let items: Vec<String> = (1..=n).map(|i| self.val(e, true, &format!("{path}[{i}]"))).collect();
                format!("{{{}}}", items.join(", "))
            }
            G::Tuple(es) => {
                let items: Vec<String> =
                    es.iter().enumerate().map(|(i, e)| self.val(e, true, &format!("{path}[{}]", i + 1))).collect();
                format!("{{{}}}", items.join(", "))
            }
            G::Option(e) => {
                if rng.one_in(3) {
                    if slot {
                        "wippy.null".into()
                    } else {
                        "nil".into()
                    }
                } else {
                    self.val(e, slot, path)
                }
            }
            G::Result(ok, err) => {
                let (side, g) = if rng.one_in(2) { ("ok", ok) } else { ("err", err) };
                let inner = match g {
                    Some(g) => self.val(g, true, &field(path, side)),
                    None => "true".into(),
                };
                format!("{{{side} = {inner}}}")
            }
            G::Record(_, fields) => {
                let mut parts = Vec::new();
                for (f, g) in fields {
                    let v = self.val(g, false, &field(path, f));
                    if v == "nil" {
                        continue;
                    }
                    let key = if f.contains('-') && self.rng.one_in(3) {
                        self.canonical = false;
                        f.replace('-', "_")
                    } else {
                        f.clone()
                    };
                    parts.push(format!("[\"{key}\"] = {v}"));
                }
                if self.rng.one_in(8) {
                    self.canonical = false;
                    parts.push("extra_key = 1".into());
                }
                format!("{{{}}}", parts.join(", "))
            }
            G::Variant(_, cases) => {
                let (c, g) = &cases[rng.below(cases.len())];
                match g {
                    Some(g) => format!("{{[\"{c}\"] = {}}}", self.val(g, true, &field(path, c))),
                    None if rng.one_in(3) => {
                        self.canonical = false;
                        format!("{{[\"{c}\"] = true}}")
                    }
                    None => format!("\"{c}\""),
                }
            }
            G::Enum(_, cases) => format!("\"{}\"", cases[rng.below(cases.len())]),
            G::Alias(..) => unreachable!("aliases are read through above"),
            G::Flags(_, flags) => {
                let set: Vec<&String> = flags.iter().filter(|_| rng.one_in(3)).collect();
                if rng.one_in(4) {
                    self.canonical = false;
                    let names: Vec<String> = set.iter().map(|f| format!("\"{f}\"")).collect();
                    format!("{{{}}}", names.join(", "))
                } else {
                    let mut parts: Vec<String> = set.iter().map(|f| format!("[\"{f}\"] = true")).collect();
                    if rng.one_in(4) {
                        self.canonical = false;
                        parts.push(format!("[\"{}\"] = false", flags[0]));
                    }
                    format!("{{{}}}", parts.join(", "))
                }
            }
        }
    }
}

fn field(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Deep equality of Lua values: integers and floats are different, floats compare by bits
/// (every NaN equal), tables by their keys and values.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (Value::Table(x), Value::Table(y)) => {
            let keys =
                |t: &Table| -> Vec<(Value, Value)> { t.pairs::<Value, Value>().filter_map(Result::ok).collect() };
            let (kx, ky) = (keys(x), keys(y));
            kx.len() == ky.len() && kx.iter().all(|(k, v)| y.raw_get::<Value>(k.clone()).is_ok_and(|w| same(v, &w)))
        }
        (Value::String(x), Value::String(y)) => x.as_bytes() == y.as_bytes(),
        _ => a == b,
    }
}

const ECHO_WAT: &str = r#"(module
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32) (local $end i32)
    global.get $bump local.get $align i32.add i32.const 1 i32.sub
    i32.const 0 local.get $align i32.sub i32.and local.set $p
    local.get $p local.get $size i32.add local.set $end
    (block $ok
      (loop $grow
        local.get $end memory.size i32.const 16 i32.shl i32.le_u br_if $ok
        i32.const 1 memory.grow i32.const -1 i32.eq if unreachable end
        br $grow))
    local.get $end global.set $bump
    local.get $old if
      local.get $p local.get $old local.get $old_size memory.copy
    end
    local.get $p)
  (func (export "fz#echo") (param i32) (result i32) local.get 0)
  (func (export "cabi_post_fz#echo") (param i32) i32.const 1024 global.set $bump))"#;

const PAD: &str = "tuple<u32, u32, u32, u32, u32, u32, u32, u32, u32, u32, u32, u32, u32, u32, u32, u32, u32>";

/// Calls the entry every way; returns, per path, `{ok, value_or_error_text, kind}`.
const CALLS: &str = r#"
local v, pad = ...
local funcs = wippy.funcs
local function pack(r, err)
  if r ~= nil then return { true, r } end
  if not wippy.errors.is(err) then return { false, "not an error object: " .. tostring(err), "?" } end
  return { false, tostring(err), err:kind() }
end
local out = {}
out.first = pack(funcs.call("fzc:e", v, pad))
out.raw = pack(funcs.call("fzc:e", v, pad))
local fut, err = funcs.async("fzc:e", v, pad)
out.async = fut and pack(fut:result()) or pack(nil, err)
out.task = wippy.run(function() return pack(funcs.call("fzc:e", v, pad)) end)
GENERAL(true)
local ok, r = pcall(function() return pack(funcs.call("fzc:e", v, pad)) end)
GENERAL(false)
if not ok then error(r) end
out.general = r
return out
"#;

fn run_case(lua: &Lua, calls: &Function, dir: &std::path::Path, rng: &mut Rng) -> Result<(), String> {
    let mut types = Types { decls: Vec::new(), next: 0 };
    let depth = 1 + rng.below(4);
    let g = types.gen(rng, depth);
    let doc = format!(
        "interface fz {{\n{}\n  echo: func(x: {t}, p: {PAD}) -> tuple<{t}, {PAD}>;\n}}\n",
        types.decls.iter().map(|d| format!("  {d}\n")).collect::<String>(),
        t = wit(&g)
    );
    std::fs::write(dir.join("echo.wit"), &doc).unwrap();
    let loaded = crate::runtime::load(dir, Some(None));
    if let Err(d) = loaded {
        return Err(format!("the echo entry did not load:\n{d}\nWIT:\n{doc}"));
    }
    let f = crate::runtime::get("fzc:e").ok_or("no fzc:e")?;
    let ty: Ty = f.code().ok_or("no code")?.params[0].ty.clone();
    let pad: Table =
        lua.load("return {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 4294967295}").eval().unwrap();
    for _ in 0..12 {
        let wrong_odds = if rng.one_in(3) { 6 } else { 0 };
        let mut gen = Gen { rng: &mut *rng, wrong_odds, wrong: None, canonical: true };
        let src = gen.val(&g, true, "");
        let (wrong, canonical) = (gen.wrong.take(), gen.canonical);
        let ctx = || format!("WIT:\n{doc}value: {src}\nwrong value at: {wrong:?}");
        let v: Value = lua.load(format!("return {src}")).eval().map_err(|e| format!("{e}\n{}", ctx()))?;
        let fast = read::to_val(lua, &v, &ty, &mut Path::new());
        let slow = general::to_val(lua, &v, &ty, &mut Path::new());
        let show = |r: &Result<wasmtime::component::Val, super::ConvError>| match r {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("error {e}"),
        };
        if show(&fast) != show(&slow) {
            return Err(format!("the readers disagree:\n  read: {}\n  lua:  {}\n{}", show(&fast), show(&slow), ctx()));
        }
        let out: Table = calls.call((v.clone(), pad.clone())).map_err(|e| format!("calling raised: {e}\n{}", ctx()))?;
        let first: Table = out.get("first").unwrap();
        for path in ["raw", "async", "task", "general"] {
            let other: Table = out.get(path).unwrap();
            if !same(&Value::Table(first.clone()), &Value::Table(other.clone())) {
                let text = |t: &Table| format!("{:?} {:?}", t.get::<Value>(1), t.get::<Value>(2));
                return Err(format!(
                    "funcs.call and the {path} path disagree:\n  call: {}\n  {path}: {}\n{}",
                    text(&first),
                    text(&other),
                    ctx()
                ));
            }
        }
        let ok: bool = first.get(1).unwrap();
        match fast {
            Ok(val) => {
                if wrong.is_some() {
                    return Err(format!("a wrong value was accepted: {val:?}\n{}", ctx()));
                }
                if !ok {
                    let e: String = first.get(2).unwrap();
                    return Err(format!("the readers accept the value, the call failed: {e}\n{}", ctx()));
                }
                let r: Table = first.get(2).unwrap();
                let echoed: Value = r.get(1).unwrap();
                let back = read::to_val(lua, &echoed, &ty, &mut Path::new());
                if show(&back) != format!("{val:?}") {
                    return Err(format!("the echo reads back as {} instead of {val:?}\n{}", show(&back), ctx()));
                }
                if !same(&r.get::<Value>(2).unwrap(), &Value::Table(pad.clone())) {
                    return Err(format!("the padding came back changed\n{}", ctx()));
                }
                let pushed = push::to_lua(lua, val.clone(), &ty, true).map_err(|e| e.to_string())?;
                let made = general::from_val(lua, val, &ty, true).map_err(|e| e.to_string())?;
                if !same(&pushed, &made) || !same(&pushed, &echoed) {
                    return Err(format!("the writers disagree, or differ from the echo\n{}", ctx()));
                }
                if canonical && !same(&echoed, &v) {
                    return Err(format!("the echo of a canonical value differs from it\n{}", ctx()));
                }
            }
            Err(e) => {
                if wrong.is_none() {
                    return Err(format!("a value of the type was refused: {e}\n{}", ctx()));
                }
                let (text, kind): (String, String) = (first.get(2).unwrap(), first.get(3).unwrap());
                if ok || kind != "INVALID" || !text.contains(&e.to_string()) || !text.contains("argument 1 (x)") {
                    return Err(format!("refused with `{e}`, the call gave {kind}: {text}\n{}", ctx()));
                }
                if let Some(w) = &wrong {
                    if &e.path != w {
                        return Err(format!(
                            "the error names the path `{}`, the wrong value is at `{w}`\n{}",
                            e.path,
                            ctx()
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn fuzz_conversion() {
    let dir = std::env::temp_dir().join(format!("wippy-fuzz-conv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("echo.wat"), ECHO_WAT).unwrap();
    std::fs::write(
        dir.join("_index.yaml"),
        "namespace: fzc\nentries:\n  - name: e\n    kind: function.wat\n    source: file://echo.wat\n    wit: file://echo.wit\n    method: fz#echo\n",
    )
    .unwrap();
    let lua = Lua::new();
    let m = crate::lua_api::module(&lua).unwrap();
    lua.globals().set("wippy", m).unwrap();
    lua.globals()
        .set(
            "GENERAL",
            lua.create_function(|_, on: bool| {
                super::set_general_only(on);
                Ok(())
            })
            .unwrap(),
        )
        .unwrap();
    let calls = lua.load(CALLS).into_function().unwrap();

    let run_one = |seed: u64| {
        let mut rng = Rng(seed);
        match catch_unwind(AssertUnwindSafe(|| run_case(&lua, &calls, &dir, &mut rng))) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => panic!("fuzz_conversion: case failed; rerun with WIPPY_FUZZ_CASE={seed}:\n{why}"),
            Err(_) => panic!("fuzz_conversion: case panicked (above); rerun with WIPPY_FUZZ_CASE={seed}"),
        }
    };
    if let Some(seed) = env_u64("WIPPY_FUZZ_CASE") {
        run_one(seed);
        return;
    }
    let secs = env_u64("WIPPY_FUZZ_SECS").unwrap_or(25);
    let seed = env_u64("WIPPY_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let mut seeds = Rng(seed);
    let start = Instant::now();
    let mut n = 0;
    while n == 0 || start.elapsed() < Duration::from_secs(secs) {
        run_one(seeds.next_u64());
        n += 1;
    }
    eprintln!(
        "fuzz_conversion: {n} types × 12 values in {:.1}s (WIPPY_FUZZ_SEED={seed})",
        start.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
