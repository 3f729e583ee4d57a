//! Pools bound callers that block their thread (SPEC §4): Lua states on many threads — each a
//! real Lua with the module loaded — call one entry in a loop, so calls overlap as they would
//! from an application's threads. A `lazy` pool never holds more than `max_size` instances nor
//! runs more calls at once; a `static` pool never admits more than `workers + buffer`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use mlua::Lua;

/// A core module that counts to its argument: long enough for calls to overlap.
const SPIN_WAT: &str = r#"(module (func (export "spin") (param i32) (result i32) (local i32)
  (block (loop (br_if 1 (i32.ge_s (local.get 1) (local.get 0)))
    (local.set 1 (i32.add (local.get 1) (i32.const 1))) (br 0)))
  (local.get 1)))"#;

fn lua() -> Lua {
    let lua = Lua::new();
    let w = wippy::lua_api::module(&lua).expect("the module opens");
    lua.globals().set("wippy", w).expect("global");
    lua
}

/// Adds `id` with `pool`, then has `threads` Lua states each call it `calls` times while this
/// thread samples its pool. Returns (peak instances, peak running, peak running + queued,
/// calls that returned the right value).
fn hammer(id: &str, pool: &str, threads: usize, calls: usize) -> (u64, u64, u64, u64) {
    lua()
        .load(format!(
            r#"assert(wippy.registry:add({{ id = "{id}", kind = "function.wat", source = [[{SPIN_WAT}]],
                 wit = "spin: func(n: s32) -> s32;", pool = {pool} }}))"#
        ))
        .exec()
        .expect("the entry loads");
    let loaded = wippy::runtime::get(id).expect("the entry is there");
    let (ok, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let start = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (ok, start, id) = (ok.clone(), start.clone(), id.to_string());
            std::thread::spawn(move || {
                let lua = lua();
                start.wait();
                let right: u64 = lua
                    .load(format!(
                        r#"local right = 0
                           for i = 1, {calls} do
                             local n = 200000 + {t} * 1000 + i
                             if wippy.funcs.call("{id}", n) == n then right = right + 1 end
                           end
                           return right"#
                    ))
                    .eval()
                    .expect("the calls run");
                ok.fetch_add(right, Ordering::Relaxed);
            })
        })
        .collect();
    let sampler = {
        let (stop, loaded) = (stop.clone(), loaded.clone());
        std::thread::spawn(move || {
            let (mut inst, mut run, mut adm) = (0, 0, 0);
            while !stop.load(Ordering::Relaxed) {
                let s = loaded.pool.snapshot();
                inst = inst.max(s.instances);
                run = run.max(s.running);
                adm = adm.max(s.running + s.queued);
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            (inst, run, adm)
        })
    };
    for w in workers {
        w.join().expect("a caller thread");
    }
    stop.store(true, Ordering::Relaxed);
    let (inst, run, adm) = sampler.join().expect("the sampler");
    let s = loaded.pool.snapshot();
    assert_eq!(s.calls, (threads * calls) as u64, "every call counted");
    assert_eq!((s.running, s.queued, s.waiting), (0, 0, 0), "nothing left running or waiting");
    (inst.max(s.instances), run, adm, ok.load(Ordering::Relaxed))
}

#[test]
fn blocking_callers_on_many_threads_never_hold_more_than_max_size_instances() {
    let (threads, calls) = (8, 60);
    let (instances, running, _, right) = hammer("pools_rs:lazy", "{ type = 'lazy', max_size = 2 }", threads, calls);
    assert_eq!(right, (threads * calls) as u64, "every call completed with its own result");
    assert!((1..=2).contains(&instances), "peak instances {instances}");
    assert!((1..=2).contains(&running), "peak running {running}");
}

#[test]
fn a_static_pool_admits_workers_plus_buffer_blocking_callers() {
    let (threads, calls) = (8, 60);
    let (instances, running, admitted, right) =
        hammer("pools_rs:static", "{ type = 'static', workers = 2, buffer = 1 }", threads, calls);
    assert_eq!(right, (threads * calls) as u64, "every call completed with its own result");
    assert_eq!(instances, 2, "made at load, never more");
    assert!((1..=2).contains(&running), "peak running {running}");
    assert!(admitted <= 3, "peak admitted {admitted}");
}
