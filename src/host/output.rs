//! Guest stdout and stderr of functions: to the host's stderr, each line prefixed with the
//! entry ID (SPEC §5.1), so output of many entries stays readable.

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A line-buffering writer shared by the streams of one store.
#[derive(Clone)]
pub struct Prefixed {
    prefix: Arc<str>,
    pending: Arc<Mutex<Vec<u8>>>,
}

impl Prefixed {
    pub fn new(entry: &str) -> Prefixed {
        Prefixed { prefix: entry.into(), pending: Arc::default() }
    }

    /// Buffers `bytes` and writes every complete line as `ENTRY: line`.
    fn write(&self, bytes: &[u8]) {
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
    fn keeps_partial_lines_until_their_newline() {
        let p = Prefixed::new("app:x");
        p.write(b"hel");
        assert_eq!(&*p.pending.lock().unwrap(), b"hel");
        p.write(b"lo\nwor");
        assert_eq!(&*p.pending.lock().unwrap(), b"wor");
    }
}
