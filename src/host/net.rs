//! Outbound network policy (SPEC §5.3): which hosts a guest may reach over `wasi:sockets`
//! and `wasi:http`.
//!
//! An entry gets network access only when it imports `wasi:sockets` or `wasi:http`. Then
//! `wasi.allowed_hosts` lists `host[:port]` patterns with `*` wildcards; without the list,
//! public addresses are allowed and private, loopback and link-local ones are denied. A check
//! runs on the resolved address (and, for HTTP, on the host name too).

use std::net::{IpAddr, SocketAddr};

/// The network rules of one entry.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The entry imports `wasi:sockets` or `wasi:http`.
    pub enabled: bool,
    /// `None`: public addresses only.
    pub allowed: Option<Vec<Pattern>>,
}

/// One `host[:port]` pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    host: String,
    /// `None` or `*`: any port.
    port: Option<String>,
}

impl Pattern {
    pub fn parse(text: &str) -> Pattern {
        let text = text.trim().to_ascii_lowercase();
        // `[v6]:port`, `host:port`, or a bare host (a v6 address without brackets has several colons).
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            match rest.split_once(']') {
                Some((h, p)) => (h.to_string(), p.strip_prefix(':').map(str::to_string)),
                None => (rest.to_string(), None),
            }
        } else if text.matches(':').count() == 1 {
            let (h, p) = text.split_once(':').unwrap_or((&text, ""));
            (h.to_string(), Some(p.to_string()))
        } else {
            (text.clone(), None)
        };
        Pattern { host, port }
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.port.as_deref() {
            None | Some("*") => true,
            Some(p) => p == port.to_string(),
        };
        port_ok && wildcard(&self.host, &host.to_ascii_lowercase())
    }
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Private, loopback, link-local, unspecified and other non-public addresses.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // carrier-grade NAT
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let seg = v6.segments()[0];
            v6.is_loopback() || v6.is_unspecified() || (seg & 0xfe00) == 0xfc00 || (seg & 0xffc0) == 0xfe80
        }
    }
}

impl Policy {
    pub fn new(enabled: bool, allowed: Option<&[String]>) -> Policy {
        Policy { enabled, allowed: allowed.map(|list| list.iter().map(|p| Pattern::parse(p)).collect()) }
    }

    /// May the guest connect to `addr` (reached through `name`, when known)?
    pub fn allows(&self, name: Option<&str>, addr: SocketAddr) -> bool {
        if !self.enabled {
            return false;
        }
        match &self.allowed {
            None => !is_private(addr.ip()),
            Some(patterns) => {
                let ip = addr.ip().to_string();
                patterns.iter().any(|p| p.matches(&ip, addr.port()) || name.is_some_and(|n| p.matches(n, addr.port())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    #[test]
    fn default_policy_denies_private_addresses() {
        let p = Policy::new(true, None);
        assert!(p.allows(None, addr("93.184.216.34:80")));
        assert!(!p.allows(None, addr("127.0.0.1:80")));
        assert!(!p.allows(None, addr("10.1.2.3:443")));
        assert!(!p.allows(None, addr("192.168.0.1:443")));
        assert!(!p.allows(None, addr("169.254.169.254:80")));
        assert!(!p.allows(None, addr("[::1]:80")));
        assert!(!Policy::new(false, None).allows(None, addr("93.184.216.34:80")));
    }

    #[test]
    fn patterns_match_hosts_and_ports() {
        let list = vec!["127.0.0.1:*".to_string(), "*.example.com:443".to_string(), "api.test".to_string()];
        let p = Policy::new(true, Some(&list));
        assert!(p.allows(None, addr("127.0.0.1:8080")));
        assert!(p.allows(Some("www.example.com"), addr("93.184.216.34:443")));
        assert!(!p.allows(Some("www.example.com"), addr("93.184.216.34:80")));
        assert!(!p.allows(Some("example.com"), addr("93.184.216.34:443")));
        assert!(p.allows(Some("api.test"), addr("10.0.0.1:1234")));
        assert!(!p.allows(None, addr("127.0.0.2:80")));
    }
}

/// The security context of the call running in a store, for the checks its network traffic
/// meets while it runs (`http.request` on each URL, `socket.connect` on each address: SPEC §5.4).
/// Set by each call that may reach the network; read by the HTTP hooks and the socket check.
#[derive(Default)]
pub struct Caller(std::sync::Mutex<std::sync::Arc<crate::security::Context>>);

impl Caller {
    pub fn set(&self, ctx: &std::sync::Arc<crate::security::Context>) {
        if let Ok(mut c) = self.0.lock() {
            if !std::sync::Arc::ptr_eq(&c, ctx) {
                *c = ctx.clone();
            }
        }
    }

    /// Whether the caller's scope lets it do `action` on the resource named in any of `names`
    /// (a deny of any wins; then an allow of any; else the undefined rule).
    pub fn allows(&self, action: &str, names: &[String]) -> bool {
        match self.0.lock() {
            Ok(c) => c.can_any(action, names),
            Err(_) => false,
        }
    }
}
