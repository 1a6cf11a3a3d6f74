//! Reading what a server says about an authentication failure — its `WWW-Authenticate`
//! challenges and its RFC 9457 problem body — into one typed [`AuthFailure`]. The grammar and
//! the body's members are the wire crate's, the same code the server writes them with.

use std::fmt;

use http::{HeaderMap, StatusCode};
use portcullis_wire::{Challenge, ErrorCode, PROBLEM_JSON, ProblemDetails, parse_challenges};

/// What a server said about a failed request: status, challenges and problem body.
///
/// ```
/// use portcullis::client::AuthFailure;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("www-authenticate", r#"Bearer realm="api", error="invalid_token""#.parse().unwrap());
/// headers.insert("content-type", "application/problem+json".parse().unwrap());
/// let f = AuthFailure::parse(http::StatusCode::UNAUTHORIZED, &headers, br#"{"code":"token_expired"}"#);
/// assert_eq!(f.bearer_error(), Some("invalid_token"));
/// assert_eq!(f.code(), Some(portcullis::wire::ErrorCode::TokenExpired));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AuthFailure {
    /// The response status.
    pub status: StatusCode,
    /// Every challenge of every `WWW-Authenticate` field (unparseable fields are skipped).
    pub challenges: Vec<Challenge>,
    /// The problem body, if the response had a JSON one.
    pub problem: Option<ProblemDetails>,
}

impl AuthFailure {
    /// Read a failure from a response's status, headers and (possibly empty) body.
    pub fn parse(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let challenges = Self::challenges_of(headers);
        let is_json = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let ct = ct.split(';').next().unwrap_or("").trim();
                ct.eq_ignore_ascii_case(PROBLEM_JSON) || ct.eq_ignore_ascii_case("application/json")
            });
        let problem = if is_json {
            ProblemDetails::from_json(body)
        } else {
            None
        };
        AuthFailure {
            status,
            challenges,
            problem,
        }
    }

    pub(crate) fn challenges_of(headers: &HeaderMap) -> Vec<Challenge> {
        headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| parse_challenges(v).ok())
            .flatten()
            .collect()
    }

    /// The first Bearer challenge, if any.
    pub fn bearer(&self) -> Option<&Challenge> {
        self.challenges.iter().find(|c| c.is("Bearer"))
    }

    /// The RFC 6750 `error` of the Bearer challenge (`invalid_token`, `insufficient_scope`, …).
    pub fn bearer_error(&self) -> Option<&str> {
        self.bearer()?.param("error")
    }

    /// The problem body's stable `code`, typed: the same [`ErrorCode`] a Portcullis server
    /// sent. `None` when there is no code or one this version does not know (read
    /// [`ProblemDetails::code`] for the raw value).
    pub fn code(&self) -> Option<ErrorCode> {
        self.problem.as_ref()?.error_code()
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(code) = self.problem.as_ref().and_then(|p| p.code.as_deref()) {
            write!(f, " {code}")?;
        } else if let Some(e) = self.bearer_error() {
            write!(f, " {e}")?;
        }
        Ok(())
    }
}
