//! `wasi:http` outgoing requests under the entry's network policy (SPEC §5.3).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::net::Policy;

type Sent = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError>;

/// Checks each request's host against the policy, then sends it like wasmtime-wasi-http does.
pub struct Hooks {
    policy: Arc<Policy>,
    /// The context of the call running: its scope decides `http.request` on each URL.
    caller: Arc<super::net::Caller>,
}

impl Hooks {
    pub fn new(policy: Arc<Policy>, caller: Arc<super::net::Caller>) -> Hooks {
        Hooks { policy, caller }
    }
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let policy = self.policy.clone();
        let allowed = self.caller.allows("http.request", &[request.uri().to_string()]);
        Box::new(async move {
            if !allowed {
                return Err(HttpError::HttpRequestDenied);
            }
            let uri = request.uri();
            let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
            let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            // Every address the name resolves to must be allowed: a name that also points at a
            // private address could otherwise be connected there by the sender's own lookup.
            let addrs: Vec<std::net::SocketAddr> = match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(a) => a.collect(),
                Err(_) => return Err(HttpError::DestinationNotFound),
            };
            if addrs.is_empty() || !addrs.iter().all(|a| policy.allows(Some(&host), *a)) {
                return Err(HttpError::HttpRequestDenied);
            }
            let mut default: [(); 0] = [];
            Pin::from(default.send_request(request, options, fut)).await
        })
    }
}

/// Adds `wasi:http/types` and `wasi:http/outgoing-handler` (requests go through [`Hooks`]).
pub fn add(l: &mut wasmtime::component::Linker<super::state::HostState>, asynchronous: bool) -> wasmtime::Result<()> {
    if asynchronous {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(l)
    } else {
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(l)
    }
}
