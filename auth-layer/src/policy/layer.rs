//! The layer: one rule, applied to every request of the wrapped service.

use std::sync::Arc;

use super::rules::{AccessPolicy, CredentialPolicy, RolePolicy, ScopePolicy};
use crate::credential::{CredentialKind, only_these_kinds};

/// Applies an [`AccessPolicy`] to every request of the wrapped service.
#[derive(Debug, Clone)]
#[must_use]
pub struct PolicyLayer<P> {
    pub(super) policy: P,
}

/// Requires scopes: `RequireScope::all(["read", "write"])` or `RequireScope::any([...])`.
pub type RequireScope = PolicyLayer<ScopePolicy>;
/// Requires one of some roles: `RequireRole::any(["admin"])`, checked against
/// [`Principal::roles`](crate::Principal::roles). For a JWT those come from the claim the
/// [`JwtAuthenticator`](crate::jwt::JwtAuthenticator) was told, the top-level `roles` claim by
/// default: name your identity provider's with
/// [`roles_claim`](crate::jwt::JwtAuthenticatorBuilder::roles_claim) (`groups`,
/// `cognito:groups`, `https://example.com/roles`) or
/// [`roles_claim_path`](crate::jwt::JwtAuthenticatorBuilder::roles_claim_path) (Keycloak).
/// Without a matching role: 403 `forbidden`.
///
/// ```
/// use axum::{Router, routing::get};
/// use portcullis::server::jsonwebtoken::Algorithm;
/// use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
/// use portcullis::server::{AuthLayer, RequireRole};
/// # fn main() -> Result<(), portcullis::server::ConfigError> {
/// // Keycloak puts realm roles in {"realm_access": {"roles": [...]}}.
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
pub type RequireRole = PolicyLayer<RolePolicy>;
/// Requires a credential kind: `RequireCredential::any_of([CredentialKind::ApiKey])`.
pub type RequireCredential = PolicyLayer<CredentialPolicy>;
/// Requires a predicate: `RequirePolicy::new(|p: &Principal| ...)`.
pub type RequirePolicy<F> = PolicyLayer<F>;

fn strings<I, S>(items: I) -> Arc<[String]>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl PolicyLayer<ScopePolicy> {
    /// Every one of `scopes` is required.
    pub fn all<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PolicyLayer::new(ScopePolicy {
            scopes: strings(scopes),
            any: false,
        })
    }

    /// At least one of `scopes` is required.
    pub fn any<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PolicyLayer::new(ScopePolicy {
            scopes: strings(scopes),
            any: true,
        })
    }
}

impl PolicyLayer<RolePolicy> {
    /// At least one of `roles` is required.
    pub fn any<I, S>(roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PolicyLayer::new(RolePolicy {
            roles: strings(roles),
        })
    }
}

impl PolicyLayer<CredentialPolicy> {
    /// The request must have been authenticated with one of `kinds`; otherwise 403
    /// `forbidden`. A 401 is answered by the auth layer around it, with every scheme that
    /// layer accepts: for a 401 that advertises only `kinds`, give the routes a copy of the
    /// layer made with [`AuthLayer::accepting`](crate::AuthLayer::accepting) instead.
    ///
    /// ```
    /// use portcullis::server::CredentialKind;
    /// use portcullis::server::policy::RequireCredential;
    /// use axum::{Router, routing::post};
    /// // Machine clients only: a browser session cookie or a user's token is refused here.
    /// let app: Router = Router::new()
    ///     .route("/deploy", post(|| async { "ok" }).route_layer(RequireCredential::any_of([CredentialKind::ApiKey])));
    /// ```
    pub fn any_of(kinds: impl IntoIterator<Item = CredentialKind>) -> Self {
        let kinds: Arc<[CredentialKind]> = kinds.into_iter().collect();
        PolicyLayer::new(CredentialPolicy {
            detail: only_these_kinds(kinds.iter().copied()).into(),
            kinds,
        })
    }
}

impl<P: AccessPolicy> PolicyLayer<P> {
    /// Any [`AccessPolicy`], a closure `|p: &Principal| -> bool` included.
    pub fn new(policy: P) -> Self {
        PolicyLayer { policy }
    }
}
