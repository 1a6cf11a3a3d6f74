//! The compiled check a layer runs on every cookie-authenticated request.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use aws_lc_rs::constant_time;
use http::{HeaderMap, HeaderName, Method, Request, Response};
use tower::Service;
use tower_http::csrf::{ProtectionError, ProtectionErrorKind};

use super::key::CsrfKey;
use crate::error::{AuthError, ErrorCode};
use crate::sources;

/// The innermost service of tower-http's CSRF middleware here: it answers at once, so the
/// middleware's verdict is known without I/O.
#[derive(Clone, Copy, Debug)]
pub(super) struct Probe;

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
pub(super) enum CompiledProof {
    SessionBound {
        keys: Box<[CsrfKey]>,
        header: HeaderName,
    },
    UnboundDoubleSubmit {
        cookie: String,
        header: HeaderName,
    },
    OriginOnly,
}

#[derive(Debug)]
pub(crate) struct CsrfCheck {
    pub(super) proof: CompiledProof,
    pub(super) cross_origin: tower_http::csrf::Csrf<Probe>,
}

fn failed(detail: &'static str) -> AuthError {
    AuthError::with_detail(ErrorCode::CsrfFailed, detail)
}

pub(crate) fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        // TRACE is not here: tower-http's check does not count it safe either, and a handler
        // mounted for every method would run it unchecked.
        Method::GET | Method::HEAD | Method::OPTIONS
    )
}

/// The one value of `header`; none, several or an empty one is no proof.
fn single<'h>(headers: &'h HeaderMap, header: &HeaderName) -> Option<&'h [u8]> {
    let mut sent = headers.get_all(header).iter();
    match (sent.next(), sent.next()) {
        (Some(v), None) if !v.is_empty() => Some(v.as_bytes()),
        _ => None,
    }
}

impl CsrfCheck {
    /// The request header a page sends its token in, for the proofs that have one (what a
    /// CORS preflight must allow).
    pub(crate) fn header(&self) -> Option<&HeaderName> {
        match &self.proof {
            CompiledProof::SessionBound { header, .. }
            | CompiledProof::UnboundDoubleSubmit { header, .. } => Some(header),
            CompiledProof::OriginOnly => None,
        }
    }

    /// Check a request authenticated by the cookie whose value is `session`.
    pub(crate) fn check<B>(&self, req: &Request<B>, session: &[u8]) -> Result<(), AuthError> {
        if is_safe(req.method()) {
            return Ok(());
        }
        self.check_origin(req)?;
        let headers = req.headers();
        match &self.proof {
            CompiledProof::SessionBound { keys, header } => {
                let Some(token) = single(headers, header) else {
                    return Err(failed(
                        "cookie-authenticated changes need the CSRF header, holding the token minted for this session",
                    ));
                };
                if !keys.iter().any(|k| k.accepts(session, token)) {
                    return Err(failed(
                        "the CSRF header is not the token minted for this session (a new session needs a new token)",
                    ));
                }
            }
            CompiledProof::UnboundDoubleSubmit { cookie, header } => {
                let expected = sources::cookie(headers, cookie).ok().flatten();
                let (Some(expected), Some(sent)) = (expected, single(headers, header)) else {
                    return Err(failed(
                        "cookie-authenticated changes need the CSRF header matching the CSRF cookie",
                    ));
                };
                if constant_time::verify_slices_are_equal(expected.secret_bytes(), sent).is_err() {
                    return Err(failed("the CSRF header does not match the CSRF cookie"));
                }
            }
            CompiledProof::OriginOnly => {
                // An empty value says nothing either (tower-http reads it as absent).
                let says = |name: &str| headers.get(name).is_some_and(|v| !v.is_empty());
                if !says("origin") && !says("sec-fetch-site") {
                    return Err(failed(
                        "without a CSRF token, cookie-authenticated changes must say where they come from (Origin or Sec-Fetch-Site)",
                    ));
                }
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
    use super::super::key::TOKEN_LEN;
    use super::*;
    use crate::csrf::CsrfPolicy;
    use crate::error::ConfigError;
    use aws_lc_rs::hmac;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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

    fn key(byte: u8) -> CsrfKey {
        CsrfKey::new(&[byte; 32]).unwrap()
    }

    /// `req` with a header whose value is only known at run time.
    fn with_token(mut r: Request<()>, token: &str) -> Request<()> {
        r.headers_mut()
            .append("x-csrf-token", HeaderValue::from_str(token).unwrap());
        r
    }

    #[test]
    fn a_session_bound_token_is_needed_on_unsafe_methods_only() {
        let c = CsrfPolicy::session_bound(key(1)).compile().unwrap();
        let token = key(1).mint("s3ss10n");
        assert_eq!(token.len(), TOKEN_LEN);
        let post = |r: Request<()>| c.check(&r, b"s3ss10n");
        assert!(post(with_token(req(Method::POST, &[]), &token)).is_ok());
        let missing = post(req(Method::DELETE, &[])).unwrap_err();
        assert_eq!(missing.code(), ErrorCode::CsrfFailed);
        assert!(c.check(&req(Method::GET, &[]), b"s3ss10n").is_ok());
        assert!(c.check(&req(Method::OPTIONS, &[]), b"s3ss10n").is_ok());
        // Another session's token, a planted value, a token with one character changed,
        // twice the right token, or the token in a cookie: none is the proof.
        let other = key(1).mint("another-session");
        let mut flipped = token.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [other.as_str(), "planted", flipped.as_str(), ""] {
            let r = if bad.is_empty() {
                req(Method::PUT, &[("x-csrf-token", "")])
            } else {
                with_token(req(Method::PUT, &[]), bad)
            };
            assert_eq!(
                post(r).unwrap_err().code(),
                ErrorCode::CsrfFailed,
                "{bad:?}"
            );
        }
        let twice = with_token(with_token(req(Method::PATCH, &[]), &token), &token);
        assert!(post(twice).is_err());
        let mut in_cookie = req(Method::POST, &[]);
        in_cookie.headers_mut().append(
            "cookie",
            HeaderValue::from_str(&format!("x-csrf-token={token}")).unwrap(),
        );
        assert!(post(in_cookie).is_err());
    }

    #[test]
    fn tokens_of_the_current_and_previous_keys_pass_others_do_not() {
        let rotating = CsrfPolicy::session_bound(key(2))
            .previous_key(key(1))
            .compile()
            .unwrap();
        let settled = CsrfPolicy::session_bound(key(2)).compile().unwrap();
        let check = |c: &CsrfCheck, by: u8| {
            c.check(
                &with_token(req(Method::POST, &[]), &key(by).mint("s")),
                b"s",
            )
        };
        assert!(check(&rotating, 2).is_ok());
        assert!(check(&rotating, 1).is_ok(), "previous key, during rotation");
        assert!(check(&rotating, 3).is_err(), "a key never configured");
        assert!(check(&settled, 2).is_ok());
        assert!(check(&settled, 1).is_err(), "previous key, after rotation");
    }

    #[test]
    fn the_token_is_the_documented_hmac_of_the_labelled_session() {
        let secret = [9u8; 32];
        let mut message = b"portcullis csrf token v1\0".to_vec();
        message.extend_from_slice(b"sid-value");
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &secret), &message);
        assert_eq!(
            CsrfKey::new(&secret).unwrap().mint("sid-value"),
            URL_SAFE_NO_PAD.encode(tag)
        );
        // The same secret gives the same token in another instance (another replica).
        assert_eq!(
            CsrfKey::new(&secret).unwrap().mint(b"x"),
            CsrfKey::new(&secret).unwrap().mint("x")
        );
    }

    #[test]
    fn keys_are_long_enough_and_never_printed() {
        assert_eq!(
            CsrfKey::new(&[1; 31]).unwrap_err(),
            ConfigError::CsrfKeyTooShort { min: 32, got: 31 }
        );
        assert_eq!(format!("{:?}", key(0x41)), "CsrfKey(<redacted>)");
        let debug = format!("{:?}", CsrfPolicy::session_bound(key(0x41)));
        assert!(
            !debug.contains("AAAA") && !debug.contains("65, 65"),
            "{debug}"
        );
    }

    #[test]
    fn session_bound_options_on_another_protection_are_refused() {
        for (csrf, option) in [
            (
                CsrfPolicy::origin_only().previous_key(key(1)),
                "previous_key",
            ),
            (
                CsrfPolicy::double_submit_unbound_to_session("c", "x-c").header("x-d"),
                "header",
            ),
        ] {
            assert_eq!(
                csrf.compile().unwrap_err(),
                ConfigError::CsrfNotSessionBound(option)
            );
        }
        assert_eq!(
            CsrfPolicy::session_bound(key(1))
                .header("x y")
                .compile()
                .unwrap_err(),
            ConfigError::InvalidHeaderName("x y".into())
        );
        let c = CsrfPolicy::session_bound(key(1))
            .header("x-xsrf-token")
            .compile()
            .unwrap();
        let mut r = req(Method::POST, &[]);
        r.headers_mut().append(
            "x-xsrf-token",
            HeaderValue::from_str(&key(1).mint("s")).unwrap(),
        );
        assert!(c.check(&r, b"s").is_ok());
    }

    #[test]
    fn unbound_double_submit_needs_a_matching_header_on_unsafe_methods_only() {
        let c = CsrfPolicy::double_submit_unbound_to_session("csrf_token", "x-csrf-token")
            .compile()
            .unwrap();
        let check =
            |m: Method, pairs: &[(&'static str, &'static str)]| c.check(&req(m, pairs), b"s");
        let ok = [("cookie", "at=x; csrf_token=abc"), ("x-csrf-token", "abc")];
        assert!(check(Method::POST, &ok).is_ok());
        let wrong = [("cookie", "csrf_token=abc"), ("x-csrf-token", "abd")];
        assert_eq!(
            check(Method::DELETE, &wrong).unwrap_err().code(),
            ErrorCode::CsrfFailed
        );
        let missing = [("cookie", "csrf_token=abc")];
        assert!(check(Method::PUT, &missing).is_err());
        assert!(check(Method::GET, &missing).is_ok());
        let no_cookie = [("x-csrf-token", "abc")];
        assert!(check(Method::PATCH, &no_cookie).is_err());
    }

    /// A matching pair is not enough when the request comes from another site's page: a
    /// sibling subdomain or a man in the middle can plant both the cookie and the header.
    #[test]
    fn a_planted_pair_from_another_origin_is_refused() {
        let c = CsrfPolicy::double_submit_unbound_to_session("csrf_token", "x-csrf-token")
            .trusted_origin("http://localhost:3000")
            .compile()
            .unwrap();
        let pair = [("cookie", "csrf_token=abc"), ("x-csrf-token", "abc")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all = pair.to_vec();
            all.extend_from_slice(extra);
            c.check(&req(Method::POST, &all), b"s")
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
        let c = CsrfPolicy::origin_only()
            .trusted_origin("http://localhost:3000")
            .compile()
            .unwrap();
        let post =
            |pairs: &[(&'static str, &'static str)]| c.check(&req(Method::POST, pairs), b"s");
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
            post(&[]).is_err(),
            "no Origin and no Sec-Fetch-Site: nothing says where it comes from"
        );
        assert!(
            post(&[("origin", ""), ("sec-fetch-site", "")]).is_err(),
            "empty values say nothing either"
        );
        assert!(
            c.check(&req(Method::TRACE, &[]), b"s").is_err(),
            "TRACE is checked like any unsafe method"
        );
        assert!(post(&[("sec-fetch-site", "same-origin")]).is_ok());
        assert!(
            CsrfPolicy::origin_only()
                .trusted_origin("not an origin")
                .compile()
                .is_err()
        );
        assert!(
            CsrfPolicy::origin_only()
                .trusted_origin("https://a.test/path")
                .compile()
                .is_err()
        );
    }
}
