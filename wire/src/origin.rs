//! [`Origin`]: the scheme, host and port of a URL, parsed once and compared the way browsers
//! and RFC 6454 do, so that the client's credential scope, the server's CORS and CSRF lists
//! and the doctor's same-origin test agree on what one origin is.

use std::fmt;

use http::Uri;

/// A scheme, host and port (RFC 6454): where a credential may be sent, where a page is, who
/// may read an answer. Compared by scheme, host (without case) and effective port.
///
/// ```
/// use portcullis::wire::Origin;
/// let o = Origin::parse("https://API.example.com").unwrap();
/// assert_eq!(o.to_string(), "https://api.example.com:443");
/// assert!(o.matches(&"https://api.example.com:443/x?y".parse().unwrap()));
/// assert!(!o.matches(&"http://api.example.com/x".parse().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
    /// `host:port`, built once: what `matches` compares a request's authority with.
    host_port: String,
}

/// An origin string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid origin {0:?}: write it as scheme://host[:port], without a path (a credential is scoped to a whole origin)"
)]
pub struct InvalidOrigin(String);

impl Origin {
    /// Parse `scheme://host[:port]`, as browsers write an origin. A path, query or
    /// fragment is refused rather than dropped: a credential is scoped to a whole origin, and
    /// `https://h/api` would silently cover `https://h/admin` too.
    pub fn parse(s: &str) -> Result<Self, InvalidOrigin> {
        let invalid = || InvalidOrigin(s.to_owned());
        let uri: Uri = s.parse().map_err(|_| invalid())?;
        if uri
            .path_and_query()
            .is_some_and(|p| !matches!(p.as_str(), "" | "/"))
        {
            return Err(invalid());
        }
        Origin::of(&uri).ok_or_else(invalid)
    }

    /// The origin of an absolute URI; `None` for a relative one.
    pub fn of(uri: &Uri) -> Option<Self> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?.to_ascii_lowercase();
        let port = uri.port_u16().or(default_port(&scheme))?;
        Some(Origin {
            host_port: format!("{host}:{port}"),
            scheme,
            host,
            port,
        })
    }

    /// The scheme, in lower case.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host, in lower case (an IPv6 address keeps its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, the scheme's default when the URL names none.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// True when `uri` is on this origin.
    ///
    /// Runs for every request, so it compares in place: no allocation, and the authority is
    /// first compared as a whole (`host` or `host:port`, what clients send) before it is split.
    pub fn matches(&self, uri: &Uri) -> bool {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(&self.scheme) {
            return false;
        }
        let a = authority.as_str();
        let default = default_port(&self.scheme);
        // Exact bytes first: clients send the host as configured, and a plain comparison is
        // several times cheaper than the case-folding one.
        if a == self.host || a.eq_ignore_ascii_case(&self.host) {
            return default == Some(self.port);
        }
        if a.eq_ignore_ascii_case(&self.host_port) {
            return true;
        }
        // Userinfo, a zero-padded port, or another origin: the exact rule.
        authority.host().eq_ignore_ascii_case(&self.host)
            && authority.port_u16().or(default) == Some(self.port)
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_without_scheme_host_or_with_a_path_are_refused() {
        assert!(Origin::parse("/relative").is_err());
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("null").is_err());
        // A path would be dropped, widening the scope to the whole origin: refused.
        for with_path in ["http://h/api", "http://h:8080/api/", "http://h/?q=1"] {
            assert!(Origin::parse(with_path).is_err(), "{with_path}");
        }
        assert!(Origin::parse("http://h/").is_ok());
        let err = Origin::parse("http://h/api").unwrap_err();
        assert!(err.to_string().contains("\"http://h/api\""), "{err}");
    }

    #[test]
    fn origins_compare_scheme_host_and_effective_port() {
        let o = Origin::parse("http://127.0.0.1:8080").unwrap();
        assert!(o.matches(&"http://127.0.0.1:8080/a".parse().unwrap()));
        assert!(!o.matches(&"http://127.0.0.1:8081/a".parse().unwrap()));
        assert!(!o.matches(&"https://127.0.0.1:8080/a".parse().unwrap()));
        assert!(!o.matches(&"/a".parse().unwrap()));
        assert!(
            Origin::parse("http://x")
                .unwrap()
                .matches(&"http://X:80/".parse().unwrap())
        );
        assert_eq!(
            Origin::parse("HTTPS://API.test").unwrap(),
            Origin::parse("https://api.test:443").unwrap()
        );
        assert_ne!(
            Origin::parse("http://api.test").unwrap(),
            Origin::parse("https://api.test").unwrap()
        );
    }

    #[test]
    fn an_origin_displays_as_scheme_host_and_port() {
        let o = Origin::parse("https://API.example.com").unwrap();
        assert_eq!(o.to_string(), "https://api.example.com:443");
        assert_eq!(o.scheme(), "https");
        assert_eq!(o.host(), "api.example.com");
        assert_eq!(o.port(), 443);
        let v6 = Origin::parse("http://[::1]:8080").unwrap();
        assert_eq!(v6.to_string(), "http://[::1]:8080");
    }

    /// The in-place comparison agrees with comparing parsed origins, on the shapes that take
    /// each of its paths.
    #[test]
    fn matching_in_place_agrees_with_parsed_origins() {
        let origins = [
            "http://api.bench",
            "https://API.bench:8443",
            "http://[::1]:8080",
        ];
        let uris = [
            "http://api.bench/x",
            "http://API.BENCH:80/x",
            "http://api.bench:080/x",
            "http://user:pw@api.bench/x",
            "http://api.bench.evil/x",
            "http://api.bench:8080/x",
            "http://api.benc/x",
            "https://api.bench:8443/x",
            "https://api.bench/x",
            "https://api.bench:443/x",
            "http://[::1]:8080/x",
            "http://[::1]/x",
            "http://[::1]:80800/x",
            "ftp://api.bench/x",
            "/relative",
        ];
        for o in origins {
            let origin = Origin::parse(o).unwrap();
            for u in uris {
                let uri: Uri = u.parse().unwrap();
                let expected = Origin::of(&uri).is_some_and(|p| p == origin);
                assert_eq!(origin.matches(&uri), expected, "{o} vs {u}");
            }
        }
        let o = Origin::parse("http://api.bench").unwrap();
        assert!(o.matches(&"http://api.bench:080/x".parse().unwrap()));
        assert!(o.matches(&"http://u@api.bench/x".parse().unwrap()));
        assert!(!o.matches(&"http://api.bench.evil/x".parse().unwrap()));
    }
}
