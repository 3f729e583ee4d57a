//! Per-entry counters for `wippy.stats(id)` (SPEC §9).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Kind};

/// How many latencies are kept for the percentiles.
const WINDOW: usize = 1024;
/// The blocking core path times one call in this many (two clock reads are a sixth of a
/// trivial call); every other path times every call ([`Stats::start_timed`]).
const SAMPLE_EVERY: u64 = 64;

#[derive(Default)]
pub struct Stats {
    calls: AtomicU64,
    errors: AtomicU64,
    traps: AtomicU64,
    timeouts: AtomicU64,
    instances: Arc<AtomicU64>,
    recycled: AtomicU64,
    busy: AtomicU64,
    /// The last [`WINDOW`] latencies in µs (lock-free: a sample may be overwritten while read).
    latencies: Ring,
}

struct Ring {
    us: Box<[AtomicU32]>,
    /// Samples written so far (the next slot is this modulo [`WINDOW`]).
    written: AtomicU64,
}

impl Default for Ring {
    fn default() -> Ring {
        Ring { us: (0..WINDOW).map(|_| AtomicU32::new(0)).collect(), written: AtomicU64::new(0) }
    }
}

/// A copy of the counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub calls: u64,
    pub errors: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub instances: u64,
    pub recycled: u64,
    pub busy: u64,
    /// Calls holding a slot of the pool now (filled by `Pool::snapshot`).
    pub running: u64,
    /// Calls waiting for a slot (`static`: admitted ones; with `running`, at most
    /// `workers + buffer`).
    pub queued: u64,
    /// `static`: callers waiting to be admitted (the queue is full).
    pub waiting: u64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Whether call number `n` is timed: the first [`WINDOW`], then one in [`SAMPLE_EVERY`] (so the
/// percentiles of an entry with few calls come from all of them).
fn sampled(n: u64) -> bool {
    n < WINDOW as u64 || n.is_multiple_of(SAMPLE_EVERY)
}

/// A running call.
pub struct Timer<'a> {
    started: Option<Instant>,
    busy: Option<&'a AtomicU64>,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.busy.take() {
            b.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Decrements the live-instance count when the instance goes.
pub struct Counted(Arc<AtomicU64>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Stats {
    /// For the blocking core path: counts the call and times one in [`SAMPLE_EVERY`]; not
    /// counted as busy (such a call cannot be observed running from its own thread, and two
    /// atomic updates are a tenth of its cost).
    pub fn start(&self) -> Timer<'_> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        Timer { started: sampled(n).then(Instant::now), busy: None }
    }

    /// For blocking component calls: counted busy, timed like [`Stats::start`] (a guest may
    /// wait inside, but two clock reads are a tenth of a trivial call).
    pub fn start_busy(&self) -> Timer<'_> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        self.busy.fetch_add(1, Ordering::Relaxed);
        Timer { started: sampled(n).then(Instant::now), busy: Some(&self.busy) }
    }

    /// Counts the call, times it, and counts it busy until [`Stats::finish`] or until the timer
    /// is dropped (a call whose future a timeout or cancel dropped).
    pub fn start_timed(&self) -> Timer<'_> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.busy.fetch_add(1, Ordering::Relaxed);
        Timer { started: Some(Instant::now()), busy: Some(&self.busy) }
    }

    pub fn finish(&self, t: Timer<'_>) {
        // `Drop` counts busy down.
        if let Some(s) = t.started {
            let us = s.elapsed().as_micros().min(u32::MAX as u128) as u32;
            let i = self.latencies.written.fetch_add(1, Ordering::Relaxed);
            self.latencies.us[(i % WINDOW as u64) as usize].store(us, Ordering::Relaxed);
        }
    }

    /// Counts a failure by kind; returns it.
    pub fn failed(&self, e: Error) -> Error {
        self.errors.fetch_add(1, Ordering::Relaxed);
        match e.kind {
            Kind::Timeout => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            Kind::Internal if e.details.is_some() => {
                self.traps.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        e
    }

    pub fn count_instance(&self) -> Counted {
        self.instances.fetch_add(1, Ordering::Relaxed);
        Counted(self.instances.clone())
    }

    /// Live instances of the entry (in use, idle, or pinned by resources).
    #[inline]
    pub fn instances(&self) -> u64 {
        self.instances.load(Ordering::Relaxed)
    }

    pub fn recycled(&self) {
        self.recycled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let n = (self.latencies.written.load(Ordering::Relaxed) as usize).min(WINDOW);
        let mut us: Vec<u32> = self.latencies.us[..n].iter().map(|x| x.load(Ordering::Relaxed)).collect();
        us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if us.is_empty() {
                return 0.0;
            }
            let i = ((us.len() as f64 - 1.0) * p).round() as usize;
            us[i.min(us.len() - 1)] as f64
        };
        Snapshot {
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            traps: self.traps.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            instances: self.instances.load(Ordering::Relaxed),
            recycled: self.recycled.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            running: 0,
            queued: 0,
            waiting: 0,
            p50_us: pct(0.5),
            p99_us: pct(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_failures_by_kind_and_keeps_percentiles() {
        let s = Stats::default();
        for _ in 0..3 {
            let t = s.start_timed();
            s.finish(t);
        }
        let _ = s.failed(Error::new(Kind::Timeout, "x"));
        let _ = s.failed(Error::new(Kind::Invalid, "y"));
        let c = s.count_instance();
        let snap = s.snapshot();
        assert_eq!((snap.calls, snap.errors, snap.timeouts, snap.traps, snap.instances, snap.busy), (3, 2, 1, 0, 1, 0));
        drop(c);
        assert_eq!(s.snapshot().instances, 0);
    }
}
