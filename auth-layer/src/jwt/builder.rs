//! [`JwtAuthenticatorBuilder`]: what a [`JwtAuthenticator`] checks, validated when it is built.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::authenticator::{Inner, JwtAuthenticator};
use super::cache::{DEFAULT_CACHE_BYTES, DEFAULT_CACHE_ENTRIES, VerifiedCache};
use super::claims::{self, CHECKABLE_CLAIMS};
use super::header;
use super::key_map::KeyMap;
use super::keys::{JwtKey, KeySource};
use super::time::DEFAULT_LEEWAY;
use crate::error::ConfigError;
use crate::revocation::Revocation;

/// Configures a [`JwtAuthenticator`]; see [`JwtAuthenticator::builder`].
#[must_use]
pub struct JwtAuthenticatorBuilder<C = ()> {
    keys: Vec<JwtKey>,
    source: Option<Arc<dyn KeySource>>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    any_audience: bool,
    leeway: Duration,
    required: Vec<String>,
    token_type: Option<String>,
    roles_claim: Vec<String>,
    revocation: Option<Arc<dyn Revocation>>,
    cache_capacity: usize,
    cache_bytes: usize,
    _claims: PhantomData<fn() -> C>,
}

impl<C> fmt::Debug for JwtAuthenticatorBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthenticatorBuilder")
            .field("keys", &self.keys)
            .field("key_source", &self.source.is_some())
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("any_audience", &self.any_audience)
            .field("leeway", &self.leeway)
            .field("required", &self.required)
            .field("token_type", &self.token_type)
            .field("roles_claim", &self.roles_claim)
            .field("cache_capacity", &self.cache_capacity)
            .finish_non_exhaustive()
    }
}

impl JwtAuthenticator<()> {
    /// Start configuring. Defaults: 60 s leeway, `exp` required, a verified-token cache of
    /// 10 000 entries and 16 MiB, no issuer or type check until you name them.
    ///
    /// The audience is not optional: [`build`](JwtAuthenticatorBuilder::build) fails unless
    /// you name one ([`audience`](JwtAuthenticatorBuilder::audience)) or say on purpose that
    /// any will do ([`any_audience`](JwtAuthenticatorBuilder::any_audience)). Without the check,
    /// a token the same issuer minted for another API would be accepted here.
    pub fn builder() -> JwtAuthenticatorBuilder<()> {
        JwtAuthenticatorBuilder {
            keys: Vec::new(),
            source: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            any_audience: false,
            leeway: DEFAULT_LEEWAY,
            required: vec!["exp".into()],
            token_type: None,
            roles_claim: vec!["roles".into()],
            revocation: None,
            cache_capacity: DEFAULT_CACHE_ENTRIES,
            cache_bytes: DEFAULT_CACHE_BYTES,
            _claims: PhantomData,
        }
    }
}

impl<C> JwtAuthenticatorBuilder<C> {
    /// Add a static key (select among several by `kid`).
    pub fn key(mut self, key: JwtKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Add several static keys at once, as [`key`](Self::key) does one by one: two keys with
    /// the same `kid`, or two without one, make [`build`](Self::build) fail.
    ///
    /// ```
    /// use portcullis::server::jsonwebtoken::Algorithm;
    /// use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
    /// # fn main() -> Result<(), portcullis::server::ConfigError> {
    /// let current = JwtKey::hmac(b"the-current-secret-of-32-bytes-or-more", &[Algorithm::HS256])?;
    /// let previous = JwtKey::hmac(b"the-previous-secret-of-32-bytes-or-more", &[Algorithm::HS256])?;
    /// let jwt = JwtAuthenticator::builder()
    ///     .keys([current.with_kid("2025-06"), previous.with_kid("2025-01")])
    ///     .audience("orders-api")
    ///     .build()?;
    /// # let _ = jwt; Ok(()) }
    /// ```
    pub fn keys(mut self, keys: impl IntoIterator<Item = JwtKey>) -> Self {
        self.keys.extend(keys);
        self
    }

    /// Take keys from a [`KeySource`] (a JWKS, say) instead of static keys.
    pub fn key_source(mut self, source: impl KeySource) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Accept tokens from this issuer (`iss`); may be given several times.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuers.push(iss.into());
        self
    }

    /// Accept tokens for this audience (`aud`); may be given several times. Name this API's
    /// own identifier, so that tokens minted for other APIs of the same issuer are refused
    /// (401 `invalid_audience`).
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences.push(aud.into());
        self
    }

    /// Accept tokens whatever their `aud` says. Only for an API that is the sole audience of
    /// its issuer's tokens; otherwise a token for another API is accepted here. Without this
    /// or an [`audience`](Self::audience), [`build`](Self::build) fails.
    pub fn any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Claims that must be present (replaces the default `["exp"]`); see [`CHECKABLE_CLAIMS`].
    pub fn required_claims<I, S>(mut self, claims: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required = claims.into_iter().map(Into::into).collect();
        self
    }

    /// Require the JOSE header `typ`; the `application/` prefix and case are ignored as RFC 7515
    /// §4.1.9 says.
    ///
    /// Use `token_type("at+jwt")` when your issuer mints RFC 9068 access tokens (most OpenID
    /// providers can): an OpenID Connect ID token is signed by the same keys and may carry the
    /// same `iss` and `aud`, and this check is what keeps it from being taken as an access
    /// token.
    pub fn token_type(mut self, typ: impl Into<String>) -> Self {
        self.token_type = Some(typ.into());
        self
    }

    /// The top-level claim a token's roles are read from (default `roles`), for
    /// [`Principal::roles`](crate::Principal::roles) and [`RequireRole`](crate::RequireRole):
    /// `groups` (Okta, Azure AD groups), `cognito:groups`, or a namespaced claim such as
    /// Auth0's `https://example.com/roles`. The name is taken as it is: dots and slashes are
    /// part of it. For roles nested in an object, use [`roles_claim_path`](Self::roles_claim_path).
    ///
    /// Once named, that claim alone is read: a `roles` member then grants nothing. Its value
    /// is an array of strings, or one string (one role: it is not split at spaces); a token
    /// without it has no roles, and any other value (a number, an object, an array holding
    /// anything but strings), or the claim given twice, makes the token unreadable: 401
    /// `token_malformed`, as for a registered claim. [`build`](Self::build) refuses an empty
    /// name ([`ConfigError::EmptyRolesClaim`]) and a registered claim the authenticator reads
    /// itself, such as `aud` or `scope` ([`ConfigError::RolesClaimIsRegistered`]).
    pub fn roles_claim(self, name: impl Into<String>) -> Self {
        self.roles_claim_path([name])
    }

    /// Roles nested in objects: each name a member of the object before it, the first a
    /// member of the payload. Keycloak's realm roles are `["realm_access", "roles"]`, a
    /// client's roles `["resource_access", "<client id>", "roles"]`. Members beside the path
    /// are skipped; an object on the way that lacks the next member, or is `null`, means no
    /// roles; anything else on the way makes the token unreadable (401 `token_malformed`).
    /// Otherwise as [`roles_claim`](Self::roles_claim), which is this with one name.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use portcullis::server::jsonwebtoken::Algorithm;
    /// use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
    /// use portcullis::server::{AuthLayer, RequireRole};
    /// # fn main() -> Result<(), portcullis::server::ConfigError> {
    /// // Keycloak: {"realm_access": {"roles": ["finance", "offline_access"]}, ...}
    /// let jwt = JwtAuthenticator::builder()
    ///     .key(JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::HS256])?)
    ///     .audience("orders-api")
    ///     .roles_claim_path(["realm_access", "roles"])
    ///     .build()?;
    /// let app: Router = Router::new()
    ///     .route("/billing", get(|| async { "$" }).route_layer(RequireRole::any(["finance"])))
    ///     .layer(AuthLayer::bearer(jwt)?);
    /// # let _ = app; Ok(()) }
    /// ```
    pub fn roles_claim_path<I, S>(mut self, path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles_claim = path.into_iter().map(Into::into).collect();
        self
    }

    /// Consult this hook for every token that verifies.
    pub fn revocation(mut self, hook: impl Revocation) -> Self {
        self.revocation = Some(Arc::new(hook));
        self
    }

    /// How many tokens the verified-token cache holds at most; 0 turns it off.
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// How many bytes of tokens the verified-token cache holds at most (default 16 MiB); each
    /// entry counts its token's length plus a fixed overhead. Tokens may be up to 16 KiB, so
    /// an entry count alone does not bound memory.
    pub fn cache_max_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Parse the payload into `T` as well and attach it to the principal.
    pub fn claims<T>(self) -> JwtAuthenticatorBuilder<T> {
        JwtAuthenticatorBuilder {
            keys: self.keys,
            source: self.source,
            issuers: self.issuers,
            audiences: self.audiences,
            any_audience: self.any_audience,
            leeway: self.leeway,
            required: self.required,
            token_type: self.token_type,
            roles_claim: self.roles_claim,
            revocation: self.revocation,
            cache_capacity: self.cache_capacity,
            cache_bytes: self.cache_bytes,
            _claims: PhantomData,
        }
    }

    /// Check the configuration and build.
    pub fn build(self) -> Result<JwtAuthenticator<C>, ConfigError> {
        let keys: Arc<dyn KeySource> = match (self.source, self.keys.is_empty()) {
            (Some(_), false) => {
                return Err(ConfigError::KeysAndKeySource);
            }
            (Some(source), true) => source,
            (None, false) => Arc::new(KeyMap::from_static(self.keys)?),
            (None, true) => return Err(ConfigError::NoKey),
        };
        if self.audiences.is_empty() && !self.any_audience {
            return Err(ConfigError::NoAudience);
        }
        let mut required = Vec::new();
        for name in &self.required {
            match CHECKABLE_CLAIMS.iter().find(|c| **c == name.as_str()) {
                Some(c) => required.push(*c),
                None => {
                    return Err(ConfigError::UncheckableClaim(name.clone()));
                }
            }
        }
        let roles = claims::roles_claim(self.roles_claim)?;
        Ok(JwtAuthenticator {
            inner: Arc::new(Inner {
                keys,
                issuers: self.issuers,
                audiences: self.audiences,
                leeway: self.leeway.as_secs(),
                required,
                token_type: self
                    .token_type
                    .map(|t| header::normalize_typ(&t).to_owned()),
                roles,
                reader: header::next_reader_id(),
                revocation: self.revocation,
                cache: (self.cache_capacity > 0 && self.cache_bytes > 0)
                    .then(|| VerifiedCache::new(self.cache_capacity, self.cache_bytes)),
            }),
            _claims: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::Algorithm;

    use super::*;
    use crate::error::KeyError;

    fn key(kid: &str) -> JwtKey {
        JwtKey::hmac(&[7; 32], &[Algorithm::HS256])
            .unwrap()
            .with_kid(kid)
    }

    #[test]
    fn keys_added_at_once_are_checked_as_keys_added_one_by_one() {
        let built = |b: JwtAuthenticatorBuilder| b.any_audience().build().err();
        assert_eq!(
            built(JwtAuthenticator::builder().keys([key("a"), key("b")])),
            None
        );
        let twice = Some(ConfigError::Key(KeyError::DuplicateKid("a".into())));
        assert_eq!(
            built(JwtAuthenticator::builder().keys([key("a"), key("a")])),
            twice
        );
        assert_eq!(
            built(JwtAuthenticator::builder().key(key("a")).keys([key("a")])),
            twice
        );
    }
}
