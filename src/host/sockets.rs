//! `wasi:sockets`: TCP and UDP clients and name lookup, limited by the entry's network
//! policy ([`super::net`]). A connect is checked against `wasi.allowed_hosts` by address and
//! by the host names the guest resolved to that address (as HTTP requests are checked by
//! their host), so `api.example.com:443` allows a socket to what that name resolves to.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{Host, HostResolveAddressStream, ResolveAddressStream};
use wasmtime_wasi::p2::bindings::sockets::network::{IpAddress, Network};
use wasmtime_wasi::p2::bindings::{self, sockets};
use wasmtime_wasi::p2::{DynPollable, SocketError};
use wasmtime_wasi::sockets::WasiSocketsView;
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsCtxView};
use wasmtime_wasi::WasiCtxBuilder;

use super::net::Policy;
use super::state::HostState;

/// Names the guest of one store resolved: address → names, and lookups in flight.
#[derive(Default, Debug)]
pub struct NameBook {
    by_addr: Mutex<HashMap<IpAddr, Vec<String>>>,
    pending: Mutex<HashMap<u32, String>>,
}

impl NameBook {
    fn names(&self, ip: IpAddr) -> Vec<String> {
        self.by_addr.lock().ok().and_then(|m| m.get(&ip).cloned()).unwrap_or_default()
    }

    fn learn(&self, rep: u32, ip: IpAddr) {
        let name = self.pending.lock().ok().and_then(|p| p.get(&rep).cloned());
        if let (Some(name), Ok(mut m)) = (name, self.by_addr.lock()) {
            let names = m.entry(ip).or_default();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
}

/// Lets the guest open client sockets under `policy`.
pub fn allow(b: &mut WasiCtxBuilder, policy: &Arc<Policy>, names: &Arc<NameBook>, caller: &Arc<super::net::Caller>) {
    let (policy, names, caller) = (policy.clone(), names.clone(), caller.clone());
    b.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(true).socket_addr_check(move |addr, usage| {
        use wasmtime_wasi::sockets::SocketAddrUse as Use;
        let ok = match usage {
            // Outbound traffic follows the policy, by address or by a name that led there.
            Use::TcpConnect | Use::UdpSend | Use::UdpReceive => {
                let known = names.names(addr.ip());
                let hosts = policy.allows(None, addr) || known.iter().any(|n| policy.allows(Some(n), addr));
                // The caller's scope decides too (`socket.connect` on `ADDRESS:PORT` and on
                // `NAME:PORT` for each name that led there).
                let mut resources = vec![addr.to_string()];
                resources.extend(known.iter().map(|n| format!("{n}:{}", addr.port())));
                hosts && caller.allows("socket.connect", &resources)
            }
            // The implicit bind of a client socket (wildcard address, any port).
            Use::TcpBind | Use::UdpBind => addr.ip().is_unspecified() && addr.port() == 0,
            // Functions are clients: no listening sockets.
            Use::TcpListen | Use::TcpAccept => false,
        };
        Box::pin(async move { ok })
    });
}

fn get(t: &mut HostState) -> WasiSocketsCtxView<'_> {
    t.sockets()
}

pub fn add(l: &mut Linker<HostState>, asynchronous: bool) -> wasmtime::Result<()> {
    sockets::tcp_create_socket::add_to_linker::<HostState, WasiSockets>(l, get)?;
    sockets::instance_network::add_to_linker::<HostState, WasiSockets>(l, get)?;
    sockets::network::add_to_linker::<HostState, WasiSockets>(l, &Default::default(), get)?;
    sockets::ip_name_lookup::add_to_linker::<HostState, Naming>(l, lookup)?;
    if asynchronous {
        sockets::tcp::add_to_linker::<HostState, WasiSockets>(l, get)?;
        sockets::udp::add_to_linker::<HostState, WasiSockets>(l, get)?;
        sockets::udp_create_socket::add_to_linker::<HostState, WasiSockets>(l, get)
    } else {
        bindings::sync::sockets::tcp::add_to_linker::<HostState, WasiSockets>(l, get)?;
        bindings::sync::sockets::udp::add_to_linker::<HostState, WasiSockets>(l, get)?;
        bindings::sync::sockets::udp_create_socket::add_to_linker::<HostState, WasiSockets>(l, get)
    }
}

fn lookup(t: &mut HostState) -> Lookup<'_> {
    let names = t.names.clone();
    Lookup { inner: t.sockets(), names }
}

/// wasmtime-wasi's name lookup, noting which names led to which addresses.
struct Lookup<'a> {
    inner: WasiSocketsCtxView<'a>,
    names: Arc<NameBook>,
}

struct Naming;

impl HasData for Naming {
    type Data<'a> = Lookup<'a>;
}

impl sockets::network::Host for Lookup<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<sockets::network::ErrorCode> {
        sockets::network::Host::convert_error_code(&mut self.inner, error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<sockets::network::Error>,
    ) -> wasmtime::Result<Option<sockets::network::ErrorCode>> {
        sockets::network::Host::network_error_code(&mut self.inner, err)
    }
}

impl sockets::network::HostNetwork for Lookup<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        sockets::network::HostNetwork::drop(&mut self.inner, this)
    }
}

impl Host for Lookup<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> wasmtime::Result<Resource<ResolveAddressStream>, SocketError> {
        let stream = self.inner.resolve_addresses(network, name.clone())?;
        if let Ok(mut p) = self.names.pending.lock() {
            p.insert(stream.rep(), name.to_ascii_lowercase());
        }
        Ok(stream)
    }
}

impl HostResolveAddressStream for Lookup<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Option<IpAddress>, SocketError> {
        let rep = stream.rep();
        let next = self.inner.resolve_next_address(stream)?;
        if let Some(addr) = &next {
            let ip = match *addr {
                IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
                IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
            };
            self.names.learn(rep, ip);
        }
        Ok(next)
    }

    fn subscribe(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<Resource<DynPollable>> {
        self.inner.subscribe(stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        if let Ok(mut p) = self.names.pending.lock() {
            p.remove(&stream.rep());
        }
        HostResolveAddressStream::drop(&mut self.inner, stream)
    }
}
