//! The rules a principal must satisfy: scopes, roles, credential kinds, or any predicate.

use std::sync::Arc;

use crate::credential::CredentialKind;
use crate::error::{AuthError, ErrorCode};
use crate::principal::Principal;

/// A rule a principal must satisfy. Closures `Fn(&Principal) -> bool` are rules too, refusing
/// with 403 `forbidden`.
pub trait AccessPolicy: Clone + Send + Sync + 'static {
    /// `Ok` to let the request through; the error decides the answer (usually 403).
    fn check(&self, principal: &Principal) -> Result<(), AuthError>;
}

/// Requires scopes (from `scope` or `scp`); refuses with 403 `insufficient_scope`.
#[derive(Debug, Clone)]
pub struct ScopePolicy {
    pub(super) scopes: Arc<[String]>,
    pub(super) any: bool,
}

impl AccessPolicy for ScopePolicy {
    fn check(&self, p: &Principal) -> Result<(), AuthError> {
        let ok = if self.any {
            self.scopes.iter().any(|s| p.has_scope(s))
        } else {
            self.scopes.iter().all(|s| p.has_scope(s))
        };
        if ok {
            Ok(())
        } else {
            Err(AuthError::insufficient_scope(self.scopes.iter().cloned()))
        }
    }
}

/// Requires a role; refuses with 403 `forbidden` (no challenge: a new token would not help).
/// Reads [`Principal::roles`]: for a JWT, the claim its authenticator was told
/// (`roles` by default; see [`RequireRole`](crate::RequireRole) to read `groups` or
/// Keycloak's `realm_access.roles` instead).
#[derive(Debug, Clone)]
pub struct RolePolicy {
    pub(super) roles: Arc<[String]>,
}

impl AccessPolicy for RolePolicy {
    fn check(&self, p: &Principal) -> Result<(), AuthError> {
        if self.roles.iter().any(|r| p.has_role(r)) {
            Ok(())
        } else {
            Err(AuthError::with_detail(
                ErrorCode::Forbidden,
                "the principal has none of the roles this resource requires",
            ))
        }
    }
}

/// Requires the request to have been authenticated with one of some credential kinds (an API
/// key only, say, on a machine-to-machine route); refuses with 403 `forbidden`, naming the
/// kinds the route accepts.
#[derive(Debug, Clone)]
pub struct CredentialPolicy {
    pub(super) kinds: Arc<[CredentialKind]>,
    pub(super) detail: Arc<str>,
}

impl AccessPolicy for CredentialPolicy {
    fn check(&self, p: &Principal) -> Result<(), AuthError> {
        if self.kinds.contains(&p.kind()) {
            Ok(())
        } else {
            Err(AuthError::with_detail(
                ErrorCode::Forbidden,
                self.detail.to_string(),
            ))
        }
    }
}

/// A predicate over the principal; refuses with 403 `forbidden`.
impl<F> AccessPolicy for F
where
    F: Fn(&Principal) -> bool + Clone + Send + Sync + 'static,
{
    fn check(&self, p: &Principal) -> Result<(), AuthError> {
        if self(p) {
            Ok(())
        } else {
            Err(AuthError::new(ErrorCode::Forbidden))
        }
    }
}
