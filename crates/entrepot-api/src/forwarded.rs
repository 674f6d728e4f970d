//! Who the client is: the TCP peer, or, behind a configured reverse proxy, the
//! address that proxy says it forwarded for.
//!
//! `X-Forwarded-*` and `Forwarded` headers are believed only from a peer in
//! [`TrustedProxies`] (none by default). From anyone else they are removed
//! before any handler sees the request, so no handler can be misled by them
//! (the token realm in `WWW-Authenticate`, per-client password limits).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;

const FORWARDED_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("forwarded"),
];

/// An address range: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    /// `10.0.0.1`, `10.0.0.0/8`, `::1` or `fd00::/8`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has a bad prefix length (0-{max})"))?,
        };
        Ok(Self { addr, prefix })
    }
}

/// The reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<Cidr>>);

impl TrustedProxies {
    /// Trust these ranges.
    pub fn new(ranges: Vec<Cidr>) -> Self {
        Self(Arc::new(ranges))
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client behind `peer`: the peer itself unless it is trusted, else
    /// the right-most address of `X-Forwarded-For` that is not a trusted
    /// proxy (earlier entries are the client's own word).
    pub fn client(&self, peer: IpAddr, x_forwarded_for: Option<&str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let Some(list) = x_forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in list.rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// A request extension set by the listener on connections it terminated TLS
/// for: the client spoke HTTPS to this server directly.
#[derive(Debug, Clone, Copy)]
pub struct TlsConnection;

/// The middleware: drop forwarding headers from untrusted peers and run the
/// request with its client address known to the services. On a connection
/// whose TLS this server terminated, `X-Forwarded-Proto: https` is set unless
/// a trusted proxy already said which scheme its client used, so every
/// handler learns the scheme one way (the token realm must be `https://`).
pub async fn client_origin(
    State(proxies): State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted = peer.is_some_and(|p| proxies.trusts(p));
    if !trusted {
        let headers = request.headers_mut();
        for name in &FORWARDED_HEADERS {
            headers.remove(name);
        }
    }
    if request.extensions().get::<TlsConnection>().is_some()
        && !request.headers().contains_key(&FORWARDED_HEADERS[1])
    {
        request.headers_mut().insert(
            FORWARDED_HEADERS[1].clone(),
            axum::http::HeaderValue::from_static("https"),
        );
    }
    let Some(peer) = peer else {
        return next.run(request).await;
    };
    let forwarded_for = request
        .headers()
        .get(&FORWARDED_HEADERS[0])
        .and_then(|v| v.to_str().ok());
    let client = proxies.client(peer, forwarded_for);
    entrepot_services::origin::with_client(client, next.run(request)).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_match() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!("0.0.0.0/0"
            .parse::<Cidr>()
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("proxy".parse::<Cidr>().is_err());
    }

    #[test]
    fn the_client_is_believed_only_through_trusted_proxies() {
        let proxies = TrustedProxies::new(vec!["127.0.0.1".parse().unwrap()]);
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(
            proxies.client(proxy, Some("6.6.6.6, 203.0.113.7")),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(proxies.client(other, Some("203.0.113.7")), other);
        assert_eq!(
            TrustedProxies::default().client(proxy, Some("1.2.3.4")),
            proxy
        );
    }
}
