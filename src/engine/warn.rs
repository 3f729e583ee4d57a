//! Load warnings (SPEC §1.1): settings an entry declares that cannot take effect for it. The
//! entry loads; `wippy.load` returns them as its second value, one `FILE:LINE: ENTRY: message`
//! each, so no setting is silently ignored.

use super::function::Function;
use crate::registry::{Common, Entry, Origin, Profile, Spec};

/// One warning: the line of the field it is about, and the text.
pub type Warning = (u32, String);

/// The warnings of a prepared entry.
pub fn check(entry: &Entry, f: &Function) -> Vec<Warning> {
    let (common, process) = match &entry.spec {
        Spec::FunctionWat(w) | Spec::FunctionWasm(w) => (&w.common, false),
        Spec::ProcessWasm(p) => (&p.common, true),
        _ => return Vec::new(),
    };
    let line = |path: &[&str]| field_line(entry, path);
    let mut out = Vec::new();
    let core = !f.is_component;
    let has = |p: Profile| common.imports.contains(&p) || f.profiles.has(p);
    for p in &common.imports {
        let text = match p {
            Profile::Wasi1 if !core => {
                "\"wasi1\" has no effect on a component (it is WASI preview 1 for core modules): use the preview-2 \
                 profiles, like \"wasi:cli\""
                    .to_string()
            }
            Profile::Funcs if core => {
                "\"funcs\" has no effect on a core module: only components import wippy:runtime/funcs".to_string()
            }
            Profile::Actor if core => {
                "\"wippy:actor\" has no effect on a core module: only components import wippy:actor/process".to_string()
            }
            Profile::Actor if !process => {
                "\"wippy:actor\" is for process.wasm entries (actors run with process.spawn): \
                 a function's calls of wippy:actor/process fail"
                    .to_string()
            }
            Profile::Wasi1 => continue,
            p if core => {
                format!("\"{}\" has no effect on a core module: core modules reach WASI through \"wasi1\"", p.name())
            }
            _ => continue,
        };
        out.push((line(&["imports"]), text));
    }
    let needs = |component_profile: Profile| {
        if core {
            (!has(Profile::Wasi1)).then_some("\"wasi1\"")
        } else {
            (!has(component_profile)).then_some(component_profile.name())
        }
    };
    let wasi = &common.wasi;
    let mut missing = |key: &str, set: bool, profile: Profile| {
        if let (true, Some(name)) = (set, needs(profile)) {
            let name = if name.starts_with('"') { name.to_string() } else { format!("\"{name}\"") };
            out.push((line(&["wasi", key]), format!("wasi.{key} has no effect without {name} in imports")));
        }
    };
    missing("mounts", !wasi.mounts.is_empty(), Profile::Filesystem);
    missing("env", !wasi.env.is_empty(), Profile::Cli);
    missing("args", !wasi.args.is_empty(), Profile::Cli);
    missing("cwd", wasi.cwd.is_some(), Profile::Cli);
    if let Some(cwd) = &wasi.cwd {
        if !crate::host::grant::cwd_in_mounts(cwd, &wasi.mounts) {
            out.push((
                line(&["wasi", "cwd"]),
                format!("wasi.cwd {cwd:?} lies in no mount: relative paths reach no directory (mount a directory that holds it)"),
            ));
        }
    }
    allowed_hosts(common, core, &mut out, line(&["wasi", "allowed_hosts"]));
    if !process {
        pool(&common.pool, &mut out, |key| field_line(entry, &["pool", key]));
    }
    // Each run of a process has its own instance, started at once: no pool bounds them.
    if process {
        if let Some(options) = entry.fields.iter().find(|(k, _)| k == "options").map(|(_, n)| n) {
            if let Some(pool) = options.get("pool") {
                out.push((
                    if pool.line > 0 { pool.line } else { line(&["options"]) },
                    "options.pool has no effect on a process.wasm entry: each run has an instance of its own".into(),
                ));
            }
        }
    }
    let transport = entry.fields.iter().find(|(k, _)| k == "transport").and_then(|(_, n)| n.as_str());
    if transport == Some("wasi-http") {
        out.push((
            line(&["transport"]),
            "transport \"wasi-http\" is called like \"payload\" in this version: serving HTTP is not available yet"
                .into(),
        ));
    }
    out
}

/// Pool settings that do not apply to the pool's type.
fn pool(p: &crate::registry::Pool, out: &mut Vec<Warning>, line: impl Fn(&str) -> u32) {
    use crate::registry::PoolKind;
    let kind = match p.kind {
        PoolKind::Inline => "an inline pool (one call at a time, on the calling Lua thread)",
        PoolKind::Lazy => "a lazy pool (max_size bounds it)",
        PoolKind::Static => "a static pool (workers bounds it)",
        PoolKind::Adaptive => "an adaptive pool (max_size bounds it)",
    };
    let sized = matches!(p.kind, PoolKind::Static);
    let bounded = matches!(p.kind, PoolKind::Lazy | PoolKind::Adaptive);
    for (key, set, applies) in [
        ("size", p.size.is_some(), sized),
        ("workers", p.workers.is_some(), sized),
        ("max_size", p.max_size.is_some(), bounded),
    ] {
        if set && !applies {
            out.push((line(key), format!("pool.{key} has no effect on {kind}")));
        }
    }
    if p.buffer.is_some() && !sized {
        out.push((
            line("buffer"),
            format!("pool.buffer has no effect on {kind}: only a static pool has a queue buffer"),
        ));
    }
}

fn allowed_hosts(common: &Common, core: bool, out: &mut Vec<Warning>, line: u32) {
    if common.wasi.allowed_hosts.is_none() {
        return;
    }
    let network = common.imports.iter().any(|p| matches!(p, Profile::Sockets | Profile::Http));
    if core {
        out.push((line, "wasi.allowed_hosts has no effect on a core module: WASI preview 1 has no network".into()));
    } else if !network {
        out.push((
            line,
            "wasi.allowed_hosts has no effect without \"wasi:sockets\" or \"wasi:http\" in imports".into(),
        ));
    }
}

/// The line of a field (`["wasi", "mounts"]`), else of its parent, else of the entry.
fn field_line(entry: &Entry, path: &[&str]) -> u32 {
    let entry_line = match &entry.origin {
        Origin::File { line, .. } => *line,
        Origin::Api => 0,
    };
    let Some((first, rest)) = path.split_first() else { return entry_line };
    let top = entry.fields.iter().find(|(k, _)| k == first).map(|(_, n)| n);
    let Some(mut node) = top else { return entry_line };
    let mut line = node.line;
    for key in rest {
        match node.get(key) {
            Some(n) => {
                node = n;
                line = n.line;
            }
            None => break,
        }
    }
    if line == 0 {
        entry_line
    } else {
        line
    }
}
