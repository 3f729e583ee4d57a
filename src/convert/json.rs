//! JSON text of values, for results that cross `wippy:runtime/funcs` (SPEC §5.2): a guest
//! asked for a string, so a structured result (a Lua table, a WIT record) comes back as JSON.
//! Shapes follow the Lua mapping (SPEC §3): records are objects keyed by WIT field names, lists
//! and tuples arrays, enums and payload-less cases strings, `{case = payload}` objects for
//! variants, `none` is `null`, flags an object of `true`s.

use std::fmt::Write;

use wasmtime::component::Val;

/// Appends `s` as a JSON string.
pub fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a float; JSON has no NaN or infinity.
///
/// # Errors
/// A NaN or an infinity.
pub fn float(f: f64, out: &mut String) -> Result<(), String> {
    if !f.is_finite() {
        return Err(format!("{f} has no JSON form"));
    }
    if f.fract() == 0.0 && f.abs() < 1e15 {
        let _ = write!(out, "{f:.1}");
    } else {
        let _ = write!(out, "{f}");
    }
    Ok(())
}

/// Appends the JSON text of a component value.
///
/// # Errors
/// A resource handle, or a NaN or infinite float.
pub fn val(v: &Val, out: &mut String) -> Result<(), String> {
    match v {
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::S8(n) => push_int(out, *n),
        Val::U8(n) => push_int(out, *n),
        Val::S16(n) => push_int(out, *n),
        Val::U16(n) => push_int(out, *n),
        Val::S32(n) => push_int(out, *n),
        Val::U32(n) => push_int(out, *n),
        Val::S64(n) => push_int(out, *n),
        Val::U64(n) => push_int(out, *n),
        Val::Float32(f) => float(f64::from(*f), out)?,
        Val::Float64(f) => float(*f, out)?,
        Val::Char(c) => string(c.encode_utf8(&mut [0; 4]), out),
        Val::String(s) | Val::Enum(s) | Val::Variant(s, None) => string(s, out),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                val(item, out)?;
            }
            out.push(']');
        }
        Val::Record(fields) => {
            out.push('{');
            let mut first = true;
            for (name, v) in fields {
                // An absent option field is left out, as in Lua.
                if matches!(v, Val::Option(None)) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                string(name, out);
                out.push(':');
                val(v, out)?;
            }
            out.push('}');
        }
        Val::Variant(case, Some(p)) => one_key(case, Some(p), out)?,
        Val::Option(None) => out.push_str("null"),
        Val::Option(Some(p)) => val(p, out)?,
        Val::Result(Ok(p)) => one_key("ok", p.as_deref(), out)?,
        Val::Result(Err(p)) => one_key("err", p.as_deref(), out)?,
        Val::Flags(names) => {
            out.push('{');
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(name, out);
                out.push_str(":true");
            }
            out.push('}');
        }
        other => return Err(format!("a {} value has no JSON form", kind(other))),
    }
    Ok(())
}

fn push_int(out: &mut String, n: impl std::fmt::Display) {
    let _ = write!(out, "{n}");
}

/// `{"key": payload}`, `true` for a unit payload.
fn one_key(key: &str, payload: Option<&Val>, out: &mut String) -> Result<(), String> {
    out.push('{');
    string(key, out);
    out.push(':');
    match payload {
        Some(p) => val(p, out)?,
        None => out.push_str("true"),
    }
    out.push('}');
    Ok(())
}

fn kind(v: &Val) -> &'static str {
    match v {
        Val::Resource(_) => "resource",
        _ => "future or stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &Val) -> String {
        let mut s = String::new();
        val(v, &mut s).unwrap_or_else(|e| s = format!("error: {e}"));
        s
    }

    #[test]
    fn values_read_as_their_lua_shapes() {
        let rec = Val::Record(vec![
            ("text".into(), Val::String("a \"b\"\n".into())),
            ("n".into(), Val::U32(3)),
            ("gone".into(), Val::Option(None)),
            ("words".into(), Val::List(vec![Val::String("x".into()), Val::Enum("red".into())])),
        ]);
        assert_eq!(text(&rec), r#"{"text":"a \"b\"\n","n":3,"words":["x","red"]}"#);
        assert_eq!(text(&Val::Variant("circle".into(), Some(Box::new(Val::Float64(2.5))))), r#"{"circle":2.5}"#);
        assert_eq!(text(&Val::Result(Ok(None))), r#"{"ok":true}"#);
        assert_eq!(text(&Val::Flags(vec!["read".into()])), r#"{"read":true}"#);
        assert_eq!(text(&Val::Float64(2.0)), "2.0");
        assert_eq!(text(&Val::Float64(f64::NAN)), "error: NaN has no JSON form");
        assert_eq!(text(&Val::String("\u{1}".into())), r#""\u0001""#);
    }
}
