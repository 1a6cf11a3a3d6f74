//! Where a sign-in's token set lives: in memory, and in a [`CredentialStore`] when one is
//! configured, so it survives a restart and one refresh serves every process sharing it.
//!
//! The protocol is the shared grant's (see [`SharedGrant`](crate::source::shared_grant::SharedGrant)):
//! a newer stored set with a live access token is used as it is; otherwise the lease is
//! taken, the store read again, the refresh token presented once, and the result committed
//! with compare-and-set on the version read.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::credential::Credential;
use crate::error::{RefreshError, StoreError};
use crate::source::oauth2::OAuth2;
use crate::source::shared_grant::stored::stored_of;
use crate::store::{Commit, CredentialStore, StoredTokens, Versioned};

/// How long a refresh may hold the lease before another process may take over.
const LEASE_TTL: Duration = Duration::from_secs(30);
/// How often a process waiting for another one's refresh looks at the store (the store's
/// publication wakes it sooner).
const POLL: Duration = Duration::from_millis(200);
/// How many times a process waits for another one's refresh before giving up.
const MAX_WAITS: u32 = 150;

/// A store and the key of this sign-in in it.
#[derive(Clone)]
pub(crate) struct Persist {
    pub(crate) store: Arc<dyn CredentialStore>,
    pub(crate) key: String,
}

fn store_error(e: StoreError) -> RefreshError {
    RefreshError::Store(e)
}

/// The credential of a stored set, when its access token is still good to send.
pub(crate) fn live_credential(tokens: &StoredTokens) -> Option<Credential> {
    let token = tokens.access_token.as_deref()?;
    let c = Credential::bearer(token).ok()?;
    match tokens.remaining() {
        Some(left) if left.is_zero() => None,
        Some(left) => {
            let lifetime = Duration::from_millis(tokens.lifetime_ms.unwrap_or(0));
            Some(c.expires_in_of(left, lifetime))
        }
        None => Some(c),
    }
}

/// Whether `newer` is another sign-in's set than `held` (another account, another server).
fn same_sign_in(held: &StoredTokens, newer: &StoredTokens) -> bool {
    match (&held.sign_in, &newer.sign_in) {
        (Some(a), Some(b)) => a.issuer == b.issuer && a.client_id == b.client_id,
        _ => false,
    }
}

impl Persist {
    /// The stored set, if it is a sign-in's.
    pub(crate) async fn load(&self) -> Result<Option<Versioned>, RefreshError> {
        let doc = self.store.load(&self.key).await.map_err(store_error)?;
        Ok(doc.filter(|d| d.tokens.sign_in.is_some()))
    }

    /// Write a new sign-in over whatever is stored (a sign-in is newer than any refresh).
    pub(crate) async fn write(&self, tokens: &StoredTokens) -> Result<u64, RefreshError> {
        for _ in 0..8 {
            let expected = match self.store.load(&self.key).await.map_err(store_error)? {
                Some(doc) => doc.version,
                None => {
                    let first = Versioned {
                        version: 1,
                        tokens: tokens.clone(),
                    };
                    if self
                        .store
                        .restore(&self.key, &first)
                        .await
                        .map_err(store_error)?
                    {
                        return Ok(1);
                    }
                    continue;
                }
            };
            match self
                .store
                .commit(&self.key, expected, None, tokens)
                .await
                .map_err(store_error)?
            {
                Commit::Committed(v) => return Ok(v),
                Commit::Conflict => continue,
            }
        }
        Err(store_error(StoreError::Unavailable(
            "the stored sign-in kept changing".into(),
        )))
    }

    /// A new access token for the sign-in `held`: another process's, or one refresh under
    /// the lease. `Ok(None)`: the stored set is no longer a sign-in (signed out elsewhere).
    pub(crate) async fn refresh(
        &self,
        held: &Versioned,
        oauth: &OAuth2,
    ) -> Result<Option<(Versioned, Credential)>, RefreshError> {
        let mut changes: watch::Receiver<u64> = self.store.changes();
        changes.borrow_and_update();
        for _ in 0..MAX_WAITS {
            let Some(doc) = self.load().await? else {
                return Ok(None);
            };
            if let Some(found) = newer(held, &doc) {
                return Ok(Some(found));
            }
            match self
                .store
                .acquire(&self.key, LEASE_TTL)
                .await
                .map_err(store_error)?
            {
                Some(lease) => {
                    let result = self.refresh_holding(held, oauth, lease).await;
                    let _ = self.store.release(&self.key, lease).await;
                    return result;
                }
                None => {
                    let _ = tokio::time::timeout(POLL, changes.changed()).await;
                }
            }
        }
        Err(store_error(StoreError::Unavailable(
            "another process held the sign-in's lease too long".into(),
        )))
    }

    async fn refresh_holding(
        &self,
        held: &Versioned,
        oauth: &OAuth2,
        lease: crate::store::Lease,
    ) -> Result<Option<(Versioned, Credential)>, RefreshError> {
        // Read again under the lease: a commit may have landed since.
        let Some(doc) = self.load().await? else {
            return Ok(None);
        };
        if let Some(found) = newer(held, &doc) {
            return Ok(Some(found));
        }
        let rt = doc.tokens.refresh_token.clone();
        let tokens = oauth.exchange(rt.as_deref()).await?;
        let (stored, credential) = stored_of(tokens, rt, &doc.tokens)?;
        match self
            .store
            .commit(&self.key, doc.version, Some(lease), &stored)
            .await
        {
            Ok(Commit::Committed(version)) => Ok(Some((
                Versioned {
                    version,
                    tokens: stored,
                },
                credential,
            ))),
            // Someone wrote over the version read (a sign-in elsewhere): theirs stays in
            // the store; the token just issued is still good to use here.
            Ok(Commit::Conflict) | Err(_) => Ok(Some((
                Versioned {
                    version: doc.version,
                    tokens: stored,
                },
                credential,
            ))),
        }
    }

    /// Forget the sign-in in the store (a sign-out).
    pub(crate) async fn clear(&self) -> Result<(), RefreshError> {
        self.write(&StoredTokens::default()).await.map(|_| ())
    }
}

/// The stored set's credential, when it is newer than `held`, of the same sign-in, with a
/// live access token: another process refreshed.
fn newer(held: &Versioned, doc: &Versioned) -> Option<(Versioned, Credential)> {
    if doc.version == held.version || !same_sign_in(&held.tokens, &doc.tokens) {
        return None;
    }
    live_credential(&doc.tokens).map(|c| (doc.clone(), c))
}
