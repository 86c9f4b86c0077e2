//! Which budget a request draws from.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderName;
use rampart_core::{Identity, RouteName, TrustedProxies};
use serde::Deserialize;

use crate::RateLimitError;

/// One part of a rate-limit key.
///
/// In configuration files: `"ip"`, `"subject"`, `"api_key"`, `"route"` or `"header:<name>"`.
/// A request that lacks a part (no identity, no such header) uses its client IP in that part's
/// place, so anonymous traffic is still limited per client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The client address, through the trusted-proxy rules; IPv6 clients by their network
    /// prefix (a /64 by default), since one host usually holds a whole /64.
    Ip,
    /// The authenticated [`Identity::subject`].
    Subject,
    /// The API key id or token id ([`Identity::credential_id`]).
    ApiKey,
    /// The configured route name ([`RouteName`]).
    Route,
    /// The value of a request header, such as a tenant id set by a trusted proxy.
    Header(HeaderName),
}

impl KeyPart {
    /// Parses the configuration spelling.
    pub fn parse(text: &str) -> Result<Self, RateLimitError> {
        let bad = |reason: &str| RateLimitError::Config {
            field: "key",
            reason: format!("{text:?}: {reason}"),
        };
        match text.trim() {
            "ip" => Ok(Self::Ip),
            "subject" => Ok(Self::Subject),
            "api_key" | "credential" => Ok(Self::ApiKey),
            "route" => Ok(Self::Route),
            other => {
                let name = other
                    .strip_prefix("header:")
                    .ok_or_else(|| bad("expected ip, subject, api_key, route or header:<name>"))?;
                HeaderName::try_from(name.trim())
                    .map(Self::Header)
                    .map_err(|_| bad("not a valid header name"))
            }
        }
    }
}

impl<'de> Deserialize<'de> for KeyPart {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Builds the key text of a request from its parts.
#[derive(Debug, Clone)]
pub(crate) struct KeyBuilder {
    pub(crate) parts: Vec<KeyPart>,
    pub(crate) proxies: TrustedProxies,
    pub(crate) ipv6_prefix: u8,
}

impl KeyBuilder {
    /// The key of `request`: its parts in order, `|`-separated, each with a short tag.
    pub(crate) fn key_of<B>(&self, request: &http::Request<B>) -> String {
        let mut key = String::with_capacity(48);
        let identity = request.extensions().get::<Identity>();
        let mut ip_written = false;

        for part in &self.parts {
            let value = match part {
                KeyPart::Ip => None,
                KeyPart::Subject => identity.map(|id| ("sub", id.subject.as_str())),
                KeyPart::ApiKey => identity
                    .and_then(|id| id.credential_id.as_deref())
                    .map(|id| ("cred", id)),
                KeyPart::Route => {
                    let route = request.extensions().get::<RouteName>();
                    Some(("route", route.map_or("unknown", RouteName::as_str)))
                }
                KeyPart::Header(name) => request
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| (name.as_str(), v)),
            };

            match value {
                Some((tag, value)) => push_part(&mut key, tag, value),
                // The part is missing (or is the IP): the client address stands in, once.
                None if !ip_written => {
                    ip_written = true;
                    let ip = self.proxies.client_ip_of(request);
                    push_ip(&mut key, ip, self.ipv6_prefix);
                }
                None => {}
            }
        }
        key
    }
}

fn push_part(key: &mut String, tag: &str, value: &str) {
    if !key.is_empty() {
        key.push('|');
    }
    key.push_str(tag);
    key.push(':');
    // Escaped so that a value holding `|` cannot pose as two parts.
    for c in value.chars() {
        match c {
            '|' => key.push_str("%7C"),
            '%' => key.push_str("%25"),
            c => key.push(c),
        }
    }
}

fn push_ip(key: &mut String, ip: Option<IpAddr>, ipv6_prefix: u8) {
    if !key.is_empty() {
        key.push('|');
    }
    key.push_str("ip:");
    // Writing to a String cannot fail.
    let _ = match ip.map(canonical) {
        Some(IpAddr::V4(v4)) => write!(key, "{v4}"),
        Some(IpAddr::V6(v6)) if ipv6_prefix >= 128 => write!(key, "{v6}"),
        Some(IpAddr::V6(v6)) => write!(key, "{}/{ipv6_prefix}", mask_v6(v6, ipv6_prefix)),
        // Limitation: a server that records no peer address puts every such request in one
        // bucket; the gateway always records it.
        None => write!(key, "unknown"),
    };
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(IpAddr::V6(v6), |v4: Ipv4Addr| IpAddr::V4(v4)),
        v4 @ IpAddr::V4(_) => v4,
    }
}

fn mask_v6(addr: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let bits = u128::from(addr);
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Ipv6Addr::from(bits & mask)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rampart_core::{CredentialKind, PeerAddr};

    fn builder(parts: &[&str], proxies: &[&str]) -> KeyBuilder {
        KeyBuilder {
            parts: parts.iter().map(|p| KeyPart::parse(p).unwrap()).collect(),
            proxies: TrustedProxies::parse(proxies).unwrap(),
            ipv6_prefix: 64,
        }
    }

    fn request(peer: &str) -> http::Request<()> {
        let mut request = http::Request::new(());
        request
            .extensions_mut()
            .insert(PeerAddr(peer.parse().unwrap()));
        request
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let b = builder(&["ip"], &[]);
        let one = b.key_of(&request("[2001:db8:1:2:aaaa::1]:4000"));
        let two = b.key_of(&request("[2001:db8:1:2:bbbb::9]:4000"));
        assert_eq!(one, "ip:2001:db8:1:2::/64");
        assert_eq!(one, two);
        assert_ne!(one, b.key_of(&request("[2001:db8:1:3::1]:4000")));
    }

    #[test]
    fn identity_parts_fall_back_to_the_ip() {
        let b = builder(&["subject", "route"], &[]);
        let mut anonymous = request("203.0.113.9:1");
        anonymous.extensions_mut().insert(RouteName::new("execute"));
        assert_eq!(b.key_of(&anonymous), "ip:203.0.113.9|route:execute");

        let mut known = request("203.0.113.9:1");
        known
            .extensions_mut()
            .insert(Identity::new("alice", CredentialKind::Jwt));
        assert_eq!(b.key_of(&known), "sub:alice|route:unknown");
    }

    #[test]
    fn header_values_cannot_forge_extra_parts() {
        let b = builder(&["header:x-tenant", "subject"], &[]);
        let mut forged = request("203.0.113.9:1");
        forged
            .headers_mut()
            .insert("x-tenant", "a|sub:bob".parse().unwrap());
        assert_eq!(b.key_of(&forged), "x-tenant:a%7Csub:bob|ip:203.0.113.9");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let b = builder(&["ip"], &["10.0.0.0/8"]);
        let mut via_proxy = request("10.0.0.2:1");
        via_proxy
            .headers_mut()
            .insert("x-forwarded-for", "198.51.100.7".parse().unwrap());
        assert_eq!(b.key_of(&via_proxy), "ip:198.51.100.7");

        let mut direct = request("203.0.113.9:1");
        direct
            .headers_mut()
            .insert("x-forwarded-for", "198.51.100.7".parse().unwrap());
        assert_eq!(b.key_of(&direct), "ip:203.0.113.9");
    }

    #[test]
    fn rejects_unknown_parts() {
        assert!(KeyPart::parse("cookie").is_err());
        assert!(KeyPart::parse("header:bad header").is_err());
        assert_eq!(
            KeyPart::parse("header:X-Tenant").unwrap(),
            KeyPart::Header(HeaderName::from_static("x-tenant"))
        );
    }
}
