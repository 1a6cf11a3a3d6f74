//! One OAuth2 grant shared by every process that uses it: [`SharedGrant`].
//!
//! # Why
//! Replicas of a gateway that each hold the same rotating refresh token each refresh at
//! expiry. The first rotates the token; every other one presents the token just rotated away,
//! the identity provider takes that for theft (OAuth 2.0 Security BCP §4.14) and revokes the
//! whole family: every replica is signed out. The replicas must refresh *once*, together.
//!
//! # The protocol
//! The token set lives in a [`CredentialStore`] with a version. A process that needs a new
//! access token (its own is due, or was refused):
//!
//! 1. Asks its own layer first: one task per process talks to the store, the other requests
//!    wait for it (the layer's single-flight).
//! 2. Reads the store. A version newer than the one it holds, with an unexpired access token,
//!    is used as it is: someone else refreshed.
//! 3. Otherwise takes the **lease**, with a time to live and a **fencing value**. If another
//!    process holds it, waits for that holder's commit, woken by the store's publication (a
//!    poll every [`poll_every`](SharedGrantBuilder::poll_every) is only the fallback), and
//!    starts again from 2; a holder that died loses the lease when its time to live runs out.
//! 4. Holding the lease, reads the store again (a commit may have landed between 2 and 3),
//!    then calls the token endpoint, **renewing the lease** every third of its time to live
//!    while the request runs, so a slow endpoint never lets a second process in.
//! 5. **Commits** the new token set with compare-and-set on the version it read, which
//!    releases the lease and publishes the new version to every process.
//!
//! An `invalid_grant` answer reads the store once more before giving up: another process may
//! have rotated the refresh token meanwhile, and its newer token set is used.
//!
//! # Why a lock alone is not enough
//! A lease is only advice to the processes that read it. A holder can stall (a GC pause, a
//! stopped VM, a slow network) past its lease and come back convinced it still holds it, and
//! the identity provider does not check fencing values, so nothing stops that holder from
//! presenting the refresh token or from writing what it got. Correctness comes from the
//! compare-and-set: a commit only lands on the version its holder read, so a token set never
//! replaces a newer one, and a rotated refresh token, once committed, is never overwritten by
//! an older one. The lease (and renewing it) keeps the holders to one in the normal case, so
//! the identity provider sees one refresh; the fencing value keeps a stale holder from
//! renewing or releasing the lease of the current one.
//!
//! # When the store cannot be reached
//! Requests keep using the access token this process holds while it is valid: a fresh token
//! costs no store round trip at all. A refresh that cannot reach the store fails with
//! [`RefreshError::Store`] and backs off like any failed refresh; it does not fall back to a
//! refresh of its own, which would present a refresh token another replica may have rotated.
//! [`local_fallback`](SharedGrantBuilder::local_fallback) opts into that refresh (safe for
//! `client_credentials`, a risk for rotating refresh tokens); its result is written back
//! to the store, with compare-and-set, on the first refresh after the store is back.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::credential::Credential;
use crate::error::RefreshError;
use crate::source::{CredentialSource, FetchFuture, OAuth2, TokenSet, bearer_of};
use crate::store::{Commit, CredentialStore, Lease, StoreError, StoredTokens, Versioned, unix_ms};

/// An [`OAuth2`] grant whose token set is shared through a [`CredentialStore`]: give it to
/// [`RefreshLayer::builder`](crate::RefreshLayer::builder) like any source. See the
/// [module docs](self) for the protocol.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use refresh_layer::{MemoryStore, OAuth2, RefreshLayer, SharedGrant};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let http = Client::builder(TokioExecutor::new()).build_http();
/// let oauth = OAuth2::builder("http://127.0.0.1:9/oauth/token", "gateway")
///     .client_secret("s3cret")
///     .refresh_token("rt-from-sign-in", http.clone())?;
/// // In production: `RedisStore` (feature `redis`), one for every replica.
/// let grant = SharedGrant::builder(oauth, Arc::new(MemoryStore::new()))
///     .lease_ttl(Duration::from_secs(10))
///     .build();
/// let layer = RefreshLayer::builder(grant).allow_origin("http://127.0.0.1:9").build()?;
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SharedGrant {
    inner: Arc<Inner>,
}

impl fmt::Debug for SharedGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedGrant")
            .field("oauth", &self.inner.oauth)
            .field("lease_ttl", &self.inner.lease_ttl)
            .finish_non_exhaustive()
    }
}

/// Configures a [`SharedGrant`]; see [`SharedGrant::builder`].
#[must_use]
pub struct SharedGrantBuilder {
    oauth: OAuth2,
    store: Arc<dyn CredentialStore>,
    lease_ttl: Duration,
    poll_every: Duration,
    local_fallback: bool,
}

impl fmt::Debug for SharedGrantBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedGrantBuilder")
            .field("lease_ttl", &self.lease_ttl)
            .field("poll_every", &self.poll_every)
            .field("local_fallback", &self.local_fallback)
            .finish_non_exhaustive()
    }
}

impl SharedGrantBuilder {
    /// How long a lease lasts unless renewed (default 10 s): how long a dead holder keeps the
    /// others waiting. The holder renews it every third of this while its request runs.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_millis(100));
        self
    }

    /// How often a waiting process reads the store even without a publication (default 1 s):
    /// the bound on a missed one.
    pub fn poll_every(mut self, every: Duration) -> Self {
        self.poll_every = every.max(Duration::from_millis(10));
        self
    }

    /// Refresh locally when the store cannot be reached (default: no, fail with
    /// [`RefreshError::Store`]). See the [module docs](self#when-the-store-cannot-be-reached).
    pub fn local_fallback(mut self, on: bool) -> Self {
        self.local_fallback = on;
        self
    }

    /// The grant.
    pub fn build(self) -> SharedGrant {
        let grant = self.oauth.grant_name();
        let initial = self.oauth.refresh_token_now();
        SharedGrant {
            inner: Arc::new(Inner {
                oauth: self.oauth,
                store: self.store,
                grant,
                lease_ttl: self.lease_ttl,
                poll_every: self.poll_every,
                local_fallback: self.local_fallback,
                known: Mutex::new(Known {
                    initial,
                    ..Known::default()
                }),
            }),
        }
    }
}

impl SharedGrant {
    /// Share `oauth`'s grant through `store`. A `refresh_token` grant's refresh token seeds
    /// the store when it holds nothing for this grant yet; once it does, the stored one wins.
    pub fn builder(oauth: OAuth2, store: Arc<dyn CredentialStore>) -> SharedGrantBuilder {
        SharedGrantBuilder {
            oauth,
            store,
            lease_ttl: Duration::from_secs(10),
            poll_every: Duration::from_secs(1),
            local_fallback: false,
        }
    }
}

#[derive(Default)]
struct Known {
    /// The refresh token given at build time, for a store that holds nothing yet.
    initial: Option<String>,
    /// The version whose access token this process handed out last.
    held: Option<u64>,
    /// The newest token set seen.
    last: Option<Versioned>,
    /// Obtained without the store (local fall-back), to write back: (version it follows, set).
    unsynced: Option<(u64, StoredTokens)>,
    /// A new sign-in to write on the next refresh.
    sign_in: Option<String>,
}

struct Inner {
    oauth: OAuth2,
    store: Arc<dyn CredentialStore>,
    grant: String,
    lease_ttl: Duration,
    poll_every: Duration,
    local_fallback: bool,
    known: Mutex<Known>,
}

/// Renews a lease every third of its time to live until dropped.
struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn store_error(e: StoreError) -> RefreshError {
    RefreshError::Store(e)
}

impl Inner {
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The credential of `doc`, if it is one to use instead of refreshing: newer than what
    /// this process holds, with an access token that has not expired.
    fn usable(&self, doc: &Versioned) -> Option<Credential> {
        let held = self.known().held;
        if held.is_some_and(|h| h >= doc.version) {
            return None;
        }
        let token = doc.tokens.access_token.as_deref()?;
        let c = match doc.tokens.remaining() {
            Some(left) if left.is_zero() => return None,
            Some(left) => {
                let lifetime = Duration::from_millis(doc.tokens.lifetime_ms.unwrap_or(0));
                Credential::bearer(token)
                    .ok()?
                    .expires_in_of(left, lifetime)
            }
            None => Credential::bearer(token).ok()?,
        };
        self.hold(doc);
        Some(c)
    }

    fn hold(&self, doc: &Versioned) {
        let mut k = self.known();
        k.held = Some(doc.version);
        self.note(&mut k, doc);
    }

    fn note(&self, k: &mut Known, doc: &Versioned) {
        if k.last.as_ref().is_none_or(|l| l.version <= doc.version) {
            k.last = Some(doc.clone());
        }
    }

    /// The stored token set, after writing back what must be: a new sign-in, a set obtained
    /// without the store, or a first seed.
    async fn load(&self) -> Result<Versioned, StoreError> {
        let (sign_in, unsynced) = {
            let mut k = self.known();
            (k.sign_in.take(), k.unsynced.take())
        };
        if let Some(rt) = sign_in {
            self.write_over(&StoredTokens::from_refresh_token(&rt))
                .await?;
        }
        if let Some((base, tokens)) = unsynced {
            match self.store.commit(&self.grant, base, None, &tokens).await? {
                Commit::Committed(v) => {
                    tracing::info!(target: "portcullis::client", version = v, "token set obtained without the store written back")
                }
                Commit::Conflict => {
                    tracing::warn!(target: "portcullis::client", "token set obtained without the store is older than the stored one; dropped")
                }
            }
        }
        if let Some(doc) = self.store.load(&self.grant).await? {
            self.note(&mut self.known(), &doc);
            return Ok(doc);
        }
        // Nothing stored: a first start, or a store that lost its data. What this process
        // last saw is the best there is; else the refresh token it was built with.
        let seed = {
            let k = self.known();
            k.last.clone().unwrap_or_else(|| Versioned {
                version: 1,
                tokens: StoredTokens {
                    refresh_token: k.initial.clone(),
                    ..StoredTokens::default()
                },
            })
        };
        self.store.restore(&self.grant, &seed).await?;
        let doc = self
            .store
            .load(&self.grant)
            .await?
            .ok_or_else(|| StoreError::Unavailable("the token set vanished".into()))?;
        self.note(&mut self.known(), &doc);
        Ok(doc)
    }

    /// A new sign-in: replaces whatever is stored, whatever its version.
    async fn write_over(&self, tokens: &StoredTokens) -> Result<(), StoreError> {
        for _ in 0..8 {
            let expected = self.store.load(&self.grant).await?.map_or(0, |d| d.version);
            if let Commit::Committed(v) = self
                .store
                .commit(&self.grant, expected, None, tokens)
                .await?
            {
                self.note(
                    &mut self.known(),
                    &Versioned {
                        version: v,
                        tokens: tokens.clone(),
                    },
                );
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(
            "the token set kept changing during a sign-in".into(),
        ))
    }

    async fn fetch(self: Arc<Self>) -> Result<Credential, RefreshError> {
        // Subscribed first, so a commit between reading and waiting is not missed.
        let mut changes = self.store.changes();
        changes.borrow_and_update();
        loop {
            let doc = match self.load().await {
                Ok(doc) => doc,
                Err(e) => return self.without_store(e).await,
            };
            if let Some(c) = self.usable(&doc) {
                tracing::debug!(target: "portcullis::client", version = doc.version, "using the token set another process stored");
                return Ok(c);
            }
            match self.store.acquire(&self.grant, self.lease_ttl).await {
                Ok(Some(lease)) => return self.refresh_holding(lease).await,
                Ok(None) => wait(&mut changes, self.poll_every).await,
                Err(e) => return self.without_store(e).await,
            }
        }
    }

    async fn refresh_holding(self: &Arc<Self>, lease: Lease) -> Result<Credential, RefreshError> {
        // Read again under the lease: a commit may have landed since the first read.
        let doc = match self.load().await {
            Ok(doc) => doc,
            Err(e) => {
                let _ = self.store.release(&self.grant, lease).await;
                return Err(store_error(e));
            }
        };
        if let Some(c) = self.usable(&doc) {
            let _ = self.store.release(&self.grant, lease).await;
            return Ok(c);
        }
        let renewal = self.renew_while_running(lease);
        tracing::debug!(target: "portcullis::client", version = doc.version, fence = lease.fence, "refreshing the shared grant");
        let result = self
            .oauth
            .exchange(doc.tokens.refresh_token.as_deref())
            .await;
        drop(renewal);
        let tokens = match result {
            Ok(t) => t,
            Err(e) => {
                let _ = self.store.release(&self.grant, lease).await;
                return self.after_failure(e, doc.version).await;
            }
        };
        let (stored, credential) = stored_of(tokens, doc.tokens.refresh_token)?;
        match self
            .store
            .commit(&self.grant, doc.version, Some(lease), &stored)
            .await
        {
            Ok(Commit::Committed(version)) => {
                self.hold(&Versioned {
                    version,
                    tokens: stored,
                });
                Ok(credential)
            }
            Ok(Commit::Conflict) => {
                // Someone committed over a version this lease had read: the newer set wins
                // in the store; the access token just issued is still good to use.
                tracing::warn!(target: "portcullis::client", "shared token set changed during a refresh; keeping the stored one");
                Ok(credential)
            }
            Err(e) => {
                // The token endpoint may have rotated the refresh token: keep the set to
                // write back as soon as the store answers again, and use it meanwhile.
                tracing::warn!(target: "portcullis::client", error = %e, "refreshed, but the store cannot be written; will write back");
                self.known().unsynced = Some((doc.version, stored));
                Ok(credential)
            }
        }
    }

    fn renew_while_running(self: &Arc<Self>, lease: Lease) -> Renewal {
        let this = self.clone();
        Renewal(tokio::spawn(async move {
            let every = this.lease_ttl / 3;
            loop {
                tokio::time::sleep(every).await;
                match this.store.renew(&this.grant, lease, this.lease_ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(target: "portcullis::client", fence = lease.fence, "the refresh lease was lost while the token request ran");
                    }
                    Err(e) => {
                        tracing::warn!(target: "portcullis::client", error = %e, "cannot renew the refresh lease")
                    }
                }
            }
        }))
    }

    /// `invalid_grant` may only mean that another process rotated the refresh token first:
    /// its token set is used if there is one.
    async fn after_failure(&self, e: RefreshError, read: u64) -> Result<Credential, RefreshError> {
        if e.is_sign_in_again()
            && let Ok(Some(doc)) = self.store.load(&self.grant).await
            && doc.version > read
            && let Some(c) = self.usable(&doc)
        {
            return Ok(c);
        }
        Err(e)
    }

    /// The store cannot be used: fail, or (opted in) refresh from what this process knows.
    async fn without_store(&self, e: StoreError) -> Result<Credential, RefreshError> {
        if !self.local_fallback {
            return Err(store_error(e));
        }
        tracing::warn!(target: "portcullis::client", error = %e, "credential store unavailable; refreshing locally");
        let (base, refresh_token) = {
            let k = self.known();
            match (&k.unsynced, &k.last) {
                (Some((base, t)), _) => (*base, t.refresh_token.clone()),
                (None, Some(l)) => (l.version, l.tokens.refresh_token.clone()),
                (None, None) => (0, k.initial.clone()),
            }
        };
        let tokens = self.oauth.exchange(refresh_token.as_deref()).await?;
        let (stored, credential) = stored_of(tokens, refresh_token)?;
        self.known().unsynced = Some((base, stored));
        Ok(credential)
    }
}

/// Wait for a publication, at most `poll`.
async fn wait(changes: &mut watch::Receiver<u64>, poll: Duration) {
    match tokio::time::timeout(poll, changes.changed()).await {
        Ok(Ok(())) | Err(_) => {}
        // The store dropped its sender: polling is all there is.
        Ok(Err(_)) => tokio::time::sleep(poll).await,
    }
}

/// What a token response becomes in the store, and the credential to use now. A response
/// without a refresh token keeps the one that was used (servers that do not rotate).
fn stored_of(
    t: TokenSet,
    used: Option<String>,
) -> Result<(StoredTokens, Credential), RefreshError> {
    let credential = bearer_of(&t.access_token, t.expires_in)?;
    let now = unix_ms();
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let stored = StoredTokens {
        access_token: Some(t.access_token),
        expires_at_ms: t.expires_in.map(|d| now.saturating_add(ms(d))),
        lifetime_ms: t.expires_in.map(ms),
        refresh_token: t.refresh_token.or(used),
    };
    Ok((stored, credential))
}

impl CredentialSource for SharedGrant {
    fn fetch(&self) -> FetchFuture {
        Box::pin(self.inner.clone().fetch())
    }

    /// A new sign-in: written over the stored token set by the next refresh, for every
    /// process.
    fn set_refresh_token(&self, refresh_token: &str) -> bool {
        let mut k = self.inner.known();
        k.sign_in = Some(refresh_token.to_owned());
        k.held = None;
        true
    }

    /// Forgets this process's copy; the stored token set stays for the other processes.
    fn forget(&self) {
        let mut k = self.inner.known();
        k.held = None;
        k.unsynced = None;
    }
}
