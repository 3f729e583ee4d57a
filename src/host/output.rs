//! Guest stdout and stderr of functions: to the host's stderr, each line prefixed with the
//! entry ID (SPEC §5.1), so output of many entries stays readable.

use std::collections::VecDeque;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much of a guest's stderr an error keeps (`details().stderr`).
pub const TAIL_BYTES: usize = 2048;

/// The last bytes a store's guest wrote to stderr, so that a trap can say what the guest said
/// before it (a Rust panic's message, say).
#[derive(Default, Debug)]
pub struct Tail {
    written: AtomicU64,
    last: Mutex<VecDeque<u8>>,
}

impl Tail {
    /// How many bytes were written so far: a call notes it when it starts.
    pub fn mark(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    fn record(&self, bytes: &[u8]) {
        let Ok(mut last) = self.last.lock() else { return };
        let keep = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        last.extend(keep);
        let excess = last.len().saturating_sub(TAIL_BYTES);
        last.drain(..excess);
        self.written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }

    /// What was written since `mark` (its last [`TAIL_BYTES`]), if anything.
    pub fn since(&self, mark: u64) -> Option<String> {
        let n = self.mark().saturating_sub(mark) as usize;
        let last = self.last.lock().ok()?;
        let n = n.min(last.len());
        if n == 0 {
            return None;
        }
        let bytes: Vec<u8> = last.iter().skip(last.len() - n).copied().collect();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The first line of a Rust panic message in a guest's stderr: the line after
/// `thread '…' panicked at file:line:col:`.
pub fn panic_message(stderr: &str) -> Option<&str> {
    let mut lines = stderr.lines();
    lines.find(|l| l.contains("panicked at"))?;
    lines.next().map(str::trim).filter(|l| !l.is_empty())
}

/// A line-buffering writer of one store's stdout or stderr.
#[derive(Clone)]
pub struct Prefixed {
    prefix: Arc<str>,
    pending: Arc<Mutex<Vec<u8>>>,
    /// For stderr: where the last bytes are kept.
    tail: Option<Arc<Tail>>,
}

impl Prefixed {
    pub fn new(entry: &str) -> Prefixed {
        Prefixed { prefix: entry.into(), pending: Arc::default(), tail: None }
    }

    /// The stderr writer: also keeps the last bytes in `tail`.
    pub fn stderr(entry: &str, tail: &Arc<Tail>) -> Prefixed {
        Prefixed { prefix: entry.into(), pending: Arc::default(), tail: Some(tail.clone()) }
    }

    /// Buffers `bytes` and writes every complete line as `ENTRY: line`.
    fn write(&self, bytes: &[u8]) {
        if let Some(tail) = &self.tail {
            tail.record(bytes);
        }
        let Ok(mut pending) = self.pending.lock() else { return };
        pending.extend_from_slice(bytes);
        let Some(end) = pending.iter().rposition(|b| *b == b'\n') else { return };
        let lines: Vec<u8> = pending.drain(..=end).collect();
        let mut out = Vec::with_capacity(lines.len() + 16);
        for line in lines.split_inclusive(|b| *b == b'\n') {
            out.extend_from_slice(self.prefix.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(line);
        }
        let _ = std::io::stderr().lock().write_all(&out);
    }

    /// Writes a last line without its newline.
    fn finish(&self) {
        let Ok(mut pending) = self.pending.lock() else { return };
        if pending.is_empty() {
            return;
        }
        let line = std::mem::take(&mut *pending);
        let _ = writeln!(std::io::stderr().lock(), "{}: {}", self.prefix, String::from_utf8_lossy(&line));
    }
}

impl Drop for Prefixed {
    fn drop(&mut self) {
        if Arc::strong_count(&self.pending) == 1 {
            self.finish();
        }
    }
}

impl IsTerminal for Prefixed {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Prefixed {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for Prefixed {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        Prefixed::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Prefixed {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Prefixed {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Prefixed::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_stderr_bytes_of_a_call() {
        let tail = Arc::new(Tail::default());
        let err = Prefixed::stderr("app:x", &tail);
        err.write(b"before\n");
        let mark = tail.mark();
        assert_eq!(tail.since(mark), None);
        err.write(b"thread '<unnamed>' panicked at src/lib.rs:3:5:\nboom\nnote: run with RUST_BACKTRACE=1\n");
        let text = tail.since(mark).unwrap_or_default();
        assert!(text.starts_with("thread '<unnamed>' panicked"), "{text}");
        assert_eq!(panic_message(&text), Some("boom"));
        err.write(&vec![b'x'; 3 * TAIL_BYTES]);
        assert_eq!(tail.since(mark).map(|t| t.len()), Some(TAIL_BYTES));
        assert_eq!(panic_message("no panic here\n"), None);
    }

    #[test]
    fn keeps_partial_lines_until_their_newline() {
        let p = Prefixed::new("app:x");
        p.write(b"hel");
        assert_eq!(&*p.pending.lock().unwrap(), b"hel");
        p.write(b"lo\nwor");
        assert_eq!(&*p.pending.lock().unwrap(), b"wor");
    }
}
