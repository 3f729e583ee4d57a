//! The test guest of WASI capabilities (wit/caps.wit): every export exercises one thing the
//! host may grant or deny (preopened directories, environment, arguments, random, clocks,
//! stdout, exit, sockets), so specs can check both sides of each capability.
//!
//! wit-bindgen generates the exports; std covers files, environment, arguments, stdout and
//! exit; the `wasi` crate (0.14) gives the calls std does not expose (initial-cwd, random,
//! wall clock) and the raw wasi:sockets steps, so a failure names its error code.

use wasi::sockets::instance_network::instance_network;
use wasi::sockets::ip_name_lookup::resolve_addresses;
use wasi::sockets::network::{ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasi::sockets::tcp_create_socket::create_tcp_socket;

wit_bindgen::generate!({
    world: "caps",
    path: "wit",
});

struct Component;

impl Guest for Component {
    fn read_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|e| e.to_string())
    }

    fn write_file(path: String, data: String) -> Result<(), String> {
        std::fs::write(&path, data).map_err(|e| e.to_string())
    }

    fn list_dir(path: String) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&path).map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn get_env(name: String) -> Option<String> {
        std::env::var(&name).ok()
    }

    fn env_vars() -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = std::env::vars().collect();
        vars.sort();
        vars
    }

    fn args() -> Vec<String> {
        std::env::args().collect()
    }

    fn cwd() -> Result<String, String> {
        std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).map_err(|e| e.to_string())
    }

    fn initial_cwd() -> Option<String> {
        wasi::cli::environment::initial_cwd()
    }

    fn random_u64() -> u64 {
        wasi::random::random::get_random_u64()
    }

    fn now_ms() -> u64 {
        let now = wasi::clocks::wall_clock::now();
        now.seconds * 1000 + u64::from(now.nanoseconds) / 1_000_000
    }

    fn say(text: String) {
        println!("{text}");
    }

    fn quit(code: u32) {
        std::process::exit(code as i32)
    }

    fn fail(message: String) -> u32 {
        eprintln!("about to fail");
        panic!("{message}")
    }

    fn tcp_connect(host: String, port: u16) -> Result<String, String> {
        tcp_connect(&host, port)
    }

    fn add(a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }
}

/// "context: code-name (message)"; the name is the wasi:sockets error code in kebab case.
fn socket_error(context: &str, e: ErrorCode) -> String {
    format!("{context}: {} ({})", e.name(), e.message())
}

fn tcp_connect(host: &str, port: u16) -> Result<String, String> {
    let network = instance_network();

    // Resolve: resolve-next-address says would-block until the lookup has an answer.
    let lookup = resolve_addresses(&network, host).map_err(|e| socket_error(&format!("resolve {host}"), e))?;
    let mut first_v4 = None;
    loop {
        match lookup.resolve_next_address() {
            Ok(Some(IpAddress::Ipv4(a))) => {
                first_v4 = Some(a);
                break;
            }
            Ok(Some(IpAddress::Ipv6(_))) => continue,
            Ok(None) => break,
            Err(ErrorCode::WouldBlock) => lookup.subscribe().block(),
            Err(e) => return Err(socket_error(&format!("resolve {host}"), e)),
        }
    }
    drop(lookup);
    let (a, b, c, d) = first_v4.ok_or_else(|| format!("resolve {host}: name-unresolvable (no IPv4 address)"))?;
    let addr = format!("{a}.{b}.{c}.{d}:{port}");

    // Connect: start, wait on the socket's pollable, finish (would-block while pending).
    let socket = create_tcp_socket(IpAddressFamily::Ipv4).map_err(|e| socket_error("create tcp socket", e))?;
    let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address: (a, b, c, d) });
    socket.start_connect(&network, remote).map_err(|e| socket_error(&format!("connect {addr}"), e))?;
    let streams = loop {
        match socket.finish_connect() {
            Ok(streams) => break streams,
            Err(ErrorCode::WouldBlock) => socket.subscribe().block(),
            Err(e) => return Err(socket_error(&format!("connect {addr}"), e)),
        }
    };
    // The streams are children of the socket: drop them first.
    drop(streams);
    drop(socket);
    Ok(addr)
}

export!(Component);
