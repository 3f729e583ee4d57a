//! The test guest of async WASI, CPU-bound work, limits and traps (wit/async.wit): sleeps
//! through wasi:clocks + wasi:io/poll, makes real wasi:http requests and TCP connections,
//! burns CPU, spins forever, grows memory and traps.
//!
//! wit-bindgen generates the exports; the `wasi` crate (0.14) provides the wasi:http client
//! bindings; std covers clocks and sockets (wasm32-wasip2).

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

wit_bindgen::generate!({
    world: "async-guest",
    path: "wit",
});

struct Component;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// wasi:io/streams allows at most 4096 bytes per blocking-write-and-flush.
const WRITE_CHUNK: usize = 4096;
/// Bytes asked for per blocking-read of the response body.
const READ_CHUNK: u64 = 64 * 1024;

impl Guest for Component {
    fn sleep_ms(ms: u32) -> u64 {
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(ms.into()));
        start.elapsed().as_millis() as u64
    }

    fn burn(iterations: u64) -> u64 {
        // xorshift64: no closed form, so every iteration must run.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut sum: u64 = 0;
        for _ in 0..iterations {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sum = sum.wrapping_add(x);
        }
        sum ^ x
    }

    fn spin_forever() {
        let mut n: u64 = 0;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }

    fn grow(mib: u32) -> u32 {
        let bytes = (mib as usize).checked_mul(1 << 20).expect("grow: size overflows the address space");
        let mut v: Vec<u8> = Vec::with_capacity(bytes);
        v.resize(bytes, 0);
        // Write every 4 KiB page so the memory is really in use.
        let mut i = 0;
        while i < bytes {
            v[i] = (i >> 12) as u8 | 1;
            i += 4096;
        }
        black_box(&v);
        mib
    }

    fn boom() -> u32 {
        core::arch::wasm32::unreachable()
    }

    fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }

    fn counter() -> u32 {
        COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }

    fn http_request(
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
    ) -> Result<Response, String> {
        http_request(&method, &url, headers, body)
    }

    fn tcp_roundtrip(addr: String, data: Vec<u8>) -> Result<Vec<u8>, String> {
        let mut stream = TcpStream::connect(addr.as_str()).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.write_all(&data).map_err(|e| format!("write to {addr}: {e}"))?;
        stream.flush().map_err(|e| format!("flush to {addr}: {e}"))?;
        stream.shutdown(Shutdown::Write).map_err(|e| format!("shutdown write to {addr}: {e}"))?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out).map_err(|e| format!("read from {addr}: {e}"))?;
        Ok(out)
    }
}

/// Splits an http:// URL into (authority, path-with-query).
fn split_url(url: &str) -> Result<(String, String), String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("invalid url {url:?}: no scheme"))?;
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!("unsupported scheme {scheme:?} in {url:?}: only http is supported"));
    }
    let rest = rest.split('#').next().unwrap_or("");
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(cut);
    if authority.is_empty() {
        return Err(format!("invalid url {url:?}: no host"));
    }
    let path = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok((authority.to_string(), path))
}

fn to_method(method: &str) -> Method {
    match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        _ => Method::Other(method.to_string()),
    }
}

fn error_code(context: &str, e: &ErrorCode) -> String {
    format!("{context}: {e:?}")
}

fn stream_error(context: &str, e: StreamError) -> String {
    match e {
        StreamError::Closed => format!("{context}: stream closed"),
        StreamError::LastOperationFailed(err) => match wasi::http::types::http_error_code(&err) {
            Some(code) => error_code(context, &code),
            None => format!("{context}: {}", err.to_debug_string()),
        },
    }
}

fn http_request(
    method: &str,
    url: &str,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
) -> Result<Response, String> {
    let (authority, path) = split_url(url)?;

    let mut entries: Vec<(String, Vec<u8>)> = headers.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
    if let Some(b) = &body {
        if !entries.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
            entries.push(("content-length".to_string(), b.len().to_string().into_bytes()));
        }
    }
    let fields = Fields::from_list(&entries).map_err(|e| format!("invalid headers: {e:?}"))?;

    let request = OutgoingRequest::new(fields);
    request.set_method(&to_method(method)).map_err(|()| format!("invalid method {method:?}"))?;
    request.set_scheme(Some(&Scheme::Http)).map_err(|()| "invalid scheme".to_string())?;
    request.set_authority(Some(&authority)).map_err(|()| format!("invalid authority {authority:?}"))?;
    request.set_path_with_query(Some(&path)).map_err(|()| format!("invalid path {path:?}"))?;
    let outgoing_body = request.body().map_err(|()| "request body already taken".to_string())?;

    let future = outgoing_handler::handle(request, None).map_err(|e| error_code(&format!("{method} {url}"), &e))?;

    // The body is written after handle, so a large body streams instead of filling a buffer.
    if let Some(b) = &body {
        let out = outgoing_body.write().map_err(|()| "request body stream already taken".to_string())?;
        for chunk in b.chunks(WRITE_CHUNK) {
            out.blocking_write_and_flush(chunk).map_err(|e| stream_error("writing the request body", e))?;
        }
        drop(out);
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|e| error_code("finishing the request body", &e))?;

    let response = loop {
        if let Some(r) = future.get() {
            break r;
        }
        let pollable = future.subscribe();
        pollable.block();
    };
    drop(future);
    let response = response
        .map_err(|()| "response already taken".to_string())?
        .map_err(|e| error_code(&format!("{method} {url}"), &e))?;

    let status = response.status();
    let response_headers: Vec<(String, String)> = {
        let h = response.headers();
        h.entries().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())).collect()
    };

    let incoming = response.consume().map_err(|()| "response body already taken".to_string())?;
    let mut body_bytes = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| "response body stream already taken".to_string())?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => body_bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_error("reading the response body", e)),
            }
        }
    }
    // Trailers are not needed; finishing releases the body.
    drop(IncomingBody::finish(incoming));
    drop(response);

    Ok(Response { status, headers: response_headers, body: body_bytes })
}

export!(Component);
