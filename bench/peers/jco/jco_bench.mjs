// jco side of the component peer benchmark (bench/peers/run.sh): the types guest
// (tests/guests/types) transpiled by `jco transpile` into ./out, WASI from
// @bytecodealliance/preview2-shim. Cases: `add` (s32, s32) -> s32 and
// `users#transform-users` (`users.transformUsers`) on 10 users (camelCase keys; none here).
// Prints one line per case: `<label> <case> <best us> <median us> <N>` (5 runs of N calls each;
// N is calibrated so that a run takes about 0.5 s of wall time (process.hrtime), unless given).
// Usage: node jco_bench.mjs [label] [N_add] [N_transform]
import { add, users as usersIface } from "./out/types_guest.js";

const label = process.argv[2] ?? "jco";
const N_ADD = process.argv[3] ? Number(process.argv[3]) : 0;
const N_TRANSFORM = process.argv[4] ? Number(process.argv[4]) : 0;
const RUNS = 5;
const TARGET = 0.5; // seconds per run when N is calibrated
const now = () => Number(process.hrtime.bigint()) / 1e9;
const { transformUsers } = usersIface;

const users = [];
for (let i = 1; i <= 10; i++) {
  users.push({ id: i, name: "user" + i, tags: ["a", "b"], active: true, email: "u" + i + "@x.org" });
}

// Check the results once before timing.
if (add(2, 3) !== 5) throw new Error("add(2, 3) != 5");
const out = transformUsers(users);
if (out.length !== 10 || out[9].name !== "USER10" || out[9].tags[2] !== "seen" || out[9].email !== "u10@x.org") {
  throw new Error("unexpected transform result: " + JSON.stringify(out[9]));
}

// Doubles as the warm-up (and lets the JIT compile): grows n until a batch takes 0.1 s, then
// scales it to TARGET; once more with that n (the first batches run before the JIT is done).
function calibrate(body) {
  let n = 1;
  let t = 0;
  while (t < 0.1) {
    n *= t > 0.01 ? Math.ceil(0.12 / t) : 8;
    const t0 = now();
    body(n);
    t = now() - t0;
  }
  for (let i = 0; i < 2; i++) {
    n = Math.max(1, Math.floor((n * TARGET) / t));
    const t0 = now();
    body(n);
    t = now() - t0;
  }
  return Math.max(1, Math.floor((n * TARGET) / t));
}

function measure(kase, n, body) {
  if (n) body(Math.max(1, Math.floor(n / 10)));
  else n = calibrate(body);
  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    body(n);
    runs.push(Number(process.hrtime.bigint() - t0) / 1e3 / n);
  }
  runs.sort((a, b) => a - b);
  console.log(`${label} ${kase} ${runs[0].toFixed(4)} ${runs[(RUNS - 1) >> 1].toFixed(4)} ${n}`);
}

measure("add", N_ADD, (n) => {
  let s = 0;
  for (let i = 0; i < n; i++) s = add(s, 1);
  if (s < n) throw new Error("bad sum");
});
measure("transform", N_TRANSFORM, (n) => {
  let r;
  for (let i = 0; i < n; i++) r = transformUsers(users);
  if (r.length !== 10) throw new Error("bad length");
});
