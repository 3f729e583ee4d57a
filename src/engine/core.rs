//! Core-module details the canonical ABI needs: export names and signatures.

use wasmparser::Parser;
use wit_parser::abi::WasmType;

/// True when `bytes` is a Component-Model component rather than a core module.
pub fn is_component(bytes: &[u8]) -> bool {
    wasmparser::Parser::is_component(bytes)
}

/// Writes a core function type as `(i32, i32) -> i32`.
pub fn core_sig(params: &[wasmtime::ValType], results: &[wasmtime::ValType]) -> String {
    let list = |ts: &[wasmtime::ValType]| ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    match results.len() {
        0 => format!("({})", list(params)),
        1 => format!("({}) -> {}", list(params), results[0]),
        _ => format!("({}) -> ({})", list(params), list(results)),
    }
}

/// The core value type a canonical-ABI flat type lowers to (32-bit memories).
pub fn flat(t: &WasmType) -> wasmtime::ValType {
    match t {
        WasmType::I32 | WasmType::Pointer | WasmType::Length => wasmtime::ValType::I32,
        WasmType::I64 | WasmType::PointerOrI64 => wasmtime::ValType::I64,
        WasmType::F32 => wasmtime::ValType::F32,
        WasmType::F64 => wasmtime::ValType::F64,
    }
}

/// Adds exports `(new_name, same item as old_name)` to a core module, so a module that
/// exports `transform` can serve the canonical name `ns:pkg/api#transform`.
///
/// # Errors
/// When the module does not parse.
pub fn add_export_aliases(bytes: &[u8], aliases: &[(String, String)]) -> Result<Vec<u8>, String> {
    if aliases.is_empty() {
        return Ok(bytes.to_vec());
    }
    let mut out = bytes[..8].to_vec();
    let mut had_exports = false;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| e.to_string())?;
        let Some((id, range)) = payload.as_section() else {
            continue;
        };
        if id == 7 {
            had_exports = true;
            let reader =
                wasmparser::ExportSectionReader::new(wasmparser::BinaryReader::new(&bytes[range.clone()], range.start))
                    .map_err(|e| e.to_string())?;
            let mut entries: Vec<(String, u8, u32)> = Vec::new();
            for export in reader {
                let e = export.map_err(|e| e.to_string())?;
                entries.push((e.name.to_string(), kind_byte(e.kind), e.index));
            }
            for (new, old) in aliases {
                if let Some((_, kind, index)) = entries.iter().find(|(n, _, _)| n == old).cloned() {
                    if !entries.iter().any(|(n, _, _)| n == new) {
                        entries.push((new.clone(), kind, index));
                    }
                }
            }
            let mut body = Vec::new();
            leb(&mut body, entries.len() as u64);
            for (name, kind, index) in entries {
                leb(&mut body, name.len() as u64);
                body.extend_from_slice(name.as_bytes());
                body.push(kind);
                leb(&mut body, index.into());
            }
            out.push(7);
            leb(&mut out, body.len() as u64);
            out.extend_from_slice(&body);
        } else {
            // Copy the section as it is: id, size, contents.
            out.push(id);
            leb(&mut out, range.len() as u64);
            out.extend_from_slice(&bytes[range]);
        }
    }
    if !had_exports {
        return Err("module has no export section".into());
    }
    Ok(out)
}

fn kind_byte(kind: wasmparser::ExternalKind) -> u8 {
    use wasmparser::ExternalKind as K;
    match kind {
        K::Func | K::FuncExact => 0,
        K::Table => 1,
        K::Memory => 2,
        K::Global => 3,
        K::Tag => 4,
    }
}

fn leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_point_at_the_same_function() {
        let bytes = wat::parse_str(r#"(module (func (export "f") (result i32) i32.const 7))"#).unwrap();
        let out = add_export_aliases(&bytes, &[("x:y/api#f".into(), "f".into())]).unwrap();
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &out).unwrap();
        let names: Vec<&str> = module.exports().map(|e| e.name()).collect();
        assert_eq!(names, ["f", "x:y/api#f"]);
    }
}
