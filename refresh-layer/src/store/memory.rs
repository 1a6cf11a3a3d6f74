//! [`MemoryStore`]: the in-process [`CredentialStore`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Commit, CredentialStore, Lease, StoreFuture, StoredTokens, Versioned, next_version};
use crate::error::StoreError;

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
/// use portcullis::client::store::{CredentialStore, MemoryStore, StoredTokens, Commit};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::new();
/// let first = portcullis::client::store::Versioned { version: 1, tokens: StoredTokens::from_refresh_token("rt-1") };
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
}
