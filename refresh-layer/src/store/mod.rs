//! Where a token set lives when several processes share one grant: the [`CredentialStore`]
//! trait, its in-process implementation [`MemoryStore`], and what they hold.
//!
//! A store keeps, per grant, one versioned token set, one lease and a way to hear about
//! commits. [`SharedGrant`](crate::SharedGrant) drives the protocol; a store only has to make
//! each step atomic:
//!
//! - [`load`](CredentialStore::load): the current token set and its version.
//! - [`acquire`](CredentialStore::acquire): a lease with a time to live, held by one process
//!   at a time, with a fencing value that grows with every lease ever given.
//! - [`renew`](CredentialStore::renew) / [`release`](CredentialStore::release): only by the
//!   lease's own holder (same fencing value).
//! - [`commit`](CredentialStore::commit): write a new token set if the stored version is still
//!   the one read (compare-and-set), release the holder's lease, and tell every process.
//! - [`changes`](CredentialStore::changes): a counter that moves on every commit heard of.

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

/// The future of a [`CredentialStore`] operation.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Why a store could not be used. Never contains a token or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store's address is not valid.
    #[error("the store's URL is not valid")]
    InvalidUrl,
    /// The store could not be reached or did not answer in time.
    #[error("the credential store is unavailable: {0}")]
    Unavailable(String),
    /// A stored token set could not be decrypted or read: another encryption key, or not a
    /// document this crate wrote.
    #[error("the stored token set cannot be read with this key")]
    Unreadable,
    /// The stored version cannot grow any further (`u64::MAX`): it was written from outside,
    /// since commits add one at a time. Nothing is committed or refreshed over it; delete the
    /// grant's stored token set to start again from the configured refresh token.
    #[error("the stored token set's version cannot grow any further")]
    VersionOverflow,
}

/// The version a commit over `version` writes; never wraps.
pub(crate) fn next_version(version: u64) -> Result<u64, StoreError> {
    version.checked_add(1).ok_or(StoreError::VersionOverflow)
}

/// A token set as a store keeps it. `Debug` hides the tokens.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredTokens {
    /// The access token, once one was obtained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// When it expires, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// How long it was valid for when issued, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_ms: Option<u64>,
    /// The refresh token to use next (`refresh_token` grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The SHA-256 (hex) of the configured refresh token this token set descends from (the
    /// seed; never the seed itself): how a replica configured with another one notices. See
    /// [`NewSeed`](crate::source::shared_grant::NewSeed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_sha256: Option<String>,
    /// The SHA-256 (hex) of seeds this set replaced (the newest last, at most 16): a replica
    /// still configured with one of them never puts it back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_seeds: Vec<String>,
    /// Who the tokens belong to, when a token response said (see
    /// [`SharedGrant`](crate::SharedGrant#one-sharedgrant-is-one-identity)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredTokens")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at_ms", &self.expires_at_ms)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("seed_sha256", &self.seed_sha256)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl StoredTokens {
    /// A token set holding only a refresh token (what a sign-in hands over).
    pub fn from_refresh_token(refresh_token: &str) -> Self {
        StoredTokens {
            refresh_token: Some(refresh_token.to_owned()),
            ..StoredTokens::default()
        }
    }

    /// How long the access token remains valid: `None` when no expiry is known,
    /// `Some(ZERO)` once it has expired.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        let at = self.expires_at_ms?;
        Some(Duration::from_millis(at.saturating_sub(unix_ms())))
    }
}

/// A token set and its version (1 for the first one; each commit adds one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The version.
    pub version: u64,
    /// The token set.
    pub tokens: StoredTokens,
}

/// A lease to refresh one grant, until its time to live runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Grows with every lease ever given for the grant: a lease renewed or released with an
    /// older value is not the current one.
    pub fence: u64,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Written as this version.
    Committed(u64),
    /// The stored version is no longer the one read: someone else committed first.
    Conflict,
}

/// Keeps one versioned token set, one lease and a change counter per grant, for every process
/// sharing them. See the [module docs](self) and [`SharedGrant`](crate::SharedGrant).
pub trait CredentialStore: Send + Sync + 'static {
    /// The current token set of `grant`, if any.
    fn load<'a>(&'a self, grant: &'a str) -> StoreFuture<'a, Option<Versioned>>;

    /// Store `doc` as it is if the grant has no token set (a first sign-in, or a store that
    /// lost its data); true when it was written.
    fn restore<'a>(&'a self, grant: &'a str, doc: &'a Versioned) -> StoreFuture<'a, bool>;

    /// A lease for `ttl`, or `None` while another holder has one.
    fn acquire<'a>(&'a self, grant: &'a str, ttl: Duration) -> StoreFuture<'a, Option<Lease>>;

    /// Extend `lease` to `ttl` from now; false when it is no longer held.
    fn renew<'a>(&'a self, grant: &'a str, lease: Lease, ttl: Duration) -> StoreFuture<'a, bool>;

    /// Give `lease` up (nothing happens if it is no longer held).
    fn release<'a>(&'a self, grant: &'a str, lease: Lease) -> StoreFuture<'a, ()>;

    /// Write `tokens` as version `expected + 1` if the stored version is `expected` (or the
    /// grant has no token set left), release `lease` if it is still held, and publish.
    /// `expected` is `u64::MAX`: [`StoreError::VersionOverflow`], nothing written.
    fn commit<'a>(
        &'a self,
        grant: &'a str,
        expected: u64,
        lease: Option<Lease>,
        tokens: &'a StoredTokens,
    ) -> StoreFuture<'a, Commit>;

    /// A counter that moves whenever a commit is heard of (on any grant).
    fn changes(&self) -> watch::Receiver<u64>;
}

impl<S: CredentialStore + ?Sized> CredentialStore for Arc<S> {
    fn load<'a>(&'a self, grant: &'a str) -> StoreFuture<'a, Option<Versioned>> {
        (**self).load(grant)
    }
    fn restore<'a>(&'a self, grant: &'a str, doc: &'a Versioned) -> StoreFuture<'a, bool> {
        (**self).restore(grant, doc)
    }
    fn acquire<'a>(&'a self, grant: &'a str, ttl: Duration) -> StoreFuture<'a, Option<Lease>> {
        (**self).acquire(grant, ttl)
    }
    fn renew<'a>(&'a self, grant: &'a str, lease: Lease, ttl: Duration) -> StoreFuture<'a, bool> {
        (**self).renew(grant, lease, ttl)
    }
    fn release<'a>(&'a self, grant: &'a str, lease: Lease) -> StoreFuture<'a, ()> {
        (**self).release(grant, lease)
    }
    fn commit<'a>(
        &'a self,
        grant: &'a str,
        expected: u64,
        lease: Option<Lease>,
        tokens: &'a StoredTokens,
    ) -> StoreFuture<'a, Commit> {
        (**self).commit(grant, expected, lease, tokens)
    }
    fn changes(&self) -> watch::Receiver<u64> {
        (**self).changes()
    }
}

#[derive(Default)]
struct Entry {
    doc: Option<Versioned>,
    lease: Option<(Lease, Instant)>,
    fences: u64,
}

impl Entry {
    fn held(&self, now: Instant) -> Option<Lease> {
        self.lease.filter(|(_, until)| now < *until).map(|(l, _)| l)
    }
}

/// The in-process store: what several layers (or clients) in one process share. Every
/// operation is a lock held for a few field reads; nothing leaves the process.
///
/// Without any store, a layer keeps its credential in its own cell, which is the same thing
/// for one layer: use this one when several layers or tasks must share one grant, or to test
/// code written against [`CredentialStore`].
///
/// ```
/// use refresh_layer::{CredentialStore, MemoryStore, StoredTokens, Commit};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::new();
/// let first = refresh_layer::Versioned { version: 1, tokens: StoredTokens::from_refresh_token("rt-1") };
/// assert!(store.restore("grant", &first).await.unwrap());
/// let lease = store.acquire("grant", std::time::Duration::from_secs(5)).await.unwrap().unwrap();
/// assert!(store.acquire("grant", std::time::Duration::from_secs(5)).await.unwrap().is_none());
/// let next = StoredTokens::from_refresh_token("rt-2");
/// assert_eq!(store.commit("grant", 1, Some(lease), &next).await.unwrap(), Commit::Committed(2));
/// assert_eq!(store.commit("grant", 1, None, &next).await.unwrap(), Commit::Conflict);
/// # }
/// ```
pub struct MemoryStore {
    grants: Mutex<HashMap<String, Entry>>,
    changes: watch::Sender<u64>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            grants: Mutex::default(),
            changes: watch::channel(0).0,
        }
    }

    fn with<T>(&self, grant: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        f(grants.entry(grant.to_owned()).or_default())
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> StoreFuture<'a, T> {
    result(Ok(v))
}

fn result<'a, T: Send + 'a>(r: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(r))
}

impl CredentialStore for MemoryStore {
    fn load<'a>(&'a self, grant: &'a str) -> StoreFuture<'a, Option<Versioned>> {
        ready(self.with(grant, |e| e.doc.clone()))
    }

    fn restore<'a>(&'a self, grant: &'a str, doc: &'a Versioned) -> StoreFuture<'a, bool> {
        ready(self.with(grant, |e| {
            if e.doc.is_some() {
                return false;
            }
            e.doc = Some(doc.clone());
            true
        }))
    }

    fn acquire<'a>(&'a self, grant: &'a str, ttl: Duration) -> StoreFuture<'a, Option<Lease>> {
        result(self.with(grant, |e| {
            let now = Instant::now();
            if e.held(now).is_some() {
                return Ok(None);
            }
            e.fences = next_version(e.fences)?;
            let lease = Lease { fence: e.fences };
            e.lease = Some((lease, now + ttl));
            Ok(Some(lease))
        }))
    }

    fn renew<'a>(&'a self, grant: &'a str, lease: Lease, ttl: Duration) -> StoreFuture<'a, bool> {
        ready(self.with(grant, |e| {
            let now = Instant::now();
            if e.held(now) != Some(lease) {
                return false;
            }
            e.lease = Some((lease, now + ttl));
            true
        }))
    }

    fn release<'a>(&'a self, grant: &'a str, lease: Lease) -> StoreFuture<'a, ()> {
        self.with(grant, |e| {
            if e.lease.is_some_and(|(l, _)| l == lease) {
                e.lease = None;
            }
        });
        ready(())
    }

    fn commit<'a>(
        &'a self,
        grant: &'a str,
        expected: u64,
        lease: Option<Lease>,
        tokens: &'a StoredTokens,
    ) -> StoreFuture<'a, Commit> {
        let outcome = self.with(grant, |e| {
            if e.doc.as_ref().is_some_and(|d| d.version != expected) {
                return Ok(Commit::Conflict);
            }
            let version = next_version(expected)?;
            e.doc = Some(Versioned {
                version,
                tokens: tokens.clone(),
            });
            if lease.is_some() && e.lease.map(|(l, _)| l) == lease {
                e.lease = None;
            }
            Ok(Commit::Committed(version))
        });
        if matches!(outcome, Ok(Commit::Committed(_))) {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
        result(outcome)
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_commit_over_version_u64_max_is_a_typed_error_and_writes_nothing() {
        let store = MemoryStore::new();
        let top = Versioned {
            version: u64::MAX,
            tokens: StoredTokens::from_refresh_token("rt-1"),
        };
        assert!(store.restore("g", &top).await.unwrap());
        let next = StoredTokens::from_refresh_token("rt-2");
        assert_eq!(
            store.commit("g", u64::MAX, None, &next).await,
            Err(StoreError::VersionOverflow)
        );
        assert_eq!(store.load("g").await.unwrap(), Some(top));
        assert_eq!(next_version(u64::MAX - 1), Ok(u64::MAX));
    }

    #[test]
    fn debug_shows_no_token_and_no_subject() {
        let mut t = StoredTokens::from_refresh_token("rt-secret");
        t.access_token = Some("at-secret".into());
        t.subject = Some("alice@example.com".into());
        let d = format!("{t:?}");
        assert!(!d.contains("secret") && !d.contains("alice"), "{d}");
    }
}
