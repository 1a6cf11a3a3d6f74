//! CSRF protection for cookie-authenticated requests.
//!
//! A browser attaches cookies to requests other sites make it send; a bearer header it does
//! not. So only requests *authenticated by cookie* with an unsafe method (anything but GET,
//! HEAD, OPTIONS, TRACE) need a proof that the page making them is ours. Two checks, both
//! required by default:
//! - **where the request comes from**: tower-http's cross-origin protection (the scheme of Go
//!   1.25): `Sec-Fetch-Site` must be `same-origin` or `none`, or `Origin` must be a trusted
//!   origin or the request's own host. This is what stops a cookie and header pair planted by
//!   a sibling subdomain or a plain-`http` man in the middle: the request itself still comes
//!   from their page.
//! - **double submit**: a header whose value equals a (script-readable) cookie. Only a page
//!   that can read our cookies can copy it.
//!
//! Failing either is 403 `csrf_failed`, with the layer's problem body.
//!
//! A page on another origin of the same site (`app.example.com` calling `api.example.com`, or
//! two ports of `localhost`) is cross-origin: name it with [`Csrf::trusted_origin`].

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::{HeaderMap, HeaderName, Method, Request, Response};
use tower::{Layer, Service};
use tower_http::csrf::{CsrfLayer, ProtectionError, ProtectionErrorKind};

use crate::error::{AuthError, ConfigError, ErrorCode};
use crate::sources;

/// How cookie-authenticated unsafe requests prove they come from our own pages.
///
/// ```
/// use auth_layer::Csrf;
/// // Double submit, plus requests must come from this API's origin or the app's.
/// let csrf = Csrf::double_submit("csrf_token", "x-csrf-token")
///     .trusted_origin("https://app.example.com");
/// # let _ = csrf;
/// ```
#[derive(Debug, Clone)]
pub struct Csrf {
    double_submit: Option<(String, String)>,
    origins: Vec<String>,
}

impl Default for Csrf {
    /// Double submit with the cookie `csrf_token` and the header `x-csrf-token`, and requests
    /// only from the API's own origin.
    fn default() -> Self {
        Csrf::double_submit("csrf_token", "x-csrf-token")
    }
}

impl Csrf {
    /// Require the header `header` to equal the cookie `cookie`, and the request to come from
    /// the API's own origin or a [trusted](Self::trusted_origin) one.
    pub fn double_submit(cookie: impl Into<String>, header: impl Into<String>) -> Self {
        Csrf {
            double_submit: Some((cookie.into(), header.into())),
            origins: Vec::new(),
        }
    }

    /// Only check where the request comes from (`Sec-Fetch-Site`, `Origin`), with no token.
    /// Enough for current browsers; old ones that send neither header are let through.
    pub fn origin_only() -> Self {
        Csrf {
            double_submit: None,
            origins: Vec::new(),
        }
    }

    /// Also accept requests from pages on `origin` (`scheme://host[:port]`, exactly as
    /// browsers send it: lowercase host, no default port, no trailing slash).
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    pub(crate) fn compile(self) -> Result<CsrfCheck, ConfigError> {
        let double_submit = match self.double_submit {
            Some((cookie, header)) => {
                let header = HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| ConfigError::InvalidHeaderName(header.clone()))?;
                Some((cookie, header))
            }
            None => None,
        };
        let mut layer = CsrfLayer::new();
        for origin in &self.origins {
            layer = layer
                .add_trusted_origin(origin)
                .map_err(|_| ConfigError::InvalidOrigin(origin.clone()))?;
        }
        Ok(CsrfCheck {
            double_submit,
            cross_origin: layer.layer(Probe),
        })
    }
}

/// The innermost service of tower-http's CSRF middleware here: it answers at once, so the
/// middleware's verdict is known without I/O.
#[derive(Clone, Copy, Debug)]
struct Probe;

impl Service<Request<()>> for Probe {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        ready(Ok(Response::new(())))
    }
}

#[derive(Debug)]
pub(crate) struct CsrfCheck {
    double_submit: Option<(String, HeaderName)>,
    cross_origin: tower_http::csrf::Csrf<Probe>,
}

fn failed(detail: &'static str) -> AuthError {
    AuthError::with_detail(ErrorCode::CsrfFailed, detail)
}

pub(crate) fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

impl CsrfCheck {
    pub(crate) fn check<B>(&self, req: &Request<B>) -> Result<(), AuthError> {
        if is_safe(req.method()) {
            return Ok(());
        }
        self.check_origin(req)?;
        let headers = req.headers();
        if let Some((cookie, header)) = &self.double_submit {
            let expected = sources::cookie(headers, cookie)
                .ok()
                .flatten()
                .map(|c| c.to_owned());
            let mut sent = headers.get_all(header).iter();
            let (Some(expected), Some(sent), None) = (expected, sent.next(), sent.next()) else {
                return Err(failed(
                    "cookie-authenticated changes need the CSRF header matching the CSRF cookie",
                ));
            };
            if sent.is_empty() || !expected.secret_eq(sent.to_str().unwrap_or_default()) {
                return Err(failed("the CSRF header does not match the CSRF cookie"));
            }
        }
        Ok(())
    }

    /// tower-http's cross-origin protection, asked about a copy of the request head (only
    /// cookie-authenticated unsafe requests get here).
    fn check_origin<B>(&self, req: &Request<B>) -> Result<(), AuthError> {
        let mut head = Request::new(());
        *head.method_mut() = req.method().clone();
        *head.uri_mut() = req.uri().clone();
        *head.version_mut() = req.version();
        *head.headers_mut() = copy_origin_headers(req.headers());
        let mut svc = self.cross_origin.clone();
        let mut cx = Context::from_waker(Waker::noop());
        let verdict = match svc.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => match pin!(svc.call(head)).poll(&mut cx) {
                Poll::Ready(Ok(res)) => res.extensions().get::<ProtectionError>().map(|e| e.kind()),
                // Not reachable with `Probe`; refuse rather than guess.
                Poll::Pending => Some(ProtectionErrorKind::CrossOriginRequest),
            },
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Some(ProtectionErrorKind::CrossOriginRequest),
        };
        match verdict {
            None => Ok(()),
            Some(ProtectionErrorKind::CrossOriginRequest) => Err(failed(
                "cookie-authenticated changes must come from this site's own pages (Sec-Fetch-Site); add the page's origin as a trusted origin",
            )),
            Some(_) => Err(failed(
                "cookie-authenticated changes must come from this site's own pages (Origin does not match the host or a trusted origin)",
            )),
        }
    }
}

/// The headers the cross-origin check reads; the rest (cookies included) are not copied.
fn copy_origin_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(3);
    const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
    for name in [http::header::ORIGIN, http::header::HOST, SEC_FETCH_SITE] {
        for v in headers.get_all(&name) {
            out.append(name.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn req(method: Method, pairs: &[(&'static str, &'static str)]) -> Request<()> {
        let mut r = Request::new(());
        *r.method_mut() = method;
        *r.uri_mut() = "/me".parse().unwrap();
        let h = r.headers_mut();
        h.insert("host", HeaderValue::from_static("api.test"));
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        r
    }

    #[test]
    fn double_submit_needs_a_matching_header_on_unsafe_methods_only() {
        let c = Csrf::default().compile().unwrap();
        let ok = [("cookie", "at=x; csrf_token=abc"), ("x-csrf-token", "abc")];
        assert!(c.check(&req(Method::POST, &ok)).is_ok());
        let wrong = [("cookie", "csrf_token=abc"), ("x-csrf-token", "abd")];
        assert_eq!(
            c.check(&req(Method::DELETE, &wrong)).unwrap_err().code(),
            ErrorCode::CsrfFailed
        );
        let missing = [("cookie", "csrf_token=abc")];
        assert!(c.check(&req(Method::PUT, &missing)).is_err());
        assert!(c.check(&req(Method::GET, &missing)).is_ok());
        let no_cookie = [("x-csrf-token", "abc")];
        assert!(c.check(&req(Method::PATCH, &no_cookie)).is_err());
    }

    /// A matching pair is not enough when the request comes from another site's page: a
    /// sibling subdomain or a man in the middle can plant both the cookie and the header.
    #[test]
    fn a_planted_pair_from_another_origin_is_refused() {
        let c = Csrf::default()
            .trusted_origin("http://localhost:3000")
            .compile()
            .unwrap();
        let pair = [("cookie", "csrf_token=abc"), ("x-csrf-token", "abc")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all = pair.to_vec();
            all.extend_from_slice(extra);
            c.check(&req(Method::POST, &all))
        };
        assert!(
            with(&[
                ("sec-fetch-site", "same-site"),
                ("origin", "http://evil.api.test")
            ])
            .is_err()
        );
        assert!(
            with(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.test")
            ])
            .is_err()
        );
        assert!(
            with(&[("origin", "https://evil.test")]).is_err(),
            "old browser"
        );
        assert!(with(&[("sec-fetch-site", "same-origin")]).is_ok());
        assert!(
            with(&[
                ("sec-fetch-site", "same-site"),
                ("origin", "http://localhost:3000")
            ])
            .is_ok()
        );
        assert!(
            with(&[("origin", "http://api.test")]).is_ok(),
            "Origin is the host"
        );
        assert!(
            with(&[]).is_ok(),
            "not a browser: no Origin, no Sec-Fetch-Site"
        );
    }

    #[test]
    fn origin_only_protection_uses_fetch_metadata_and_trusted_origins() {
        let c = Csrf::origin_only()
            .trusted_origin("http://localhost:3000")
            .compile()
            .unwrap();
        let post = |pairs: &[(&'static str, &'static str)]| c.check(&req(Method::POST, pairs));
        assert!(
            post(&[
                ("origin", "http://localhost:3000"),
                ("sec-fetch-site", "same-site")
            ])
            .is_ok()
        );
        assert!(
            post(&[
                ("origin", "http://evil.test"),
                ("sec-fetch-site", "cross-site")
            ])
            .is_err()
        );
        assert!(
            Csrf::origin_only()
                .trusted_origin("not an origin")
                .compile()
                .is_err()
        );
        assert!(
            Csrf::origin_only()
                .trusted_origin("https://a.test/path")
                .compile()
                .is_err()
        );
    }
}
