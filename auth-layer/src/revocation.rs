//! The revocation hook: a token that verifies can still be refused (401 `token_revoked`).

use std::collections::HashSet;
use std::sync::RwLock;

use crate::principal::Principal;

/// Decides whether an otherwise valid principal has been revoked.
///
/// Called on every request, including verified-token cache hits, so keep it fast (an
/// in-memory set, refreshed in the background from your store). Closures implement it.
///
/// ```
/// use auth_layer::Revocation;
/// let hook = |p: &auth_layer::Principal| p.subject() == Some("mallory");
/// fn takes(_: impl Revocation) {}
/// takes(hook);
/// ```
pub trait Revocation: Send + Sync + 'static {
    /// True when the principal must be refused.
    fn is_revoked(&self, principal: &Principal) -> bool;
}

impl<F> Revocation for F
where
    F: Fn(&Principal) -> bool + Send + Sync + 'static,
{
    fn is_revoked(&self, principal: &Principal) -> bool {
        self(principal)
    }
}

/// An in-memory denylist of token ids (`jti`) and subjects (`sub`).
///
/// ```
/// use auth_layer::{CredentialKind, Denylist, Principal, Revocation};
/// let list = Denylist::default();
/// list.revoke_subject("mallory");
/// let p = Principal::builder(CredentialKind::Bearer).subject("mallory").build();
/// assert!(list.is_revoked(&p));
/// ```
#[derive(Debug, Default)]
pub struct Denylist {
    token_ids: RwLock<HashSet<String>>,
    subjects: RwLock<HashSet<String>>,
}

impl Denylist {
    /// Refuse the token with this `jti` from now on.
    pub fn revoke_token_id(&self, jti: impl Into<String>) {
        self.token_ids
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(jti.into());
    }

    /// Refuse every token of this subject from now on.
    pub fn revoke_subject(&self, sub: impl Into<String>) {
        self.subjects
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sub.into());
    }
}

impl Revocation for Denylist {
    fn is_revoked(&self, p: &Principal) -> bool {
        let hit = |set: &RwLock<HashSet<String>>, v: Option<&str>| {
            v.is_some_and(|v| set.read().unwrap_or_else(|e| e.into_inner()).contains(v))
        };
        hit(&self.token_ids, p.token_id()) || hit(&self.subjects, p.subject())
    }
}

impl<R: Revocation + ?Sized> Revocation for std::sync::Arc<R> {
    fn is_revoked(&self, p: &Principal) -> bool {
        (**self).is_revoked(p)
    }
}
