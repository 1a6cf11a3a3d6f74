//! The RFC 9457 problem body of a failure, as a server writes it ([`Problem`]) and as a client
//! reads it back ([`ProblemDetails`]). The member names live here only.

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// The media type of a problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One failure, as a server describes it: what a problem body is rendered from.
///
/// # Example
/// ```
/// use portcullis::wire::{ErrorCode, Problem};
/// let scopes = ["admin".to_owned()];
/// let p = Problem::new(ErrorCode::InsufficientScope, "urn:example:insufficient_scope", "needs admin", &scopes);
/// let json: serde_json::Value = serde_json::from_slice(&p.to_json()).unwrap();
/// assert_eq!(json["status"], 403);
/// assert_eq!(json["code"], "insufficient_scope");
/// assert_eq!(json["scope"], "admin");
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Problem<'a> {
    /// The stable code.
    pub code: ErrorCode,
    /// The HTTP status (fixed by the code).
    pub status: StatusCode,
    /// The RFC 9457 `type` URI for this code.
    pub type_uri: &'a str,
    /// A short, code-specific title.
    pub title: &'static str,
    /// The human-readable detail (never contains the credential).
    pub detail: &'a str,
    /// The RFC 6750 `error` value, when one applies.
    pub bearer_error: Option<&'static str>,
    /// Scopes the request would have needed (`insufficient_scope` only).
    pub required_scopes: &'a [String],
}

impl<'a> Problem<'a> {
    /// The problem for `code`, with the status, title and RFC 6750 `error` the code fixes.
    pub fn new(
        code: ErrorCode,
        type_uri: &'a str,
        detail: &'a str,
        required_scopes: &'a [String],
    ) -> Self {
        Problem {
            code,
            status: code.status(),
            type_uri,
            title: code.title(),
            detail,
            bearer_error: code.bearer_error(),
            required_scopes,
        }
    }

    /// The `application/problem+json` body: `type`, `title`, `status`, `detail`, `code`, and,
    /// where they apply, `error`, `scope` (space-separated) and `required_scopes` (an array).
    pub fn to_json(&self) -> Vec<u8> {
        let body = Members {
            type_uri: self.type_uri,
            title: self.title,
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.as_str(),
            error: self.bearer_error,
            scope: (!self.required_scopes.is_empty()).then(|| self.required_scopes.join(" ")),
            required_scopes: self.required_scopes,
        };
        // Serialising borrowed strings into a Vec cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// What [`Problem::to_json`] writes, borrowed so that rendering copies nothing twice.
#[derive(Serialize)]
struct Members<'a> {
    #[serde(rename = "type")]
    type_uri: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    required_scopes: &'a [String],
}

/// A problem body as a client reads it: every member optional, unknown members ignored, so
/// that any RFC 9457 server can be read, not only a Portcullis one.
///
/// ```
/// use portcullis::wire::{ErrorCode, ProblemDetails};
/// let p = ProblemDetails::from_json(br#"{"status":401,"code":"token_expired","extra":1}"#).unwrap();
/// assert_eq!(p.error_code(), Some(ErrorCode::TokenExpired));
/// assert_eq!(p.status, Some(401));
/// ```
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct ProblemDetails {
    /// `type` URI.
    #[serde(rename = "type")]
    pub type_uri: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `status`.
    pub status: Option<u16>,
    /// `detail`.
    pub detail: Option<String>,
    /// The stable machine-readable `code` as sent (see [`error_code`](Self::error_code)).
    pub code: Option<String>,
    /// The RFC 6750 `error` mirrored from the challenge.
    pub error: Option<String>,
    /// Space-separated scopes the request needed.
    pub scope: Option<String>,
    /// Scopes the request needed, as an array.
    #[serde(default)]
    pub required_scopes: Vec<String>,
}

impl ProblemDetails {
    /// Read a JSON problem body; `None` when it is not a JSON object of the right shape.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    /// The `code` as a typed [`ErrorCode`]; `None` when absent or unknown to this version.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_wire(self.code.as_deref()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_server_writes_a_client_reads() {
        let scopes = vec!["read".to_owned(), "write".to_owned()];
        for &code in ErrorCode::ALL {
            let written = Problem::new(code, "urn:t", code.default_detail(), &scopes);
            let read = ProblemDetails::from_json(&written.to_json()).unwrap();
            assert_eq!(read.error_code(), Some(code));
            assert_eq!(read.status, Some(code.status().as_u16()));
            assert_eq!(read.title.as_deref(), Some(code.title()));
            assert_eq!(read.detail.as_deref(), Some(code.default_detail()));
            assert_eq!(read.error.as_deref(), code.bearer_error());
            assert_eq!(read.scope.as_deref(), Some("read write"));
            assert_eq!(read.required_scopes, scopes);
        }
    }

    #[test]
    fn optional_members_are_left_out() {
        let p = Problem::new(ErrorCode::MissingCredentials, "urn:t", "none", &[]);
        let v: serde_json::Value = serde_json::from_slice(&p.to_json()).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 5, "{keys:?}");
        assert!(v.get("error").is_none() && v.get("scope").is_none());
    }

    #[test]
    fn other_shapes_are_not_problems() {
        assert!(ProblemDetails::from_json(b"[1]").is_none());
        assert!(ProblemDetails::from_json(b"not json").is_none());
        assert_eq!(
            ProblemDetails::from_json(br#"{"code":"brand_new"}"#)
                .unwrap()
                .error_code(),
            None
        );
    }
}
