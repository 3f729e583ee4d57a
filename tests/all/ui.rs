//! Golden diagnostics: every `tests/ui/<case>.yaml` (or `tests/ui/<case>/` directory of
//! `_index.yaml` files) must fail `wippy::check_path` with exactly the text of
//! `tests/ui/<case>.err`, or load with exactly those load warnings, each line prefixed with
//! `warning: `. `BLESS=1` writes the `.err` files instead of comparing.
//!
//! Helper files live in `tests/ui/files/`, which is not a case.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const UI_DIR: &str = "tests/ui";
const HELPERS: &str = "files";

/// Every case name: from `.err` files, `.yaml` files and directories, so that a case missing
/// either half is reported too.
fn case_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in fs::read_dir(UI_DIR).expect("tests/ui exists") {
        let path = entry.expect("readable tests/ui").path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let is_case = if path.is_dir() {
            stem != HELPERS
        } else {
            matches!(path.extension().and_then(|e| e.to_str()), Some("err" | "yaml"))
        };
        if is_case {
            names.insert(stem.to_string());
        }
    }
    names
}

fn input_of(name: &str) -> Option<PathBuf> {
    let file = Path::new(UI_DIR).join(format!("{name}.yaml"));
    let dir = Path::new(UI_DIR).join(name);
    [file, dir].into_iter().find(|p| p.exists())
}

#[test]
fn golden_diagnostics() {
    let bless = std::env::var_os("BLESS").is_some_and(|v| v != "0");
    let names = case_names();
    assert!(!names.is_empty(), "no cases in {UI_DIR}");
    let mut failures = Vec::new();
    for name in &names {
        let expected_path = Path::new(UI_DIR).join(format!("{name}.err"));
        let Some(input) = input_of(name) else {
            failures.push(format!("{name}: {} has no input ({name}.yaml or {name}/)", expected_path.display()));
            continue;
        };
        let actual = match wippy::check_path(&input) {
            Ok(warnings) if warnings.is_empty() => {
                failures.push(format!("{name}: {} loaded without error or warning", input.display()));
                continue;
            }
            Ok(warnings) => warnings.lines().map(|l| format!("warning: {l}\n")).collect(),
            Err(text) => format!("{}\n", text.trim_end_matches('\n')),
        };
        if bless {
            fs::write(&expected_path, &actual).expect("write .err file");
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{name}: output differs from {} (- expected, + actual):\n{}",
                expected_path.display(),
                diff(&expected, &actual)
            )),
            Err(_) => failures.push(format!(
                "{name}: no {} (run with BLESS=1 to create it); actual output:\n{actual}",
                expected_path.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{} of {} ui cases failed:\n\n{}", failures.len(), names.len(), failures.join("\n\n"));
}

/// A line diff (longest common subsequence): ` ` same, `-` only expected, `+` only actual.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[test]
fn diff_marks_changed_lines() {
    assert_eq!(diff("a\nb\nc\n", "a\nx\nc\n"), "  a\n- b\n+ x\n  c\n");
    assert_eq!(diff("", "a\n"), "+ a\n");
}
