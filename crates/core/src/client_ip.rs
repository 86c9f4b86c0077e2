//! The client's address, believing forwarding headers only from proxies you trust.
//!
//! A client can write any `X-Forwarded-For` it likes, so the header is evidence only when the
//! hop that appended to it is one of your own proxies. [`TrustedProxies`] walks the forwarding
//! chain from the nearest hop outward and stops at the first address that is not a configured
//! proxy: that address is the client. With no trusted networks configured, the TCP peer is the
//! client and the headers are ignored.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use http::HeaderMap;
use ipnet::IpNet;

use crate::PeerAddr;

/// The client address a [`TrustedProxies`] resolved, kept in request extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// An entry of the trusted proxy list that is neither an address nor a network.
#[derive(Debug, thiserror::Error)]
#[error("trusted proxy {entry:?} is not an IP address or CIDR network")]
pub struct TrustedProxiesError {
    entry: String,
}

/// The networks whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// Trusts no one: the TCP peer is always the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts the given networks.
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            networks: networks.into_iter().collect(),
        }
    }

    /// Parses entries such as `"10.0.0.0/8"`, `"127.0.0.1"` or `"::1"`.
    pub fn parse<S: AsRef<str>>(
        entries: impl IntoIterator<Item = S>,
    ) -> Result<Self, TrustedProxiesError> {
        let networks = entries
            .into_iter()
            .map(|entry| parse_network(entry.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { networks })
    }

    /// Whether `addr` belongs to a trusted network.
    pub fn is_trusted(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.networks.iter().any(|net| net.contains(&addr))
    }

    /// The client address of a request, given the TCP peer.
    ///
    /// `Forwarded` (RFC 7239) is read when present, otherwise `X-Forwarded-For`. When the chain
    /// holds something that is not an address (`unknown`, an obfuscated node, garbage), the
    /// last trusted hop before it is the answer: nothing beyond it can be believed.
    pub fn client_ip(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        let peer = canonical(peer);
        if !self.is_trusted(peer) {
            return peer;
        }

        let chain = forwarded_chain(headers);
        let mut client = peer;
        for hop in chain.iter().rev() {
            let Some(addr) = hop.map(canonical) else {
                break;
            };
            client = addr;
            if !self.is_trusted(addr) {
                break;
            }
        }
        client
    }

    /// [`Self::client_ip`] for a request carrying a [`PeerAddr`] extension.
    ///
    /// Returns `None` when the server did not record the peer address.
    pub fn client_ip_of<B>(&self, request: &http::Request<B>) -> Option<IpAddr> {
        if let Some(ClientIp(ip)) = request.extensions().get::<ClientIp>() {
            return Some(*ip);
        }
        let PeerAddr(peer) = request.extensions().get::<PeerAddr>()?;
        Some(self.client_ip(request.headers(), peer.ip()))
    }
}

impl<'de> serde::Deserialize<'de> for TrustedProxies {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(deserializer)?;
        Self::parse(entries).map_err(serde::de::Error::custom)
    }
}

fn parse_network(entry: &str) -> Result<IpNet, TrustedProxiesError> {
    let entry = entry.trim();
    IpNet::from_str(entry)
        .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
        .map_err(|_| TrustedProxiesError {
            entry: entry.to_owned(),
        })
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) compare as the IPv4 address they carry.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// The forwarding chain, client first; `None` marks an entry that is not an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<_> = headers.get_all(http::header::FORWARDED).iter().collect();
    if !forwarded.is_empty() {
        return forwarded
            .into_iter()
            .flat_map(|value| split_list(value.to_str().ok()))
            .map(|element| forwarded_for(&element))
            .collect();
    }

    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| split_list(value.to_str().ok()))
        .map(|entry| parse_node(&entry))
        .collect()
}

fn split_list(value: Option<&str>) -> Vec<String> {
    match value {
        Some(value) => value.split(',').map(|s| s.trim().to_owned()).collect(),
        // A header that is not visible ASCII is one unreadable hop.
        None => vec![String::new()],
    }
}

/// The `for=` parameter of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(value.trim().trim_matches('"')))
            .flatten()
    })
}

/// An address as forwarding headers write it: `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(addr) = IpAddr::from_str(node) {
        return Some(addr);
    }
    if let Ok(addr) = SocketAddr::from_str(node) {
        return Some(addr.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| IpAddr::from_str(inner).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(proxies.client_ip(&h, ip("203.0.113.9")), ip("203.0.113.9"));
    }

    #[test]
    fn no_trusted_networks_ignores_headers() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(
            TrustedProxies::none().client_ip(&h, ip("10.0.0.1")),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn walks_past_trusted_hops_to_the_first_untrusted() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8", "192.168.1.1"]).unwrap();
        // The client forged 6.6.6.6; the real client is 198.51.100.7, added by 192.168.1.1.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 192.168.1.1")]);
        assert_eq!(proxies.client_ip(&h, ip("10.1.2.3")), ip("198.51.100.7"));
    }

    #[test]
    fn several_header_lines_form_one_list() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-for", "10.0.0.5"),
        ]);
        assert_eq!(proxies.client_ip(&h, ip("10.0.0.1")), ip("198.51.100.7"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let h = headers(&[("x-forwarded-for", "198.51.100.7, not-an-ip, 10.0.0.9")]);
        assert_eq!(proxies.client_ip(&h, ip("10.0.0.1")), ip("10.0.0.9"));
    }

    #[test]
    fn forwarded_header_wins_and_handles_ipv6_and_ports() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let h = headers(&[
            (
                "forwarded",
                r#"for="[2001:db8::17]:4711";proto=https, for=10.0.0.2"#,
            ),
            ("x-forwarded-for", "6.6.6.6"),
        ]);
        assert_eq!(proxies.client_ip(&h, ip("10.0.0.1")), ip("2001:db8::17"));
    }

    #[test]
    fn mapped_ipv4_peers_match_ipv4_networks() {
        let proxies = TrustedProxies::parse(["127.0.0.1"]).unwrap();
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            proxies.client_ip(&h, ip("::ffff:127.0.0.1")),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn rejects_bad_entries() {
        let err = TrustedProxies::parse(["10.0.0.0/33"]).unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/33"));
    }
}
