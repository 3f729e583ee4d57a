//! Registry loading, happy paths: every kind, references across files and through `known`,
//! `file://` substitution, and entries added from Lua (`entry_from_node`).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wippy::registry::value::{Node, Value};
use wippy::registry::*;

const EMPTY_WASM: &[u8] = b"\0asm\x01\0\0\0";
const EMPTY_WASM_SHA256: &str = "93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476";

/// A fresh directory tree under the target's temporary directory.
fn tree(name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("registry").join(name);
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    for (path, contents) in files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }
    root
}

fn id(s: &str) -> Id {
    parse_id(s).unwrap()
}

fn by_id<'a>(entries: &'a [Entry], s: &str) -> &'a Entry {
    entries.iter().find(|e| e.id.to_string() == s).unwrap_or_else(|| panic!("no entry {s}"))
}

fn load(path: &Path, known: &dyn Known) -> Vec<Entry> {
    load_path(path, known).unwrap_or_else(|d| panic!("unexpected problems:\n{d}"))
}

struct Registry(HashMap<Id, Arc<Entry>>);

impl Known for Registry {
    fn get(&self, id: &Id) -> Option<Arc<Entry>> {
        self.0.get(id).cloned()
    }
}

fn registry(entries: Vec<Entry>) -> Registry {
    Registry(entries.into_iter().map(|e| (e.id.clone(), Arc::new(e))).collect())
}

const APP_INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: data
    kind: fs.directory
    directory: data
    mode: "0750"
  - name: bin
    kind: fs.directory
    directory: bin
  - name: scratch
    kind: fs.directory
    directory: scratch
    base: module
    auto_init: true
    mode: 0700
  - name: api_key
    kind: env.variable
    variable: API_KEY
    default: 42
  - name: answer
    kind: function.wat
    meta: { comment: "the answer" }
    source: file://wat/answer.wat
    method: answer
    wit: "answer: func() -> s32;"
    imports: [wasi:io/poll@0.2.3, funcs, wasi:clocks, funcs]
    transport: payload
    pool: { type: static, workers: 2, buffer: 16, isolate: true }
    limits: { fuel: 1000, max_execution_ms: 50 }
    wasi:
      args: [answer, --fast]
      cwd: /data
      env:
        - id: api_key
          name: KEY
          required: true
      mounts:
        - fs: data
          guest: /data
          read_only: true
      allowed_hosts: ["*.example.com:443"]
  - name: greet
    kind: function.lua
    source: file://lua/greet.lua
    method: greet
  - name: inline_lua
    kind: function.lua
    source: "return function() return 1 end"
  - name: thing
    kind: custom.thing
    anything: [1, 2]
"#;

const LIB_INDEX: &str = r#"
namespace: lib.tools
entries:
  - name: compute
    kind: function.wasm
    fs: app:bin
    path: empty.wasm
    hash: sha256:HASH
    method: compute
    options:
      limits: { memory_bytes: 1048576 }
  - name: worker
    kind: process.wasm
    path: worker.wasm
    imports: [wippy:actor]
    options:
      pool: { type: inline }
      mailbox: { capacity: 4 }
    meta:
      command: { name: work, short: does work }
    wasi:
      mounts:
        - fs: app:data
          guest: /data
"#;

fn app_tree(name: &str) -> PathBuf {
    let lib = LIB_INDEX.replace("HASH", &EMPTY_WASM_SHA256.to_uppercase());
    let root = tree(
        name,
        &[
            ("_index.yaml", APP_INDEX.as_bytes()),
            ("wat/answer.wat", b"(module)"),
            ("lua/greet.lua", b"return { greet = function() end }"),
            ("bin/empty.wasm", EMPTY_WASM),
            ("data/.keep", b""),
            ("lib/_index.yaml", lib.as_bytes()),
            ("lib/worker.wasm", EMPTY_WASM),
        ],
    );
    root
}

#[test]
fn loads_every_kind_across_files() {
    let root = app_tree("every_kind");
    let entries = load(&root, &());
    let ids: Vec<String> = entries.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "app:data",
            "app:bin",
            "app:scratch",
            "app:api_key",
            "app:answer",
            "app:greet",
            "app:inline_lua",
            "app:thing",
            "lib.tools:compute",
            "lib.tools:worker"
        ]
    );

    let data = by_id(&entries, "app:data");
    assert_eq!(data.origin, Origin::File { file: root.join("_index.yaml"), line: 5 });
    let Spec::FsDirectory(fs_data) = &data.spec else { panic!("{:?}", data.spec) };
    assert_eq!(fs_data.path, root.join("data"));
    assert_eq!(fs_data.mode, Some(0o750));
    let Spec::FsDirectory(scratch) = &by_id(&entries, "app:scratch").spec else { panic!() };
    assert_eq!((scratch.auto_init, scratch.mode), (true, Some(0o700)));

    let Spec::EnvVariable(key) = &by_id(&entries, "app:api_key").spec else { panic!() };
    assert_eq!(key.variable, "API_KEY");
    assert_eq!(key.default.as_deref(), Some("42"));

    let answer = by_id(&entries, "app:answer");
    assert_eq!(answer.meta.get("comment").and_then(Node::as_str), Some("the answer"));
    let Spec::FunctionWat(f) = &answer.spec else { panic!() };
    assert!(matches!(&f.code, Code::Wat(text) if text == "(module)"));
    let c = &f.common;
    assert_eq!(c.method.as_deref(), Some("answer"));
    assert_eq!(c.wit.as_deref(), Some("answer: func() -> s32;"));
    assert_eq!(c.imports, [Profile::Poll, Profile::Funcs, Profile::Clocks], "mapped and de-duplicated");
    assert_eq!(
        c.pool,
        Pool { kind: PoolKind::Static, size: None, workers: Some(2), buffer: Some(16), max_size: None, isolate: true }
    );
    assert_eq!(c.limits.fuel, 1000);
    assert_eq!(c.limits.max_execution_ms, 50);
    assert_eq!(c.limits.memory_bytes, Limits::default().memory_bytes);
    assert_eq!(c.wasi.args, ["answer", "--fast"]);
    assert_eq!(c.wasi.cwd.as_deref(), Some("/data"));
    assert_eq!(c.wasi.env, [WasiEnv { id: id("app:api_key"), name: Some("KEY".into()), required: true }]);
    assert_eq!(c.wasi.mounts, [Mount { fs: id("app:data"), guest: "/data".into(), read_only: true }]);
    assert_eq!(c.wasi.allowed_hosts.as_deref(), Some(&["*.example.com:443".to_string()][..]));

    let Spec::FunctionLua(greet) = &by_id(&entries, "app:greet").spec else { panic!() };
    assert_eq!(greet.method.as_deref(), Some("greet"));
    let LuaSource::Code { text, chunk_name } = &greet.source else { panic!() };
    assert_eq!(text, "return { greet = function() end }");
    assert_eq!(chunk_name, &format!("@{}", root.join("lua/greet.lua").display()));
    let Spec::FunctionLua(inline) = &by_id(&entries, "app:inline_lua").spec else { panic!() };
    assert!(matches!(&inline.source, LuaSource::Code { chunk_name, .. } if chunk_name == "=app:inline_lua"));

    let thing = by_id(&entries, "app:thing");
    assert!(matches!(thing.spec, Spec::Unknown));
    assert_eq!(thing.kind, "custom.thing");
    assert_eq!(thing.fields[0].0, "anything");

    let compute = by_id(&entries, "lib.tools:compute");
    let Spec::FunctionWasm(f) = &compute.spec else { panic!() };
    let Code::Binary { path, bytes, .. } = &f.code else { panic!() };
    assert_eq!(path, &root.join("bin/empty.wasm"));
    assert_eq!(&bytes[..], EMPTY_WASM);
    assert_eq!(f.common.limits.memory_bytes, 1 << 20, "options.limits alias");

    let Spec::ProcessWasm(p) = &by_id(&entries, "lib.tools:worker").spec else { panic!() };
    assert!(matches!(&p.code, Code::Binary { path, .. } if path == &root.join("lib/worker.wasm")));
    assert_eq!(p.common.pool.kind, PoolKind::Inline, "options.pool alias");
    assert_eq!(p.common.imports, [Profile::Actor]);
    assert_eq!(p.common.wasi.mounts[0].fs, id("app:data"));
    assert_eq!(p.command, Some(Command { name: "work".into(), short: Some("does work".into()) }));
    assert_eq!(p.options.get("mailbox").and_then(|m| m.get("capacity")).map(|n| &n.value), Some(&Value::Int(4)));
}

#[test]
fn a_single_file_loads_with_its_directory_as_root() {
    let root = app_tree("single_file");
    let entries = load(&root.join("_index.yaml"), &());
    assert_eq!(entries.len(), 8, "lib/_index.yaml is not loaded");
}

#[test]
fn file_substitution_reaches_nested_values_and_is_kept() {
    let root = tree(
        "substitution",
        &[
            (
                "_index.yaml",
                br#"namespace: app
entries:
  - name: thing
    kind: custom.thing
    meta: { doc: file://doc.txt }
    settings:
      list: [plain, file://conf/a.txt]
"#,
            ),
            ("doc.txt", b"documentation"),
            ("conf/a.txt", b"alpha"),
        ],
    );
    let entries = load(&root, &());
    let thing = &entries[0];
    assert_eq!(thing.meta.get("doc").and_then(Node::as_str), Some("documentation"));
    let Value::Seq(list) = &thing.fields[0].1.get("list").unwrap().value else { panic!() };
    let texts: Vec<_> = list.iter().filter_map(Node::as_str).collect();
    assert_eq!(texts, ["plain", "alpha"]);
}

#[test]
fn references_resolve_through_known_entries() {
    let first = tree(
        "known_first",
        &[
            (
                "_index.yaml",
                b"namespace: app\nentries:\n  - name: bin\n    kind: fs.directory\n    directory: bin\n  - name: key\n    kind: env.variable\n    variable: KEY\n",
            ),
            ("bin/empty.wasm", EMPTY_WASM),
        ],
    );
    let known = registry(load(&first, &()));

    let second = tree(
        "known_second",
        &[(
            "_index.yaml",
            b"namespace: app\nentries:\n  - name: compute\n    kind: function.wasm\n    fs: bin\n    path: empty.wasm\n    wasi:\n      env: [{id: app:key}]\n      mounts: [{fs: bin, guest: /bin}]\n",
        )],
    );
    let entries = load(&second, &known);
    let Spec::FunctionWasm(f) = &entries[0].spec else { panic!() };
    assert!(
        matches!(&f.code, Code::Binary { path, .. } if path == &first.join("bin/empty.wasm")),
        "the wasm path resolves in the known fs.directory"
    );

    // Loading the same files again updates: IDs already known are not duplicates.
    assert_eq!(load(&first, &known).len(), 2);
    // Without the known entries the references dangle.
    let problems = load_path(&second, &()).unwrap_err().to_string();
    assert!(problems.contains("fs reference \"bin\" not found"), "{problems}");
}

#[test]
fn wasm_paths_with_fs_name_files_inside_the_directory() {
    let root =
        tree("wasm_paths", &[("bin/x.wasm", EMPTY_WASM), ("bin/sub/y.wasm", EMPTY_WASM), ("top.wasm", EMPTY_WASM)]);
    let absolute = root.join("top.wasm");
    let index = format!(
        "namespace: app\nentries:\n  - name: bin\n    kind: fs.directory\n    directory: bin\n\
         \x20 - name: root_slash\n    kind: function.wasm\n    fs: bin\n    path: /x.wasm\n\
         \x20 - name: relative\n    kind: function.wasm\n    fs: bin\n    path: x.wasm\n\
         \x20 - name: dotted\n    kind: process.wasm\n    fs: bin\n    path: ./sub/y.wasm\n\
         \x20 - name: inner_dots\n    kind: function.wasm\n    fs: bin\n    path: /sub/../x.wasm\n\
         \x20 - name: absolute_in_root\n    kind: function.wasm\n    path: {}\n",
        absolute.display()
    );
    fs::write(root.join("_index.yaml"), index).unwrap();
    let entries = load(&root, &());
    let path_of = |name: &str| match &by_id(&entries, name).spec {
        Spec::FunctionWasm(WasmFunction { code: Code::Binary { path, .. }, .. })
        | Spec::ProcessWasm(ProcessWasm { code: Code::Binary { path, .. }, .. }) => path.clone(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(path_of("app:root_slash"), root.join("bin/x.wasm"), "a leading / is the fs directory's root");
    assert_eq!(path_of("app:relative"), root.join("bin/x.wasm"));
    assert_eq!(path_of("app:dotted"), root.join("bin/sub/y.wasm"));
    assert_eq!(path_of("app:inner_dots"), root.join("bin/x.wasm"));
    assert_eq!(path_of("app:absolute_in_root"), absolute, "an absolute path under the load root loads");
}

#[cfg(unix)]
#[test]
fn wasm_paths_may_not_leave_their_directory_through_symbolic_links() {
    let root = tree("wasm_links", &[("app/bin/x.wasm", EMPTY_WASM), ("outside/y.wasm", EMPTY_WASM)]);
    let (app, bin) = (root.join("app"), root.join("app/bin"));
    std::os::unix::fs::symlink("x.wasm", bin.join("alias.wasm")).unwrap();
    std::os::unix::fs::symlink("../../outside/y.wasm", bin.join("escape.wasm")).unwrap();
    std::os::unix::fs::symlink("../../outside", bin.join("linked")).unwrap();
    let index = "namespace: app\nentries:\n  - name: bin\n    kind: fs.directory\n    directory: bin\n\
                 \x20 - name: alias\n    kind: function.wasm\n    fs: bin\n    path: alias.wasm\n\
                 \x20 - name: escape\n    kind: function.wasm\n    fs: bin\n    path: escape.wasm\n\
                 \x20 - name: linked\n    kind: function.wasm\n    fs: bin\n    path: /linked/y.wasm\n\
                 \x20 - name: no_fs_alias\n    kind: function.wasm\n    path: bin/alias.wasm\n\
                 \x20 - name: no_fs_escape\n    kind: function.wasm\n    path: bin/escape.wasm\n";
    let file = app.join("_index.yaml");
    fs::write(&file, index).unwrap();
    let batch = load_batch(&app, &());
    let ids: Vec<String> = batch.entries.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(
        ids,
        ["app:bin", "app:alias", "app:no_fs_alias", "app:no_fs_escape"],
        "links that stay inside are fine, and without fs the path is the author's choice"
    );
    let real = root.join("outside/y.wasm").canonicalize().unwrap();
    let (file, real, bin) = (file.display(), real.display(), bin.display());
    let in_fs = "a path with fs names a file inside that directory";
    let expected = [
        format!(
            "{file}:13: app:escape: field \"path\": \"escape.wasm\" resolves through a symbolic link to \
             {real}, outside the directory of fs entry app:bin ({bin}); {in_fs}"
        ),
        format!(
            "{file}:17: app:linked: field \"path\": \"/linked/y.wasm\" resolves through a symbolic link to \
             {real}, outside the directory of fs entry app:bin ({bin}); {in_fs}"
        ),
    ];
    assert_eq!(batch.into_diagnostics(Vec::new()).to_string(), expected.join("\n"));
}

#[test]
fn entries_of_the_batch_win_over_known_ones() {
    let known_tree = tree(
        "batch_wins_known",
        &[("_index.yaml", b"namespace: app\nentries:\n  - name: data\n    kind: env.variable\n    variable: DATA\n")],
    );
    let known = registry(load(&known_tree, &()));
    let batch = tree(
        "batch_wins",
        &[
            (
                "_index.yaml",
                b"namespace: app\nentries:\n  - name: data\n    kind: fs.directory\n    directory: d\n  - name: f\n    kind: function.wat\n    source: (module)\n    wasi: {mounts: [{fs: data, guest: /d}]}\n",
            ),
            ("d/.keep", b""),
        ],
    );
    assert_eq!(load(&batch, &known).len(), 2);
}

#[test]
fn directories_load_in_a_fixed_order_and_skip_dot_directories() {
    let entry = |ns: &str| format!("namespace: {ns}\nentries:\n  - name: v\n    kind: env.variable\n    variable: V\n");
    let (a, b, z, c, hidden) = (entry("b.nested"), entry("a"), entry("z"), entry("c"), entry("hidden"));
    let root = tree(
        "order",
        &[
            ("Zeta/_index.yaml", z.as_bytes()),
            ("b/nested/_index.yaml", a.as_bytes()),
            ("_index.yaml", b.as_bytes()),
            ("c/_index.yaml", c.as_bytes()),
            (".cache/_index.yaml", hidden.as_bytes()),
            ("c/other.yaml", b"not: loaded"),
        ],
    );
    let ids: Vec<String> = load(&root, &()).iter().map(|e| e.id.to_string()).collect();
    assert_eq!(ids, ["a:v", "z:v", "b.nested:v", "c:v"]);
}

#[test]
fn paths_without_registry_files_are_errors() {
    let empty = tree("no_index", &[("readme.txt", b"")]);
    let err = load_path(&empty, &()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: -: no _index.yaml file found in this directory or below it", empty.display())
    );
    let missing = empty.join("nope");
    let err = load_path(&missing, &()).unwrap_err();
    assert_eq!(err.to_string(), format!("{}: -: no such file or directory", missing.display()));
}

fn map(items: &[(&str, Value)]) -> Node {
    Node::new(0, Value::Map(items.iter().map(|(k, v)| (k.to_string(), Node::new(0, v.clone()))).collect()))
}

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

#[test]
fn entry_from_node_accepts_a_handler_for_function_lua() {
    let node = map(&[("id", s("app:hello")), ("kind", s("function.lua"))]);
    let entry = entry_from_node(&node, Path::new("."), true, &()).unwrap();
    assert_eq!(entry.id, id("app:hello"));
    assert_eq!(entry.origin, Origin::Api);
    assert!(matches!(&entry.spec, Spec::FunctionLua(LuaFunction { source: LuaSource::Handler, method: None })));
    assert!(entry.fields.is_empty());
}

#[test]
fn entry_from_node_resolves_paths_against_base_dir() {
    let base = tree("from_node", &[("lua/x.lua", b"return {}"), ("bin/a.wasm", EMPTY_WASM)]);
    let lua = map(&[
        ("namespace", s("app")),
        ("name", s("x")),
        ("kind", s("function.lua")),
        ("source", s("file://lua/x.lua")),
        ("method", s("run")),
    ]);
    let entry = entry_from_node(&lua, &base, false, &()).unwrap();
    let Spec::FunctionLua(f) = &entry.spec else { panic!() };
    assert!(matches!(&f.source, LuaSource::Code { text, chunk_name }
        if text == "return {}" && chunk_name == &format!("@{}", base.join("lua/x.lua").display())));
    assert_eq!(entry.fields[0], ("source".to_string(), Node::new(0, s("return {}"))));

    // LuaJIT numbers arrive as floats; integral ones are integers.
    let wasm = map(&[
        ("id", s("app:w")),
        ("kind", s("function.wasm")),
        ("path", s("bin/a.wasm")),
        ("pool", Value::Map(vec![("workers".into(), Node::new(0, Value::Float(3.0)))])),
    ]);
    let entry = entry_from_node(&wasm, &base, false, &()).unwrap();
    let Spec::FunctionWasm(f) = &entry.spec else { panic!() };
    assert_eq!(f.common.pool.workers, Some(3));
    assert!(matches!(&f.code, Code::Binary { bytes, .. } if &bytes[..] == EMPTY_WASM));
}

#[test]
fn entry_from_node_reports_every_problem_without_a_file() {
    let cases: &[(Node, bool, &str)] = &[
        (
            map(&[("id", s("app:x")), ("kind", s("function.wat")), ("source", s("(module)"))]),
            true,
            "app:x: \"handler\" is only allowed for function.lua entries, not function.wat",
        ),
        (
            map(&[("id", s("app:x")), ("kind", s("function.lua")), ("source", s("return 1"))]),
            true,
            "app:x: \"source\" cannot be combined with \"handler\"; give one of them",
        ),
        (
            map(&[("id", s("app:x")), ("kind", s("function.lua"))]),
            false,
            "app:x: missing required field \"source\" (or \"handler\") for kind function.lua",
        ),
        (map(&[("kind", s("function.lua"))]), true, "-: missing required field \"id\" (or \"namespace\" and \"name\")"),
        (
            map(&[("id", s("nope")), ("kind", s("x.y"))]),
            false,
            "-: field \"id\": namespace required in entry ID \"nope\" (\"namespace:name\")",
        ),
        (
            map(&[("id", s("app:x")), ("name", s("y")), ("kind", s("x.y"))]),
            false,
            "-: \"id\" \"app:x\" does not match \"namespace\" and \"name\"; give \"id\" alone",
        ),
        (
            map(&[
                ("id", s("app:x")),
                ("kind", s("env.variable")),
                ("variable", s("X")),
                ("colour", s("red")),
                ("default", Value::Seq(vec![])),
            ]),
            false,
            "app:x: unknown field \"colour\" in entry app:x\n\
             app:x: field \"default\": expected a string, got sequence",
        ),
        (
            map(&[
                ("id", s("app:x")),
                ("kind", s("function.wat")),
                ("source", s("(module)")),
                (
                    "wasi",
                    Value::Map(vec![(
                        "mounts".into(),
                        Node::new(0, Value::Seq(vec![map(&[("fs", s("data")), ("guest", s("/d"))])])),
                    )]),
                ),
            ]),
            false,
            "app:x: fs reference \"data\" in \"wasi.mounts[0].fs\" not found (no fs.directory entry app:data)",
        ),
    ];
    for (node, handler, expected) in cases {
        let err = entry_from_node(node, Path::new("."), *handler, &()).unwrap_err();
        assert_eq!(err.to_string(), *expected);
    }
}

#[test]
fn ids_and_profiles_parse() {
    assert_eq!(id("app.api:compute").to_string(), "app.api:compute");
    assert_eq!(parse_profile("wasi:io/poll@0.2.3"), Ok(Profile::Poll));
    assert!(parse_id("app").is_err());
}
