//! The list itself: revocations, reloads, and the answers requests get.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use super::logout_limit::Admit;
use super::state::{Inner, Kind, Locally, now};
use crate::error::{LogoutError, SharedRevocationError};
use crate::principal::Principal;
use crate::revocation::{Revocation, RevocationCheck, RevocationStatus};

/// The numbers an operator watches; read with [`SharedRevocations::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedRevocationStats {
    /// Entries held in this process (both kinds).
    pub held: usize,
    /// True while some live revocation is not held here: tokens this process does not hold
    /// are looked up in Redis.
    pub overflowing: bool,
    /// Times this process started overflowing.
    pub overflows: u64,
    /// Look-ups in Redis made for tokens that could not be decided from memory.
    pub redis_checks: u64,
    /// Of those, the ones Redis did not answer (each answered 503 `revocation_unavailable`).
    pub redis_check_failures: u64,
    /// Self-service logouts past their subject's allowance (each revoked the whole subject).
    pub logouts_over_allowance: u64,
    /// Revocations made here that Redis has not taken yet (written by the next reload).
    pub unshared: usize,
}

/// A revocation list shared by every replica through Redis; give it to
/// [`JwtAuthenticatorBuilder::revocation`](crate::jwt::JwtAuthenticatorBuilder::revocation).
///
/// Lookups are in memory while the list fits in
/// [`max_entries`](super::SharedRevocationsBuilder::max_entries), and in Redis for what does not (see
/// the module docs). [`revoke_token_id`](Self::revoke_token_id) and
/// [`revoke_subject`](Self::revoke_subject) are an administrator's revocations (never refused,
/// never dropped); [`revoke_own_token`](Self::revoke_own_token) is a user's logout, which may
/// be limited per subject. Each reaches every replica within milliseconds. Cloning shares the
/// list; the background follower stops when the last clone is dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use portcullis::server::SharedRevocations;
/// use portcullis::server::jsonwebtoken::Algorithm;
/// use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
///
/// let revoked = SharedRevocations::builder("redis://127.0.0.1:6379/").connect().await?;
/// let jwt = JwtAuthenticator::builder()
///     .key(JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::HS256])?)
///     .audience("orders-api")
///     .revocation(revoked.clone())
///     .build()?;
/// // A user logs out: refused everywhere until the token would have expired anyway.
/// revoked.revoke_own_token("alice", "the-jti", 1_900_000_000).await?;
/// // An administrator revokes a stolen token.
/// revoked.revoke_token_id("stolen-jti", 1_900_000_000).await?;
/// # let _ = jwt;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SharedRevocations {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for SharedRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRevocations")
            .field("prefix", &self.inner.config.prefix)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl SharedRevocations {
    /// An administrator's revocation: refuse the token with this `jti` on every replica until
    /// `until` (seconds since the epoch; the token's `exp`). Never refused, never dropped.
    /// Applied here first, so this replica refuses it even when the error says it could not be
    /// shared.
    pub async fn revoke_token_id(
        &self,
        jti: &str,
        until: u64,
    ) -> Result<(), SharedRevocationError> {
        self.inner.revoke(Kind::TokenId, jti, until).await
    }

    /// An administrator's revocation: refuse every token of this subject on every replica
    /// until `until` (seconds since the epoch: the latest `exp` its tokens can have).
    pub async fn revoke_subject(&self, sub: &str, until: u64) -> Result<(), SharedRevocationError> {
        self.inner.revoke(Kind::Subject, sub, until).await
    }

    /// A self-service logout: `subject` revokes its own token `jti` until `until`. The same as
    /// [`revoke_token_id`](Self::revoke_token_id), except that with
    /// [`limit_self_service_logouts`](super::SharedRevocationsBuilder::limit_self_service_logouts) it
    /// counts against the subject's allowance, and past it revokes the whole subject until
    /// `until` (so the list grows by one entry per subject, and the token is revoked all the
    /// same).
    /// Pass the subject of the token being revoked, as the authenticator verified it.
    pub async fn revoke_own_token(
        &self,
        subject: &str,
        jti: &str,
        until: u64,
    ) -> Result<(), LogoutError> {
        let admitted = self.inner.limiter.as_ref().map(|limiter| {
            limiter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .admit(subject, Instant::now())
        });
        if admitted == Some(Admit::OverAllowance) {
            self.inner
                .counters
                .logouts_over_allowance
                .fetch_add(1, Ordering::Relaxed);
            // One entry for the subject, however many logouts follow: the list stays bounded
            // and the token asked about is revoked all the same.
            return Ok(self.inner.revoke(Kind::Subject, subject, until).await?);
        }
        Ok(self.inner.revoke(Kind::TokenId, jti, until).await?)
    }

    /// Reload the whole list from Redis now (the follower does it every
    /// [`resync_every`](super::SharedRevocationsBuilder::resync_every)), first writing what was revoked
    /// here while Redis was away. Nothing held is dropped.
    pub async fn resync(&self) -> Result<(), SharedRevocationError> {
        self.inner.resync().await
    }

    /// Entries held in this process (token ids and subjects), expired ones included until the
    /// next clean-up.
    pub fn len(&self) -> usize {
        let l = self.inner.local.read().unwrap_or_else(|e| e.into_inner());
        l.token_ids.len() + l.subjects.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the whole list was last read from Redis: how stale this replica may be while Redis
    /// is unreachable.
    pub fn last_sync(&self) -> Option<SystemTime> {
        *self
            .inner
            .last_sync
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The overflow and look-up counters, to export to a metrics system.
    pub fn stats(&self) -> SharedRevocationStats {
        let c = &self.inner.counters;
        let (held, overflowing) = {
            let l = self.inner.local.read().unwrap_or_else(|e| e.into_inner());
            (l.token_ids.len() + l.subjects.len(), !l.complete(now()))
        };
        SharedRevocationStats {
            held,
            overflowing,
            overflows: c.overflows.load(Ordering::Relaxed),
            redis_checks: c.redis_checks.load(Ordering::Relaxed),
            redis_check_failures: c.redis_check_failures.load(Ordering::Relaxed),
            logouts_over_allowance: c.logouts_over_allowance.load(Ordering::Relaxed),
            unshared: self
                .inner
                .unshared
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
        }
    }
}

impl Revocation for SharedRevocations {
    /// From memory only: true when revoked, and also when only Redis could say (the list is
    /// past [`max_entries`](super::SharedRevocationsBuilder::max_entries) and this token is not held),
    /// so that a caller who cannot wait fails closed. The authenticator calls
    /// [`check`](Revocation::check), which asks Redis instead.
    fn is_revoked(&self, p: &Principal) -> bool {
        !matches!(self.inner.locally(p, now()), Locally::Live)
    }

    fn check(&self, p: &Principal) -> RevocationCheck {
        let now = now();
        match self.inner.locally(p, now) {
            Locally::Live => RevocationCheck::ready(RevocationStatus::Live),
            Locally::Revoked => RevocationCheck::ready(RevocationStatus::Revoked),
            Locally::Ask { jti, sub } => {
                if self.inner.unshared_holds(jti, sub, now) {
                    return RevocationCheck::ready(RevocationStatus::Revoked);
                }
                let inner = self.inner.clone();
                let (jti, sub) = (jti.map(str::to_owned), sub.map(str::to_owned));
                RevocationCheck::pending(async move { inner.look_up(jti, sub).await })
            }
        }
    }
}
