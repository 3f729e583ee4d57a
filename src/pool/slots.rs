//! A counting gate: at most `max` holders at once; the rest wait — a future (a task's call on
//! a worker) until woken, a thread (a caller blocked on its Lua thread) on a condition variable.
//!
//! The common case, a free slot, is one compare-and-swap to take and one atomic subtraction
//! plus a load to give back; the waiters' machinery is touched only when someone waits.

use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// How long a blocked thread sleeps before it looks again by itself (a safety net: a release
/// wakes it at once).
const RECHECK: Duration = Duration::from_millis(20);

pub struct Slots {
    used: AtomicU32,
    max: u32,
    /// Waiters of either kind (a release wakes only when there are some).
    waiters: AtomicU32,
    notify: tokio::sync::Notify,
    lock: Mutex<()>,
    cv: Condvar,
}

/// A slot held; given back when dropped.
pub struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.give();
    }
}

impl Slots {
    pub fn new(max: u32) -> Slots {
        Slots {
            used: AtomicU32::new(0),
            max: max.max(1),
            waiters: AtomicU32::new(0),
            notify: tokio::sync::Notify::new(),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    /// Slots held now.
    pub fn used(&self) -> u32 {
        self.used.load(Ordering::Relaxed)
    }

    /// Callers waiting now.
    pub fn waiting(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed)
    }

    /// A free slot, without waiting.
    #[inline]
    pub fn try_take(&self) -> Option<Slot<'_>> {
        let mut n = self.used.load(Ordering::SeqCst);
        loop {
            if n >= self.max {
                return None;
            }
            match self.used.compare_exchange_weak(n, n + 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Some(Slot(self)),
                Err(now) => n = now,
            }
        }
    }

    #[inline]
    fn give(&self) {
        // SeqCst with the waiter's increment before its last look: one of the two sees the other.
        self.used.fetch_sub(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.wake();
        }
    }

    #[cold]
    fn wake(&self) {
        self.notify.notify_one();
        let _g = self.lock.lock();
        self.cv.notify_one();
    }

    /// A slot, waiting (as a future) while all are held.
    pub async fn take(&self) -> Slot<'_> {
        if let Some(s) = self.try_take() {
            return s;
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let _w = Waiter(&self.waiters);
        loop {
            let mut woken = pin!(self.notify.notified());
            woken.as_mut().enable();
            if let Some(s) = self.try_take() {
                return s;
            }
            woken.await;
        }
    }

    /// A slot, blocking this thread while all are held (it sleeps, woken by a release).
    pub fn take_blocking(&self) -> Slot<'_> {
        self.take_blocking_serving(RECHECK, || {})
    }

    /// [`Slots::take_blocking`] that runs `serve` at least every `every` while it waits: a
    /// caller blocked on its Lua thread runs the Lua calls guests ask of its state meanwhile,
    /// since the slots it waits for may be held by calls waiting for exactly those.
    pub fn take_blocking_serving(&self, every: Duration, mut serve: impl FnMut()) -> Slot<'_> {
        if let Some(s) = self.try_take() {
            return s;
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let _w = Waiter(&self.waiters);
        loop {
            {
                let guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(s) = self.try_take() {
                    return s;
                }
                drop(self.cv.wait_timeout(guard, every));
            }
            if let Some(s) = self.try_take() {
                return s;
            }
            serve();
        }
    }
}

/// Counts a waiter out when it stops waiting (with a slot, or dropped: a canceled call).
struct Waiter<'a>(&'a AtomicU32);

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn never_more_than_max_holders_and_every_waiter_gets_one() {
        let slots = Arc::new(Slots::new(3));
        let counter = || Arc::new(AtomicUsize::new(0));
        let (now, peak, done) = (counter(), counter(), counter());
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (slots, now, peak, done) = (slots.clone(), now.clone(), peak.clone(), done.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let _s = slots.take_blocking();
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        now.fetch_sub(1, Ordering::SeqCst);
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 12);
        let p = peak.load(Ordering::SeqCst);
        assert!((1..=3).contains(&p), "peak holders {p}");
        assert_eq!((slots.used(), slots.waiting()), (0, 0));
    }

    #[test]
    fn a_future_waits_for_a_release() {
        let slots = Slots::new(1);
        let held = slots.try_take();
        assert!(held.is_some() && slots.try_take().is_none());
        let mut fut = Box::pin(slots.take());
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(slots.waiting(), 1);
        drop(held);
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        drop(fut);
        assert_eq!((slots.used(), slots.waiting()), (0, 0));
    }
}
