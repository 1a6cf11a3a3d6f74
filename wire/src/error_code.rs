//! The stable error codes of the wire contract (the problem body's `code` member): each with
//! its status, title, default detail and RFC 6750 `error`. Clients switch on them, so a released
//! code never changes.

use std::fmt;

use http::StatusCode;

/// The stable, machine-readable reason for a failure (the problem body's `code`).
///
/// # Example
/// ```
/// use portcullis::wire::ErrorCode;
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
    /// Whether the token is revoked cannot be decided now: the revocation list is larger than
    /// this server holds in memory and the store that holds the rest cannot be reached.
    RevocationUnavailable,
    /// The token is authentic and current, but its claims do not have the shape this API
    /// reads (a custom claim it requires is absent or of another type). A new token from the
    /// same grant would carry the same claims, so this is a `403`: no client refreshes on it.
    InvalidClaims,
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
        ErrorCode::RevocationUnavailable,
        ErrorCode::InvalidClaims,
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
            ErrorCode::RevocationUnavailable => "revocation_unavailable",
            ErrorCode::InvalidClaims => "invalid_claims",
        }
    }

    /// The HTTP status this failure is answered with.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::InsufficientScope
            | ErrorCode::Forbidden
            | ErrorCode::CsrfFailed
            | ErrorCode::InvalidClaims => StatusCode::FORBIDDEN,
            ErrorCode::KeySetUnavailable | ErrorCode::RevocationUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
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
            ErrorCode::RevocationUnavailable => "Revocation list unavailable",
            ErrorCode::InvalidClaims => "Token claims not accepted",
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
            ErrorCode::RevocationUnavailable => {
                "whether the token has been revoked cannot be checked right now"
            }
            ErrorCode::InvalidClaims => "the token's claims do not have the shape this API reads",
        }
    }

    /// Whether a new credential can turn this refusal into a success, and so whether
    /// Portcullis's client refreshes its credential on it by default and sends the request once
    /// more: a `401` whose Bearer challenge says neither `invalid_request` nor
    /// `insufficient_scope` (RFC 6750 §3.1).
    ///
    /// | refreshes | codes |
    /// |---|---|
    /// | yes (401) | `missing_credentials`, `unsupported_scheme`, `token_malformed`, `invalid_signature`, `algorithm_not_allowed`, `unknown_key`, `token_expired`, `token_not_yet_valid`, `invalid_issuer`, `invalid_audience`, `invalid_token_type`, `missing_claim`, `token_revoked`, `invalid_api_key` |
    /// | no | `invalid_request` (400: fix the request), `insufficient_scope` (403: only with step-up, which asks for more scope), `forbidden`, `csrf_failed`, `invalid_claims` (403: the same grant gives the same answer), `key_set_unavailable`, `revocation_unavailable` (503: retry later, `Retry-After`) |
    ///
    /// A `403` `token_revoked` (a server that answers revocations with `403`) refreshes only
    /// when the client opts in (`RefreshLayerBuilder::refresh_on_revoked_token`).
    ///
    /// ```
    /// use portcullis::wire::ErrorCode;
    /// assert!(ErrorCode::TokenExpired.client_refreshes());
    /// assert!(!ErrorCode::InvalidClaims.client_refreshes());
    /// assert!(!ErrorCode::InsufficientScope.client_refreshes());
    /// ```
    pub const fn client_refreshes(self) -> bool {
        // The codes whose `bearer_error` is `invalid_request` or `insufficient_scope` (a test
        // pins that this is the same rule).
        self.status().as_u16() == 401
            && !matches!(
                self,
                ErrorCode::InvalidRequest | ErrorCode::InsufficientScope
            )
    }

    /// The RFC 6750 §3.1 `error` value of the Bearer challenge for this failure
    /// (`invalid_request`, `invalid_token` or `insufficient_scope`), if one applies.
    pub const fn bearer_error(self) -> Option<&'static str> {
        match self {
            ErrorCode::MissingCredentials
            | ErrorCode::UnsupportedScheme
            | ErrorCode::InvalidApiKey
            | ErrorCode::Forbidden
            | ErrorCode::CsrfFailed
            | ErrorCode::KeySetUnavailable
            | ErrorCode::RevocationUnavailable
            | ErrorCode::InvalidClaims => None,
            ErrorCode::InvalidRequest => Some("invalid_request"),
            ErrorCode::InsufficientScope => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }

    /// Position in [`ErrorCode::ALL`], for tables indexed by code (metrics, prebuilt
    /// responses). `ALL` lists the variants in declaration order (a test pins that), so this is
    /// a cast rather than a search.
    pub const fn position(self) -> usize {
        self as usize
    }

    /// The code whose wire value is `s` (`None` for a code this version does not know, such as
    /// one a newer server sends).
    ///
    /// ```
    /// use portcullis::wire::ErrorCode;
    /// assert_eq!(ErrorCode::from_wire("token_expired"), Some(ErrorCode::TokenExpired));
    /// assert_eq!(ErrorCode::from_wire("something_new"), None);
    /// ```
    pub fn from_wire(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_distinct_wire_value_and_position() {
        let mut seen = std::collections::HashSet::new();
        for (i, &code) in ErrorCode::ALL.iter().enumerate() {
            assert!(seen.insert(code.as_str()), "{code} is listed twice");
            assert_eq!(code.position(), i);
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
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
        for c in [KeySetUnavailable, RevocationUnavailable] {
            assert_eq!(c.status(), StatusCode::SERVICE_UNAVAILABLE, "{c}");
            assert_eq!(c.bearer_error(), None, "{c}");
        }
    }

    #[test]
    fn client_refreshes_is_the_401_rule_of_rfc_6750_errors() {
        for &c in ErrorCode::ALL {
            let by_challenge = c.status() == StatusCode::UNAUTHORIZED
                && !matches!(
                    c.bearer_error(),
                    Some("invalid_request" | "insufficient_scope")
                );
            assert_eq!(c.client_refreshes(), by_challenge, "{c}");
        }
        assert_eq!(ErrorCode::InvalidClaims.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn bearer_errors_follow_rfc_6750() {
        assert_eq!(
            ErrorCode::InvalidRequest.bearer_error(),
            Some("invalid_request")
        );
        assert_eq!(
            ErrorCode::TokenExpired.bearer_error(),
            Some("invalid_token")
        );
        assert_eq!(
            ErrorCode::InsufficientScope.bearer_error(),
            Some("insufficient_scope")
        );
        assert_eq!(ErrorCode::MissingCredentials.bearer_error(), None);
        assert_eq!(ErrorCode::InvalidApiKey.bearer_error(), None);
    }
}
