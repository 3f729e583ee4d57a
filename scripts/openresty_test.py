#!/usr/bin/env python3
"""wippy inside nginx (Debian's nginx + lua module, LuaJIT): starts examples/openresty on
127.0.0.1 with two workers, drives it with a bounded load and checks the results, that
requests whose guests sleep overlap on a worker, access_by_lua, ngx.timer and futures, that
the second worker compiled nothing (shared artifact cache), and a graceful reload.
Also: a wippy.load in init_by_lua (before the fork) gives a clear error in the workers.

Usage: openresty_test.py ROOT MODULES LIBDIR LUADIR [bench]  (scripts/openresty-test.sh passes
them). Ends with the line 'N passed, N failed'; exits 1 when a check failed. With `bench`
(bench/openresty.sh): wrk against one worker, a Markdown table.
"""
import concurrent.futures as cf
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT, MODULES, LIBDIR, LUADIR = sys.argv[1:5]
GUEST = os.path.join(ROOT, "build/guests/async_guest.wasm")
passed, failed = 0, 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + what, flush=True)
    else:
        failed += 1
        print("FAIL " + what, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Nginx:
    def __init__(self, workers=2, init_extra=""):
        self.prefix = tempfile.mkdtemp(prefix="wippy-openresty-", dir=os.path.join(ROOT, "build"))
        os.makedirs(os.path.join(self.prefix, "logs"))
        app = os.path.join(self.prefix, "app")
        shutil.copytree(os.path.join(ROOT, "examples/openresty/app"), app)
        os.makedirs(os.path.join(app, "wasm"))
        shutil.copy(GUEST, os.path.join(app, "wasm/async_guest.wasm"))
        self.port = free_port()
        conf = open(os.path.join(ROOT, "examples/openresty/nginx.conf")).read()
        subst = {
            "MODULES": MODULES,
            "USER": "user root root;" if os.geteuid() == 0 else "",
            "WORKERS": str(workers),
            "LUA_PATH": f"{ROOT}/lua/?.lua;{LUADIR}/?.lua",
            "WIPPY_CPATH": f"{ROOT}/build/luajit/?.so",
            "CACHE": os.path.join(self.prefix, "cache"),
            "APP": app,
            "PORT": str(self.port),
        }
        if init_extra:
            conf = conf.replace('wippy.configure({ cache_dir', init_extra + '\n    wippy.configure({ cache_dir', 1)
        for k, v in subst.items():
            conf = conf.replace("@" + k + "@", v)
        self.conf = os.path.join(self.prefix, "nginx.conf")
        open(self.conf, "w").write(conf)
        self.env = dict(os.environ, LD_LIBRARY_PATH=LIBDIR)

    def nginx(self, *args):
        return subprocess.run(["nginx", "-p", self.prefix, "-c", self.conf, *args], env=self.env,
                              capture_output=True, text=True, timeout=30)

    def start(self):
        r = self.nginx()
        if r.returncode != 0:
            print(r.stdout, r.stderr)
            return False
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def master(self):
        try:
            return int(open(os.path.join(self.prefix, "logs/nginx.pid")).read())
        except (OSError, ValueError):
            return None

    def log(self):
        try:
            return open(os.path.join(self.prefix, "logs/error.log")).read()
        except OSError:
            return ""

    def workers_loaded(self):
        return re.findall(r"wippy worker (\d+) compiled=(\d+) cache_hits=(\d+)", self.log())

    def wait_for(self, cond, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if cond():
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        pid = self.master()
        self.nginx("-s", "quit")
        if pid and not self.wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 15):
            os.kill(pid, signal.SIGTERM)
            self.wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 5)


def get(port, path, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def many(port, paths, concurrency):
    """GETs every path with at most `concurrency` requests in flight: (results, seconds)."""
    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(concurrency) as ex:
        results = list(ex.map(lambda p: get(port, p), paths))
    return results, time.monotonic() - t0


def main():
    if not os.path.exists(GUEST):
        print("missing " + GUEST + " (make guests)")
        return 2
    n = Nginx(workers=2)
    if not n.start():
        print(n.log())
        check(False, "nginx starts with wippy loaded in init_by_lua")
        return 1
    try:
        run_checks(n)
    finally:
        n.stop()
    if failed:
        print(n.log()[-4000:])

    # wippy.load in init_by_lua: the engine exists before the fork; the workers refuse it.
    bad = Nginx(workers=1, init_extra='assert(wippy.load("@APP@"))')
    if bad.start():
        try:
            st, body = get(bad.port, "/add?a=1&b=2")
            check(st == 500 and "init_by_lua" in body and "init_worker_by_lua" in body,
                  "wippy.load before the fork: a call in a worker fails naming init_worker_by_lua (" + body.strip()[:90] + "...)")
        finally:
            bad.stop()
    else:
        check(False, "nginx starts with wippy.load in init_by_lua")
    shutil.rmtree(bad.prefix, ignore_errors=True)
    if not failed:
        shutil.rmtree(n.prefix, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def run_checks(n):
    master = n.master()
    # init_by_lua required wippy and configured it: no thread was started in the master.
    threads = len(os.listdir(f"/proc/{master}/task"))
    check(threads == 1, f"the master process runs 1 thread after init_by_lua (has {threads})")

    check(n.wait_for(lambda: len(n.workers_loaded()) >= 2), "both workers loaded the registry")
    loaded = n.workers_loaded()[:2]
    compiled = [int(c) for _, c, _ in loaded]
    hits = [int(h) for _, _, h in loaded]
    # The workers load in turn (a lock on the cache directory): the first compiles every
    # artifact, the second reads them all from the cache.
    cache = os.path.join(n.prefix, "cache")
    files = [f for f in os.listdir(cache) if f.endswith("wasm")]
    check(len(loaded) == 2 and len(files) > 0 and sorted(compiled) == [0, len(files)]
          and sorted(hits) == [0, len(files)],
          f"one worker compiled the {len(files)} artifacts, the second compiled nothing "
          f"(compiled {compiled}, cache hits {hits})")

    # Results under a bounded concurrent load.
    paths = [f"/add?a={i}&b={i * 7 + 1}" for i in range(400)]
    res, _ = many(n.port, paths, 20)
    check(all(st == 200 and body.strip() == str(i + i * 7 + 1) for i, (st, body) in enumerate(res)),
          "400 /add calls (20 at a time) return the right sums")
    paths = [f"/cadd?a={i}&b=3" for i in range(200)]
    res, _ = many(n.port, paths, 20)
    check(all(st == 200 and body.strip() == str(i + 3) for i, (st, body) in enumerate(res)),
          "200 component /cadd calls (20 at a time) return the right sums")

    # 20 requests whose guests sleep 200 ms, all at once: they overlap on each worker.
    res, secs = many(n.port, ["/sleep?ms=200"] * 20, 20)
    ok = all(st == 200 for st, _ in res)
    pids = {}
    for st, body in res:
        if st == 200:
            pid, slept = body.split()[:2]
            pids[pid] = pids.get(pid, 0) + 1
            ok = ok and int(slept) >= 200
    busiest = max(pids.values()) if pids else 0
    check(ok and busiest >= 10 and secs < 1.5,
          f"20 concurrent 200 ms guest sleeps took {secs:.2f} s; the busiest worker served {busiest} "
          f"(blocking would take >= {busiest * 0.2:.1f} s)")

    st, body = get(n.port, "/access?ms=50")
    check(st == 200 and re.match(r"slept \d+", body) and int(body.split()[1]) >= 50, "access_by_lua: " + body.strip())
    res, secs = many(n.port, ["/access?ms=200"] * 10, 10)
    check(all(st == 200 for st, _ in res) and secs < 1.2, f"10 concurrent access_by_lua sleeps of 200 ms took {secs:.2f} s")
    st, body = get(n.port, "/timer?ms=50")
    check(st == 200 and re.match(r"timer slept \d+", body) and int(body.split()[2]) >= 50, "ngx.timer handler: " + body.strip())
    t0 = time.monotonic()
    st, body = get(n.port, "/futures?n=5&ms=200")
    secs = time.monotonic() - t0
    vals = body.split()
    check(st == 200 and len(vals) == 5 and all(int(v) >= 200 for v in vals) and secs < 0.9,
          f"5 futures sleeping 200 ms in one request: {secs:.2f} s ({body.strip()})")

    # A graceful reload while requests run: every one succeeds, new workers serve, and they
    # compile nothing.
    old = {pid for pid, _, _ in n.workers_loaded()}
    with cf.ThreadPoolExecutor(10) as ex:
        futs = [ex.submit(get, n.port, "/sleep?ms=100") for _ in range(60)]
        time.sleep(0.15)
        r = n.nginx("-s", "reload")
        results = [f.result() for f in futs]
    check(r.returncode == 0 and all(st == 200 for st, _ in results),
          f"60 sleeping requests across a reload all succeed ({sum(st == 200 for st, _ in results)}/60)")
    check(n.wait_for(lambda: len({p for p, _, _ in n.workers_loaded()} - old) >= 2), "the reload started two new workers")
    new = [(p, int(c), int(h)) for p, c, h in n.workers_loaded() if p not in old]
    check(len(new) >= 2 and all(c == 0 and h > 0 for _, c, h in new),
          f"the new workers compiled nothing (compiled, hits: {[(c, h) for _, c, h in new]})")
    # Old workers exit once their requests are done; then only new ones answer.
    check(n.wait_for(lambda: all(not os.path.exists(f"/proc/{p}") for p in old), 20), "the old workers exited")
    res, _ = many(n.port, [f"/add?a={i}&b=1" for i in range(50)] + ["/stats"] * 10, 10)
    served = {body.split()[0] for st, body in res[50:] if st == 200}
    check(all(st == 200 and body.strip() == str(i + 1) for i, (st, body) in enumerate(res[:50]))
          and served and served <= {p for p, _, _ in new}, f"after the reload the new workers answer (pids {sorted(served)})")
    res, secs = many(n.port, ["/sleep?ms=200"] * 20, 20)
    check(all(st == 200 for st, _ in res) and secs < 1.5, f"after the reload, 20 concurrent 200 ms sleeps took {secs:.2f} s")


def wrk(port, path, conns, secs):
    """wrk's requests/s and 99th percentile latency (ms) for GET path."""
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "--latency", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=secs + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    return rps, p99, errors.group(0) if errors else ""


def bench(secs, rounds):
    """Side by side on one worker: a plain ngx.say handler, a core and a component call, and 100
    concurrent requests whose guests sleep 50 ms. Medians of `rounds` runs of `secs` seconds."""
    n = Nginx(workers=1)
    if not n.start():
        print(n.log())
        return 1
    cases = [("plain `ngx.say`", "/plain", 50), ("core `app:add` (WAT)", "/add?a=1&b=2", 50),
             ("component `app:cadd`", "/cadd?a=1&b=2", 50), ("guest sleeps 50 ms, 100 concurrent", "/sleep?ms=50", 100)]
    try:
        for _, path, c in cases:
            wrk(n.port, path, c, 1)  # warm-up
        print("| handler (1 worker) | connections | requests/s | p99 (ms) |")
        print("| --- | --- | --- | --- |")
        for name, path, c in cases:
            runs = [wrk(n.port, path, c, secs) for _ in range(rounds)]
            rps = sorted(r[0] for r in runs)[len(runs) // 2]
            p99 = sorted(r[1] for r in runs)[len(runs) // 2]
            errs = "; ".join(r[2] for r in runs if r[2])
            print(f"| {name} | {c} | {rps:,.0f} | {p99:.2f} |" + (f" {errs}" if errs else ""), flush=True)
    finally:
        n.stop()
        shutil.rmtree(n.prefix, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 5 and sys.argv[5] == "bench":
        sys.exit(bench(int(os.environ.get("BENCH_SECS", "5")), int(os.environ.get("BENCH_ROUNDS", "3"))))
    sys.exit(main())
