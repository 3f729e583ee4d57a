//! WIT ⇄ Lua values, driven by the WIT type (SPEC §3), with errors that name the path.

pub mod int64;
pub mod json;
mod lua;
mod path;
pub mod push;
pub mod read;
pub mod resource;
pub mod tape;
pub mod ty;

pub use lua::{is_null, null, scalar_from_core, scalar_raw, scalar_to_core, Num};
pub use path::{ConvError, Path};
pub use ty::{Scalar, Ty};

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use mlua::{Lua, Value};
use wasmtime::component::Val;

/// Result records keyed by snake_case names (`wippy.configure{ record_keys = "snake" }`)
/// rather than their WIT names.
static SNAKE_KEYS: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// An executor's `record_keys` while its results are converted.
    static KEYS: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Sets the process-wide default of `record_keys` (`true`: snake_case).
pub fn set_snake_keys(snake: bool) {
    SNAKE_KEYS.store(snake, Ordering::Relaxed);
}

/// Whether result records get snake_case keys now.
pub fn snake_keys() -> bool {
    KEYS.get().unwrap_or_else(|| SNAKE_KEYS.load(Ordering::Relaxed))
}

/// Runs `f` (a conversion of results) with records keyed as `snake` says (`None`: the default).
pub fn with_record_keys<R>(snake: Option<bool>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<bool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            KEYS.set(self.0);
        }
    }
    if snake.is_none() {
        return f();
    }
    let _restore = Restore(KEYS.replace(snake));
    f()
}

#[cfg(test)]
thread_local! {
    /// Tests only: calls on this thread convert through mlua (`lua::to_val`, `lua::from_val`)
    /// as resources and LuaJIT cdata do, so the fuzzer drives that path end to end too.
    static GENERAL_ONLY: Cell<bool> = const { Cell::new(false) };
}

/// Whether conversions must take the general (mlua) path: only ever in tests.
#[inline]
pub fn general_only() -> bool {
    #[cfg(test)]
    return GENERAL_ONLY.get();
    #[cfg(not(test))]
    false
}

/// Tests only: sends this thread's calls down the general path (see [`general_only`]).
#[cfg(test)]
pub fn set_general_only(on: bool) {
    GENERAL_ONLY.set(on);
}

/// Converts a Lua value to a component value of type `ty`: straight off the Lua stack when the
/// type allows ([`Ty::stack_convertible`]), else through mlua (resources, LuaJIT cdata).
///
/// # Errors
/// The value does not fit its type; the message names the path.
pub fn to_val(lua: &Lua, v: &Value, ty: &Ty, path: &mut Path) -> Result<Val, ConvError> {
    if ty.stack_convertible() && !general_only() {
        read::to_val(lua, v, ty, path)
    } else {
        lua::to_val(lua, v, ty, path)
    }
}

/// Converts a component value to Lua, onto the stack when the type allows, else through mlua.
/// `slot`: a `none` here must be `wippy.null` (list and tuple elements, payloads).
///
/// # Errors
/// Only when Lua fails.
pub fn from_val(lua: &Lua, v: Val, ty: &Ty, slot: bool) -> mlua::Result<Value> {
    if ty.stack_convertible() && !general_only() {
        push::to_lua(lua, v, ty, slot)
    } else {
        lua::from_val(lua, v, ty, slot)
    }
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    /// Both readers of Lua values — off the stack through a tape, and through mlua — on the
    /// same Lua value: their results (a value, or the message of an error) agree.
    fn both(lua: &Lua, src: &str, ty: &Ty) -> Result<Val, String> {
        let v: Value = lua.load(src).eval().expect("the test's Lua evaluates");
        let fast = read::to_val(lua, &v, ty, &mut Path::new()).map_err(|e| e.to_string());
        let general = lua::to_val(lua, &v, ty, &mut Path::new()).map_err(|e| e.to_string());
        assert_eq!(fast, general, "the two paths disagree on {src}");
        fast
    }

    fn list_of(ty: Ty) -> Ty {
        Ty::List(Box::new(ty))
    }

    #[test]
    fn a_sparse_array_is_refused_naming_the_index_past_its_length() {
        let lua = Lua::new();
        for (src, ty) in [
            ("{[1] = 1, [3] = 3}", list_of(Ty::S32)),
            ("{[1] = 'a', [3] = 'c'}", list_of(Ty::Option(Box::new(Ty::String)))),
            ("{[1] = 1, [3.0] = 3}", Ty::Bytes),
            ("(function() local t = {1, 2, 3, 4} t[3] = nil t[4] = nil t[9] = 9 return t end)()", list_of(Ty::S32)),
        ] {
            let e = both(&lua, src, &ty).expect_err(src);
            assert!(e.contains("a sparse array: index"), "{src}: {e}");
            assert!(e.contains("use wippy.null for a missing element"), "{src}: {e}");
        }
        let e = both(&lua, "{[1] = 1, [3] = 3}", &list_of(Ty::S32)).unwrap_err();
        assert!(e.contains("index 3 is past its length 1"), "{e}");
    }

    #[test]
    fn arrays_with_other_keys_and_holes_inside() {
        let lua = Lua::new();
        // `n` (table.pack) and string keys are not elements.
        let v = both(&lua, "{1, 2, 3, n = 3}", &list_of(Ty::S32)).unwrap();
        assert_eq!(v, Val::List(vec![Val::S32(1), Val::S32(2), Val::S32(3)]));
        // A hole inside the length: the element is nil, named by its index.
        let e = both(&lua, "{1, nil, 3}", &list_of(Ty::S32)).unwrap_err();
        assert!(e.contains("[2]: expected s32, got nil"), "{e}");
        // A table with only other keys is no array.
        let e = both(&lua, "{x = 1}", &list_of(Ty::S32)).unwrap_err();
        assert!(e.contains("an array table"), "{e}");
    }

    #[test]
    fn tables_are_read_raw_and_an_empty_proxy_is_refused() {
        let lua = Lua::new();
        let proxy = "setmetatable({}, { __index = function(_, i) return i end, __len = function() return 3 end })";
        let e = both(&lua, proxy, &list_of(Ty::S32)).unwrap_err();
        assert!(e.contains("tables are read raw"), "{e}");
        // Elements of its own are read; the metatable is not consulted.
        let v = both(&lua, "setmetatable({7}, { __len = function() return 3 end })", &list_of(Ty::S32)).unwrap();
        assert_eq!(v, Val::List(vec![Val::S32(7)]));
        assert_eq!(both(&lua, "setmetatable({}, {})", &list_of(Ty::S32)).unwrap(), Val::List(vec![]));
        // Metamethods are found raw, as Lua finds them: a metatable's own `__index` adds none
        // (and runs no code while the raw path reads).
        let meta_meta = "setmetatable({}, setmetatable({}, { __index = function() error('ran') end }))";
        assert_eq!(both(&lua, meta_meta, &list_of(Ty::S32)).unwrap(), Val::List(vec![]));
    }

    #[test]
    fn not_a_number_and_infinities_are_no_integers() {
        let lua = Lua::new();
        for (src, shown) in [("0/0", "NaN"), ("math.huge", "inf"), ("-math.huge", "-inf")] {
            for ty in [Ty::S32, Ty::U8, Ty::S64, Ty::U64] {
                let e = both(&lua, src, &ty).unwrap_err();
                assert!(e.contains(&format!("got {shown}")), "{src} as {ty:?}: {e}");
            }
            let e = both(&lua, &format!("{{1, {src}}}"), &list_of(Ty::S16)).unwrap_err();
            assert!(e.contains("[2]:"), "{e}");
        }
        // Floats keep them.
        assert!(matches!(both(&lua, "0/0", &Ty::F64), Ok(Val::Float64(f)) if f.is_nan()));
    }

    #[test]
    fn a_string_that_is_not_utf8_is_refused_for_string_and_kept_for_bytes() {
        let lua = Lua::new();
        let e = both(&lua, "'ok\\255'", &Ty::String).unwrap_err();
        assert!(e.contains("invalid UTF-8 at byte 3"), "{e}");
        assert_eq!(both(&lua, "'\\255'", &Ty::Bytes).unwrap(), Val::List(vec![Val::U8(255)]));
    }

    #[test]
    fn named_types_are_named_in_messages_on_both_readers() {
        use std::sync::Arc;
        let lua = Lua::new();
        let name = |n: &str| Some(Arc::<str>::from(n));
        let point = Ty::Record(Arc::from(vec![ty::Field::new("x", Ty::S32)]), name("point"));
        let shape = Ty::Variant(
            Arc::from(vec![
                ty::Case { name: "dot".into(), ty: None },
                ty::Case { name: "at".into(), ty: Some(point.clone()) },
            ]),
            name("shape"),
        );
        let color = Ty::Enum(Arc::from(vec!["red".to_string(), "blue".to_string()]), name("color"));
        let perms = Ty::Flags(Arc::from(vec!["read".to_string()]), name("perms"));
        for (src, ty, want) in [
            ("'x'", point.clone(), "expected point (a record: a table), got string"),
            ("{}", point.clone(), "x: missing field (expected s32)"),
            ("1", shape.clone(), "expected shape (a variant: {case = payload} or a case name), got number"),
            ("'no'", shape.clone(), "unknown variant case \"no\" of shape, expected one of: dot, at"),
            ("{at = 1}", shape.clone(), "at: expected point (a record: a table), got number"),
            ("'at'", shape.clone(), "at: missing payload (expected point)"),
            (
                "{a = 1, b = 2}",
                shape.clone(),
                "expected shape (a variant {case = payload}, a table with exactly one key), got several keys",
            ),
            ("true", color.clone(), "expected color (an enum case: red|blue), got boolean"),
            ("'pink'", color.clone(), "unknown enum case \"pink\" of color, expected one of: red, blue"),
            ("1", perms.clone(), "expected perms (flags: a set table or an array of names), got number"),
            ("{'fly'}", perms.clone(), "unknown flag \"fly\" of perms, expected any of: read"),
            ("'x'", list_of(shape.clone()), "expected list<shape>, got string"),
            (
                "{'dot', 5}",
                list_of(shape.clone()),
                "[2]: expected shape (a variant: {case = payload} or a case name), got number",
            ),
            ("5", Ty::Option(Box::new(point.clone())), "expected point (a record: a table), got number"),
            (
                "{x = 1}",
                Ty::Option(Box::new(list_of(point.clone()))),
                "expected list<point> (an array table), got a table with key string",
            ),
        ] {
            assert_eq!(both(&lua, src, &ty).unwrap_err(), want, "{src}");
        }
        // Without a name (types made without WIT), the kind alone.
        let anon = Ty::Record(Arc::from(vec![ty::Field::new("x", Ty::S32)]), None);
        assert_eq!(both(&lua, "'x'", &anon).unwrap_err(), "expected a record (a table), got string");
        assert_eq!(list_of(anon).describe(), "list<record { x: s32 }>");
    }

    #[test]
    fn aliases_of_unnamed_types_are_named_in_messages_and_convert_as_their_types() {
        use std::sync::Arc;
        let lua = Lua::new();
        let alias = |n: &str, ty: Ty| Ty::Named(Arc::from(n), Box::new(ty));
        let ids = alias("ids", list_of(Ty::U32));
        let port = alias("port", Ty::U16);
        let blob = alias("blob", Ty::Bytes);
        let maybe = alias("maybe", Ty::Option(Box::new(Ty::S32)));
        let outcome = alias("outcome", Ty::Result(Some(Box::new(Ty::S32)), None));
        let pair = alias("pair", Ty::Tuple(Arc::from(vec![Ty::S32, Ty::S32])));
        let rec = Ty::Record(
            Arc::from(vec![ty::Field::new("p", port.clone()), ty::Field::new("m", maybe.clone())]),
            Some(Arc::from("conn")),
        );
        for (src, ty, want) in [
            ("'x'", ids.clone(), "expected ids (list<u32>), got string"),
            ("{x = 1}", ids.clone(), "expected ids (list<u32>: an array table), got a table with key string"),
            ("{1, -1}", ids.clone(), "[2]: expected u32, got -1 (out of range 0..=4294967295)"),
            ("70000", port.clone(), "expected port (u16), got 70000 (out of range 0..=65535)"),
            ("1.5", port.clone(), "expected port (u16), got 1.5 (not an integer)"),
            ("true", port.clone(), "expected port (u16), got boolean"),
            ("1", blob.clone(), "expected blob (list<u8>: a string or an array of bytes), got number"),
            ("'x'", maybe.clone(), "expected s32, got string"),
            ("1", outcome.clone(), "expected outcome (result<s32>: {ok = value} or {err = value}), got number"),
            ("{1}", pair.clone(), "expected pair (tuple<s32, s32>: an array of 2 values), got an array of 1"),
            ("{m = 1}", rec.clone(), "p: missing field (expected port)"),
            ("{p = -1}", rec.clone(), "p: expected port (u16), got -1 (out of range 0..=65535)"),
            ("{p = 1, m = 'x'}", rec.clone(), "m: expected s32, got string"),
            ("{1, 'x'}", list_of(port.clone()), "[2]: expected port (u16), got string"),
            ("'x'", list_of(port.clone()), "expected list<port>, got string"),
        ] {
            assert_eq!(both(&lua, src, &ty).unwrap_err(), want, "{src}");
        }
        // An alias converts as the type it stands for: an aliased option may be left out of a
        // record, `wippy.null` is the inner none of an option of an aliased option.
        assert_eq!(
            both(&lua, "{p = 80}", &rec).unwrap(),
            Val::Record(vec![("p".into(), Val::U16(80)), ("m".into(), Val::Option(None))])
        );
        assert_eq!(
            both(&lua, "{{ok = 2}, 'ab'}", &Ty::Tuple(Arc::from(vec![outcome.clone(), blob.clone()]))).unwrap(),
            Val::Tuple(vec![
                Val::Result(Ok(Some(Box::new(Val::S32(2))))),
                Val::List(vec![Val::U8(b'a'), Val::U8(b'b')])
            ])
        );
        let nested = Ty::Option(Box::new(maybe.clone()));
        let null = lua::null();
        let fast = read::to_val(&lua, &null, &nested, &mut Path::new()).unwrap();
        assert_eq!(fast, lua::to_val(&lua, &null, &nested, &mut Path::new()).unwrap());
        assert_eq!(fast, Val::Option(Some(Box::new(Val::Option(None)))));
        // Both writers give the value of the type it stands for.
        let v = Val::List(vec![Val::U8(b'h'), Val::U8(b'i')]);
        for out in [push::to_lua(&lua, v.clone(), &blob, false).unwrap(), lua::from_val(&lua, v, &blob, false).unwrap()]
        {
            assert_eq!(out.as_string().map(|s| s.to_string_lossy()), Some("hi".to_string()));
        }
        assert_eq!(list_of(blob).describe(), "list<blob>");
    }

    #[test]
    fn result_records_take_snake_case_keys_on_both_writers() {
        let lua = Lua::new();
        let ty = Ty::Record(
            std::sync::Arc::from(vec![ty::Field::new("total-cents", Ty::S32), ty::Field::new("name", Ty::String)]),
            None,
        );
        let v = || Val::Record(vec![("total-cents".into(), Val::S32(5)), ("name".into(), Val::String("n".into()))]);
        let keys = |t: Value| {
            let Value::Table(t) = t else { panic!("not a table") };
            let mut ks: Vec<String> = t.pairs::<String, Value>().map(|p| p.unwrap().0).collect();
            ks.sort();
            ks.join(" ")
        };
        for snake in [None, Some(false), Some(true)] {
            let want = if snake == Some(true) { "name total_cents" } else { "name total-cents" };
            let fast = with_record_keys(snake, || push::to_lua(&lua, v(), &ty, false)).unwrap();
            let general = with_record_keys(snake, || lua::from_val(&lua, v(), &ty, false)).unwrap();
            assert_eq!(keys(fast), want, "{snake:?}");
            assert_eq!(keys(general), want, "{snake:?}");
        }
        // The setting ends with its conversion.
        assert!(!snake_keys());
    }
}
