//! The floor for the component peer benchmark: the same calls as bench/peers (types guest,
//! `add` and `users#transform-users` on 10 users) made from Rust with wasmtime's typed API and
//! with its dynamic `Val` API, no Lua at all.
//! Prints `label case best_us median_us N` lines like the other peers of bench/peers/run.sh
//! (labels `rust-typed` and `rust-val`), which runs it.
//! Usage: cargo run --release --features lua54,vendored --example floor -- build/guests/types_guest.wasm
//! (WIPPY_FLOOR_CONFIG=fuel: with fuel metering, as wippy compiles entries with `limits.fuel`.)
use std::time::Instant;
use wasmtime::component::{Component, ComponentType, Lift, Linker, Lower, Val};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

#[derive(ComponentType, Lower, Lift, Clone)]
#[component(record)]
struct User {
    id: u32,
    name: String,
    tags: Vec<String>,
    active: bool,
    email: Option<String>,
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}
impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Best and median µs per call of 5 runs of `n` calls.
fn per_call(n: u32, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..n / 10 {
        f();
    }
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        runs.push(t.elapsed().as_secs_f64() / n as f64 * 1e6);
    }
    runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (runs[0], runs[2])
}

fn report(label: &str, case: &str, n: u32, (best, median): (f64, f64)) {
    println!("{label} {case} {best:.4} {median:.4} {n}");
}

fn main() -> wasmtime::Result<()> {
    let path = std::env::args().nth(1).unwrap_or("build/guests/types_guest.wasm".into());
    // Epoch interruption as wippy's engines have it; fuel metering only when asked.
    let fuel = std::env::var("WIPPY_FLOOR_CONFIG").as_deref() == Ok("fuel");
    let mut config = Config::new();
    config.epoch_interruption(true).consume_fuel(fuel);
    let engine = Engine::new(&config)?;
    let component = Component::from_file(&engine, &path)?;
    let mut linker = Linker::<State>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let mut store = Store::new(&engine, State { wasi: WasiCtx::builder().build(), table: ResourceTable::new() });
    store.set_epoch_deadline(u64::MAX);
    if fuel {
        store.set_fuel(u64::MAX)?;
    }
    let instance = linker.instantiate(&mut store, &component)?;
    let add = instance.get_func(&mut store, "add").expect("add");
    let iface = instance.get_export_index(&mut store, None, "wippy:types/users").expect("users");
    let tix = instance.get_export_index(&mut store, Some(&iface), "transform-users").expect("transform");
    let transform = instance.get_func(&mut store, tix).unwrap();

    let add_t = add.typed::<(i32, i32), (i32,)>(&store)?;
    let tr_t = transform.typed::<(Vec<User>,), (Vec<User>,)>(&store)?;
    let users: Vec<User> = (1..=10)
        .map(|i| User {
            id: i,
            name: format!("user{i}"),
            tags: vec!["a".into(), "b".into()],
            active: true,
            email: Some(format!("u{i}@x.org")),
        })
        .collect();
    const N_ADD: u32 = 2_000_000;
    const N_TR: u32 = 50_000;
    report(
        "rust-typed",
        "add",
        N_ADD,
        per_call(N_ADD, || {
            add_t.call(&mut store, (1, 2)).unwrap();
        }),
    );
    // The typed call takes its arguments by value: the clone of the 10 users is part of it
    // (as converting them is part of every other peer's call).
    report(
        "rust-typed",
        "transform",
        N_TR,
        per_call(N_TR, || {
            let (r,) = tr_t.call(&mut store, (users.clone(),)).unwrap();
            assert_eq!(r.len(), 10);
        }),
    );
    let vals: Vec<Val> = users
        .iter()
        .map(|u| {
            Val::Record(vec![
                ("id".into(), Val::U32(u.id)),
                ("name".into(), Val::String(u.name.clone())),
                ("tags".into(), Val::List(u.tags.iter().map(|t| Val::String(t.clone())).collect())),
                ("active".into(), Val::Bool(u.active)),
                ("email".into(), Val::Option(u.email.clone().map(|e| Box::new(Val::String(e))))),
            ])
        })
        .collect();
    let arg = [Val::List(vals)];
    let mut out = [Val::Bool(false)];
    let mut out2 = [Val::Bool(false)];
    report(
        "rust-val",
        "add",
        N_ADD,
        per_call(N_ADD, || {
            add.call(&mut store, &[Val::S32(1), Val::S32(2)], &mut out2).unwrap();
        }),
    );
    report(
        "rust-val",
        "transform",
        N_TR,
        per_call(N_TR, || {
            transform.call(&mut store, &arg, &mut out).unwrap();
        }),
    );
    Ok(())
}
