//! One value for every authentication or authorization failure.
//!
//! [`AuthError`] decides the status, the challenge and the problem body of a failure; nothing
//! else in the crate chooses a status. [`ErrorCode`] values are part of the wire contract:
//! clients switch on them, so they never change once released.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use http::StatusCode;

pub(crate) use portcullis_wire::ErrorCode;

/// A failure to authenticate or authorize a request.
///
/// Its [`code`](AuthError::code) decides status and challenge; its `detail` is a human-readable
/// explanation that never contains the credential.
///
/// # Example
/// ```
/// use portcullis::server::AuthError;
/// use portcullis::wire::ErrorCode;
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

    /// 503 `revocation_unavailable`, telling the client when to try again: the revocation hook
    /// cannot say now whether the token is revoked, so it is neither accepted nor called
    /// revoked.
    pub fn revocation_unavailable(retry_after: Duration) -> Self {
        AuthError {
            retry_after: Some(retry_after),
            ..AuthError::new(ErrorCode::RevocationUnavailable)
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

    /// When the client may retry (only for the 503 codes, `key_set_unavailable` and
    /// `revocation_unavailable`).
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

/// A configuration mistake found when a layer, an authenticator, a key or a key source is
/// built. Each variant names what was wrong; none holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The realm holds characters a challenge cannot carry (only printable ASCII without `"`
    /// and `\`).
    #[error("invalid realm: only printable ASCII without '\"' and '\\' is allowed")]
    InvalidRealm,
    /// The API-key scheme named in challenges is not an RFC 9110 token.
    #[error("invalid authentication scheme {0:?}: a scheme is an RFC 9110 token")]
    InvalidScheme(String),
    /// The cookie name is not an RFC 6265 token.
    #[error("invalid cookie name {0:?}: a cookie name is an RFC 6265 token")]
    InvalidCookieName(String),
    /// A header name (API key, CSRF) is not a valid HTTP header name.
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    /// An API key header that another source reads (`Authorization`, `Cookie`).
    #[error(
        "the API key cannot use the {0:?} header: the bearer and cookie sources read it; pick a header of its own, such as x-api-key"
    )]
    ReservedHeader(String),
    /// The protected resource (RFC 9728) is not an absolute URL a challenge can carry.
    #[error("invalid protected resource {0:?}: it must be an absolute URL of printable ASCII")]
    InvalidResource(String),
    /// A challenge scope ([`ProtectedResource::challenge_scope`](crate::ProtectedResource::challenge_scope))
    /// that a quoted header parameter cannot carry.
    #[error("invalid challenge scope {0:?}: it must be printable ASCII without quotes")]
    InvalidScope(String),
    /// An origin (CORS, CSRF) is not `scheme://host[:port]` as browsers send it.
    #[error(
        "invalid origin {0:?}: an origin is scheme://host[:port], without a path or trailing slash"
    )]
    InvalidOrigin(String),
    /// A CORS setup with credentials named no origin.
    #[error("allow at least one origin")]
    NoOrigin,
    /// A wildcard origin cannot be combined with credentials (browsers refuse it).
    #[error("a wildcard origin cannot be combined with credentials")]
    WildcardOrigin,
    /// A [`CsrfKey`](crate::CsrfKey) secret shorter than the HMAC-SHA256 output.
    #[error("a CSRF key needs a secret of at least {min} random bytes, got {got}")]
    CsrfKeyTooShort {
        /// Bytes required.
        min: usize,
        /// Bytes given.
        got: usize,
    },
    /// The layer reads a cookie credential but no CSRF protection was chosen.
    #[error(
        "a cookie credential needs CSRF protection: .csrf(CsrfPolicy::session_bound(CsrfKey::new(secret)?)) with the same secret on every replica, or .disable_csrf_protection() only if the cookie is SameSite=Strict and nothing else can send it"
    )]
    CsrfNotConfigured,
    /// An option of session-bound CSRF tokens (the method named) given to another protection.
    #[error("CsrfPolicy::{0} only applies to session-bound tokens (CsrfPolicy::session_bound)")]
    CsrfNotSessionBound(&'static str),
    /// The handlers read another claims type than an authenticator of the layer attaches
    /// (`AuthLayerBuilder::claims`).
    #[error(
        "the handlers read claims of type {expected}, but the {credential} authenticator attaches {found}: give it .claims::<{expected}>() (JwtAuthenticatorBuilder::claims)"
    )]
    ClaimsTypeMismatch {
        /// The credential source whose authenticator does not match (`bearer` or `cookie`).
        credential: &'static str,
        /// The type the handlers read.
        expected: &'static str,
        /// The type the authenticator attaches (`()` for none).
        found: &'static str,
    },
    /// [`AuthLayer::accepting`](crate::AuthLayer::accepting) named a credential kind (its
    /// [`as_str`](crate::CredentialKind::as_str)) the layer was not built to accept.
    #[error(
        "the layer was not built to accept {0} credentials: a copy can only accept fewer kinds; add the source to the AuthLayer builder first"
    )]
    CredentialNotConfigured(&'static str),
    /// The layer accepts no credential at all.
    #[error("accept at least one of: bearer, cookie, api_key")]
    NoCredentialSource,
    /// The JWT authenticator was given no verification key.
    #[error("no verification key was given")]
    NoKey,
    /// The JWT authenticator was given both static keys and a key source.
    #[error("give either static keys or a key source, not both")]
    KeysAndKeySource,
    /// The JWT authenticator was not told which audience tokens must be for.
    #[error(
        "name the audience tokens must be for (.audience(\"…\")), or call .any_audience() to accept tokens minted for any API"
    )]
    NoAudience,
    /// A required claim is not one the authenticator can check.
    #[error(
        "claim {0:?} cannot be required: only registered claims can; check custom claims in your claims type"
    )]
    UncheckableClaim(String),
    /// The roles claim ([`roles_claim`](crate::jwt::JwtAuthenticatorBuilder::roles_claim),
    /// [`roles_claim_path`](crate::jwt::JwtAuthenticatorBuilder::roles_claim_path)) has no name,
    /// or its path is empty or has an empty name in it.
    #[error(
        "name the claim roles are read from: a member name, or a path of member names, none of them empty"
    )]
    EmptyRolesClaim,
    /// The roles claim names a registered claim the JWT authenticator reads for itself (`aud`,
    /// `scope`, …): one member cannot be read as two claims.
    #[error(
        "roles cannot be read from the claim {0:?}: the authenticator reads that registered claim itself; name the claim your identity provider puts roles in (roles, groups, cognito:groups, realm_access.roles, ...)"
    )]
    RolesClaimIsRegistered(String),
    /// A key cannot be used as given.
    #[error("key cannot be used: {0}")]
    Key(#[from] KeyError),
    /// Key-set (JWKS) settings: `min_ttl` is longer than `max_ttl`.
    #[error("invalid key set settings: min_ttl is longer than max_ttl")]
    KeySetTtlRange,
    /// Key-set (JWKS) settings: a zero timeout, so no fetch could ever finish.
    #[error("invalid key set settings: timeout is zero, no fetch could ever finish")]
    KeySetZeroTimeout,
    /// Key-set (JWKS) settings: a zero body limit, so no key set fits.
    #[error("invalid key set settings: max_body is zero, no key set fits")]
    KeySetZeroMaxBody,
    /// Key-set (JWKS) settings: `rsa_default_algorithms` names an algorithm that is not RS* or
    /// PS*.
    #[error(
        "invalid key set settings: rsa_default_algorithms may only name RS* and PS* algorithms"
    )]
    KeySetNotRsaAlgorithm,
    /// A key-set (JWKS) or issuer URL that is not an absolute `http(s)` URL.
    #[error("invalid key set URL {0:?}: it must be an absolute https URL")]
    InvalidKeySetUrl(String),
    /// A plain `http` key-set URL without `allow_http`.
    #[error(
        "keys are fetched over https only, not from {0} (allow_http(true) is for tests on loopback)"
    )]
    InsecureKeySetUrl(String),
    /// The system has no TLS root certificates to check a key-set provider with.
    #[error("no TLS root certificates: {0}")]
    NoTlsRoots(String),
}

/// Why keys could not be fetched (feature `jwks`). Never replaces a good cached key set.
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// Connect, I/O or protocol failure.
    #[error("cannot reach the key set: {0}")]
    Network(String),
    /// The fetch took longer than the timeout.
    #[error("fetching the key set took longer than {0:?}")]
    Timeout(Duration),
    /// The provider answered with a non-success status.
    #[error("the key set endpoint answered {0}")]
    Status(StatusCode),
    /// The body is larger than the limit.
    #[error("the key set response is larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not a JWK Set (or discovery document).
    #[error("invalid key set document: {0}")]
    InvalidDocument(String),
    /// The JWK Set holds no key this layer can verify with.
    #[error("the key set holds no usable signature key")]
    NoUsableKeys,
    /// OIDC discovery returned another issuer than the one asked for.
    #[error("discovery document names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch {
        /// The issuer configured.
        expected: String,
        /// The issuer in the document.
        found: String,
    },
    /// A URL is not an absolute http(s) URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// A plain `http` URL where keys must come over `https`.
    #[error(
        "keys are fetched over https only, not from {0} (allow_http(true) on the builder is for tests on loopback)"
    )]
    InsecureUrl(String),
    /// The settings are refused (the `ConfigError::KeySet…` variants) or a key cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Why the shared revocation list could not be used (feature `redis`; the same errors as the
/// client's shared store).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub type SharedRevocationError = portcullis_wire::redis_link::RedisLinkError;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
/// Why a self-service logout ([`SharedRevocations::revoke_own_token`]) was not shared. A
/// logout is never refused: a limit that refused would leave the token valid.
///
/// [`SharedRevocations::revoke_own_token`]: crate::SharedRevocations::revoke_own_token
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutError {
    /// Revoked on this replica, but Redis could not be reached: the others learn of it when
    /// this replica reaches Redis again.
    #[error("revoked on this replica only: {0}")]
    NotShared(#[from] SharedRevocationError),
}

/// Why a key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No algorithm was allowed for the key.
    #[error("a key needs at least one algorithm")]
    NoAlgorithm,
    /// An algorithm of another family than the key's (HS with an RSA key, say).
    #[error("{algorithm:?} cannot be verified with a {family:?} key")]
    WrongFamily {
        /// The algorithm asked for.
        algorithm: jsonwebtoken::Algorithm,
        /// The key's family.
        family: jsonwebtoken::AlgorithmFamily,
    },
    /// An HMAC secret shorter than its algorithm's output (RFC 7518 §3.2).
    #[error("{algorithm:?} needs a secret of at least {min} bytes (RFC 7518 §3.2), got {got}")]
    ShortSecret {
        /// The algorithm.
        algorithm: jsonwebtoken::Algorithm,
        /// Bytes required.
        min: usize,
        /// Bytes given.
        got: usize,
    },
    /// A JWK whose `use` is not `sig`.
    #[error("the JWK is not for signatures (use)")]
    NotForSignatures,
    /// A JWK whose `key_ops` do not include `verify`.
    #[error("the JWK's key_ops do not include verify")]
    NotForVerification,
    /// A JWK without `alg` whose algorithm cannot be inferred.
    #[error("the JWK has no alg; give one")]
    NoAlg,
    /// A JWK `alg` that is not a signature algorithm.
    #[error("the JWK's alg is not a signature algorithm")]
    NotSignatureAlg,
    /// An elliptic curve this crate does not verify with.
    #[error("unsupported EC curve")]
    UnsupportedCurve,
    /// A JWK whose curve does not match its `alg`.
    #[error("the JWK's curve does not match its alg")]
    CurveMismatch,
    /// The key material cannot be used with the algorithm.
    #[error("the {algorithm:?} key is not usable: {reason}")]
    Unusable {
        /// The algorithm.
        algorithm: jsonwebtoken::Algorithm,
        /// What the crypto library said.
        reason: String,
    },
    /// The key could not be read.
    #[error("{0}")]
    Invalid(String),
    /// A PEM private key was given where the public key belongs.
    #[error(
        "this PEM holds a private key: pass the public key (-----BEGIN PUBLIC KEY-----); a verifier never needs the private one"
    )]
    PrivateKeyPem,
    /// The PEM text is not a public key of the expected type.
    #[error("not a PEM public key of this type (-----BEGIN PUBLIC KEY-----): {0}")]
    NotPublicKeyPem(String),
    /// Two keys of one static set share a `kid`.
    #[error("two keys share the kid {0:?}")]
    DuplicateKid(String),
    /// More than one key of one static set has no `kid`.
    #[error("more than one key without kid")]
    SeveralUnnamed,
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
