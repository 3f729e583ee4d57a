//! Fuzzing entries' code (issue 12, 1c): random and mutated WAT and wasm binaries loaded as
//! `function.wat` / `function.wasm` entries with `wippy.load` in a real Lua state. Each load
//! either fails with a diagnostic naming the index file, line and entry, or gives an entry that
//! works: a call returns values or an error object, and the Lua state is usable afterwards.
//! Never a panic, an abort or a hang (fuel and a time limit bound the calls).
//!
//! Seeds: every WAT snippet of the repository's YAML files and specs, the `.wat` files, a few
//! richer modules and components written here, their binaries, and the small guests of
//! `build/guests` when they are built. `WIPPY_FUZZ_*`: see `fuzz_util`.

use std::fs;

use mlua::Lua;

use crate::fuzz_util::{drive, mutate_bytes, scratch, Rng};

/// Largest WAT text or binary the harness loads: keeps compiles short.
const MAX_LEN: usize = 64 << 10;

const EXTRA_WAT: &[&str] = &[
    r#"(module
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (table 2 funcref)
  (elem (i32.const 0) $a $b)
  (type $t (func (param i32) (result i32)))
  (func $a (param i32) (result i32) local.get 0 i32.const 1 i32.add)
  (func $b (param i32) (result i32) local.get 0 i32.const 2 i32.mul)
  (func (export "run") (param i32 i32) (result i32)
    (local i32)
    (loop $l
      local.get 2 local.get 0 i32.add local.set 2
      local.get 0 i32.const 1 i32.sub local.tee 0
      br_if $l)
    local.get 2 local.get 1 i32.const 1 i32.and call_indirect (type $t)
    global.get $g i32.add
    i32.const 16 local.get 2 i32.store
    i32.const 16 i32.load))"#,
    r#"(module
  (func $fib (export "fib") (param i64) (result i64)
    local.get 0 i64.const 2 i64.lt_u
    if (result i64) local.get 0
    else local.get 0 i64.const 1 i64.sub call $fib local.get 0 i64.const 2 i64.sub call $fib i64.add end))"#,
    r#"(module
  (func (export "mix") (param f32 f64 i32 i64) (result f64)
    local.get 0 f64.promote_f32 local.get 1 f64.add local.get 2 f64.convert_i32_s f64.add
    local.get 3 f64.convert_i64_s f64.add))"#,
    r#"(module (memory (export "memory") 1) (func (export "grow") (param i32) (result i32) local.get 0 memory.grow))"#,
    r#"(module (func (export "trap") unreachable))"#,
    r#"(module (func $s) (start $s) (func (export "f") (result i32) i32.const 7))"#,
    r#"(component
  (core module $m
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local i32)
      global.get $bump local.set 4
      global.get $bump local.get 3 i32.add i32.const 7 i32.add i32.const -8 i32.and global.set $bump
      local.get 4)
    (func (export "echo") (param i32 i32) (result i32)
      i32.const 8 local.get 0 i32.store
      i32.const 12 local.get 1 i32.store
      i32.const 8))
  (core instance $i (instantiate $m))
  (func (export "echo") (param "s" string) (result string)
    (canon lift (core func $i "echo") (memory $i "memory") (realloc (func $i "realloc")))))"#,
    r#"(component
  (core module $m (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
  (core instance $i (instantiate $m))
  (func (export "add") (param "a" s32) (param "b" s32) (result s32) (canon lift (core func $i "add"))))"#,
];

const WAT_TOKENS: &[&str] = &[
    "(",
    ")",
    "i32",
    "i64",
    "f32",
    "f64",
    "v128",
    "funcref",
    "externref",
    "(param i32)",
    "(result i32)",
    "(result i64 i64)",
    "i32.const 0",
    "i32.const -1",
    "i64.const 9223372036854775807",
    "f64.const nan",
    "f32.const -inf",
    "local.get 0",
    "local.get 9",
    "local.set 0",
    "drop",
    "unreachable",
    "nop",
    "return",
    "(loop br 0)",
    "br 0",
    "br_if 0",
    "block",
    "end",
    "if",
    "else",
    "call 0",
    "call_indirect",
    "memory.grow",
    "memory.size",
    "(memory 1)",
    "(memory 65536)",
    "(memory (export \"memory\") 0)",
    "i32.load",
    "i64.store",
    "i32.div_s",
    "i32.rem_u",
    "i64.trunc_f64_s",
    "select",
    "(start 0)",
    "(export \"f\" (func 0))",
    "(func (export \"g\"))",
    "(table 1 funcref)",
    "(global i32 (i32.const 0))",
    "(data (i32.const 0) \"hi\")",
    "(import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32 i32 i32 i32) (result i32)))",
    "(import \"env\" \"f\" (func))",
    "$x",
    "\"",
    ";;",
    "(;",
    ";)",
    "string",
    "(canon lift",
    "(core func",
];

const WASM_TOKENS: &[&[u8]] = &[
    b"\0asm\x01\0\0\0",
    b"\0asm\x0d\0\x01\0",
    b"\x00",
    b"\x01",
    b"\x7f",
    b"\x80",
    b"\xff\xff\xff\xff\x0f",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\x0b",
    b"\x0f",
    b"\x10\x00",
    b"\x03\x02\x01\x00",
    b"\x05\x03\x01\x00\x01",
    b"\x08\x01\x00",
    b"\x40\x00",
    b"\x00\x00",
];

/// Balanced `(module …)` / `(component …)` snippets in a text.
fn wat_snippets(text: &str, out: &mut Vec<String>) {
    for start in ["(module", "(component"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(start) {
            let at = from + i;
            let mut depth = 0i32;
            let mut end = None;
            for (j, c) in text[at..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(at + j + 1);
                            break;
                        }
                    }
                    '\n' if start == "(module" && depth > 8 => break,
                    _ => {}
                }
            }
            if let Some(end) = end {
                out.push(text[at..end].to_string());
            }
            from = at + start.len();
        }
    }
}

fn seeds() -> (Vec<String>, Vec<Vec<u8>>) {
    let mut wat: Vec<String> = EXTRA_WAT.iter().map(|s| s.to_string()).collect();
    for dir in ["tests/ui", "spec", "spec/fixtures/app", "examples/hello", "tests/ui/files"] {
        let Ok(read) = fs::read_dir(dir) else { continue };
        let mut paths: Vec<_> = read.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "yaml" | "lua" | "wat") {
                continue;
            }
            if let Ok(text) = fs::read_to_string(&p) {
                if ext == "wat" {
                    wat.push(text);
                } else {
                    wat_snippets(&text, &mut wat);
                }
            }
        }
    }
    // Lua strings escape quotes in some specs: keep the snippets wat accepts as binaries, all
    // as text seeds.
    let mut bins: Vec<Vec<u8>> = wat.iter().filter_map(|w| wat::parse_str(w).ok()).collect();
    if let Ok(read) = fs::read_dir("build/guests") {
        let mut paths: Vec<_> = read.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if let Ok(b) = fs::read(&p) {
                if b.len() <= MAX_LEN {
                    bins.push(b);
                }
            }
        }
    }
    assert!(wat.len() >= 20 && bins.len() >= 10, "seeds: {} WAT, {} binaries", wat.len(), bins.len());
    (wat, bins)
}

/// Token edits of WAT text: replace, insert or delete a token, or swap two.
fn mutate_wat(rng: &mut Rng, text: &str) -> String {
    let mut toks: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c == '(' || c == ')' || c.is_whitespace() {
            if !cur.is_empty() {
                toks.push(std::mem::take(&mut cur));
            }
            if !c.is_whitespace() {
                toks.push(c.to_string());
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        toks.push(cur);
    }
    for _ in 0..1 + rng.below(4) {
        let n = toks.len().max(1);
        let i = rng.below(n).min(toks.len());
        match rng.below(5) {
            0 if i < toks.len() => toks[i] = rng.pick(WAT_TOKENS).to_string(),
            1 if i < toks.len() => {
                toks.remove(i);
            }
            2 if i < toks.len() => {
                let j = rng.below(toks.len());
                toks.swap(i, j);
            }
            3 if i < toks.len() => {
                let t = toks[i].clone();
                toks.insert(rng.below(toks.len() + 1), t);
            }
            _ => toks.insert(i, rng.pick(WAT_TOKENS).to_string()),
        }
    }
    let mut out = String::new();
    for t in toks {
        if !(out.is_empty() || out.ends_with('(') || t == ")") {
            out.push(' ');
        }
        out.push_str(&t);
    }
    out
}

const LUA: &str = r#"
local dir, kind, args = ...
local wippy = WIPPY
local ok, err = wippy.load(dir, { cache_dir = false })
if not ok then
  return "error", tostring(err)
end
local results = {}
for _, a in ipairs(args) do
  local r = table.pack(pcall(wippy.funcs.call, "fzw:e", table.unpack(a, 1, a.n)))
  if not r[1] then
    results[#results + 1] = "raised: " .. tostring(r[2])
  elseif r[2] == nil and r[3] ~= nil then
    if not wippy.errors.is(r[3]) then
      return "bad", "an error that is not an error object: " .. tostring(r[3])
    end
    results[#results + 1] = "err: " .. tostring(r[3])
  else
    results[#results + 1] = "ok"
  end
end
return "loaded", table.concat(results, "\n")
"#;

#[test]
fn fuzz_wasm() {
    let (wat, bins) = seeds();
    let dir = scratch("wasm");
    let lua = Lua::new();
    let m = wippy::wippy(&lua).unwrap();
    lua.globals().set("WIPPY", m).unwrap();
    let chunk = lua.load(LUA).into_function().unwrap();
    let args: mlua::Table = lua
        .load(r#"return { table.pack(), table.pack(1), table.pack(3, 4), table.pack(2.5, -1, 7, 9), table.pack("abc"), table.pack(nil, {}) }"#)
        .eval()
        .unwrap();
    let index = dir.join("_index.yaml");
    drive("fuzz_wasm", 20, |rng| {
        let limits = "    limits: { max_execution_ms: 2000, memory_bytes: 16777216, fuel: 50000000 }\n";
        let (entry, code, shown): (String, Vec<u8>, String) = if rng.one_in(2) {
            let mut text = rng.pick(&wat).clone();
            match rng.below(4) {
                0 => {}
                1 => {
                    let mut b = text.into_bytes();
                    let donor = rng.pick(&wat).clone();
                    mutate_bytes(rng, &mut b, &[b"(", b")", b"\"", b"0", b"$"], donor.as_bytes(), MAX_LEN);
                    text = String::from_utf8_lossy(&b).into_owned();
                }
                _ => text = mutate_wat(rng, &text),
            }
            text.truncate(MAX_LEN);
            let e = format!("  - name: e\n    kind: function.wat\n    source: file://code.wat\n{limits}");
            (e, text.clone().into_bytes(), text)
        } else {
            let mut b = rng.pick(&bins).clone();
            if !rng.one_in(8) {
                let donor = rng.pick(&bins).clone();
                mutate_bytes(rng, &mut b, WASM_TOKENS, &donor, MAX_LEN);
            }
            let e = format!("  - name: e\n    kind: function.wasm\n    path: code.wasm\n{limits}");
            let shown = format!("{} bytes: {:02x?}", b.len(), &b[..b.len().min(256)]);
            (e, b, shown)
        };
        let name = if entry.contains("function.wat") { "code.wat" } else { "code.wasm" };
        fs::write(dir.join(name), &code).unwrap();
        fs::write(&index, format!("namespace: fzw\nentries:\n{entry}")).unwrap();
        let out: (String, String) = chunk
            .call((dir.to_str().unwrap(), name, args.clone()))
            .map_err(|e| format!("the Lua side raised: {e}\ncode: {shown}"))?;
        let (what, text) = out;
        match what.as_str() {
            "error" => {
                let file = format!("{}:", index.display());
                let named = |l: &str| {
                    l.strip_prefix(&file).is_some_and(|rest| {
                        let digits = rest.chars().take_while(char::is_ascii_digit).count();
                        digits > 0 && rest[digits..].starts_with(": fzw:e: ")
                    })
                };
                if text.is_empty() || !text.lines().all(named) {
                    return Err(format!("a load error line not naming `{file}LINE: fzw:e`:\n{text}\ncode: {shown}"));
                }
            }
            "loaded" => {}
            _ => return Err(format!("{text}\ncode: {shown}")),
        }
        // The state survives.
        let two: i64 = lua.load("return 1 + 1").eval().map_err(|e| e.to_string())?;
        if two != 2 {
            return Err("the Lua state is broken".into());
        }
        Ok(())
    });
}
