//! The verified-token cache: a token that verified once is not verified again until it
//! expires. Keyed by the exact token string, so a different token (even one differing only in
//! its signature) is never served from the cache. Bounded by entries and by bytes, and an
//! entry dies with the key that verified it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::keys::JwtKey;
use crate::credential::CredentialKind;
use crate::principal::Principal;

/// Tokens the verified-token cache holds by default: enough for the active users of a busy
/// API, each entry a few hundred bytes.
pub(super) const DEFAULT_CACHE_ENTRIES: usize = 10_000;
/// Bytes the verified-token cache holds by default, whatever the number of entries (tokens
/// with large claims would otherwise make 10,000 entries far larger).
pub(super) const DEFAULT_CACHE_BYTES: usize = 16 << 20;

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
/// the key), eight bytes at a time: hashing 800 bytes with SipHash cost more than the rest of
/// a cache hit, and so did FNV-1a a byte at a time over the 32. Which token an entry belongs
/// to is still decided by comparing the whole string.
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
        let mut words = tail.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            self.0 = (self.0 ^ w)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(31);
        }
        for &b in words.remainder() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        // The map takes its bucket from the low bits and its tag from the top seven: mix both.
        let h = (self.0 ^ (self.0 >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^ (h >> 32)
    }
}

/// What one cached token maps to.
struct Entry {
    principal: Principal,
    /// exp + leeway: served only before this.
    valid_until: u64,
    /// The key that verified the token. When it leaves the key set (a JWKS rotation dropped
    /// it, say) the entry is dead: a verdict is never served past its key.
    key: Weak<JwtKey>,
}

/// Bytes counted for an entry besides its token: the principal, the map slot, the boxed key.
const ENTRY_OVERHEAD: usize = 256;

#[derive(Default)]
struct Shard {
    entries: HashMap<Box<[u8]>, Entry, TailHash>,
    bytes: usize,
}

impl Shard {
    fn live(e: &Entry, now: u64) -> bool {
        now < e.valid_until && e.key.strong_count() > 0
    }

    /// Make room for one entry of `weight` bytes: drop dead entries first, then arbitrary
    /// live ones down to seven eighths of the budget. `retain` walks the map in place, so
    /// nothing is cloned, and only this shard's callers wait meanwhile.
    fn make_room(&mut self, weight: usize, max_entries: usize, max_bytes: usize, now: u64) {
        let full = |s: &Shard| s.entries.len() >= max_entries || s.bytes + weight > max_bytes;
        if !full(self) {
            return;
        }
        let mut freed = 0;
        self.entries.retain(|token, e| {
            let keep = Shard::live(e, now);
            if !keep {
                freed += token.len() + ENTRY_OVERHEAD;
            }
            keep
        });
        self.bytes -= freed;
        if !full(self) {
            return;
        }
        // Still full of live tokens: drop an eighth and then some, arbitrary ones. Cheaper than
        // tracking recency on every hit, and a dropped entry only costs one verify.
        let entries_goal = max_entries - max_entries / 8 - 1;
        let bytes_goal = (max_bytes - max_bytes / 8).saturating_sub(weight);
        let (mut count, mut bytes) = (self.entries.len(), self.bytes);
        self.entries.retain(|token, _| {
            if count <= entries_goal && bytes <= bytes_goal {
                return true;
            }
            count -= 1;
            bytes -= token.len() + ENTRY_OVERHEAD;
            false
        });
        self.bytes = bytes;
    }
}

/// A lock per shard, so that a full shard being cleaned holds up only the requests that hash
/// to it. Small caches have one shard (a bound of a handful of entries cannot be split).
const SHARDS: usize = 16;

pub(crate) struct VerifiedCache {
    shards: Box<[Mutex<Shard>]>,
    max_entries: usize,
    max_bytes: usize,
    pub(crate) stats: CacheStats,
}

impl VerifiedCache {
    /// At most `capacity` entries and `max_bytes` bytes (tokens plus a fixed overhead each).
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        let shards = if capacity >= SHARDS * 64 { SHARDS } else { 1 };
        VerifiedCache {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            max_entries: (capacity / shards).max(1),
            max_bytes: max_bytes / shards,
            stats: CacheStats::default(),
        }
    }

    /// The shard of a token: a byte from the end of its signature, which nobody without the
    /// key can steer, and which costs nothing to read.
    fn shard(&self, token: &[u8]) -> MutexGuard<'_, Shard> {
        let n = self.shards.len();
        let i = if n == 1 {
            0
        } else {
            token
                .len()
                .checked_sub(2)
                .map_or(0, |i| usize::from(token[i]))
                % n
        };
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The principal of `token` if it verified before, was presented the same way (`kind`),
    /// `valid_until` (exp + leeway) is still ahead of `now`, and the key that verified it is
    /// still in the key set.
    ///
    /// The kind matters: a principal says how its credential was presented, and cookie
    /// credentials need a CSRF proof that header credentials do not. A token cached from a
    /// bearer header must not make the same token in a cookie look like a header.
    pub(crate) fn get(&self, token: &[u8], kind: CredentialKind, now: u64) -> Option<Principal> {
        let hit = {
            let shard = self.shard(token);
            shard
                .entries
                .get(token)
                .filter(|e| Shard::live(e, now) && e.principal.kind() == kind)
                .map(|e| e.principal.clone())
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

    pub(crate) fn insert(
        &self,
        token: &[u8],
        principal: Principal,
        valid_until: u64,
        now: u64,
        key: &Arc<JwtKey>,
    ) {
        let weight = token.len() + ENTRY_OVERHEAD;
        if weight > self.max_bytes {
            return;
        }
        let entry = Entry {
            principal,
            valid_until,
            key: Arc::downgrade(key),
        };
        let mut shard = self.shard(token);
        if let Some(e) = shard.entries.get_mut(token) {
            *e = entry;
            return;
        }
        shard.make_room(weight, self.max_entries, self.max_bytes, now);
        shard.entries.insert(token.into(), entry);
        shard.bytes += weight;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap().entries.len())
            .sum()
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::Algorithm;

    fn p() -> Principal {
        Principal::builder(CredentialKind::Bearer).build()
    }

    fn key() -> Arc<JwtKey> {
        Arc::new(JwtKey::hmac(&[7u8; 32], &[Algorithm::HS256]).unwrap())
    }

    const MB: usize = 1 << 20;

    #[test]
    fn entries_expire_and_count() {
        let k = key();
        let c = VerifiedCache::new(4, MB);
        c.insert(b"t", p(), 100, 0, &k);
        assert!(c.get(b"t", CredentialKind::Bearer, 99).is_some());
        assert!(c.get(b"t", CredentialKind::Bearer, 100).is_none());
        assert!(c.get(b"u", CredentialKind::Bearer, 0).is_none());
        c.count_miss();
        assert_eq!((c.stats.hits(), c.stats.misses()), (1, 1));
    }

    #[test]
    fn tokens_sharing_a_tail_are_still_told_apart() {
        let k = key();
        let c = VerifiedCache::new(4, MB);
        let sig = "s".repeat(40);
        c.insert(format!("a.{sig}").as_bytes(), p(), 100, 0, &k);
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
        let k = key();
        let c = VerifiedCache::new(4, MB);
        c.insert(b"t", p(), 100, 0, &k);
        assert!(c.get(b"t", CredentialKind::Cookie, 0).is_none());
    }

    #[test]
    fn capacity_is_a_bound() {
        let k = key();
        for capacity in [16, 4096] {
            let c = VerifiedCache::new(capacity, 64 * MB);
            for i in 0..10_000 {
                c.insert(format!("t{i}").as_bytes(), p(), 100, 0, &k);
                assert!(c.len() <= capacity);
            }
            assert!(
                c.len() > capacity / 2,
                "eviction keeps most of a full cache"
            );
        }
    }

    /// 10 000 entries of 16 KiB tokens would be 160 MiB: the byte budget holds whatever the
    /// entry count allows.
    #[test]
    fn bytes_are_a_bound() {
        let k = key();
        let c = VerifiedCache::new(10_000, 2 * MB);
        for i in 0..1_000 {
            let mut token = vec![b'a'; 16 * 1024];
            token.extend_from_slice(format!("{i:06}").as_bytes());
            c.insert(&token, p(), 100, 0, &k);
            assert!(c.bytes() <= 2 * MB, "{} bytes", c.bytes());
        }
        assert!(c.len() >= 32, "the budget is used: {} entries", c.len());
        // A token larger than a shard's whole budget is simply not cached.
        let tiny = VerifiedCache::new(10, 1024);
        tiny.insert(&[b'x'; 2048], p(), 100, 0, &k);
        assert_eq!(tiny.len(), 0);
    }

    /// A verdict dies with its key: once the key set drops the key, the token is verified
    /// again (and refused if no key verifies it).
    #[test]
    fn entries_whose_key_left_the_key_set_are_not_served() {
        let k = key();
        let c = VerifiedCache::new(4, MB);
        c.insert(b"t", p(), 100, 0, &k);
        assert!(c.get(b"t", CredentialKind::Bearer, 0).is_some());
        drop(k);
        assert!(c.get(b"t", CredentialKind::Bearer, 0).is_none());
        // Dead entries are the first to go when room is needed.
        let k2 = key();
        for i in 0..4 {
            c.insert(format!("u{i}").as_bytes(), p(), 100, 0, &k2);
        }
        assert!(c.get(b"u0", CredentialKind::Bearer, 0).is_some());
    }
}
