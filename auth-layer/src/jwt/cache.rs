//! The verified-token cache: a token that verified once is not verified again until it
//! expires. Keyed by the exact token string, so a different token (even one differing only in
//! its signature) is never served from the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::authenticator::{CredentialKind, Principal};

/// Hit and miss counts of a verified-token cache.
#[derive(Debug, Default)]
pub struct CacheStats {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CacheStats {
    /// Lookups answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups that had to verify the token.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

/// Hashes only the last 32 bytes of a token (its signature, unpredictable to anyone without
/// the key) with FNV-1a: hashing 800 bytes with SipHash cost more than the rest of a cache hit.
/// Which token an entry belongs to is still decided by comparing the whole string.
#[derive(Default, Clone, Copy)]
struct TailHash;

struct TailHasher(u64);

impl std::hash::BuildHasher for TailHash {
    type Hasher = TailHasher;
    fn build_hasher(&self) -> TailHasher {
        TailHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(32)..];
        for &b in tail {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Token bytes → the principal and the time (exp + leeway) until which it may be served.
type Entries = HashMap<Box<[u8]>, (Principal, u64), TailHash>;

pub(crate) struct VerifiedCache {
    capacity: usize,
    entries: Mutex<Entries>,
    pub(crate) stats: CacheStats,
}

impl VerifiedCache {
    pub(crate) fn new(capacity: usize) -> Self {
        VerifiedCache {
            capacity,
            entries: Mutex::new(HashMap::with_capacity_and_hasher(
                capacity.min(1024),
                TailHash,
            )),
            stats: CacheStats::default(),
        }
    }

    /// The principal of `token` if it verified before, was presented the same way (`kind`),
    /// and `valid_until` (exp + leeway) is still ahead of `now`.
    ///
    /// The kind matters: a principal says how its credential was presented, and cookie
    /// credentials need a CSRF proof that header credentials do not. A token cached from a
    /// bearer header must not make the same token in a cookie look like a header.
    pub(crate) fn get(&self, token: &[u8], kind: CredentialKind, now: u64) -> Option<Principal> {
        let hit = {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries
                .get(token)
                .filter(|(p, until)| now < *until && p.kind() == kind)
                .map(|(p, _)| p.clone())
        };
        if hit.is_some() {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// A token was verified because it was not here. Counted by the caller: a layer may look
    /// a token up twice before verifying it once.
    pub(crate) fn count_miss(&self) {
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn insert(&self, token: &[u8], principal: Principal, valid_until: u64, now: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= self.capacity {
                // Still full of live tokens: drop an eighth, arbitrary ones. Cheaper than
                // tracking recency on every hit, and a dropped entry only costs one verify.
                let drop: Vec<Box<[u8]>> = entries
                    .keys()
                    .take(self.capacity / 8 + 1)
                    .cloned()
                    .collect();
                for k in drop {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(token.into(), (principal, valid_until));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Principal {
        Principal::builder(CredentialKind::Bearer).build()
    }

    #[test]
    fn entries_expire_and_count() {
        let c = VerifiedCache::new(4);
        c.insert(b"t", p(), 100, 0);
        assert!(c.get(b"t", CredentialKind::Bearer, 99).is_some());
        assert!(c.get(b"t", CredentialKind::Bearer, 100).is_none());
        assert!(c.get(b"u", CredentialKind::Bearer, 0).is_none());
        c.count_miss();
        assert_eq!((c.stats.hits(), c.stats.misses()), (1, 1));
    }

    #[test]
    fn tokens_sharing_a_tail_are_still_told_apart() {
        let c = VerifiedCache::new(4);
        let sig = "s".repeat(40);
        c.insert(format!("a.{sig}").as_bytes(), p(), 100, 0);
        assert!(
            c.get(format!("b.{sig}").as_bytes(), CredentialKind::Bearer, 0)
                .is_none(),
            "same tail, other token"
        );
        assert!(
            c.get(format!("a.{sig}").as_bytes(), CredentialKind::Bearer, 0)
                .is_some()
        );
    }

    #[test]
    fn a_hit_needs_the_same_presentation() {
        let c = VerifiedCache::new(4);
        c.insert(b"t", p(), 100, 0);
        assert!(c.get(b"t", CredentialKind::Cookie, 0).is_none());
    }

    #[test]
    fn capacity_is_a_bound() {
        let c = VerifiedCache::new(16);
        for i in 0..1000 {
            c.insert(format!("t{i}").as_bytes(), p(), 100, 0);
            assert!(c.len() <= 16);
        }
    }
}
