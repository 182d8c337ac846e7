//! Who a request counts against: [`KeyExtractor`], and [`ClientIp`] with
//! IPv6 prefix grouping and opt-in trusted proxies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::extract::ConnectInfo;
use http::request::Parts;

use crate::{Error, Result};

/// Picks the rate-limit key of a request (a client address, a user id, an
/// API key). `None` means "cannot tell": [`RateLimitLayer`] then answers
/// `500`, so chain a fallback with [`or`](KeyExtractor::or).
///
/// Closures `Fn(&Parts) -> Option<String>` are extractors:
///
/// ```
/// use rampart::web::{ClientIp, KeyExtractor};
/// let by_api_key = |parts: &http::request::Parts| {
///     parts.headers.get("x-api-key")?.to_str().ok().map(|k| format!("key:{k}"))
/// };
/// let extractor = by_api_key.or(ClientIp::new());
/// # let _ = extractor;
/// ```
///
/// [`RateLimitLayer`]: super::RateLimitLayer
pub trait KeyExtractor: Send + Sync + 'static {
    /// The key for this request, or `None`.
    fn extract(&self, parts: &Parts) -> Option<String>;

    /// This extractor, then `other` when this one finds nothing.
    fn or<E: KeyExtractor>(self, other: E) -> Or<Self, E>
    where
        Self: Sized,
    {
        Or(self, other)
    }
}

impl<F> KeyExtractor for F
where
    F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
{
    fn extract(&self, parts: &Parts) -> Option<String> {
        self(parts)
    }
}

/// Two extractors, the second when the first finds nothing
/// ([`KeyExtractor::or`]).
#[derive(Debug, Clone)]
pub struct Or<A, B>(A, B);

impl<A: KeyExtractor, B: KeyExtractor> KeyExtractor for Or<A, B> {
    fn extract(&self, parts: &Parts) -> Option<String> {
        self.0.extract(parts).or_else(|| self.1.extract(parts))
    }
}

/// An address block in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or a
/// single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Whether `ip` is inside the block (IPv4-mapped IPv6 addresses count
    /// as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_v4(ip, self.bits) == net,
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask_v6(ip, self.bits) == net,
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::config(format!("{text:?} is not an IP address or CIDR block"));
        let (ip, bits) = match text.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits)),
            None => (text, None),
        };
        let ip = IpAddr::from_str(ip.trim())
            .map_err(|_| bad())?
            .to_canonical();
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if bits > max {
            return Err(bad());
        }
        let addr = match ip {
            IpAddr::V4(v4) => IpAddr::V4(mask_v4(v4, bits)),
            IpAddr::V6(v6) => IpAddr::V6(mask_v6(v6, bits)),
        };
        Ok(Cidr { addr, bits })
    }
}

fn mask_v4(ip: Ipv4Addr, bits: u8) -> Ipv4Addr {
    let bits = u32::from(bits.min(32));
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    Ipv4Addr::from(u32::from(ip) & mask)
}

fn mask_v6(ip: Ipv6Addr, bits: u8) -> Ipv6Addr {
    let bits = u32::from(bits.min(128));
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    Ipv6Addr::from(u128::from(ip) & mask)
}

/// The rate-limit key of a client address: IPv4 addresses masked to
/// `v4_bits` and IPv6 addresses to `v6_bits`, so that one subscriber's
/// addresses share a bucket. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
/// are IPv4.
///
/// ```
/// use rampart::web::group_ip;
/// let a = group_ip("2001:db8:1:2:aaaa::1".parse().unwrap(), 32, 64);
/// let b = group_ip("2001:db8:1:2:bbbb::9".parse().unwrap(), 32, 64);
/// assert_eq!(a, b);
/// assert_eq!(a, "ip6:2001:db8:1:2::/64");
/// assert_eq!(group_ip("::ffff:203.0.113.7".parse().unwrap(), 32, 64), "ip4:203.0.113.7");
/// ```
pub fn group_ip(ip: IpAddr, v4_bits: u8, v6_bits: u8) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) if v4_bits >= 32 => format!("ip4:{v4}"),
        IpAddr::V4(v4) => format!("ip4:{}/{}", mask_v4(v4, v4_bits), v4_bits),
        IpAddr::V6(v6) if v6_bits >= 128 => format!("ip6:{v6}"),
        IpAddr::V6(v6) => format!("ip6:{}/{}", mask_v6(v6, v6_bits), v6_bits),
    }
}

/// The client's IP address as the key, from the connection's peer address
/// (axum's `ConnectInfo<SocketAddr>`: serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`).
///
/// * IPv6 addresses are grouped by their /64 (configurable with
///   [`ipv6_prefix`](Self::ipv6_prefix)): a subscriber usually owns a whole
///   /64 and can rotate through it, so per-address limits would not hold.
///   IPv4 addresses count alone (see [`ipv4_prefix`](Self::ipv4_prefix)).
/// * `X-Forwarded-For` is read **only** when the peer is one of the
///   [trusted proxies](Self::trust_proxies): the client is then the
///   rightmost address in the header that is not itself a trusted proxy
///   (the leftmost, if all are). A malformed entry stops the walk at the
///   last trusted hop, which is then the key (stricter, never looser).
///   Without trusted proxies the header is ignored, since any client can
///   write it.
#[derive(Debug, Clone)]
pub struct ClientIp {
    v4_bits: u8,
    v6_bits: u8,
    trusted: Vec<Cidr>,
}

impl Default for ClientIp {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientIp {
    /// Peer address only; IPv6 by /64, IPv4 by address.
    pub fn new() -> Self {
        Self {
            v4_bits: 32,
            v6_bits: 64,
            trusted: Vec::new(),
        }
    }

    /// Groups IPv6 clients by this prefix length (1 to 128; default 64).
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.v6_bits = bits.clamp(1, 128);
        self
    }

    /// Groups IPv4 clients by this prefix length (1 to 32; default 32,
    /// one address each).
    pub fn ipv4_prefix(mut self, bits: u8) -> Self {
        self.v4_bits = bits.clamp(1, 32);
        self
    }

    /// Trusts `X-Forwarded-For` from peers in these blocks (e.g.
    /// `["127.0.0.1", "10.0.0.0/8"]`, your load balancers).
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] for an entry that is not an address or
    /// a CIDR block.
    pub fn trust_proxies<I, T>(mut self, blocks: I) -> Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        for block in blocks {
            self.trusted.push(block.as_ref().parse()?);
        }
        Ok(self)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    /// The client's address: the peer, or (behind a trusted proxy) the one
    /// `X-Forwarded-For` names. `None` without connect info.
    pub fn client_addr(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()?
            .0
            .ip()
            .to_canonical();
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let hops: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.is_trusted(ip) {
                        return Some(ip);
                    }
                }
                None => return Some(client),
            }
        }
        Some(client)
    }

    /// The key of `ip` under this extractor's grouping (see [`group_ip`]).
    pub fn key_of(&self, ip: IpAddr) -> String {
        group_ip(ip, self.v4_bits, self.v6_bits)
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port
/// (`1.2.3.4:5678`, `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

impl KeyExtractor for ClientIp {
    fn extract(&self, parts: &Parts) -> Option<String> {
        self.client_addr(parts).map(|ip| self.key_of(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, xff: &[&str]) -> Parts {
        let mut req = http::Request::builder().uri("/");
        for v in xff {
            req = req.header("x-forwarded-for", *v);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    fn key(extractor: &ClientIp, peer: &str, xff: &[&str]) -> Option<String> {
        extractor.extract(&parts(peer, xff))
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_key() {
        let ip = ClientIp::new();
        let a = key(&ip, "[2001:db8:aa:bb:1111:2222:3333:4444]:5000", &[]);
        let b = key(&ip, "[2001:db8:aa:bb:ffff::1]:6000", &[]);
        assert_eq!(a, b);
        assert_eq!(a.as_deref(), Some("ip6:2001:db8:aa:bb::/64"));
    }

    #[test]
    fn different_64s_get_different_keys() {
        let ip = ClientIp::new();
        let a = key(&ip, "[2001:db8:aa:bb::1]:5000", &[]);
        let b = key(&ip, "[2001:db8:aa:bc::1]:5000", &[]);
        assert_ne!(a, b);
    }

    #[test]
    fn the_prefix_is_configurable() {
        let by48 = ClientIp::new().ipv6_prefix(48);
        assert_eq!(
            key(&by48, "[2001:db8:aa:bb::1]:1", &[]),
            key(&by48, "[2001:db8:aa:cc::1]:1", &[])
        );
        let by128 = ClientIp::new().ipv6_prefix(128);
        assert_ne!(
            key(&by128, "[2001:db8:aa:bb::1]:1", &[]),
            key(&by128, "[2001:db8:aa:bb::2]:1", &[])
        );
        assert_eq!(
            key(&by128, "[2001:db8::2]:1", &[]).as_deref(),
            Some("ip6:2001:db8::2")
        );
    }

    #[test]
    fn ipv4_mapped_ipv6_is_ipv4() {
        let ip = ClientIp::new();
        let mapped = key(&ip, "[::ffff:203.0.113.7]:80", &[]);
        let plain = key(&ip, "203.0.113.7:80", &[]);
        assert_eq!(mapped, plain);
        assert_eq!(plain.as_deref(), Some("ip4:203.0.113.7"));
        // IPv4 addresses count alone by default, even in one /24.
        assert_ne!(plain, key(&ip, "203.0.113.8:80", &[]));
        let by24 = ClientIp::new().ipv4_prefix(24);
        assert_eq!(
            key(&by24, "203.0.113.8:80", &[]).as_deref(),
            Some("ip4:203.0.113.0/24")
        );
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_trusted() {
        let ip = ClientIp::new();
        assert_eq!(
            key(&ip, "198.51.100.1:80", &["203.0.113.9"]).as_deref(),
            Some("ip4:198.51.100.1")
        );
        let behind = ClientIp::new()
            .trust_proxies(["198.51.100.0/24", "10.0.0.1"])
            .unwrap();
        // Rightmost untrusted entry: a client-written first entry is skipped.
        assert_eq!(
            key(
                &behind,
                "198.51.100.1:80",
                &["6.6.6.6, 203.0.113.9, 10.0.0.1"]
            )
            .as_deref(),
            Some("ip4:203.0.113.9")
        );
        // Several header lines are one list; IPv6 entries are grouped.
        assert_eq!(
            key(
                &behind,
                "198.51.100.1:80",
                &["1.1.1.1", "[2001:db8:1:2::7]:443"]
            )
            .as_deref(),
            Some("ip6:2001:db8:1:2::/64")
        );
        // A malformed entry: the last trusted hop is the key.
        assert_eq!(
            key(&behind, "198.51.100.1:80", &["203.0.113.9, junk"]).as_deref(),
            Some("ip4:198.51.100.1")
        );
        // Untrusted peer in the trusted setup: the header is ignored.
        assert_eq!(
            key(&behind, "192.0.2.1:80", &["203.0.113.9"]).as_deref(),
            Some("ip4:192.0.2.1")
        );
        assert!(ClientIp::new().trust_proxies(["10.0.0.0/33"]).is_err());
        assert!(ClientIp::new().trust_proxies(["nope"]).is_err());
    }

    #[test]
    fn no_connect_info_means_no_key_and_or_falls_back() {
        let (parts, ()) = http::Request::builder()
            .uri("/")
            .header("x-api-key", "k1")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(ClientIp::new().extract(&parts), None);
        let api_key = |p: &Parts| {
            Some(format!(
                "key:{}",
                p.headers.get("x-api-key")?.to_str().ok()?
            ))
        };
        assert_eq!(
            ClientIp::new().or(api_key).extract(&parts).as_deref(),
            Some("key:k1")
        );
    }
}
