//! One value for every authentication or authorization failure.
//!
//! [`AuthError`] decides the status, the challenge and the problem body of a failure; nothing
//! else in the crate chooses a status. [`ErrorCode`] values are part of the wire contract:
//! clients switch on them, so they never change once released.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use http::StatusCode;

pub use portcullis_wire::ErrorCode;

/// A failure to authenticate or authorize a request.
///
/// Its [`code`](AuthError::code) decides status and challenge; its `detail` is a human-readable
/// explanation that never contains the credential.
///
/// # Example
/// ```
/// use auth_layer::{AuthError, ErrorCode};
/// let err = AuthError::new(ErrorCode::TokenExpired);
/// assert_eq!(err.to_string(), "token_expired: the token has expired");
/// let err = AuthError::insufficient_scope(["admin"]);
/// assert_eq!(err.required_scopes(), ["admin"]);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AuthError {
    code: ErrorCode,
    detail: Cow<'static, str>,
    required_scopes: Vec<String>,
    retry_after: Option<Duration>,
}

impl AuthError {
    /// A failure with the code's default detail.
    pub const fn new(code: ErrorCode) -> Self {
        AuthError {
            code,
            detail: Cow::Borrowed(code.default_detail()),
            required_scopes: Vec::new(),
            retry_after: None,
        }
    }

    /// A failure with its own detail. Never put the credential or unverified claims here.
    pub fn with_detail(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        AuthError {
            detail: detail.into(),
            ..AuthError::new(code)
        }
    }

    /// 403 `insufficient_scope`, naming the scopes the route requires.
    pub fn insufficient_scope<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        AuthError {
            required_scopes: scopes.into_iter().map(Into::into).collect(),
            ..AuthError::new(ErrorCode::InsufficientScope)
        }
    }

    /// 503 `key_set_unavailable`, telling the client when to try again.
    pub fn key_set_unavailable(retry_after: Duration) -> Self {
        AuthError {
            retry_after: Some(retry_after),
            ..AuthError::new(ErrorCode::KeySetUnavailable)
        }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Scopes the request would have needed (only for `insufficient_scope`).
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// When the client may retry (only for `key_set_unavailable`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// True when nothing but the code distinguishes this error, so a response built once
    /// when the layer was built can be reused.
    pub(crate) fn is_canonical(&self) -> bool {
        self.required_scopes.is_empty()
            && self.retry_after.is_none()
            && matches!(self.detail, Cow::Borrowed(d) if std::ptr::eq(d, self.code.default_detail()))
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthError")
            .field("code", &self.code)
            .field("detail", &self.detail)
            .field("required_scopes", &self.required_scopes)
            .finish()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for AuthError {}

impl From<ErrorCode> for AuthError {
    fn from(code: ErrorCode) -> Self {
        AuthError::new(code)
    }
}

/// A configuration mistake found when a layer or key is built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value that must go into a quoted-string or header (realm, scheme, URL) is not allowed there.
    #[error("invalid {what}: {why}")]
    InvalidValue {
        /// Which setting.
        what: &'static str,
        /// Why it is refused.
        why: &'static str,
    },
    /// A key cannot be used with the algorithms it was given.
    #[error("key cannot be used: {0}")]
    Key(String),
    /// No credential source or no authenticator was configured.
    #[error("{0}")]
    Incomplete(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_default_detail_errors_are_canonical() {
        assert!(AuthError::new(ErrorCode::TokenExpired).is_canonical());
        assert!(!AuthError::with_detail(ErrorCode::TokenExpired, "other").is_canonical());
        assert!(!AuthError::insufficient_scope(["a"]).is_canonical());
    }
}
