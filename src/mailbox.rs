//! Process IDs and mailboxes (SPEC §7.3): every spawned process has a pid; an actor and a Lua
//! state that calls `process.self()` have a mailbox others `send` to. Mailboxes are
//! process-wide (any Lua state or guest may send to any pid) and bounded: a message past
//! `capacity` messages, `bytes` queued bytes or `message_bytes` for one message is refused with
//! `overloaded` (or `message too large`), never queued.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// A payload of a message: `format` is `bytes`, `text` or `json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    pub format: String,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub from: String,
    pub topic: String,
    pub payloads: Vec<Payload>,
}

impl Message {
    fn size(&self) -> usize {
        self.topic.len() + self.from.len() + self.payloads.iter().map(|p| p.data.len() + p.format.len()).sum::<usize>()
    }
}

/// `options.mailbox` of a process entry.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub capacity: usize,
    pub bytes: usize,
    pub message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { capacity: 128, bytes: 8 << 20, message_bytes: 1 << 20 }
    }
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<Message>,
    bytes: usize,
    /// Completed when a message arrives (Lua receives waiting; held weakly: a wait given up
    /// and collected leaves nothing behind).
    waiters: Vec<Weak<crate::sched::Op<()>>>,
}

/// The mailbox of one pid.
pub struct Mailbox {
    pub pid: String,
    limits: Limits,
    queue: Mutex<Queue>,
    /// Messages queued, read without the lock by a receiver that spins.
    queued: AtomicUsize,
    /// A guest's `receive` busy-waits briefly in a conversation (its worker thread stays
    /// awake for the answer rather than sleeping and being woken).
    spin: crate::sched::Spin,
    /// Wakes a guest waiting in `receive` or on its `subscribe` pollable.
    pub arrived: tokio::sync::Notify,
}

static NEXT_PID: AtomicU64 = AtomicU64::new(1);

fn boxes() -> &'static Mutex<HashMap<String, Weak<Mailbox>>> {
    static BOXES: OnceLock<Mutex<HashMap<String, Weak<Mailbox>>>> = OnceLock::new();
    BOXES.get_or_init(Default::default)
}

/// A new pid, unique in this process.
pub fn new_pid() -> String {
    format!("pid:{}", NEXT_PID.fetch_add(1, Ordering::Relaxed))
}

/// The mailbox of `pid`, made and registered now; it is unregistered when its last holder drops
/// it (the actor's run ends, the Lua state closes).
pub fn open(pid: &str, limits: Limits) -> Arc<Mailbox> {
    let mb = Arc::new(Mailbox {
        pid: pid.to_string(),
        limits,
        queue: Mutex::default(),
        queued: AtomicUsize::new(0),
        spin: crate::sched::Spin::new(false),
        arrived: Default::default(),
    });
    if let Ok(mut b) = boxes().lock() {
        b.retain(|_, w| w.strong_count() > 0);
        b.insert(pid.to_string(), Arc::downgrade(&mb));
    }
    mb
}

/// Delivers `msg` to `target`'s mailbox.
///
/// # Errors
/// `no process TARGET` (unknown or ended), `overloaded` (the mailbox is full), `message too
/// large`.
pub fn send(target: &str, msg: Message) -> Result<(), String> {
    let mb = boxes().lock().ok().and_then(|b| b.get(target).and_then(Weak::upgrade));
    let Some(mb) = mb else {
        return Err(format!("no process {target} (unknown, or it has ended)"));
    };
    mb.push(msg)
}

impl Mailbox {
    fn push(&self, msg: Message) -> Result<(), String> {
        let size = msg.size();
        if size > self.limits.message_bytes {
            return Err(format!(
                "message too large: {size} bytes, {} accepts at most {} (options.mailbox.message_bytes)",
                self.pid, self.limits.message_bytes
            ));
        }
        let waiters = {
            let mut q = self.queue.lock().map_err(|_| "mailbox lock poisoned".to_string())?;
            if q.messages.len() >= self.limits.capacity || q.bytes + size > self.limits.bytes {
                return Err("overloaded".into());
            }
            q.bytes += size;
            q.messages.push_back(msg);
            self.queued.store(q.messages.len(), Ordering::Release);
            std::mem::take(&mut q.waiters)
        };
        self.arrived.notify_waiters();
        self.arrived.notify_one();
        for w in waiters.iter().filter_map(Weak::upgrade) {
            w.complete(());
        }
        Ok(())
    }

    /// The oldest message, if any.
    pub fn try_receive(&self) -> Option<Message> {
        let mut q = self.queue.lock().ok()?;
        let m = q.messages.pop_front()?;
        q.bytes -= m.size();
        self.queued.store(q.messages.len(), Ordering::Release);
        Some(m)
    }

    pub fn is_empty(&self) -> bool {
        self.queue.lock().map(|q| q.messages.is_empty()).unwrap_or(true)
    }

    /// Waits for a message (a guest's `receive`: its fiber waits, no thread).
    pub async fn receive(&self) -> Message {
        if let Some(m) = self.try_receive() {
            return m;
        }
        if self.spin.spin(|| self.queued.load(Ordering::Acquire) > 0) {
            if let Some(m) = self.try_receive() {
                return m;
            }
        }
        let slept = std::time::Instant::now();
        loop {
            let notified = self.arrived.notified();
            if let Some(m) = self.try_receive() {
                self.spin.slept(slept.elapsed());
                return m;
            }
            notified.await;
        }
    }

    /// Resolves when a message is there (the `subscribe` pollable).
    pub async fn ready(&self) {
        loop {
            let notified = self.arrived.notified();
            if !self.is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// Completes `op` when a message is there (now, if one is).
    pub fn on_arrival(&self, op: &Arc<crate::sched::Op<()>>) {
        if let Ok(mut q) = self.queue.lock() {
            if q.messages.is_empty() {
                q.waiters.retain(|w| w.strong_count() > 0);
                q.waiters.push(Arc::downgrade(op));
                return;
            }
        }
        op.complete(());
    }
}

/// `options.mailbox` read from a process entry's `options` (defaults for what is missing).
pub fn limits_of(options: &crate::registry::value::Node) -> Limits {
    let mut l = Limits::default();
    let Some(mb) = options.get("mailbox") else { return l };
    let num = |k: &str| match mb.get(k).map(|n| &n.value) {
        Some(crate::registry::value::Value::Int(n)) if *n >= 0 => Some(*n as usize),
        _ => None,
    };
    if let Some(n) = num("capacity") {
        l.capacity = n;
    }
    if let Some(n) = num("bytes") {
        l.bytes = n;
    }
    if let Some(n) = num("message_bytes") {
        l.message_bytes = n;
    }
    l
}
