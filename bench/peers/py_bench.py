"""wasmtime-py side of the component peer benchmark (bench/peers/run.sh).

Calls the types guest (tests/guests/types) through wasmtime's dynamic component API
(`wasmtime.component`): `add` (s32, s32) -> s32 and `users#transform-users` on 10 users.
Prints one line per case: `<label> <case> <best us> <median us> <N>` (5 runs of N calls each;
N is calibrated so that a run takes about 0.5 s of CPU time (time.process_time), unless given).
Usage: python bench/peers/py_bench.py [label] [N_add] [N_transform]
"""
import math
import os
import sys
import time

import wasmtime
from wasmtime import component as wc

LABEL = sys.argv[1] if len(sys.argv) > 1 else "wasmtime-py"
N_ADD = int(sys.argv[2]) if len(sys.argv) > 2 else None
N_TRANSFORM = int(sys.argv[3]) if len(sys.argv) > 3 else None
RUNS = 5
TARGET = 0.5  # seconds per run when N is calibrated
GUEST = os.environ.get("WIPPY_BENCH_GUEST", "build/guests/types_guest.wasm")

engine = wasmtime.Engine()
store = wasmtime.Store(engine)
store.set_wasi(wasmtime.WasiConfig())
linker = wc.Linker(engine)
linker.add_wasip2()
component = wc.Component.from_file(engine, GUEST)
instance = linker.instantiate(store, component)

add = instance.get_func(store, "add")
users_iface = instance.get_export_index(store, "wippy:types/users")
assert users_iface is not None, "no wippy:types/users export"
transform = instance.get_func(store, instance.get_export_index(store, "transform-users", users_iface))
assert add is not None and transform is not None


def user(i):
    u = wc.Record()
    u.id = i
    u.name = "user%d" % i
    u.tags = ["a", "b"]
    u.active = True
    u.email = "u%d@x.org" % i
    return u


users = [user(i) for i in range(1, 11)]

# Check the results once before timing.
assert add(store, 2, 3) == 5
out = transform(store, users)
assert len(out) == 10 and out[9].name == "USER10" and out[9].tags == ["a", "b", "seen"] and out[9].email == "u10@x.org"


def bench_add(n):
    s = 0
    for _ in range(n):
        s = add(store, s, 1)
    assert s >= n


def bench_transform(n):
    r = None
    for _ in range(n):
        r = transform(store, users)
    assert len(r) == 10


def calibrate(body):
    """Doubles as the warm-up: grows n until a batch takes 0.1 s, then scales it to TARGET;
    once more with that n (the first batches may be slower than the warm code)."""
    n, t = 1, 0.0
    while t < 0.1:
        n *= math.ceil(0.12 / t) if t > 0.01 else 8
        t0 = time.process_time()
        body(n)
        t = time.process_time() - t0
    for _ in range(2):
        n = max(1, int(n * TARGET / t))
        t0 = time.process_time()
        body(n)
        t = time.process_time() - t0
    return max(1, int(n * TARGET / t))


def measure(case, n, body):
    if n:
        body(max(1, n // 10))  # warm-up
    else:
        n = calibrate(body)
    runs = []
    for _ in range(RUNS):
        t0 = time.process_time()
        body(n)
        runs.append((time.process_time() - t0) / n * 1e6)
    runs.sort()
    print("%s %s %.4f %.4f %d" % (LABEL, case, runs[0], runs[(RUNS - 1) // 2], n), flush=True)


measure("add", N_ADD, bench_add)
measure("transform", N_TRANSFORM, bench_transform)
