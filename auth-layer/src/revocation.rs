//! The revocation hook: a token that verifies can still be refused (401 `token_revoked`), or,
//! when the hook cannot tell, answered 503 `revocation_unavailable` (never let through).

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;
use std::time::Duration;

use crate::error::{AuthError, ErrorCode};
use crate::principal::Principal;

/// Decides whether an otherwise valid principal has been revoked.
///
/// Called on every request, including verified-token cache hits, so keep it fast (an
/// in-memory set, refreshed in the background from your store). Closures implement it.
///
/// ```
/// use portcullis::server::Revocation;
/// let hook = |p: &portcullis::server::Principal| p.subject() == Some("mallory");
/// fn takes(_: impl Revocation) {}
/// takes(hook);
/// ```
pub trait Revocation: Send + Sync + 'static {
    /// True when the principal must be refused.
    fn is_revoked(&self, principal: &Principal) -> bool;

    /// What the authenticator asks: like [`is_revoked`](Self::is_revoked), but a hook that
    /// cannot always answer from memory may wait for its store
    /// ([`RevocationCheck::pending`]) or say it cannot decide
    /// ([`RevocationStatus::Unavailable`], answered 503). The default answers from
    /// `is_revoked`, at once.
    fn check(&self, principal: &Principal) -> RevocationCheck {
        RevocationCheck::ready(if self.is_revoked(principal) {
            RevocationStatus::Revoked
        } else {
            RevocationStatus::Live
        })
    }
}

/// What a revocation hook says about one principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationStatus {
    /// Not revoked: the request goes on.
    Live,
    /// Revoked: 401 `token_revoked`.
    Revoked,
    /// Cannot be decided now: 503 `revocation_unavailable` with `Retry-After`. Never a pass.
    Unavailable {
        /// When the client may try again.
        retry_after: Duration,
    },
}

impl RevocationStatus {
    /// The request goes on (`Ok`), or the failure it is answered with.
    pub fn into_result(self) -> Result<(), AuthError> {
        match self {
            RevocationStatus::Live => Ok(()),
            RevocationStatus::Revoked => Err(AuthError::new(ErrorCode::TokenRevoked)),
            RevocationStatus::Unavailable { retry_after } => {
                Err(AuthError::revocation_unavailable(retry_after))
            }
        }
    }
}

type StatusFuture = Pin<Box<dyn Future<Output = RevocationStatus> + Send>>;

/// The answer of [`Revocation::check`]: known now ([`ready`](Self::ready)), or after a look-up
/// in a store ([`pending`](Self::pending)). The ready case costs no allocation.
///
/// ```
/// use portcullis::server::{RevocationCheck, RevocationStatus};
/// # tokio_test::block_on(async {
/// let now = RevocationCheck::ready(RevocationStatus::Revoked);
/// assert_eq!(now.resolve().await, RevocationStatus::Revoked);
/// let later = RevocationCheck::pending(async { RevocationStatus::Live });
/// assert_eq!(later.resolve().await, RevocationStatus::Live);
/// # });
/// ```
pub struct RevocationCheck(pub(crate) CheckOutcome);

pub(crate) enum CheckOutcome {
    Ready(RevocationStatus),
    Pending(StatusFuture),
}

impl RevocationCheck {
    /// An answer known now.
    pub fn ready(status: RevocationStatus) -> Self {
        RevocationCheck(CheckOutcome::Ready(status))
    }

    /// An answer that needs `future` (a look-up in the store behind the hook). Let it end in
    /// bounded time: [`RevocationStatus::Unavailable`] rather than a hang.
    pub fn pending<F>(future: F) -> Self
    where
        F: Future<Output = RevocationStatus> + Send + 'static,
    {
        RevocationCheck(CheckOutcome::Pending(Box::pin(future)))
    }

    /// Wait for the answer, whichever kind it is.
    pub async fn resolve(self) -> RevocationStatus {
        match self.0 {
            CheckOutcome::Ready(s) => s,
            CheckOutcome::Pending(f) => f.await,
        }
    }
}

impl fmt::Debug for RevocationCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            CheckOutcome::Ready(s) => f.debug_tuple("Ready").field(s).finish(),
            CheckOutcome::Pending(_) => f.write_str("Pending(..)"),
        }
    }
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
/// use portcullis::server::{CredentialKind, Denylist, Principal, Revocation};
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

    fn check(&self, p: &Principal) -> RevocationCheck {
        (**self).check(p)
    }
}
