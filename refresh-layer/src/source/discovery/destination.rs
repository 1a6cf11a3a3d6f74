//! Where discovery may send a request: the rules that keep a resource (or anything that can
//! answer in its name) from steering the client's requests, and with them its credentials.
//!
//! - **Transport**: every metadata, authorization-server and token URL is `https`, except on
//!   this machine (`localhost`, `127.0.0.0/8`, `[::1]`), where development servers live.
//! - **Address**: a resource on a public address cannot send the client to a private,
//!   loopback or link-local one (SSRF towards the client's own network). Host names are
//!   resolved to tell; a name that does not resolve is refused too, since nothing can be said
//!   of where it leads. A resource that is itself on such an address may name them.
//!
//! The address check resolves the name before the request and the connector resolves it again
//! when it connects, so a name whose answers change in between (DNS rebinding) is not caught
//! here; a connector that refuses internal addresses itself closes that gap.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use http::Uri;

use crate::error::DiscoveryError;

/// Where an address is, from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Reachable from anywhere: what any resource may name.
    Public,
    /// Loopback, private (RFC 1918, RFC 4193, shared address space) or link-local.
    Internal(&'static str),
}

/// How long one name may take to resolve.
const RESOLVE_LIMIT: Duration = Duration::from_secs(5);

fn place_v4(ip: Ipv4Addr) -> Place {
    let [a, b, c, _] = ip.octets();
    let kind = if ip.is_loopback() {
        "loopback"
    } else if ip.is_private()
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
    {
        // RFC 1918; RFC 6598's shared address space (carrier-grade NAT, cloud VPCs); the
        // IETF protocol block 192.0.0.0/24 (where some clouds answer metadata requests);
        // and the benchmarking network 198.18.0.0/15, routed inside some data centres.
        "private"
    } else if ip.is_link_local() {
        // 169.254/16, where cloud metadata services answer.
        "link-local"
    } else if ip.is_unspecified() || a == 0 || ip.is_broadcast() || a >= 224 {
        // 0.0.0.0/8 reaches this machine on most systems; multicast and the reserved
        // 240.0.0.0/4 are nobody's authorization server.
        "unspecified"
    } else {
        return Place::Public;
    };
    Place::Internal(kind)
}

fn place_v6(ip: Ipv6Addr) -> Place {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // Forms that carry an IPv4 address a gateway may route to: IPv4-mapped, the deprecated
    // IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96, 64:ff9b:1::/48) and 6to4 (2002::/16).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return place_v4(v4);
    }
    if s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return place_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) {
        return place_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        let inner = place_v4(embedded(s[1], s[2]));
        if inner != Place::Public {
            return inner;
        }
    }
    let first = s[0];
    let kind = if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if first & 0xfe00 == 0xfc00 {
        "private"
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        // Link-local, and the deprecated site-local range some networks still route.
        "link-local"
    } else if first & 0xff00 == 0xff00 {
        "unspecified"
    } else {
        return Place::Public;
    };
    Place::Internal(kind)
}

pub(crate) fn place_of(ip: IpAddr) -> Place {
    match ip {
        IpAddr::V4(v4) => place_v4(v4),
        IpAddr::V6(v6) => place_v6(v6),
    }
}

/// The host of `uri` as written: brackets of an IPv6 literal removed.
fn host(uri: &Uri) -> &str {
    let h = uri.host().unwrap_or_default();
    h.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h)
}

/// `localhost` and its subdomains are this machine whatever DNS says (RFC 6761 §6.3).
fn is_localhost_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// Whether `uri` names this machine without asking DNS: `localhost`, `127.0.0.0/8`, `::1`.
pub(crate) fn is_loopback(uri: &Uri) -> bool {
    let h = host(uri);
    is_localhost_name(h) || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `https`, or `http` to this machine; anything else is refused unless plain http was
/// allowed on purpose.
pub(crate) fn check_transport(uri: &Uri, allow_http: bool) -> Result<(), DiscoveryError> {
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if allow_http || is_loopback(uri) => Ok(()),
        _ => Err(DiscoveryError::InsecureUrl {
            url: uri.to_string(),
        }),
    }
}

/// Which of a name's addresses decides where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Judge {
    /// Any internal address makes it internal: for the servers a resource names, whose
    /// owner could list one public and one internal address and let the connector pick.
    AnyInternal,
    /// Internal only when every address is: for the resource itself, so that an internal
    /// address in its own DNS cannot lift the rule for the servers it names.
    AllInternal,
}

/// Where `uri`'s host is, `None` when it does not resolve (within [`RESOLVE_LIMIT`]).
pub(crate) async fn place(uri: &Uri, judge: Judge) -> Option<Place> {
    let h = host(uri);
    if is_localhost_name(h) {
        return Some(Place::Internal("loopback"));
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(place_of(ip));
    }
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    let addrs = tokio::time::timeout(RESOLVE_LIMIT, tokio::net::lookup_host((h, port)))
        .await
        .ok()?
        .ok()?;
    combine(addrs.map(|a| place_of(a.ip())), judge)
}

/// The place of a name with these addresses' places.
fn combine(places: impl Iterator<Item = Place>, judge: Judge) -> Option<Place> {
    let mut seen = None;
    for p in places {
        seen = match (judge, p, seen) {
            (Judge::AnyInternal, internal @ Place::Internal(_), _) => return Some(internal),
            (Judge::AllInternal, Place::Public, _) => return Some(Place::Public),
            (_, p, None) => Some(p),
            (_, _, kept) => kept,
        };
    }
    seen
}

/// The address rule for a server the resource at `resource` (already placed) sent us to.
pub(crate) async fn check_place(
    uri: &Uri,
    resource: Place,
    allow_internal: bool,
) -> Result<(), DiscoveryError> {
    if allow_internal || resource != Place::Public {
        return Ok(());
    }
    match place(uri, Judge::AnyInternal).await {
        Some(Place::Public) => Ok(()),
        Some(Place::Internal(kind)) => Err(DiscoveryError::InternalAddress {
            url: uri.to_string(),
            kind,
        }),
        None => Err(DiscoveryError::Unresolvable {
            url: uri.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Place {
        place_of(s.parse().unwrap())
    }

    #[test]
    fn internal_ranges_are_internal() {
        for (addr, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "private"),
            ("100.127.255.255", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fc00::1", "private"),
            ("fd12:3456::1", "private"),
            ("fe80::1", "link-local"),
            ("fec0::1", "link-local"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::10.0.0.1", "private"),
            ("::127.0.0.2", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b:1::c0a8:101", "private"),
            ("2002:a00:1::1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("ff02::1", "unspecified"),
            ("192.0.0.192", "private"),
            ("198.18.0.1", "private"),
            ("224.0.0.1", "unspecified"),
            ("240.0.0.1", "unspecified"),
            ("255.255.255.255", "unspecified"),
        ] {
            assert_eq!(ip(addr), Place::Internal(kind), "{addr}");
        }
    }

    #[test]
    fn public_ranges_are_public() {
        for addr in [
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "192.169.0.1",
            "2001:db8::1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "198.20.0.1",
            "223.255.255.255",
        ] {
            assert_eq!(ip(addr), Place::Public, "{addr}");
        }
    }

    #[test]
    fn plain_http_only_reaches_this_machine() {
        let ok = |u: &str| check_transport(&u.parse().unwrap(), false).is_ok();
        assert!(ok("https://id.example.com"));
        assert!(ok("http://127.0.0.1:8080/token"));
        assert!(ok("http://[::1]:8080/token"));
        assert!(ok("http://localhost:3000"));
        assert!(ok("http://api.localhost"));
        assert!(!ok("http://id.example.com/token"));
        assert!(!ok("http://10.0.0.1/token"));
        assert!(!ok("http://localhost.example.com"));
        assert!(!ok("ftp://127.0.0.1/"));
        assert!(check_transport(&"http://id.example.com".parse().unwrap(), true).is_ok());
    }

    #[test]
    fn a_name_is_judged_by_all_its_addresses() {
        let public = Place::Public;
        let lo = Place::Internal("loopback");
        let mixed = || [public, lo].into_iter();
        assert_eq!(combine(mixed(), Judge::AnyInternal), Some(lo));
        // A resource that lists one internal address among public ones stays public, so it
        // cannot lift the rule for the servers it names.
        assert_eq!(combine(mixed(), Judge::AllInternal), Some(public));
        assert_eq!(combine([lo, lo].into_iter(), Judge::AllInternal), Some(lo));
        assert_eq!(combine(std::iter::empty(), Judge::AnyInternal), None);
    }

    async fn place_any(uri: &Uri) -> Option<Place> {
        place(uri, Judge::AnyInternal).await
    }

    #[tokio::test]
    async fn literals_and_localhost_are_placed_without_dns() {
        let at = |u: &str| u.parse::<Uri>().unwrap();
        assert_eq!(
            place_any(&at("http://localhost:1")).await,
            Some(Place::Internal("loopback"))
        );
        assert_eq!(
            place_any(&at("http://[fe80::1]:1")).await,
            Some(Place::Internal("link-local"))
        );
        assert_eq!(place_any(&at("https://1.1.1.1")).await, Some(Place::Public));
        // A public resource may not name an internal server; an internal one may.
        let internal = at("http://169.254.169.254/latest");
        assert!(matches!(
            check_place(&internal, Place::Public, false).await,
            Err(DiscoveryError::InternalAddress {
                kind: "link-local",
                ..
            })
        ));
        assert!(
            check_place(&internal, Place::Internal("loopback"), false)
                .await
                .is_ok()
        );
        assert!(check_place(&internal, Place::Public, true).await.is_ok());
    }
}
