//! What the fuzz harnesses share: a seeded PRNG and a time-boxed driver that names the case
//! seed of a failure, so `WIPPY_FUZZ_CASE=<seed>` runs exactly that case again.
//!
//! Settings (environment): `WIPPY_FUZZ_SECS` (seconds per harness; each harness has a short
//! default for `make test`), `WIPPY_FUZZ_SEED` (the run's seed; default: from the clock, printed),
//! `WIPPY_FUZZ_CASE` (run one case seed only).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// SplitMix64: small, fast, and good enough to drive mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs `case(rng)` for fresh case seeds until `default_secs` (or `WIPPY_FUZZ_SECS`) have passed.
/// A panic or an `Err` stops the run with the case seed in the message. Returns the number of
/// cases run.
pub fn drive(name: &str, default_secs: u64, mut case: impl FnMut(&mut Rng) -> Result<(), String>) -> u64 {
    let run_one = |seed: u64, case: &mut dyn FnMut(&mut Rng) -> Result<(), String>| {
        let mut rng = Rng::new(seed);
        match catch_unwind(AssertUnwindSafe(|| case(&mut rng))) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => panic!("{name}: case failed; rerun with WIPPY_FUZZ_CASE={seed}:\n{why}"),
            Err(_) => panic!("{name}: case panicked (message above); rerun with WIPPY_FUZZ_CASE={seed}"),
        }
    };
    if let Some(seed) = env_u64("WIPPY_FUZZ_CASE") {
        run_one(seed, &mut case);
        return 1;
    }
    let secs = env_u64("WIPPY_FUZZ_SECS").unwrap_or(default_secs);
    let seed = env_u64("WIPPY_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let mut seeds = Rng::new(seed);
    let start = Instant::now();
    let mut n = 0;
    while n == 0 || start.elapsed() < Duration::from_secs(secs) {
        run_one(seeds.next_u64(), &mut case);
        n += 1;
    }
    eprintln!("{name}: {n} cases in {:.1}s (WIPPY_FUZZ_SEED={seed})", start.elapsed().as_secs_f64());
    n
}

/// Byte-level mutations shared by the YAML and wasm harnesses: flips, deletions, duplications,
/// insertions of `tokens`, splices from `donor`. The result is at most `max` bytes.
pub fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, tokens: &[&[u8]], donor: &[u8], max: usize) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = data.len();
        let at = if len == 0 { 0 } else { rng.below(len + 1) };
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next_u64() as u8;
            }
            2 if at < len => {
                let n = 1 + rng.below((len - at).min(32));
                data.drain(at..at + n);
            }
            3 if at < len => {
                let n = 1 + rng.below((len - at).min(64));
                let copy = data[at..at + n].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, copy);
            }
            4 | 5 if !tokens.is_empty() => {
                let t = rng.pick(tokens).to_vec();
                data.splice(at..at, t);
            }
            6 if !donor.is_empty() => {
                let from = rng.below(donor.len());
                let n = 1 + rng.below((donor.len() - from).min(128));
                data.splice(at..at, donor[from..from + n].iter().copied());
            }
            _ => data.truncate(at),
        }
    }
    data.truncate(max);
}

/// A fresh, empty directory for one harness.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
