//! One OAuth2 grant shared by every process that uses it: [`SharedGrant`].
//!
//! # One `SharedGrant` is one identity
//! Every `SharedGrant` built with the same store, token endpoint, client, scope set,
//! resource **and grant id** shares one token set: whatever one of them stores, the others
//! send. The grant id is what keeps identities apart, so give each identity its own: a
//! backend-for-frontend holding one refresh token per signed-in user builds one grant per
//! user (`user:{id}`), per-tenant workers one per tenant. It is required and never derived
//! from the refresh token, so that a new refresh token for the same identity is noticed as
//! one (below) rather than starting a second token set beside the first.
//!
//! Where a token response says whom its tokens belong to (the `sub` of an `id_token`, else of
//! a JWT access token), the grant records it with the token set, and a token set for another
//! subject is refused with [`RefreshError::WrongSubject`], never sent: not one stored by
//! another process, nor one a token endpoint just returned (which is then not stored either).
//! The expected subject is the one named with [`subject`](SharedGrantBuilder::subject), else
//! the first one this process sees. The `sub` is read **without verifying the token's
//! signature**: that is enough to tell two token sets of one token endpoint apart, never to
//! decide who a caller is.
//!
//! # A new seed
//! The refresh token a grant is built with (its seed) only starts the stored token set: the
//! set records the SHA-256 of the seed it started from (never the seed), and a process whose
//! configured seed has another hash does what its [`NewSeed`] policy says, on its first use
//! of the store, with a warning either way:
//! - [`NewSeed::Replace`]: the configured seed wins (a refresh token rotated in through
//!   configuration after a compromise). It is exchanged once under the lease, its subject
//!   checked (a seed of another subject is refused and the stored set left as it was), and
//!   the result committed over the stored set with compare-and-set. A process presents its
//!   configured seed at most once, whatever becomes of the result. The stored set remembers
//!   the hashes of the seeds it replaced (the last 16), so a replica still configured with an
//!   old seed never puts it back: configure every replica with the new one.
//! - [`NewSeed::KeepStored`]: the stored set wins and the configured seed is never sent.
//!   Only safe when the stored set is known to be this identity's; name the
//!   [`subject`](SharedGrantBuilder::subject) where tokens say it.
//!
//! A new sign-in through the layer's handle
//! ([`sign_in`](crate::CredentialHandle::sign_in)) replaces the stored
//! set without changing the recorded seed: it is not configuration.
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

mod builder;
mod seed;
mod source;
pub(crate) mod stored;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::credential::Credential;
use crate::error::StoreError;
use crate::error::{BuildError, RefreshError};
use crate::source::credential_source::{CredentialSource, FetchFuture};
use crate::source::oauth2::OAuth2;
use crate::store::{Commit, CredentialStore, Lease, StoredTokens, Versioned, next_version};
pub use builder::SharedGrantBuilder;
pub use seed::NewSeed;
use stored::{retire, stored_of};

/// An [`OAuth2`] grant whose token set is shared through a [`CredentialStore`]: give it to
/// [`RefreshLayer::builder`](crate::RefreshLayer::builder) like any source. See the
/// [module docs](self) for the protocol.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use portcullis::client::source::shared_grant::{NewSeed, SharedGrant};
/// use portcullis::client::store::MemoryStore;
/// use portcullis::client::{OAuth2, RefreshLayer};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let http = Client::builder(TokioExecutor::new()).build_http();
/// let oauth = OAuth2::builder("http://127.0.0.1:9/oauth/token", "gateway")
///     .client_secret("s3cret")
///     .refresh_token("rt-from-sign-in", http.clone())?;
/// // In production: `RedisStore` (feature `redis`), one for every replica. One grant id
/// // per identity: here the gateway's own service account.
/// let grant = SharedGrant::builder(oauth, Arc::new(MemoryStore::new()), "gateway", NewSeed::Replace)
///     .lease_ttl(Duration::from_secs(10))
///     .build()?;
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
            .field("grant_id", &self.inner.grant_id)
            .field("new_seed", &self.inner.new_seed)
            .field("lease_ttl", &self.inner.lease_ttl)
            .finish_non_exhaustive()
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
    /// The configured seed has been compared with the stored set's (and acted on).
    seed_checked: bool,
    /// The subject this process has seen its tokens belong to.
    subject: Option<String>,
    /// Signed out (or signed in with an access token only) in this process: nothing stored is
    /// used until the next sign-in, so a refresh cannot return to the previous account.
    signed_out: bool,
}

struct Inner {
    oauth: OAuth2,
    store: Arc<dyn CredentialStore>,
    grant: String,
    grant_id: String,
    new_seed: NewSeed,
    /// The subject named at build time.
    subject: Option<String>,
    /// The hash of the configured seed.
    seed: Option<String>,
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
    /// this process holds, with an access token that has not expired, of this grant's
    /// subject (else [`RefreshError::WrongSubject`]).
    fn usable(&self, doc: &Versioned) -> Result<Option<Credential>, RefreshError> {
        let held = self.known().held;
        if held.is_some_and(|h| h >= doc.version) {
            return Ok(None);
        }
        let Some(token) = doc.tokens.access_token.as_deref() else {
            return Ok(None);
        };
        let c = match doc.tokens.remaining() {
            Some(left) if left.is_zero() => return Ok(None),
            Some(left) => {
                let lifetime = Duration::from_millis(doc.tokens.lifetime_ms.unwrap_or(0));
                Credential::bearer(token)
                    .ok()
                    .map(|c| c.expires_in_of(left, lifetime))
            }
            None => Credential::bearer(token).ok(),
        };
        let Some(c) = c else { return Ok(None) };
        self.admit_subject(doc.tokens.subject.as_deref(), true)?;
        self.hold(doc);
        Ok(Some(c))
    }

    /// Whether tokens that say they belong to `subject` (read without verifying: only
    /// compared) may be this grant's. With a subject named at build time, `strict` (tokens
    /// about to be sent or stored) also refuses tokens that name none. Otherwise the first
    /// subject seen is kept, and another one refused.
    fn admit_subject(&self, subject: Option<&str>, strict: bool) -> Result<(), RefreshError> {
        let admitted = match (&self.subject, subject) {
            (Some(want), Some(got)) => want == got,
            (Some(_), None) => !strict,
            (None, got) => {
                let mut k = self.known();
                match (&k.subject, got) {
                    (Some(seen), Some(got)) => seen == got,
                    (None, Some(got)) => {
                        k.subject = Some(got.to_owned());
                        true
                    }
                    (_, None) => true,
                }
            }
        };
        if admitted {
            return Ok(());
        }
        tracing::warn!(target: "portcullis::client", grant_id = %self.grant_id, named = subject.is_some(), "a token set of another subject than this grant's was refused");
        Err(RefreshError::WrongSubject)
    }

    /// The configured seed, when it is to replace the stored set `doc` (policy
    /// [`NewSeed::Replace`], the stored set started from another seed and never replaced
    /// this one). Decided once per process; the other outcomes are logged here.
    fn replacement(&self, doc: &Versioned) -> Option<String> {
        let hash = self.seed.as_deref()?;
        let mut k = self.known();
        if k.seed_checked {
            return None;
        }
        let stored = &doc.tokens;
        if stored.seed_sha256.as_deref() == Some(hash) {
            k.seed_checked = true;
            return None;
        }
        if stored.retired_seeds.iter().any(|r| r == hash) {
            k.seed_checked = true;
            tracing::warn!(target: "portcullis::client", grant_id = %self.grant_id, "the configured refresh token (seed) was replaced in the store before; keeping the stored token set");
            return None;
        }
        match self.new_seed {
            NewSeed::KeepStored => {
                k.seed_checked = true;
                tracing::warn!(target: "portcullis::client", grant_id = %self.grant_id, "the configured refresh token (seed) is not the one the stored token set started from; keeping the stored set (NewSeed::KeepStored), the configured seed is not used");
                None
            }
            NewSeed::Replace => k.initial.clone(),
        }
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
        if let Some(rt) = sign_in
            && let Err(e) = self.write_over(&rt).await
        {
            // Kept for the next try, unless the user signed in or out again meanwhile: a
            // sign-in that never reached the store must not give way to the stored account.
            let mut k = self.known();
            if k.sign_in.is_none() && !k.signed_out {
                k.sign_in = Some(rt);
            }
            return Err(e);
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
                    seed_sha256: self.seed.clone(),
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

    /// A new sign-in: replaces whatever is stored, whatever its version, keeping what the
    /// stored set records of its seed and subject.
    async fn write_over(&self, refresh_token: &str) -> Result<(), StoreError> {
        for _ in 0..8 {
            let stored = self.store.load(&self.grant).await?;
            let expected = stored.as_ref().map_or(0, |d| d.version);
            let before = stored.map(|d| d.tokens).unwrap_or_else(|| StoredTokens {
                seed_sha256: self.seed.clone(),
                ..StoredTokens::default()
            });
            let tokens = StoredTokens {
                refresh_token: Some(refresh_token.to_owned()),
                seed_sha256: before.seed_sha256,
                retired_seeds: before.retired_seeds,
                subject: before.subject,
                ..StoredTokens::default()
            };
            if let Commit::Committed(v) = self
                .store
                .commit(&self.grant, expected, None, &tokens)
                .await?
            {
                self.note(&mut self.known(), &Versioned { version: v, tokens });
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(
            "the token set kept changing during a sign-in".into(),
        ))
    }

    async fn fetch(self: Arc<Self>) -> Result<Credential, RefreshError> {
        if self.known().signed_out {
            return Err(RefreshError::SignedOut);
        }
        // Subscribed first, so a commit between reading and waiting is not missed.
        let mut changes = self.store.changes();
        changes.borrow_and_update();
        loop {
            let doc = match self.load().await {
                Ok(doc) => doc,
                Err(e) => return self.without_store(e).await,
            };
            if self.replacement(&doc).is_none()
                && let Some(c) = self.usable(&doc)?
            {
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
        let replace = self.replacement(&doc);
        match self.before_refresh(&doc, replace.is_some()) {
            Ok(None) => {}
            Ok(Some(c)) => {
                let _ = self.store.release(&self.grant, lease).await;
                return Ok(c);
            }
            Err(e) => {
                let _ = self.store.release(&self.grant, lease).await;
                return Err(e);
            }
        }
        let refresh_token = replace.clone().or(doc.tokens.refresh_token.clone());
        if replace.is_some() {
            // Spent once sent, whatever comes back (an answer lost to a timeout included):
            // presenting it again would be reuse, which revokes the family it started.
            self.known().seed_checked = true;
        }
        let renewal = self.renew_while_running(lease);
        tracing::debug!(target: "portcullis::client", version = doc.version, fence = lease.fence, replacing = replace.is_some(), "refreshing the shared grant");
        let result = self.oauth.exchange(refresh_token.as_deref()).await;
        drop(renewal);
        let tokens = match result {
            Ok(t) => t,
            Err(e) => {
                let _ = self.store.release(&self.grant, lease).await;
                return self.after_failure(e, doc.version).await;
            }
        };
        let subject = tokens.subject();
        if let Err(e) = self.admit_subject(subject.as_deref(), true) {
            // Not stored: another identity's tokens never reach this grant's set.
            let _ = self.store.release(&self.grant, lease).await;
            return Err(e);
        }
        let (mut stored, credential) = stored_of(tokens, refresh_token, &doc.tokens)?;
        if replace.is_some() {
            stored.seed_sha256 = self.seed.clone();
            stored.retired_seeds = retire(&doc.tokens);
        }
        match self
            .store
            .commit(&self.grant, doc.version, Some(lease), &stored)
            .await
        {
            Ok(Commit::Committed(version)) => {
                if replace.is_some() {
                    tracing::warn!(target: "portcullis::client", grant_id = %self.grant_id, version, "the configured refresh token (seed) replaced the stored token set (NewSeed::Replace)");
                }
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

    /// Under the lease, before anything is sent: the stored set's credential when it is one
    /// to use; else whether a refresh may go ahead. Nothing is presented whose result could
    /// not be stored, nor a refresh token of a set that belongs to another subject.
    fn before_refresh(
        &self,
        doc: &Versioned,
        replacing: bool,
    ) -> Result<Option<Credential>, RefreshError> {
        if !replacing && let Some(c) = self.usable(doc)? {
            return Ok(Some(c));
        }
        next_version(doc.version).map_err(store_error)?;
        self.admit_subject(doc.tokens.subject.as_deref(), false)?;
        Ok(None)
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
            && let Some(c) = self.usable(&doc)?
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
        let (base, before) = {
            let k = self.known();
            if k.sign_in.is_some() {
                // A new sign-in not stored yet: what this process knows is the previous
                // account's, so nothing is refreshed from it.
                return Err(store_error(e));
            }
            tracing::warn!(target: "portcullis::client", error = %e, "credential store unavailable; refreshing locally");
            match (&k.unsynced, &k.last) {
                (Some((base, t)), _) => (*base, t.clone()),
                (None, Some(l)) => (l.version, l.tokens.clone()),
                (None, None) => (
                    0,
                    StoredTokens {
                        refresh_token: k.initial.clone(),
                        seed_sha256: self.seed.clone(),
                        ..StoredTokens::default()
                    },
                ),
            }
        };
        let refresh_token = before.refresh_token.clone();
        let tokens = self.oauth.exchange(refresh_token.as_deref()).await?;
        self.admit_subject(tokens.subject().as_deref(), true)?;
        let (stored, credential) = stored_of(tokens, refresh_token, &before)?;
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
