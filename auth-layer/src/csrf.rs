//! CSRF protection for cookie-authenticated requests.
//!
//! A browser attaches cookies to requests other sites make it send; a bearer header it does
//! not. So only requests *authenticated by cookie* with an unsafe method (anything but GET,
//! HEAD, OPTIONS, TRACE) need a proof that the page making them is ours:
//! - double submit: a header whose value equals a (script-readable) cookie — only a page that
//!   can read our cookies, i.e. one on our site, can copy it;
//! - and, if configured, an `Origin` header naming one of the trusted origins.
//!
//! Failing either is 403 `csrf_failed`.

use http::header::ORIGIN;
use http::{HeaderMap, HeaderName, Method};

use crate::credentials;
use crate::error::{AuthError, ConfigError, ErrorCode};

/// How cookie-authenticated unsafe requests prove they come from our own pages.
///
/// ```
/// use auth_layer::Csrf;
/// let csrf = Csrf::double_submit("csrf_token", "x-csrf-token").trusted_origin("https://app.example.com");
/// # let _ = csrf;
/// ```
#[derive(Debug, Clone)]
pub struct Csrf {
    double_submit: Option<(String, String)>,
    origins: Vec<String>,
}

impl Default for Csrf {
    /// Double submit with the cookie `csrf_token` and the header `x-csrf-token`.
    fn default() -> Self {
        Csrf::double_submit("csrf_token", "x-csrf-token")
    }
}

impl Csrf {
    /// Require the header `header` to equal the cookie `cookie`.
    pub fn double_submit(cookie: impl Into<String>, header: impl Into<String>) -> Self {
        Csrf {
            double_submit: Some((cookie.into(), header.into())),
            origins: Vec::new(),
        }
    }

    /// Require only an `Origin` from the trusted list (add them with
    /// [`trusted_origin`](Self::trusted_origin)).
    pub fn origin_only() -> Self {
        Csrf {
            double_submit: None,
            origins: Vec::new(),
        }
    }

    /// Also require `Origin` to be this origin or another trusted one.
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    pub(crate) fn compile(self) -> Result<CsrfCheck, ConfigError> {
        let double_submit = match self.double_submit {
            Some((cookie, header)) => {
                let header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                    ConfigError::InvalidValue {
                        what: "CSRF header",
                        why: "not a header name",
                    }
                })?;
                Some((cookie, header))
            }
            None => None,
        };
        if double_submit.is_none() && self.origins.is_empty() {
            return Err(ConfigError::InvalidValue {
                what: "CSRF",
                why: "origin-only protection needs at least one trusted origin",
            });
        }
        Ok(CsrfCheck {
            double_submit,
            origins: self.origins,
        })
    }
}

#[derive(Debug)]
pub(crate) struct CsrfCheck {
    double_submit: Option<(String, HeaderName)>,
    origins: Vec<String>,
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
    pub(crate) fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), AuthError> {
        if is_safe(method) {
            return Ok(());
        }
        if !self.origins.is_empty() {
            let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
            if !origin.is_some_and(|o| self.origins.iter().any(|t| t == o)) {
                return Err(failed(
                    "the request's Origin is not trusted for cookie-authenticated changes",
                ));
            }
        }
        if let Some((cookie, header)) = &self.double_submit {
            let expected = credentials::cookie(headers, cookie).ok().flatten();
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn double_submit_needs_a_matching_header_on_unsafe_methods_only() {
        let c = Csrf::default().compile().unwrap();
        let ok = headers(&[("cookie", "at=x; csrf_token=abc"), ("x-csrf-token", "abc")]);
        assert!(c.check(&Method::POST, &ok).is_ok());
        let wrong = headers(&[("cookie", "csrf_token=abc"), ("x-csrf-token", "abd")]);
        assert_eq!(
            c.check(&Method::DELETE, &wrong).unwrap_err().code(),
            ErrorCode::CsrfFailed
        );
        let missing = headers(&[("cookie", "csrf_token=abc")]);
        assert!(c.check(&Method::PUT, &missing).is_err());
        assert!(c.check(&Method::GET, &missing).is_ok());
        let no_cookie = headers(&[("x-csrf-token", "abc")]);
        assert!(c.check(&Method::PATCH, &no_cookie).is_err());
    }

    #[test]
    fn trusted_origins_are_enforced_when_configured() {
        let c = Csrf::origin_only()
            .trusted_origin("http://localhost:3000")
            .compile()
            .unwrap();
        assert!(
            c.check(
                &Method::POST,
                &headers(&[("origin", "http://localhost:3000")])
            )
            .is_ok()
        );
        assert!(
            c.check(&Method::POST, &headers(&[("origin", "http://evil.test")]))
                .is_err()
        );
        assert!(c.check(&Method::POST, &headers(&[])).is_err());
        assert!(Csrf::origin_only().compile().is_err());
    }
}
