//! What the client sends: a [`Credential`] (bearer, API key, cookie, basic) with an optional
//! expiry.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderName, HeaderValue, Request, Uri};
use portcullis_wire::grammar::{is_b64token, is_cookie_octet, is_token, percent_encode};
use tokio::time::Instant;

/// A credential value could not be built (it is not a valid header value, say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid credential: {0}")]
pub struct InvalidCredential(&'static str);

#[derive(Clone)]
enum Slot {
    /// `Authorization: Bearer …` or `Authorization: Basic …`.
    Authorization(HeaderValue),
    /// A named header.
    Header(HeaderName, HeaderValue),
    /// A query parameter (`name=value`, already percent-encoded).
    Query(String),
    /// One cookie (`name=value`).
    Cookie { name: String, pair: String },
    /// Nothing yet: the request goes as it is, and its 401 says where to get a credential.
    Nothing,
}

/// Where a client [`Credential`] goes in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Placement {
    /// `Authorization: Bearer …`
    Bearer,
    /// `Authorization: Basic …`
    Basic,
    /// An API key in a named header.
    ApiKeyHeader,
    /// An API key in a query parameter.
    ApiKeyQuery,
    /// A cookie.
    Cookie,
    /// Nothing is sent ([`Credential::none`]).
    None,
}

/// A credential and where it goes in a request. Header values are built once, marked
/// sensitive, and never shown by `Debug`.
///
/// # Example
/// ```
/// use portcullis::client::Credential;
/// use std::time::Duration;
/// let c = Credential::bearer("eyJhbGciOi.x.y").unwrap().expires_in(Duration::from_secs(300));
/// assert_eq!(c.placement(), portcullis::client::Placement::Bearer);
/// assert_eq!(format!("{c:?}"), "Credential { placement: Bearer, expires: true }");
/// ```
#[derive(Clone)]
pub struct Credential {
    placement: Slot,
    expires_at: Option<Instant>,
    /// How long it was valid for when it was made: bounds how early it is refreshed.
    lifetime: Option<Duration>,
}

/// The longest lifetime taken from anyone: a token endpoint's `expires_in` of
/// 18446744073709551615 would overflow the clock; a year is as good as forever here and still
/// refreshes now and then.
pub const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("placement", &self.placement())
            .field("expires", &self.expires_at.is_some())
            .finish()
    }
}

fn sensitive(v: &str) -> Result<HeaderValue, InvalidCredential> {
    let mut v =
        HeaderValue::from_str(v).map_err(|_| InvalidCredential("not a valid header value"))?;
    v.set_sensitive(true);
    Ok(v)
}

impl Credential {
    /// `Authorization: Bearer <token>`. The token must be an RFC 6750 b64token.
    pub fn bearer(token: &str) -> Result<Self, InvalidCredential> {
        if !is_b64token(token.as_bytes()) {
            return Err(InvalidCredential("a bearer token is an RFC 6750 b64token"));
        }
        Ok(Credential {
            placement: Slot::Authorization(sensitive(&format!("Bearer {token}"))?),
            expires_at: None,
            lifetime: None,
        })
    }

    /// `Authorization: Basic base64(user:password)` (RFC 7617).
    pub fn basic(user: &str, password: &str) -> Result<Self, InvalidCredential> {
        if user.contains(':') {
            return Err(InvalidCredential("a basic user-id cannot contain ':'"));
        }
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Ok(Credential {
            placement: Slot::Authorization(sensitive(&format!("Basic {encoded}"))?),
            expires_at: None,
            lifetime: None,
        })
    }

    /// An API key in the header `name`.
    pub fn api_key_header(name: &str, key: &str) -> Result<Self, InvalidCredential> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| InvalidCredential("not a valid header name"))?;
        Ok(Credential {
            placement: Slot::Header(name, sensitive(key)?),
            expires_at: None,
            lifetime: None,
        })
    }

    /// An API key in the query parameter `name` (prefer a header: query strings end up in
    /// access logs).
    pub fn api_key_query(name: &str, key: &str) -> Result<Self, InvalidCredential> {
        if name.is_empty() {
            return Err(InvalidCredential("empty query parameter name"));
        }
        Ok(Credential {
            placement: Slot::Query(format!("{}={}", percent_encode(name), percent_encode(key))),
            expires_at: None,
            lifetime: None,
        })
    }

    /// A cookie `name=value`, merged into the request's `Cookie` header.
    pub fn cookie(name: &str, value: &str) -> Result<Self, InvalidCredential> {
        if !is_token(name) {
            return Err(InvalidCredential("a cookie name is an RFC 6265 token"));
        }
        if value.is_empty() || !value.bytes().all(is_cookie_octet) {
            return Err(InvalidCredential(
                "a cookie value is RFC 6265 cookie-octets",
            ));
        }
        Ok(Credential {
            placement: Slot::Cookie {
                name: name.to_owned(),
                pair: format!("{name}={value}"),
            },
            expires_at: None,
            lifetime: None,
        })
    }

    /// No credential yet: requests go without one until the first `401` has told the source
    /// what to fetch (a source that discovers its authorization server from the resource's
    /// challenge, as MCP clients do, starts with this). The `401` is refreshed and retried
    /// like any other, once.
    ///
    /// ```
    /// let c = portcullis::client::Credential::none();
    /// assert_eq!(c.placement(), portcullis::client::Placement::None);
    /// ```
    pub fn none() -> Self {
        Credential {
            placement: Slot::Nothing,
            expires_at: None,
            lifetime: None,
        }
    }

    /// The credential expires `ttl` from now (at most [`MAX_LIFETIME`]).
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        let ttl = ttl.min(MAX_LIFETIME);
        let now = Instant::now();
        self.expires_at = Some(now.checked_add(ttl).unwrap_or(now));
        self.lifetime = Some(ttl);
        self
    }

    /// The credential expires at `at`.
    pub fn expires_at(mut self, at: Instant) -> Self {
        self.expires_at = Some(at);
        self.lifetime = Some(at.saturating_duration_since(Instant::now()));
        self
    }

    /// Expires `remaining` from now, having been issued for `lifetime` (a token obtained by
    /// another process some time ago): the refresh window is bounded by the whole lifetime.
    pub(crate) fn expires_in_of(mut self, remaining: Duration, lifetime: Duration) -> Self {
        self = self.expires_in(remaining);
        self.lifetime = Some(lifetime.max(remaining).min(MAX_LIFETIME));
        self
    }

    /// When it expires, if known.
    pub fn expiry(&self) -> Option<Instant> {
        self.expires_at
    }

    /// Where the credential goes in a request.
    pub fn placement(&self) -> Placement {
        match &self.placement {
            Slot::Authorization(v) if v.as_bytes().starts_with(b"Basic") => Placement::Basic,
            Slot::Authorization(_) => Placement::Bearer,
            Slot::Header(..) => Placement::ApiKeyHeader,
            Slot::Query(_) => Placement::ApiKeyQuery,
            Slot::Cookie { .. } => Placement::Cookie,
            Slot::Nothing => Placement::None,
        }
    }

    /// When to refresh this credential ahead of its expiry: `skew` before it, but never more
    /// than half its lifetime before (a 10 s token with a 30 s skew would otherwise be
    /// refreshed for every request), and `jitter` (0..1) moves it up to a fifth later so that
    /// replicas holding tokens of the same age do not all refresh at once.
    pub(crate) fn refresh_at(&self, skew: Duration, jitter: f64) -> Option<Instant> {
        let at = self.expires_at?;
        let window = match self.lifetime {
            Some(lifetime) => skew.min(lifetime / 2),
            None => skew,
        };
        let window = window.mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0));
        Some(at.checked_sub(window).unwrap_or(at))
    }

    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The header this credential is sent in, for callers that must strip it (redirects).
    pub(crate) fn header_name(&self) -> Option<HeaderName> {
        match &self.placement {
            Slot::Authorization(_) => Some(AUTHORIZATION),
            Slot::Header(n, _) => Some(n.clone()),
            Slot::Cookie { .. } => Some(COOKIE),
            Slot::Query(_) | Slot::Nothing => None,
        }
    }

    /// True when the request already carries a credential where this one would go.
    pub(crate) fn already_present<B>(&self, req: &Request<B>) -> bool {
        match &self.placement {
            Slot::Authorization(_) => req.headers().contains_key(AUTHORIZATION),
            Slot::Header(n, _) => req.headers().contains_key(n),
            Slot::Query(pair) => {
                let name = pair.split('=').next().unwrap_or_default();
                req.uri()
                    .query()
                    .is_some_and(|q| q.split('&').any(|p| p.split('=').next() == Some(name)))
            }
            Slot::Cookie { name, .. } => req.headers().get_all(COOKIE).iter().any(|v| {
                v.to_str().is_ok_and(|s| {
                    s.split(';')
                        .any(|p| p.trim_start().split('=').next() == Some(name))
                })
            }),
            Slot::Nothing => false,
        }
    }

    /// Put the credential into the request.
    pub(crate) fn inject<B>(&self, req: &mut Request<B>) {
        match &self.placement {
            Slot::Authorization(v) => {
                req.headers_mut().insert(AUTHORIZATION, v.clone());
            }
            Slot::Header(n, v) => {
                req.headers_mut().insert(n.clone(), v.clone());
            }
            Slot::Query(pair) => {
                let uri = req.uri();
                let pq = match uri.query() {
                    Some(q) if !q.is_empty() => format!("{}?{q}&{pair}", uri.path()),
                    _ => format!("{}?{pair}", uri.path()),
                };
                let mut parts = uri.clone().into_parts();
                if let Ok(pq) = pq.parse() {
                    parts.path_and_query = Some(pq);
                    if let Ok(u) = Uri::from_parts(parts) {
                        // What reqwest reports back (a response's URL, an error's) is the URI
                        // without the secret.
                        #[cfg(feature = "reqwest")]
                        QueryCredentialUri::note(req, &u);
                        *req.uri_mut() = u;
                    }
                }
            }
            Slot::Cookie { name, pair } => {
                // RFC 6265 §5.4: one Cookie header. Keep the request's other cookies, drop
                // any of ours it already had (a second cookie of the same name would leave
                // the server to pick one), and add ours.
                let mut merged = String::new();
                for value in req.headers().get_all(COOKIE) {
                    let Ok(text) = value.to_str() else { continue };
                    for p in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                        if p.split('=').next() != Some(name.as_str()) {
                            merged.push_str(p);
                            merged.push_str("; ");
                        }
                    }
                }
                merged.push_str(pair);
                if let Ok(v) = sensitive(&merged) {
                    req.headers_mut().insert(COOKIE, v);
                }
            }
            Slot::Nothing => {}
        }
    }
}

/// Request extension: the URI a query-parameter credential was added to (`before`), and the
/// URI with it (`sent`). The reqwest adapter reports `before` as a response's and an error's
/// URL, so the secret stays out of what the caller logs.
/// No `Debug`: `sent` holds the secret.
#[cfg(feature = "reqwest")]
#[derive(Clone)]
pub(crate) struct QueryCredentialUri {
    pub(crate) before: Uri,
    pub(crate) sent: Uri,
}

#[cfg(feature = "reqwest")]
impl QueryCredentialUri {
    /// Note on `req`, whose URI is about to become `sent`, its URI before the credential.
    fn note<B>(req: &mut Request<B>, sent: &Uri) {
        let before = req.uri().clone();
        let note = QueryCredentialUri {
            before,
            sent: sent.clone(),
        };
        req.extensions_mut().insert(note);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str) -> Request<()> {
        Request::get(uri).body(()).unwrap()
    }

    #[test]
    fn injected_headers_are_sensitive() {
        let mut r = req("http://a/");
        Credential::bearer("t0k").unwrap().inject(&mut r);
        assert_eq!(r.headers()[AUTHORIZATION], "Bearer t0k");
        assert!(r.headers()[AUTHORIZATION].is_sensitive());
        let mut r = req("http://a/");
        Credential::api_key_header("x-api-key", "k")
            .unwrap()
            .inject(&mut r);
        assert!(r.headers()["x-api-key"].is_sensitive());
    }

    #[test]
    fn cookie_merges_into_one_header() {
        let mut r = req("http://a/");
        r.headers_mut()
            .insert(COOKIE, HeaderValue::from_static("theme=dark"));
        let c = Credential::cookie("sid", "abc").unwrap();
        assert!(!c.already_present(&r));
        c.inject(&mut r);
        assert_eq!(r.headers().get_all(COOKIE).iter().count(), 1);
        assert_eq!(r.headers()[COOKIE], "theme=dark; sid=abc");
        assert!(c.already_present(&r));
    }

    /// With `replace_existing(true)` the layer injects over a cookie the request carries:
    /// the request then has exactly one cookie of that name, ours.
    #[test]
    fn injecting_a_cookie_replaces_one_of_the_same_name() {
        let mut r = req("http://a/");
        r.headers_mut()
            .append(COOKIE, HeaderValue::from_static("theme=dark; sid=old"));
        r.headers_mut()
            .append(COOKIE, HeaderValue::from_static("sid=older; lang=en"));
        Credential::cookie("sid", "new").unwrap().inject(&mut r);
        assert_eq!(r.headers().get_all(COOKIE).iter().count(), 1);
        assert_eq!(r.headers()[COOKIE], "theme=dark; lang=en; sid=new");
        assert!(r.headers()[COOKIE].is_sensitive());
    }

    /// A lifetime too long for the clock is clamped, not a panic; short-lived credentials are
    /// refreshed at half their lifetime at the earliest.
    #[test]
    fn lifetimes_are_clamped_and_bound_the_refresh_window() {
        let c = Credential::bearer("t").unwrap().expires_in(Duration::MAX);
        let at = c.expiry().unwrap();
        assert!(at <= Instant::now() + MAX_LIFETIME);
        let short = Credential::bearer("t")
            .unwrap()
            .expires_in(Duration::from_secs(10));
        let exp = short.expiry().unwrap();
        let skew = Duration::from_secs(30);
        assert_eq!(
            short.refresh_at(skew, 0.0),
            Some(exp - Duration::from_secs(5))
        );
        assert_eq!(
            short.refresh_at(skew, 1.0),
            Some(exp - Duration::from_secs(4))
        );
        let long = Credential::bearer("t")
            .unwrap()
            .expires_in(Duration::from_secs(3600));
        let exp = long.expiry().unwrap();
        assert_eq!(long.refresh_at(skew, 0.0), Some(exp - skew));
        assert_eq!(Credential::bearer("t").unwrap().refresh_at(skew, 0.5), None);
    }

    #[test]
    fn query_key_is_appended_and_encoded() {
        let mut r = req("http://a/p?x=1");
        Credential::api_key_query("api key", "a&b")
            .unwrap()
            .inject(&mut r);
        assert_eq!(r.uri().to_string(), "http://a/p?x=1&api%20key=a%26b");
    }

    #[test]
    fn basic_is_base64_user_colon_password() {
        let mut r = req("http://a/");
        Credential::basic("Aladdin", "open sesame")
            .unwrap()
            .inject(&mut r);
        assert_eq!(
            r.headers()[AUTHORIZATION],
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Credential::bearer("a b").is_err());
        assert!(Credential::bearer("").is_err());
        assert!(Credential::cookie("a;b", "v").is_err());
        assert!(Credential::cookie("a", "v;x").is_err());
        assert!(Credential::api_key_header("bad header", "v").is_err());
    }
}
