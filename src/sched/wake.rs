//! Waking code that waits inside nginx (OpenResty, docs/openresty.md): a request's coroutine
//! can only be resumed by an event nginx polls, so a call that has to wait there registers a
//! [`Bell`] on what it waits for, gets a ticket, and reads one byte for that ticket from this
//! process's wake socket through an nginx cosocket. The socket is served on the worker
//! threads: the byte is written when the bell rings. Nothing polls.
//!
//! Also the fork check: nginx forks its workers after `init_by_lua`, and the threads this
//! library starts (the workers, the epoch ticker, the compiler's) do not exist in a child.

use std::collections::HashMap;
use std::ffi::c_void;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::Poll;

use crate::error::Error;

/// Rings once; a waiter on the wake socket is then answered.
pub struct Bell {
    rung: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Bell {
    pub fn new() -> Arc<Bell> {
        Arc::new(Bell { rung: AtomicBool::new(false), notify: tokio::sync::Notify::new() })
    }

    pub fn ring(&self) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            // Stores a permit when nobody waits yet, so the ring is never lost.
            self.notify.notify_one();
        }
    }
}

/// Bells to ring at the next event of an operation or an inbox (held weakly: a bell whose
/// waiter went away is dropped with its ticket).
#[derive(Default)]
pub struct Bells {
    any: AtomicBool,
    list: Mutex<Vec<Weak<Bell>>>,
}

impl Bells {
    pub fn add(&self, bell: &Arc<Bell>) {
        if let Ok(mut l) = self.list.lock() {
            l.retain(|w| w.strong_count() > 0);
            l.push(Arc::downgrade(bell));
            self.any.store(true, Ordering::SeqCst);
        }
    }

    /// Rings (and forgets) every bell; costs one atomic load when there is none.
    pub fn ring(&self) {
        if !self.any.load(Ordering::SeqCst) {
            return;
        }
        let list = match self.list.lock() {
            Ok(mut l) => {
                self.any.store(false, Ordering::SeqCst);
                std::mem::take(&mut *l)
            }
            Err(_) => return,
        };
        for w in list {
            if let Some(b) = w.upgrade() {
                b.ring();
            }
        }
    }
}

/// Bells waited for through the wake socket, by ticket.
static TICKETS: Mutex<Option<HashMap<u64, Arc<Bell>>>> = Mutex::new(None);
static NEXT_TICKET: AtomicU64 = AtomicU64::new(1);
/// This process's wake socket, started on first use.
static SOCKET: Mutex<Option<String>> = Mutex::new(None);
static SOCKET_PATH: OnceLock<std::ffi::CString> = OnceLock::new();

/// A ticket for `bell` and the path of the wake socket to wait on it: connect, write the
/// ticket as 16 hexadecimal digits, read one byte.
///
/// # Errors
/// When this process was forked from one that started wippy, or the socket cannot be made.
pub fn ticket(bell: Arc<Bell>) -> Result<(u64, String), Error> {
    check_fork()?;
    let path = socket()?;
    let id = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut t) = TICKETS.lock() {
        t.get_or_insert_with(HashMap::new).insert(id, bell);
    }
    Ok((id, path))
}

/// Forgets a ticket whose waiter gave up (a timeout, a closed connection).
pub fn forget(id: u64) {
    if let Ok(mut t) = TICKETS.lock() {
        if let Some(map) = t.as_mut() {
            map.remove(&id);
        }
    }
}

fn take(id: u64) -> Option<Arc<Bell>> {
    TICKETS.lock().ok()?.as_mut()?.remove(&id)
}

extern "C" fn unlink_socket() {
    if let Some(p) = SOCKET_PATH.get() {
        // SAFETY: a NUL-terminated path kept for the life of the process.
        unsafe { libc::unlink(p.as_ptr()) };
    }
}

/// The wake socket of this process: a Unix socket in the temporary directory named by the
/// pid, served on the worker threads; removed when the process exits.
fn socket() -> Result<String, Error> {
    let mut guard = SOCKET.lock().map_err(|_| Error::internal("wake socket lock poisoned"))?;
    if let Some(p) = &*guard {
        return Ok(p.clone());
    }
    let rt = super::runtime()?;
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let path = std::env::temp_dir().join(format!("wippy-wake-{}-{nanos:08x}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let fail = |e: std::io::Error| Error::internal(format!("cannot open the wake socket {}: {e}", path.display()));
    let listener = std::os::unix::net::UnixListener::bind(&path).map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    let listener = {
        let _enter = rt.enter();
        tokio::net::UnixListener::from_std(listener).map_err(fail)?
    };
    rt.spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream));
                }
                // Out of descriptors: try again a little later.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    });
    let text = path.to_string_lossy().into_owned();
    if let Ok(c) = std::ffi::CString::new(text.clone()) {
        if SOCKET_PATH.set(c).is_ok() {
            // SAFETY: registers a plain function taking no arguments, as atexit expects.
            unsafe { libc::atexit(unlink_socket) };
        }
    }
    *guard = Some(text.clone());
    Ok(text)
}

/// One waiter's connection: tickets in, one byte out per rung bell, until it closes.
async fn serve(stream: tokio::net::UnixStream) {
    let mut buf = [0u8; 16];
    loop {
        // The ticket: 16 hexadecimal digits.
        let mut got = 0;
        while got < buf.len() {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_read(&mut buf[got..]) {
                Ok(0) => return,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        let Some(id) = std::str::from_utf8(&buf).ok().and_then(|s| u64::from_str_radix(s, 16).ok()) else { return };
        // An unknown ticket (forgotten): answer at once, the waiter checks again.
        if let Some(bell) = take(id) {
            // Waits for the bell, or for the waiter to hang up (its request ended).
            let mut rung = pin!(bell.notify.notified());
            let hung_up = std::future::poll_fn(|cx| {
                if bell.rung.load(Ordering::Acquire) || rung.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(false);
                }
                match stream.poll_read_ready(cx) {
                    Poll::Ready(Ok(())) => match stream.try_read(&mut [0u8; 1]) {
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }
                        // End of stream, an error, or a byte that breaks the protocol.
                        _ => Poll::Ready(true),
                    },
                    Poll::Ready(Err(_)) => Poll::Ready(true),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            if hung_up {
                return;
            }
        }
        loop {
            if stream.writable().await.is_err() {
                return;
            }
            match stream.try_write(b"1") {
                Ok(1) => break,
                Ok(_) => return,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }
}

/// The process that started the worker threads or an engine (0: none yet).
static STARTED_PID: AtomicU32 = AtomicU32::new(0);
/// Set in a child forked after that.
static FORKED: AtomicBool = AtomicBool::new(false);

/// Notes that threads or compiled state exist in this process now.
pub fn started() {
    if STARTED_PID.load(Ordering::Relaxed) == 0 {
        STARTED_PID.store(std::process::id(), Ordering::Relaxed);
    }
}

extern "C" fn in_child() {
    if STARTED_PID.load(Ordering::Relaxed) != 0 {
        FORKED.store(true, Ordering::Relaxed);
    }
}

/// Watches for forks (once per process): a child of a process that started wippy's threads or
/// engines refuses to use them ([`check_fork`]). The library is pinned first, so the handler
/// stays mapped even when Lua unloads the module (nginx closes its Lua state on a reload).
pub fn watch_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `dladdr` fills `info` for an address inside this library; `dlopen` with
        // RTLD_NOLOAD only takes another reference (now never dropped) to the already loaded file.
        let pinned = unsafe {
            let mut info: libc::Dl_info = std::mem::zeroed();
            libc::dladdr(in_child as *const c_void, &mut info) != 0
                && !info.dli_fname.is_null()
                && !libc::dlopen(info.dli_fname, libc::RTLD_LAZY | libc::RTLD_NOLOAD | libc::RTLD_NODELETE).is_null()
        };
        if pinned {
            // SAFETY: a handler that only does atomic operations (async-signal-safe), in code
            // that is never unloaded.
            unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        }
    });
}

/// Fails in a process forked after wippy started its threads or engines there: they are not
/// in the child (nginx: `wippy.load` or a call in `init_by_lua`).
///
/// # Errors
/// That one.
#[inline]
pub fn check_fork() -> Result<(), Error> {
    if FORKED.load(Ordering::Relaxed) {
        return Err(forked_error());
    }
    Ok(())
}

#[cold]
fn forked_error() -> Error {
    let parent = STARTED_PID.load(Ordering::Relaxed);
    let mut e = Error::new(
        crate::error::Kind::Unavailable,
        format!(
            "wippy started its engine and threads in process {parent}, which then forked this one ({}): \
             they do not exist here. In nginx, call wippy.load (and funcs.call) in init_worker_by_lua or later, \
             not in init_by_lua (docs/openresty.md)",
            std::process::id()
        ),
    );
    e.retryable = false;
    e
}

/// Same, comparing pids (for the places that are not hot: a load, starting the workers).
///
/// # Errors
/// As [`check_fork`].
pub fn check_fork_pid() -> Result<(), Error> {
    let started = STARTED_PID.load(Ordering::Relaxed);
    if FORKED.load(Ordering::Relaxed) || (started != 0 && started != std::process::id()) {
        return Err(forked_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_ticket_is_answered_when_its_bell_rings() {
        let bell = Bell::new();
        let (id, path) = ticket(bell.clone()).expect("wake socket");
        let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
        s.write_all(format!("{id:016x}").as_bytes()).expect("send");
        s.set_read_timeout(Some(std::time::Duration::from_millis(100))).ok();
        let mut b = [0u8; 1];
        assert!(s.read(&mut b).is_err(), "nothing before the bell rings");
        let ringer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            bell.ring();
        });
        s.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok();
        assert_eq!(s.read(&mut b).ok(), Some(1));
        assert_eq!(&b, b"1");
        ringer.join().ok();
        // The connection serves another ticket.
        let bell = Bell::new();
        bell.ring();
        let (id, _) = ticket(bell).expect("ticket");
        s.write_all(format!("{id:016x}").as_bytes()).expect("send");
        assert_eq!(s.read(&mut b).ok(), Some(1));
    }
}
