//! Fuzzing the registry loader (issue 12, 1a): mutated `_index.yaml` files — from every YAML
//! file of the repository's tests, specs and examples — and generated hostile YAML (deep
//! nesting, aliases of aliases, huge numbers, tabs, non-UTF-8) go through `wippy::check_path`,
//! which runs every check `wippy.load` runs (WAT and wasm compiles included). The loader must
//! never panic or hang, and every problem it reports — errors and warnings — is one line that
//! starts with `FILE:LINE: ` (LINE ≥ 1).
//!
//! `WIPPY_FUZZ_SECS` / `WIPPY_FUZZ_SEED` / `WIPPY_FUZZ_CASE`: see `fuzz_util`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::fuzz_util::{drive, mutate_bytes, scratch, Rng};

/// Largest file the harness writes: keeps every case fast.
const MAX_LEN: usize = 16 << 10;

/// YAML syntax and values that make loaders stumble.
const TOKENS: &[&[u8]] = &[
    b": ",
    b"- ",
    b"-",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"&a ",
    b"*a",
    b"&b ",
    b"*b",
    b"<<: *a\n",
    b"!!binary ",
    b"!!int ",
    b"!!str ",
    b"!foo ",
    b"? ",
    b"|\n",
    b">-\n",
    b"'",
    b"\"",
    b"#",
    b"\t",
    b"\n",
    b"\r\n",
    b"\n---\n",
    b"\n...\n",
    b"%YAML 1.2\n---\n",
    b"~",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b".nan",
    b"-.inf",
    b"0x7fffffffffffffff",
    b"18446744073709551616",
    b"99999999999999999999999999999",
    b"-9223372036854775809",
    b"0o777",
    b"file://",
    b"file://files/answer.wat",
    b"file://../x",
    b"file:///etc/hostname",
    b"\xEF\xBB\xBF",
    b"\xff\xfe",
    b"\xc3",
    b"\0",
    b"\\u0000",
    b"\"\\ud800\"",
    b"    ",
    b"  - name: x\n    kind: function.wat\n",
    b"kind: ",
    b"name: ",
    b"namespace: ",
    b"entries:\n",
    b"source: ",
    b"method: ",
    b"wit: ",
    b"imports: [",
    b"pool: {",
    b"limits: {",
    b"fuel: ",
    b"max_execution_ms: ",
    b"meta: ",
    b"path: ",
    b"fs: ",
    b"hash: sha256:",
    b"wasi: {",
    b"mounts: [",
];

/// Kinds and fields worth putting in generated entries.
const KINDS: &[&str] = &[
    "function.wat",
    "function.wasm",
    "function.lua",
    "process.wasm",
    "fs.directory",
    "env.variable",
    "my.custom.kind",
    "",
];

fn seeds() -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    for root in ["tests/ui", "spec/fixtures", "examples"] {
        collect(Path::new(root), &mut files);
    }
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().filter_map(|f| fs::read(f).ok()).filter(|b| b.len() <= MAX_LEN).collect();
    assert!(seeds.len() >= 20, "expected the repository's YAML files as seeds, found {}", seeds.len());
    seeds
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(read) = fs::read_dir(dir) else { return };
    for e in read.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

/// Helper files the seeds refer to with `file://` (tests/ui/files), so mutated entries get as
/// far as compiling.
fn copy_helpers(dest: &Path) {
    let to = dest.join("files");
    fs::create_dir_all(&to).unwrap();
    for e in fs::read_dir("tests/ui/files").expect("tests/ui/files").flatten() {
        let p = e.path();
        if p.is_file() && fs::metadata(&p).map(|m| m.len() < 64 << 10).unwrap_or(false) {
            fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Line-level edits: swap, duplicate, drop, re-indent, or take a line from another seed.
fn mutate_lines(rng: &mut Rng, data: &[u8], donor: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let donor_lines: Vec<&[u8]> = donor.split(|&b| b == b'\n').collect();
    for _ in 0..1 + rng.below(3) {
        let n = lines.len();
        let i = rng.below(n);
        match rng.below(6) {
            0 => {
                let j = rng.below(n);
                lines.swap(i, j);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(rng.below(n + 1), l);
            }
            2 if n > 1 => {
                lines.remove(i);
            }
            3 => {
                let pad = rng.below(6);
                let ws: &[u8] = if rng.one_in(4) { b"\t" } else { b" " };
                let mut l: Vec<u8> = ws.repeat(pad);
                l.extend(lines[i].iter().skip_while(|&&b| b == b' ' && rng.one_in(2)));
                lines[i] = l;
            }
            _ => {
                let l = rng.pick(&donor_lines).to_vec();
                lines.insert(rng.below(n + 1), l);
            }
        }
    }
    lines.join(&b'\n')
}

/// A hostile document built from scratch.
fn generate(rng: &mut Rng) -> Vec<u8> {
    let depth = 1 + rng.below(400);
    match rng.below(7) {
        0 => format!("namespace: app\nentries: {}1{}\n", "[".repeat(depth), "]".repeat(depth)).into_bytes(),
        1 => {
            let mut s = String::from("namespace: app\nentries:\n");
            for d in 0..depth.min(200) {
                s.push_str(&" ".repeat(d * 2));
                s.push_str("- \n");
            }
            s.into_bytes()
        }
        2 => {
            // Aliases of aliases: each level doubles (or more) what a naive expansion builds.
            let mut s = String::from("namespace: app\nx0: &a0 [\"lol\", \"lol\"]\n");
            let levels = 1 + rng.below(30);
            for i in 1..=levels {
                s.push_str(&format!("x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}]\n", p = i - 1));
            }
            s.push_str(&format!("entries:\n  - name: e\n    kind: my.custom.kind\n    meta: *a{levels}\n"));
            s.into_bytes()
        }
        3 => {
            // Entries with random kinds and random fields of random types.
            let mut s = String::from("namespace: fz\nentries:\n");
            for i in 0..1 + rng.below(6) {
                s.push_str(&format!("  - name: e{i}\n    kind: {}\n", rng.pick(KINDS)));
                for _ in 0..rng.below(5) {
                    let field = rng.pick(&[
                        "source",
                        "method",
                        "wit",
                        "imports",
                        "pool",
                        "limits",
                        "path",
                        "fs",
                        "hash",
                        "wasi",
                        "meta",
                        "directory",
                        "variable",
                        "transport",
                        "options",
                        "mode",
                        "auto_init",
                    ]);
                    let value = rng.pick(&[
                        "'(module (func (export \"f\") (result i32) i32.const 1))'",
                        "file://files/answer.wat",
                        "[wasi:io, funcs]",
                        "{ type: lazy, max_size: -1 }",
                        "{ fuel: 18446744073709551615, max_execution_ms: 1e400 }",
                        "{ mounts: [{ fs: e0, guest: /x }], env: [{ id: e1 }] }",
                        "\"f: func(a: list<list<list<u8>>>) -> string;\"",
                        "e0",
                        "~",
                        "!!binary aGVsbG8=",
                        "0x10",
                        "\"\\0\"",
                        "[[[[[]]]]]",
                        "{ a: { b: { c: *x } } }",
                    ]);
                    s.push_str(&format!("    {field}: {value}\n"));
                }
            }
            s.into_bytes()
        }
        4 => format!(
            "namespace: app\nentries:\n  - name: n\n    kind: my.custom.kind\n    meta: {{ big: {} }}\n",
            "9".repeat(depth * 10)
        )
        .into_bytes(),
        5 => {
            let mut v: Vec<u8> = (0..rng.below(2048)).map(|_| rng.next_u64() as u8).collect();
            if rng.one_in(2) {
                v.splice(0..0, b"namespace: app\nentries:\n".iter().copied());
            }
            v
        }
        _ => format!("namespace: app\nentries:\n{}", "  - {name: x, kind: fs.directory, directory: d}\n".repeat(depth))
            .into_bytes(),
    }
}

/// Every line of a report: `FILE:LINE: ` with this file and a line ≥ 1.
fn check_report(file: &Path, report: &str, what: &str) -> Result<(), String> {
    let prefix = format!("{}:", file.display());
    for line in report.lines() {
        let rest = line.strip_prefix(&prefix).ok_or_else(|| format!("{what} line without `{prefix}`: {line:?}"))?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let ok =
            !digits.is_empty() && rest[digits.len()..].starts_with(": ") && digits.parse::<u64>().is_ok_and(|n| n >= 1);
        if !ok {
            return Err(format!("{what} line without a LINE ≥ 1 after the file: {line:?}"));
        }
    }
    Ok(())
}

#[test]
fn fuzz_loader() {
    let seeds = seeds();
    let dir = scratch("loader");
    copy_helpers(&dir);
    let file = dir.join("_index.yaml");
    drive("fuzz_loader", 20, |rng| {
        let data = match rng.below(10) {
            0 | 1 => generate(rng),
            2 | 3 => {
                let a = rng.pick(&seeds).clone();
                let b = rng.pick(&seeds).clone();
                let mut out = mutate_lines(rng, &a, &b);
                out.truncate(MAX_LEN);
                out
            }
            _ => {
                let mut a = rng.pick(&seeds).clone();
                let b = rng.pick(&seeds).clone();
                mutate_bytes(rng, &mut a, TOKENS, &b, MAX_LEN);
                a
            }
        };
        fs::write(&file, &data).unwrap();
        let shown = String::from_utf8_lossy(&data);
        let input = || format!("input ({} bytes):\n{}", data.len(), shown.chars().take(2000).collect::<String>());
        match wippy::check_path(&file) {
            Err(report) if report.trim().is_empty() => Err(format!("an error with no text\n{}", input())),
            Err(report) => {
                check_report(&file, &report, "error").map_err(|e| format!("{e}\nreport:\n{report}\n{}", input()))
            }
            Ok(warnings) => check_report(&file, &warnings, "warning")
                .map_err(|e| format!("{e}\nwarnings:\n{warnings}\n{}", input())),
        }
    });
}
