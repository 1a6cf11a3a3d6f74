//! One value for every authentication or authorization failure.
//!
//! [`AuthError`] decides the status, the challenge and the problem body of a failure; nothing
//! else in the crate chooses a status. [`ErrorCode`] values are part of the wire contract:
//! clients switch on them, so they never change once released.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use http::StatusCode;

/// The stable, machine-readable reason for a failure (the problem body's `code`).
///
/// # Example
/// ```
/// use auth_layer::ErrorCode;
/// assert_eq!(ErrorCode::TokenExpired.as_str(), "token_expired");
/// assert_eq!(ErrorCode::TokenExpired.status(), http::StatusCode::UNAUTHORIZED);
/// assert_eq!(ErrorCode::InsufficientScope.status(), http::StatusCode::FORBIDDEN);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No credential of any accepted kind was sent.
    MissingCredentials,
    /// `Authorization` used a scheme this layer does not accept.
    UnsupportedScheme,
    /// The credential was sent in a malformed way (RFC 6750 `invalid_request`).
    InvalidRequest,
    /// The bearer token is not a parseable JWT.
    TokenMalformed,
    /// The signature does not verify.
    InvalidSignature,
    /// The token's `alg` is not allowed for its key.
    AlgorithmNotAllowed,
    /// The token's `kid` names no key in the key set.
    UnknownKey,
    /// `exp` has passed (beyond the leeway).
    TokenExpired,
    /// `nbf` or `iat` lies in the future (beyond the leeway).
    TokenNotYetValid,
    /// `iss` is not an accepted issuer.
    InvalidIssuer,
    /// `aud` names none of the accepted audiences.
    InvalidAudience,
    /// The JOSE header's `typ` is not the required one.
    InvalidTokenType,
    /// A required claim is absent.
    MissingClaim,
    /// The revocation hook says the token or subject is revoked.
    TokenRevoked,
    /// The API key is not known.
    InvalidApiKey,
    /// Authenticated, but a required scope is missing.
    InsufficientScope,
    /// Authenticated, but a role or custom policy refuses the request.
    Forbidden,
    /// A cookie-authenticated unsafe request lacks its CSRF proof.
    CsrfFailed,
    /// The key set cannot be fetched and the token's key is not cached.
    KeySetUnavailable,
}

/// Which RFC 6750 §3.1 `error` value a failure maps to, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerError {
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
}

impl BearerError {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BearerError::InvalidRequest => "invalid_request",
            BearerError::InvalidToken => "invalid_token",
            BearerError::InsufficientScope => "insufficient_scope",
        }
    }
}

impl ErrorCode {
    /// Every code, in a fixed order (the index used by metrics). A slice, not an array: its
    /// type does not change when a code is added.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::MissingCredentials,
        ErrorCode::UnsupportedScheme,
        ErrorCode::InvalidRequest,
        ErrorCode::TokenMalformed,
        ErrorCode::InvalidSignature,
        ErrorCode::AlgorithmNotAllowed,
        ErrorCode::UnknownKey,
        ErrorCode::TokenExpired,
        ErrorCode::TokenNotYetValid,
        ErrorCode::InvalidIssuer,
        ErrorCode::InvalidAudience,
        ErrorCode::InvalidTokenType,
        ErrorCode::MissingClaim,
        ErrorCode::TokenRevoked,
        ErrorCode::InvalidApiKey,
        ErrorCode::InsufficientScope,
        ErrorCode::Forbidden,
        ErrorCode::CsrfFailed,
        ErrorCode::KeySetUnavailable,
    ];

    /// The wire value of the problem body's `code` member.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingCredentials => "missing_credentials",
            ErrorCode::UnsupportedScheme => "unsupported_scheme",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::TokenMalformed => "token_malformed",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::AlgorithmNotAllowed => "algorithm_not_allowed",
            ErrorCode::UnknownKey => "unknown_key",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenNotYetValid => "token_not_yet_valid",
            ErrorCode::InvalidIssuer => "invalid_issuer",
            ErrorCode::InvalidAudience => "invalid_audience",
            ErrorCode::InvalidTokenType => "invalid_token_type",
            ErrorCode::MissingClaim => "missing_claim",
            ErrorCode::TokenRevoked => "token_revoked",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::CsrfFailed => "csrf_failed",
            ErrorCode::KeySetUnavailable => "key_set_unavailable",
        }
    }

    /// The HTTP status this failure is answered with.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::InsufficientScope | ErrorCode::Forbidden | ErrorCode::CsrfFailed => {
                StatusCode::FORBIDDEN
            }
            ErrorCode::KeySetUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The problem body's `title`: a short summary that does not vary per occurrence.
    pub const fn title(self) -> &'static str {
        match self {
            ErrorCode::MissingCredentials => "Authentication required",
            ErrorCode::UnsupportedScheme => "Unsupported authentication scheme",
            ErrorCode::InvalidRequest => "Malformed credentials",
            ErrorCode::TokenMalformed => "Malformed token",
            ErrorCode::InvalidSignature => "Invalid token signature",
            ErrorCode::AlgorithmNotAllowed => "Token algorithm not allowed",
            ErrorCode::UnknownKey => "Unknown signing key",
            ErrorCode::TokenExpired => "Token expired",
            ErrorCode::TokenNotYetValid => "Token not yet valid",
            ErrorCode::InvalidIssuer => "Invalid token issuer",
            ErrorCode::InvalidAudience => "Invalid token audience",
            ErrorCode::InvalidTokenType => "Invalid token type",
            ErrorCode::MissingClaim => "Required claim missing",
            ErrorCode::TokenRevoked => "Token revoked",
            ErrorCode::InvalidApiKey => "Invalid API key",
            ErrorCode::InsufficientScope => "Insufficient scope",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::CsrfFailed => "CSRF check failed",
            ErrorCode::KeySetUnavailable => "Signing keys unavailable",
        }
    }

    /// The default `detail` used when a failure gives none of its own.
    pub const fn default_detail(self) -> &'static str {
        match self {
            ErrorCode::MissingCredentials => "the request carries no credentials",
            ErrorCode::UnsupportedScheme => "the Authorization scheme is not accepted here",
            ErrorCode::InvalidRequest => "the credentials are malformed",
            ErrorCode::TokenMalformed => "the bearer token is not a well-formed JWT",
            ErrorCode::InvalidSignature => "the token signature does not verify",
            ErrorCode::AlgorithmNotAllowed => "the token algorithm is not allowed for its key",
            ErrorCode::UnknownKey => "the token was signed with an unknown key",
            ErrorCode::TokenExpired => "the token has expired",
            ErrorCode::TokenNotYetValid => "the token is not valid yet",
            ErrorCode::InvalidIssuer => "the token issuer is not accepted",
            ErrorCode::InvalidAudience => "the token audience is not accepted",
            ErrorCode::InvalidTokenType => "the token type is not accepted",
            ErrorCode::MissingClaim => "a required claim is missing",
            ErrorCode::TokenRevoked => "the token has been revoked",
            ErrorCode::InvalidApiKey => "the API key is not valid",
            ErrorCode::InsufficientScope => "the token lacks a required scope",
            ErrorCode::Forbidden => "access to this resource is not allowed",
            ErrorCode::CsrfFailed => "the request lacks a valid CSRF proof",
            ErrorCode::KeySetUnavailable => "the signing keys cannot be fetched right now",
        }
    }

    pub(crate) const fn bearer_error(self) -> Option<BearerError> {
        match self {
            ErrorCode::MissingCredentials
            | ErrorCode::UnsupportedScheme
            | ErrorCode::InvalidApiKey
            | ErrorCode::Forbidden
            | ErrorCode::CsrfFailed
            | ErrorCode::KeySetUnavailable => None,
            ErrorCode::InvalidRequest => Some(BearerError::InvalidRequest),
            ErrorCode::InsufficientScope => Some(BearerError::InsufficientScope),
            _ => Some(BearerError::InvalidToken),
        }
    }

    /// Position in [`ErrorCode::ALL`], which lists the variants in declaration order (a test
    /// pins that), so this is a cast rather than a search on every rejection.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    fn every_code_has_a_distinct_wire_value_and_index() {
        let mut seen = std::collections::HashSet::new();
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert!(seen.insert(code.as_str()), "{code} is listed twice");
            assert_eq!(code.index(), i);
        }
    }

    #[test]
    fn statuses_follow_the_contract() {
        use ErrorCode::*;
        assert_eq!(InvalidRequest.status(), StatusCode::BAD_REQUEST);
        for c in [
            MissingCredentials,
            UnsupportedScheme,
            TokenExpired,
            InvalidApiKey,
        ] {
            assert_eq!(c.status(), StatusCode::UNAUTHORIZED, "{c}");
        }
        for c in [InsufficientScope, Forbidden, CsrfFailed] {
            assert_eq!(c.status(), StatusCode::FORBIDDEN, "{c}");
        }
        assert_eq!(KeySetUnavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn only_default_detail_errors_are_canonical() {
        assert!(AuthError::new(ErrorCode::TokenExpired).is_canonical());
        assert!(!AuthError::with_detail(ErrorCode::TokenExpired, "other").is_canonical());
        assert!(!AuthError::insufficient_scope(["a"]).is_canonical());
    }
}
