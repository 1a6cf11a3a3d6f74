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
use crate::store::{Commit, CredentialStore, Lease, StoredTokens, Versioned};

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

/// Whether two stored sets are one client's at one server (the same issuer, client, token
/// endpoint, registration and resource): only then may one's refresh token be presented with
/// the other's client, at the other's token endpoint.
pub(crate) fn same_client(a: &StoredTokens, b: &StoredTokens) -> bool {
    match (&a.sign_in, &b.sign_in) {
        (Some(a), Some(b)) => {
            a.issuer == b.issuer
                && a.client_id == b.client_id
                && a.token_endpoint == b.token_endpoint
                && a.registration == b.registration
                && a.resource == b.resource
        }
        _ => false,
    }
}

/// What a refresh through the store came to.
pub(crate) enum Refreshed {
    /// A new access token: this process's refresh, or another process's for the same client;
    /// `false` when it could not be stored (the store still holds a spent refresh token).
    Fresh(Versioned, Credential, bool),
    /// The store holds another sign-in (another server or client, written by another
    /// process): nothing was sent; the caller decides whether to take it up.
    Replaced(Versioned),
    /// The store holds no sign-in (signed out elsewhere).
    Gone,
}

/// Renews a lease every third of its time to live until dropped.
struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whose turn it is to send the person to the browser, across the processes sharing a store.
pub(crate) enum SignInTurn {
    /// This process's: it holds the lease until the value is dropped.
    Mine(SignInLease),
    /// Another process signed the person in meanwhile: its set, to use.
    Theirs(Box<(Versioned, Credential)>),
}

/// The store's lease, held (and renewed) while this process signs the person in; released
/// when dropped.
pub(crate) struct SignInLease {
    store: Arc<dyn CredentialStore>,
    key: String,
    lease: Lease,
    _renewal: Renewal,
}

impl Drop for SignInLease {
    fn drop(&mut self) {
        let (store, key, lease) = (self.store.clone(), self.key.clone(), self.lease);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = store.release(&key, lease).await;
            });
        }
    }
}

impl Persist {
    /// Wait (at most `wait`) for this process's turn to sign the person in at `issuer`: the
    /// lease, or another process's new sign-in there (a version other than `replacing`,
    /// with a live access token). Two processes with nothing stored open one browser window.
    pub(crate) async fn turn_to_sign_in(
        &self,
        issuer: &str,
        replacing: Option<u64>,
        deadline: tokio::time::Instant,
        mut cancel: watch::Receiver<u64>,
    ) -> Result<SignInTurn, RefreshError> {
        let mut changes: watch::Receiver<u64> = self.store.changes();
        changes.borrow_and_update();
        // A lease of its own: a sign-in here never holds up a refresh elsewhere (its write is
        // a compare-and-set over whatever is stored by then).
        let key = format!("{}#sign-in", self.key);
        loop {
            if let Some(doc) = self.load().await?
                && Some(doc.version) != replacing
                && doc
                    .tokens
                    .sign_in
                    .as_ref()
                    .is_some_and(|s| s.issuer == issuer)
                && let Some(c) = live_credential(&doc.tokens)
            {
                return Ok(SignInTurn::Theirs(Box::new((doc, c))));
            }
            let acquired = self
                .store
                .acquire(&key, LEASE_TTL)
                .await
                .map_err(store_error)?;
            if let Some(lease) = acquired {
                return Ok(SignInTurn::Mine(SignInLease {
                    store: self.store.clone(),
                    _renewal: renew_while_running(self.store.clone(), key.clone(), lease),
                    key,
                    lease,
                }));
            }
            if tokio::time::Instant::now() >= deadline {
                // The caller reports its own sign-in timeout: the deadline is the sign-in's.
                return Err(RefreshError::Authorization(
                    crate::error::AuthorizationError::Timeout(LEASE_TTL),
                ));
            }
            tokio::select! {
                _ = tokio::time::timeout(POLL, changes.changed()) => {}
                // Not a poll past the deadline.
                _ = tokio::time::sleep_until(deadline) => {}
                _ = cancel.changed() => {
                    return Err(RefreshError::Authorization(
                        crate::error::AuthorizationError::Cancelled,
                    ));
                }
            }
        }
    }

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
    /// the lease (renewed while the token request runs). An `unsaved` held set (its write
    /// failed) is newer than the stored one: its own refresh token is presented, never the
    /// stored one, and the result stored over whatever is there.
    pub(crate) async fn refresh(
        &self,
        held: &Versioned,
        oauth: &OAuth2,
        unsaved: bool,
    ) -> Result<Refreshed, RefreshError> {
        let mut changes: watch::Receiver<u64> = self.store.changes();
        changes.borrow_and_update();
        for _ in 0..MAX_WAITS {
            let doc = self.load().await?;
            if !unsaved {
                let Some(doc) = &doc else {
                    return Ok(Refreshed::Gone);
                };
                if let Some(done) = settled(held, doc) {
                    return Ok(done);
                }
            }
            match self
                .store
                .acquire(&self.key, LEASE_TTL)
                .await
                .map_err(store_error)?
            {
                Some(lease) => {
                    let renewal = renew_while_running(self.store.clone(), self.key.clone(), lease);
                    let result = self.refresh_holding(held, oauth, lease, unsaved).await;
                    drop(renewal);
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
        lease: Lease,
        unsaved: bool,
    ) -> Result<Refreshed, RefreshError> {
        // Read again under the lease: a commit may have landed since.
        let doc = self.load().await?;
        let base = if unsaved {
            held
        } else {
            let Some(doc) = &doc else {
                return Ok(Refreshed::Gone);
            };
            if let Some(done) = settled(held, doc) {
                return Ok(done);
            }
            doc
        };
        let rt = base.tokens.refresh_token.clone();
        let tokens = exchange(oauth, rt.as_deref()).await?;
        let (stored, credential) = stored_of(tokens, rt, &base.tokens)?;
        let read = doc.as_ref().map(|d| d.version);
        let (version, saved) = self.commit_rotated(read, lease, &stored).await;
        Ok(Refreshed::Fresh(
            Versioned {
                version,
                tokens: stored,
            },
            credential,
            saved,
        ))
    }

    /// Commit a refresh's token set over the version `read` (or into an empty store), trying
    /// again while the store fails: its refresh token may have rotated, and the stored one is
    /// then spent. The version it is held as, and whether it was stored.
    async fn commit_rotated(
        &self,
        read: Option<u64>,
        lease: Lease,
        stored: &StoredTokens,
    ) -> (u64, bool) {
        let held = read.unwrap_or(0);
        for attempt in 0..3u64 {
            let result = match read {
                Some(v) => self.store.commit(&self.key, v, Some(lease), stored).await,
                None => {
                    let first = Versioned {
                        version: 1,
                        tokens: stored.clone(),
                    };
                    self.store.restore(&self.key, &first).await.map(|ok| {
                        if ok {
                            Commit::Committed(1)
                        } else {
                            Commit::Conflict
                        }
                    })
                }
            };
            match result {
                Ok(Commit::Committed(version)) => return (version, true),
                // Someone wrote over the version read (a sign-in elsewhere): theirs stays in
                // the store; the token just issued is still good to use here.
                Ok(Commit::Conflict) => return (held, true),
                Err(e) => {
                    tracing::warn!(target: "portcullis::client", error = %e, attempt, "refreshed, but the store cannot be written");
                    tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                }
            }
        }
        tracing::error!(target: "portcullis::client", "the refreshed sign-in could not be stored: it is kept here and written with the next refresh");
        (held, false)
    }

    /// Forget the sign-in in the store (a sign-out).
    pub(crate) async fn clear(&self) -> Result<(), RefreshError> {
        self.write(&StoredTokens::default()).await.map(|_| ())
    }
}

/// Renew `lease` every third of its time to live until the returned value is dropped.
fn renew_while_running(store: Arc<dyn CredentialStore>, key: String, lease: Lease) -> Renewal {
    Renewal(tokio::spawn(async move {
        loop {
            tokio::time::sleep(LEASE_TTL / 3).await;
            if !matches!(store.renew(&key, lease, LEASE_TTL).await, Ok(true)) {
                return;
            }
        }
    }))
}

/// How long a token request may take here: the layer waits as long as a person may take,
/// but a refresh has no person in it.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(30);

/// One refresh-token exchange, bounded by [`EXCHANGE_LIMIT`].
pub(crate) async fn exchange(
    oauth: &OAuth2,
    refresh_token: Option<&str>,
) -> Result<crate::source::token_response::TokenSet, RefreshError> {
    tokio::time::timeout(EXCHANGE_LIMIT, oauth.exchange(refresh_token))
        .await
        .map_err(|_| RefreshError::Timeout(EXCHANGE_LIMIT))?
}

/// What the stored set `doc` settles without a refresh: another sign-in's set (never
/// refreshed with `held`'s client), or a newer set of the same client with a live access
/// token (another process refreshed). `None`: a refresh is needed.
fn settled(held: &Versioned, doc: &Versioned) -> Option<Refreshed> {
    if !same_client(&held.tokens, &doc.tokens) {
        return Some(Refreshed::Replaced(doc.clone()));
    }
    if doc.version == held.version {
        return None;
    }
    let c = live_credential(&doc.tokens)?;
    Some(Refreshed::Fresh(doc.clone(), c, true))
}
