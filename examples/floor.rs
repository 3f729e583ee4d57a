//! The floor for the component peer benchmark: the same calls as bench/peers (types guest,
//! `add` and `users#transform-users` on 10 users) made from Rust with wasmtime's typed API and
//! with its dynamic `Val` API, no Lua at all.
//! Usage: cargo run --release --example floor -- build/guests/types_guest.wasm
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

fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        runs.push(t.elapsed().as_secs_f64() / n as f64 * 1e6);
    }
    runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    runs[2]
}

fn main() -> wasmtime::Result<()> {
    let path = std::env::args().nth(1).unwrap_or("build/guests/types_guest.wasm".into());
    // WIPPY_FLOOR_CONFIG=wippy: epoch interruption and fuel, as wippy's engine has them.
    let mut config = Config::new();
    if std::env::var("WIPPY_FLOOR_CONFIG").as_deref() == Ok("wippy") {
        config.epoch_interruption(true).consume_fuel(true);
    }
    let engine = Engine::new(&config)?;
    let component = Component::from_file(&engine, &path)?;
    let mut linker = Linker::<State>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let mut store = Store::new(&engine, State { wasi: WasiCtx::builder().build(), table: ResourceTable::new() });
    if std::env::var("WIPPY_FLOOR_CONFIG").as_deref() == Ok("wippy") {
        store.set_fuel(u64::MAX)?;
        store.set_epoch_deadline(u64::MAX);
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
    let t_add = per_call(2_000_000, || {
        add_t.call(&mut store, (1, 2)).unwrap();
    });
    let t_tr = per_call(200_000, || {
        let (r,) = tr_t.call(&mut store, (users.clone(),)).unwrap();
        assert_eq!(r.len(), 10);
    });
    let clone = per_call(200_000, || {
        std::hint::black_box(users.clone());
    });
    println!("rust-typed add {t_add:.4} µs");
    println!("rust-typed transform {t_tr:.4} µs (of which cloning the input {clone:.4})");

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
    let t_add_dyn = per_call(2_000_000, || {
        add.call(&mut store, &[Val::S32(1), Val::S32(2)], &mut out2).unwrap();
    });
    let t_tr_dyn = per_call(200_000, || {
        transform.call(&mut store, &arg, &mut out).unwrap();
    });
    println!("rust-val add {t_add_dyn:.4} µs");
    println!("rust-val transform {t_tr_dyn:.4} µs");
    Ok(())
}
