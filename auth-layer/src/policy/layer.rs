//! The layer: one rule, applied to every request of the wrapped service.

use std::sync::Arc;

use super::rules::{AccessPolicy, CredentialPolicy, RolePolicy, ScopePolicy};
use crate::credential::CredentialKind;

/// Applies an [`AccessPolicy`] to every request of the wrapped service.
#[derive(Debug, Clone)]
#[must_use]
pub struct PolicyLayer<P> {
    pub(super) policy: P,
}

/// Requires scopes: `RequireScope::all(["read", "write"])` or `RequireScope::any([...])`.
pub type RequireScope = PolicyLayer<ScopePolicy>;
/// Requires one of some roles: `RequireRole::any(["admin"])`.
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
    /// The request must have been authenticated with one of `kinds`.
    ///
    /// ```
    /// use auth_layer::CredentialKind;
    /// use auth_layer::policy::RequireCredential;
    /// use axum::{Router, routing::post};
    /// // Machine clients only: a browser session cookie or a user's token is refused here.
    /// let app: Router = Router::new()
    ///     .route("/deploy", post(|| async { "ok" }).route_layer(RequireCredential::any_of([CredentialKind::ApiKey])));
    /// ```
    pub fn any_of(kinds: impl IntoIterator<Item = CredentialKind>) -> Self {
        let kinds: Arc<[CredentialKind]> = kinds.into_iter().collect();
        let names: Vec<_> = kinds.iter().map(|k| k.as_str()).collect();
        PolicyLayer::new(CredentialPolicy {
            detail: format!(
                "this resource accepts only these credentials: {}",
                names.join(", ")
            )
            .into(),
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
