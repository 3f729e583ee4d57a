//! Where calls run and how their callers hear back (SPEC §4): the shared worker threads, a
//! blocking executor for callers outside a task, the per-state inbox of finished calls, and
//! the control block every call carries (cancel, deadline).
//!
//! Lua values never cross into this module: a call is started with Rust data (converted on
//! the Lua thread) and its result is converted back there, after the inbox said it is done.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context as TaskCx, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::error::{Error, Kind};

pub mod wake;

/// Worker threads requested with `wippy.configure{ workers = N }` (0 = one per core).
static WORKERS: AtomicUsize = AtomicUsize::new(0);
static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
static RUNTIME_INIT: Mutex<()> = Mutex::new(());

/// Sets the number of shared worker threads.
///
/// # Errors
/// When the workers already started with a different number.
pub fn set_workers(n: usize) -> Result<(), String> {
    if let Some(rt) = RUNTIME.get() {
        let running = rt.metrics().num_workers();
        if running != n {
            return Err(format!(
                "the {running} worker threads are already running; set `workers` before the first call that uses them"
            ));
        }
        return Ok(());
    }
    WORKERS.store(n, Ordering::Relaxed);
    Ok(())
}

/// The number of worker threads (running or to be started).
pub fn workers() -> usize {
    match RUNTIME.get() {
        Some(rt) => rt.metrics().num_workers(),
        None => match WORKERS.load(Ordering::Relaxed) {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        },
    }
}

/// The shared worker threads (a tokio runtime, which also drives WASI timers and sockets),
/// started on first use.
///
/// # Errors
/// When the operating system refuses to start threads.
pub fn runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    wake::check_fork()?;
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    wake::check_fork_pid()?;
    let _guard = RUNTIME_INIT.lock().map_err(|_| Error::internal("worker start-up lock poisoned"))?;
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers())
        .thread_name("wippy-worker")
        .enable_time()
        .enable_io()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the worker threads: {e}")))?;
    wake::started();
    let _ = RUNTIME.set(rt);
    RUNTIME.get().ok_or_else(|| Error::internal("worker threads vanished"))
}

/// Microseconds a waiting thread busy-waits before it sleeps (`wippy.configure{ spin_us }`).
static SPIN_US: AtomicU64 = AtomicU64::new(50);

/// Sets how long a waiting thread busy-waits before it sleeps (0: never).
pub fn set_spin_us(us: u64) {
    SPIN_US.store(us, Ordering::Relaxed);
}

/// How long a waiting thread busy-waits before it sleeps.
pub fn spin_us() -> u64 {
    SPIN_US.load(Ordering::Relaxed)
}

/// Brief busy-waiting before a thread sleeps, adaptive (as Erlang's schedulers do): waking a
/// sleeping thread costs tens of microseconds on a virtual machine, more than a message's
/// whole round trip between two threads that are awake. A wait spins only while recent waits
/// were short: a spin that ran out turns it off, a short sleep turns it on again.
pub struct Spin {
    hot: AtomicBool,
}

impl Spin {
    /// `hot`: spin at the first wait already.
    pub const fn new(hot: bool) -> Spin {
        Spin { hot: AtomicBool::new(hot) }
    }

    /// Busy-waits until `ready()` holds (→ `true`) or the spin time is over (→ `false`: sleep,
    /// then report the sleep to [`Spin::slept`]).
    pub fn spin(&self, ready: impl Fn() -> bool) -> bool {
        let us = spin_us();
        if us == 0 || !self.hot.load(Ordering::Relaxed) {
            return ready();
        }
        let budget = Duration::from_micros(us);
        let start = Instant::now();
        loop {
            for _ in 0..32 {
                if ready() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= budget {
                self.hot.store(false, Ordering::Relaxed);
                return false;
            }
            // Lets the thread this one waits for run, when the cores are all taken.
            std::thread::yield_now();
        }
    }

    /// A wait slept for `slept`: when that was short, spinning would have caught it.
    pub fn slept(&self, slept: Duration) {
        if slept <= Duration::from_micros(4 * spin_us()) {
            self.hot.store(true, Ordering::Relaxed);
        }
    }
}

/// Wakes a thread parked in [`block_on`].
struct ThreadWaker {
    thread: std::thread::Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Runs a future to completion on this thread (a caller outside a task blocks; WASI timers
/// and sockets are driven by the worker threads meanwhile).
///
/// # Errors
/// Only when the worker threads cannot start.
pub fn block_on<F: Future>(fut: F) -> Result<F::Output, Error> {
    let _enter = runtime()?.enter();
    let mut fut = pin!(fut);
    let w = Arc::new(ThreadWaker { thread: std::thread::current(), woken: AtomicBool::new(false) });
    let waker = Waker::from(w.clone());
    let mut cx = TaskCx::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        while !w.woken.swap(false, Ordering::AcqRel) {
            std::thread::park();
        }
    }
}

/// Polls a future once on this thread with `waker`, inside the workers' context (so WASI
/// timers can register).
///
/// # Errors
/// Only when the worker threads cannot start.
pub fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Result<Poll<F::Output>, Error> {
    let _enter = runtime()?.enter();
    let mut cx = TaskCx::from_waker(waker);
    // A task's call: Lua calls its guest makes go to the scheduler, which runs them as tasks.
    let outer = TASK_POLL.replace(true);
    let r = std::pin::Pin::new(fut).poll(&mut cx);
    TASK_POLL.set(outer);
    Ok(r)
}

/// Runs a [`Job`] at once on the Lua thread of its state (a caller that blocks there).
pub type Server = Rc<dyn Fn(Job)>;
type WeakServer = Weak<dyn Fn(Job)>;

thread_local! {
    /// The Lua states of this thread, by inbox address, that run a job at once for a caller
    /// blocked in a call (held weakly: the state owns its server).
    static SERVERS: RefCell<Vec<(usize, WeakServer)>> = const { RefCell::new(Vec::new()) };
    /// Set while a task's call is polled on its Lua thread.
    static TASK_POLL: Cell<bool> = const { Cell::new(false) };
}

fn key(inbox: &Arc<Inbox>) -> usize {
    Arc::as_ptr(inbox) as usize
}

/// Registers the server of the Lua state whose inbox is `inbox`, on this thread.
pub fn add_server(inbox: &Arc<Inbox>, server: &Server) {
    SERVERS.with_borrow_mut(|s| {
        s.retain(|(_, w)| w.strong_count() > 0);
        s.push((key(inbox), Rc::downgrade(server)));
    });
}

/// The state's server if a job of `home` can run now, here: the caller is blocked on this
/// thread, which is that state's (not a task's call being polled, whose jobs go to the
/// scheduler; not a worker thread).
pub fn server(home: &Arc<Inbox>) -> Option<Server> {
    if TASK_POLL.get() {
        return None;
    }
    let k = key(home);
    SERVERS.with_borrow(|s| s.iter().rev().find(|(i, _)| *i == k).and_then(|(_, w)| w.upgrade()))
}

/// A call of a `function.lua` entry made from WebAssembly (`wippy:runtime/funcs`): it runs on
/// the Lua thread of the state the outer call came from ([`Inbox`]), and its result goes back
/// through `reply` to the guest, which waits for it without holding a thread.
pub struct Job {
    /// The entry to call.
    pub target: String,
    /// The context the function runs under (the guest's, one level deeper).
    pub ctx: Arc<crate::security::Context>,
    pub input: Vec<u8>,
    /// `call-bytes` (the result may be any bytes) rather than `call-string`.
    pub bytes: bool,
    /// The result, or the message of what failed.
    pub reply: tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>,
}

/// Finished calls of one Lua state, by operation id, and the Lua calls guests ask of it: the
/// state's scheduler waits here when every task is waiting; a caller blocked on a future
/// serves the Lua calls while it waits.
pub struct Inbox {
    queue: Mutex<Queue>,
    cv: Condvar,
    /// Callers blocked in [`Inbox::serve_wait`], woken when an operation completes.
    blocked: AtomicUsize,
    /// Counts every push, job and completion, for a waiter that spins without the lock.
    signal: AtomicU64,
    spin: Spin,
    /// Waiters in nginx (`wake`): rung when a job is queued.
    pub on_job: wake::Bells,
    /// Rung at any event (a finished id, a job, a completion).
    pub on_any: wake::Bells,
}

impl Default for Inbox {
    fn default() -> Inbox {
        Inbox {
            queue: Mutex::default(),
            cv: Condvar::new(),
            blocked: AtomicUsize::new(0),
            signal: AtomicU64::new(0),
            spin: Spin::new(true),
            on_job: wake::Bells::default(),
            on_any: wake::Bells::default(),
        }
    }
}

#[derive(Default)]
struct Queue {
    done: Vec<u64>,
    jobs: Vec<Job>,
    /// The Lua state is gone: a job can never run.
    closed: bool,
}

impl Inbox {
    pub fn push(&self, id: u64) {
        if let Ok(mut q) = self.queue.lock() {
            q.done.push(id);
        }
        self.signal.fetch_add(1, Ordering::Release);
        self.cv.notify_all();
        self.on_any.ring();
    }

    /// Queues a Lua call for this state's thread; gives it back when the state is closed.
    ///
    /// # Errors
    /// The job, when the Lua state is gone.
    pub fn push_job(&self, job: Job) -> Result<(), Job> {
        match self.queue.lock() {
            Ok(mut q) if !q.closed => q.jobs.push(job),
            _ => return Err(job),
        }
        self.signal.fetch_add(1, Ordering::Release);
        self.cv.notify_all();
        self.on_job.ring();
        self.on_any.ring();
        Ok(())
    }

    /// Jobs wait to run, or (with `done`) finished ids for the scheduler.
    pub fn has_work(&self, done: bool) -> bool {
        self.pending(done)
    }

    /// The Lua calls waiting to run.
    pub fn take_jobs(&self) -> Vec<Job> {
        self.queue.lock().map(|mut q| std::mem::take(&mut q.jobs)).unwrap_or_default()
    }

    /// The Lua state is closing: waiting jobs fail (their guests get an error), new ones are
    /// refused.
    pub fn close(&self) {
        let jobs = match self.queue.lock() {
            Ok(mut q) => {
                q.closed = true;
                std::mem::take(&mut q.jobs)
            }
            Err(_) => return,
        };
        drop(jobs);
    }

    /// Waits until an operation finished, a job is queued, or `timeout` passed (`None`: no
    /// limit), and takes the finished ids. The second value says whether jobs wait.
    pub fn wait(&self, timeout: Option<Duration>) -> (Vec<u64>, bool) {
        let seen = self.signal.load(Ordering::Acquire);
        if timeout.is_none_or(|t| t > Duration::from_micros(spin_us())) && !self.pending(true) {
            self.spin.spin(|| self.signal.load(Ordering::Acquire) != seen);
        }
        let Ok(mut q) = self.queue.lock() else { return (Vec::new(), false) };
        let until = timeout.map(|t| Instant::now() + t);
        let slept = Instant::now();
        let mut sleeps = false;
        while q.done.is_empty() && q.jobs.is_empty() {
            sleeps = true;
            match until {
                None => match self.cv.wait(q) {
                    Ok(g) => q = g,
                    Err(_) => return (Vec::new(), false),
                },
                Some(u) => {
                    let now = Instant::now();
                    if now >= u {
                        break;
                    }
                    match self.cv.wait_timeout(q, u - now) {
                        Ok((g, _)) => q = g,
                        Err(_) => return (Vec::new(), false),
                    }
                }
            }
        }
        if sleeps {
            self.spin.slept(slept.elapsed());
        }
        let jobs = !q.jobs.is_empty();
        (std::mem::take(&mut q.done), jobs)
    }

    /// For a caller that blocks until `done()` holds (a future's result outside a task):
    /// waits until it does (an empty list) or jobs are queued (which it takes, to run them).
    /// Finished ids stay for the scheduler.
    pub fn serve_wait(&self, done: impl Fn() -> bool, until: Option<Instant>) -> Vec<Job> {
        let seen = self.signal.load(Ordering::Acquire);
        if until.is_none_or(|u| u > Instant::now() + Duration::from_micros(spin_us()))
            && !self.pending(false)
            && self.spin.spin(|| done() || self.signal.load(Ordering::Acquire) != seen)
            && done()
        {
            // Done while spinning, unless jobs came too: those are taken below.
            if self.queue.lock().map(|q| q.jobs.is_empty()).unwrap_or(true) {
                return Vec::new();
            }
        }
        self.blocked.fetch_add(1, Ordering::SeqCst);
        let mut jobs = Vec::new();
        let slept = Instant::now();
        let mut sleeps = false;
        if let Ok(mut q) = self.queue.lock() {
            loop {
                if !q.jobs.is_empty() {
                    jobs = std::mem::take(&mut q.jobs);
                    break;
                }
                if done() {
                    break;
                }
                sleeps = true;
                let woke = match until {
                    None => self.cv.wait(q).ok(),
                    Some(u) => {
                        let now = Instant::now();
                        if now >= u {
                            break;
                        }
                        self.cv.wait_timeout(q, u - now).ok().map(|(g, _)| g)
                    }
                };
                match woke {
                    Some(g) => q = g,
                    None => break,
                }
            }
        }
        self.blocked.fetch_sub(1, Ordering::SeqCst);
        if sleeps {
            self.spin.slept(slept.elapsed());
        }
        jobs
    }

    /// Jobs (and, with `done`, finished ids) are there already: a wait returns at once,
    /// without spinning. A blocked caller leaves finished ids to the scheduler.
    fn pending(&self, done: bool) -> bool {
        self.queue.lock().is_ok_and(|q| !q.jobs.is_empty() || (done && !q.done.is_empty()))
    }

    /// Wakes callers blocked in [`Inbox::serve_wait`] (an operation completed).
    fn poke(&self) {
        self.on_any.ring();
        self.signal.fetch_add(1, Ordering::Release);
        if self.blocked.load(Ordering::SeqCst) > 0 {
            // Taking the lock orders this after a waiter's check of its condition.
            drop(self.queue.lock());
            self.cv.notify_all();
        }
    }
}

/// What every call carries besides its arguments: whether it was canceled and until when it
/// may run. Checked by the guest's epoch callback while it computes, and raced against the
/// call while it waits.
pub struct Control {
    canceled: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// Wall-clock limit of the call (`limits.max_execution_ms` or the executor's timeout).
    pub deadline: Option<Instant>,
    /// Which of the two set the deadline, for the message.
    pub deadline_from: &'static str,
}

impl Control {
    /// A control for a call limited by `limit_ms` of the entry and `timeout_ms` of the caller
    /// (0 = none); the nearer one wins.
    pub fn new(limit_ms: u64, timeout_ms: u64) -> Arc<Control> {
        let (ms, from) = match (limit_ms, timeout_ms) {
            (0, 0) => (0, ""),
            (l, 0) => (l, "limits.max_execution_ms"),
            (0, t) => (t, "the executor's timeout"),
            (l, t) if t < l => (t, "the executor's timeout"),
            (l, _) => (l, "limits.max_execution_ms"),
        };
        Arc::new(Control {
            canceled: AtomicBool::new(false),
            waker: Mutex::new(None),
            deadline: (ms > 0).then(|| Instant::now() + Duration::from_millis(ms)),
            deadline_from: from,
        })
    }

    pub fn cancel(&self) {
        self.canceled.store(true, Ordering::Release);
        if let Some(w) = self.waker.lock().ok().and_then(|mut g| g.take()) {
            w.wake();
        }
    }

    pub fn is_canceled(&self) -> bool {
        self.canceled.load(Ordering::Acquire)
    }

    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn register(&self, w: &Waker) {
        if let Ok(mut g) = self.waker.lock() {
            match &*g {
                Some(old) if old.will_wake(w) => {}
                _ => *g = Some(w.clone()),
            }
        }
    }

    /// The error of a call stopped by this control.
    pub fn stop_error(&self, id: &str) -> Error {
        if self.is_canceled() {
            let mut e = Error::new(Kind::Canceled, format!("{id}: the call was canceled"));
            e.retryable = false;
            e
        } else {
            Error::new(Kind::Timeout, format!("{id}: the call ran out of time ({})", self.deadline_from))
        }
    }
}

/// Runs `fut` unless the call is canceled or its deadline passes first, whichever comes
/// first; a guest waiting (sleeping, reading) is dropped then, with its instance. The outer
/// error is the guard's (the call did not finish), the inner one the call's.
pub async fn guarded<T>(
    id: &str,
    control: &Control,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<Result<T, Error>, Error> {
    let mut fut = pin!(fut);
    let mut sleep = pin!(async {
        match control.deadline {
            Some(d) => tokio::time::sleep_until(d.into()).await,
            None => std::future::pending().await,
        }
    });
    std::future::poll_fn(|cx| {
        control.register(cx.waker());
        if control.is_canceled() {
            return Poll::Ready(Err(control.stop_error(id)));
        }
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(r));
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(control.stop_error(id)));
        }
        Poll::Pending
    })
    .await
}

static NEXT_OP: AtomicU64 = AtomicU64::new(1);

enum Slot<T> {
    Running,
    Done(T),
    Taken,
}

/// A started call whose result someone will collect: a task (told through its state's
/// inbox), a blocked caller (woken through the inbox, `Inbox::serve_wait`), or a future object.
pub struct Op<T> {
    pub id: u64,
    slot: Mutex<Slot<T>>,
    inbox: Arc<Inbox>,
    /// A scheduler waits for this operation: report to the inbox. Unwatched operations (a
    /// future nobody waits for in a task) do not fill the inbox of a state without scheduler.
    watched: AtomicBool,
    pub control: Arc<Control>,
    /// When it completed, in the order of all completions (0: not yet): `process.events()`
    /// reports exits in this order.
    done_seq: AtomicU64,
    /// Waiters in nginx (`wake`), rung when it completes.
    bells: wake::Bells,
}

static NEXT_DONE: AtomicU64 = AtomicU64::new(1);

impl<T: Send + 'static> Op<T> {
    pub fn new(inbox: Arc<Inbox>, control: Arc<Control>) -> Arc<Op<T>> {
        Arc::new(Op {
            id: NEXT_OP.fetch_add(1, Ordering::Relaxed),
            slot: Mutex::new(Slot::Running),
            inbox,
            watched: AtomicBool::new(false),
            control,
            done_seq: AtomicU64::new(0),
            bells: wake::Bells::default(),
        })
    }

    pub fn complete(&self, v: T) {
        if let Ok(mut s) = self.slot.lock() {
            if matches!(*s, Slot::Running) {
                *s = Slot::Done(v);
                self.done_seq.store(NEXT_DONE.fetch_add(1, Ordering::Relaxed), Ordering::Release);
            }
        }
        self.notify();
        self.bells.ring();
        self.inbox.poke();
    }

    /// Rings `bell` when this operation completes; `true` when it is complete already.
    pub fn ring_when_done(&self, bell: &Arc<wake::Bell>) -> bool {
        self.bells.add(bell);
        self.is_done()
    }

    fn notify(&self) {
        if self.watched.load(Ordering::SeqCst) {
            self.inbox.push(self.id);
        }
    }

    /// From now on, progress is reported to the inbox. Check [`Op::is_done`] after this: a
    /// completion before it was not reported.
    pub fn watch(&self) {
        self.watched.store(true, Ordering::SeqCst);
    }

    /// Its place in the order of completions (0 while running).
    pub fn done_seq(&self) -> u64 {
        self.done_seq.load(Ordering::Acquire)
    }

    pub fn is_done(&self) -> bool {
        self.slot.lock().map(|s| !matches!(*s, Slot::Running)).unwrap_or(true)
    }

    /// The result, if it is there and nobody took it yet.
    pub fn take(&self) -> Option<T> {
        let mut s = self.slot.lock().ok()?;
        match std::mem::replace(&mut *s, Slot::Taken) {
            Slot::Done(v) => Some(v),
            Slot::Running => {
                *s = Slot::Running;
                None
            }
            Slot::Taken => None,
        }
    }

    /// A waker that tells the inbox this operation may progress.
    pub fn waker(self: &Arc<Self>) -> Waker {
        Waker::from(self.clone())
    }
}

impl<T: Send + 'static> Wake for Op<T> {
    fn wake(self: Arc<Self>) {
        self.notify();
    }
}

/// Starts `fut` on the worker threads; its result goes to `op`. If the job dies without one (a
/// panic, which the workers catch), `op` gets `lost()` instead, so no waiter hangs.
///
/// # Errors
/// When the worker threads cannot start.
pub fn spawn<T: Send + 'static>(
    op: &Arc<Op<T>>,
    fut: impl Future<Output = T> + Send + 'static,
    lost: impl FnOnce() -> T + Send + 'static,
) -> Result<(), Error> {
    let mut guard = Completion { op: Some(op.clone()), lost: Some(lost) };
    runtime()?.spawn(async move {
        let v = fut.await;
        if let Some(op) = guard.op.take() {
            op.complete(v);
        }
    });
    Ok(())
}

/// Completes an operation with its fallback when the job is dropped unfinished.
struct Completion<T: Send + 'static, L: FnOnce() -> T> {
    op: Option<Arc<Op<T>>>,
    lost: Option<L>,
}

impl<T: Send + 'static, L: FnOnce() -> T> Drop for Completion<T, L> {
    fn drop(&mut self) {
        if let (Some(op), Some(lost)) = (self.op.take(), self.lost.take()) {
            op.complete(lost());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_stops_a_waiting_future_at_its_deadline() {
        let control = Control::new(20, 0);
        let started = Instant::now();
        let r = block_on(guarded("t:x", &control, async { std::future::pending::<Result<(), Error>>().await }))
            .and_then(|r| r.map(|_| ()));
        let e = r.err().map(|e| (e.kind, e.message));
        assert_eq!(e, Some((Kind::Timeout, "t:x: the call ran out of time (limits.max_execution_ms)".into())));
        assert!(started.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn cancel_wakes_a_guarded_future() {
        let control = Control::new(0, 0);
        let c2 = control.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            c2.cancel();
        });
        let r = block_on(guarded("t:x", &control, async { std::future::pending::<Result<(), Error>>().await }))
            .and_then(|r| r.map(|_| ()));
        assert_eq!(r.err().map(|e| e.kind), Some(Kind::Canceled));
    }

    #[test]
    fn spin_turns_off_when_it_runs_out_and_on_after_a_short_sleep() {
        let spin = Spin::new(true);
        let start = Instant::now();
        assert!(!spin.spin(|| false), "nothing became ready");
        assert!(start.elapsed() >= Duration::from_micros(spin_us()), "it spun for the whole time");
        // Cold: it returns at once.
        let start = Instant::now();
        assert!(!spin.spin(|| false));
        assert!(start.elapsed() < Duration::from_micros(spin_us()));
        spin.slept(Duration::from_millis(100));
        assert!(!spin.hot.load(Ordering::Relaxed), "a long sleep keeps it off");
        spin.slept(Duration::from_micros(10));
        assert!(spin.spin(|| true), "a short sleep turned it on again");
    }

    #[test]
    fn a_waiter_spinning_sees_a_push() {
        let inbox = Arc::new(Inbox::default());
        let pusher = {
            let inbox = inbox.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_micros(10));
                inbox.push(7);
            })
        };
        assert_eq!(inbox.wait(Some(Duration::from_secs(5))).0, vec![7]);
        pusher.join().unwrap();
    }

    #[test]
    fn a_job_that_panics_on_a_worker_completes_with_its_lost_result_and_the_workers_go_on() {
        // No guest can make the host panic through a call (traps are errors, not panics), so
        // the worker boundary is tried with a job that panics: tokio catches it, the dropped
        // job's `Completion` hands its op the `lost` value, and the worker threads still run
        // every later job.
        let inbox = Arc::new(Inbox::default());
        let op: Arc<Op<u32>> = Op::new(inbox.clone(), Control::new(0, 0));
        op.watch();
        let boom = async {
            if op_panics() {
                panic!("a job's panic (sched test)");
            }
            7
        };
        assert!(spawn(&op, boom, || 99).is_ok());
        let (ids, _) = inbox.wait(Some(Duration::from_secs(5)));
        assert_eq!(ids, vec![op.id], "the waiter heard back");
        assert_eq!(op.take(), Some(99), "the lost() result, not a hang");
        let n = 4 * workers().max(1);
        let ops: Vec<Arc<Op<u32>>> = (0..n as u32)
            .map(|i| {
                let op: Arc<Op<u32>> = Op::new(inbox.clone(), Control::new(0, 0));
                op.watch();
                assert!(spawn(&op, async move { i * 2 }, || u32::MAX).is_ok());
                op
            })
            .collect();
        let mut heard = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while heard.len() < n && Instant::now() < deadline {
            heard.extend(inbox.wait(Some(Duration::from_millis(100))).0);
        }
        assert_eq!(heard.len(), n, "every later job finished");
        for (i, op) in ops.iter().enumerate() {
            assert_eq!(op.take(), Some(i as u32 * 2));
        }
    }

    /// `true`, opaque to the compiler (so the panicking branch is not dead code).
    fn op_panics() -> bool {
        std::hint::black_box(true)
    }

    #[test]
    fn spawned_op_reports_to_the_inbox() {
        let inbox = Arc::new(Inbox::default());
        let op: Arc<Op<u32>> = Op::new(inbox.clone(), Control::new(0, 0));
        op.watch();
        assert!(spawn(&op, async { 7 }, || 0).is_ok());
        let (ids, jobs) = inbox.wait(Some(Duration::from_secs(5)));
        assert_eq!((ids, jobs), (vec![op.id], false));
        assert_eq!(op.take(), Some(7));
        assert_eq!(op.take(), None);
    }
}
