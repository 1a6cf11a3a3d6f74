//! The [`CredentialStore`] every replica shares: Redis, with the token sets encrypted at rest.
//!
//! # Layout
//! One grant (see [`SharedGrant`](crate::source::shared_grant::SharedGrant)) is `h`, the first 128 bits of the
//! SHA-256 of its name (token endpoint, client id, scope set, resource, and the grant id it
//! was built with), in hex. Its keys share the hash tag `{h}`, so a Redis Cluster keeps them
//! on one slot:
//!
//! | key | what |
//! |---|---|
//! | `<prefix>:{h}:doc` | hash: `v` (version), `blob` (the encrypted token set) |
//! | `<prefix>:{h}:lease` | the current lease's fencing value, expiring with the lease |
//! | `<prefix>:{h}:fence` | the last fencing value given |
//! | `<prefix>:{h}:events` | channel: `<version> <blob>` after every commit |
//!
//! Each step of the protocol is one Lua script, so it is atomic on the server. Versions are
//! compared as the exact decimal strings Rust wrote (Lua's numbers are doubles, which cannot
//! tell versions above 2^53 apart), and a version read back is checked before one is added
//! to it: a stored `u64::MAX` is [`StoreError::VersionOverflow`], never a wrap to 0.
//!
//! # Encryption
//! A token set is JSON sealed with AES-256-GCM under the [`StoreKey`] you supply, a random
//! 96-bit nonce per write, and the key name and version as associated data: a blob copied to
//! another grant or replayed under another version does not open. A document that does not
//! open is [`StoreError::Unreadable`], which says nothing about its contents.
//!
//! # Publications are opened before they are believed
//! Anyone who can reach Redis can `PUBLISH` on a grant's channel. A published blob is opened
//! with the store key, the grant and the version it claims (the associated data) before
//! anything is done with it: one that does not open is logged (`warn`) and dropped; it wakes
//! no waiter, is never remembered and so never written back.
//!
//! # When Redis loses its data
//! Every process keeps the newest blob it has seen (from its reads, its commits and every
//! publication that opens) of the grants it follows, and writes it back when the stored one
//! is missing or older, so a restart without persistence loses nothing a replica saw. A
//! process follows the grants it has read or committed, at most
//! [`remembered_grants`](RedisStoreBuilder::remembered_grants) of them: when full, the one
//! used least recently is forgotten, which only means this process can no longer write that
//! grant back after a loss (another replica may; else it starts from its seed, below) until
//! it reads it again. Forgetting never makes a blob that did not open acceptable. A replica started after the loss that saw
//! nothing seeds the store with the refresh token it was built with; if that one was spent
//! long ago, the identity provider answers `invalid_grant`: turn Redis persistence on when
//! replicas may start while it is empty.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use portcullis::client::store::redis::{RedisStore, StoreKey};
//! let key = StoreKey::from_base64(&std::env::var("TOKEN_STORE_KEY")?)?;
//! let store = RedisStore::builder("redis://127.0.0.1:6379/", key).connect().await?;
//! # let _ = Arc::new(store);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use portcullis_wire::redis_link::{Followed, Follower, RedisLink, RedisLinkError, redis};
use tokio::sync::watch;

mod builder;
mod key;
mod seen;
pub use builder::RedisStoreBuilder;
pub use key::{InvalidStoreKey, StoreKey};
use seen::Seen;

use crate::error::StoreError;
use crate::store::{Commit, CredentialStore, Lease, StoreFuture, StoredTokens, Versioned};

/// How often waiters are told to read the store again even when nothing seems lost: the
/// bound on a publication lost without the link noticing.
const RESYNC_EVERY: Duration = Duration::from_secs(30);

impl From<RedisLinkError> for StoreError {
    fn from(e: RedisLinkError) -> Self {
        match e {
            RedisLinkError::InvalidUrl => StoreError::InvalidUrl,
            RedisLinkError::Unavailable(why) => StoreError::Unavailable(why),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    RedisLinkError::from(e).into()
}

/// `KEYS[1]` lease, `KEYS[2]` fence counter; `ARGV[1]` time to live (ms). The new fencing
/// value, or 0 while the lease is held.
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], fence, 'PX', ARGV[1])
return fence";

/// `KEYS[1]` lease; `ARGV[1]` fencing value, `ARGV[2]` time to live (ms).
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0";

/// `KEYS[1]` lease; `ARGV[1]` fencing value.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// `KEYS[1]` doc, `KEYS[2]` lease; `ARGV[1]` expected version, `ARGV[2]` new version,
/// `ARGV[3]` blob, `ARGV[4]` fencing value (0: none), `ARGV[5]` channel. 1, or -1 when the
/// stored version is not the expected one (compared as strings: exact for every `u64`).
const COMMIT: &str = r"
local cur = redis.call('HGET', KEYS[1], 'v')
if cur and cur ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'blob', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[5], ARGV[2] .. ' ' .. ARGV[3])
return 1";

/// `KEYS[1]` doc; `ARGV[1]` version, `ARGV[2]` blob. Writes when nothing or an older version
/// is stored (decimal strings without leading zeros: the shorter is smaller, else the
/// lexically smaller); answers what is stored afterwards.
const RESTORE: &str = r"
local cur = redis.call('HGET', KEYS[1], 'v')
local new = ARGV[1]
if not cur or #cur < #new or (#cur == #new and cur < new) then
  redis.call('HSET', KEYS[1], 'v', new, 'blob', ARGV[2])
end
return redis.call('HMGET', KEYS[1], 'v', 'blob')";

struct Scripts {
    acquire: redis::Script,
    renew: redis::Script,
    release: redis::Script,
    commit: redis::Script,
    restore: redis::Script,
}

struct Keys {
    doc: String,
    lease: String,
    fence: String,
    channel: String,
}

/// A version as stored: the decimal Rust wrote, nothing else (not `+5`, not `05`).
fn parse_version(text: &str) -> Result<u64, StoreError> {
    match text.parse::<u64>() {
        Ok(v) if v.to_string() == text => Ok(v),
        _ => Err(StoreError::Unreadable),
    }
}

struct Inner {
    link: RedisLink,
    key: StoreKey,
    prefix: String,
    scripts: Scripts,
    seen: Mutex<Seen>,
    changes: watch::Sender<u64>,
    follower: OnceLock<Follower>,
}

/// The Redis [`CredentialStore`]; see the [module docs](self). Cloning shares the connection
/// and the subscription, which stops when the last clone is dropped.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// `s` with Redis's glob characters escaped.
fn glob_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl RedisStore {
    /// Connect to `url`, encrypting with `key`, and follow the commits of every grant under
    /// the prefix. Fails when Redis cannot be reached now; later outages are ridden out.
    async fn connect(
        url: &str,
        key: StoreKey,
        prefix: String,
        timeout: Duration,
        remembered: usize,
    ) -> Result<Self, StoreError> {
        let link = RedisLink::connect(url, timeout).await?;
        let inner = Arc::new(Inner {
            link: link.clone(),
            key,
            scripts: Scripts {
                acquire: redis::Script::new(ACQUIRE),
                renew: redis::Script::new(RENEW),
                release: redis::Script::new(RELEASE),
                commit: redis::Script::new(COMMIT),
                restore: redis::Script::new(RESTORE),
            },
            seen: Mutex::new(Seen::new(remembered)),
            changes: watch::channel(0).0,
            follower: OnceLock::new(),
            prefix,
        });
        let patterns = vec![format!("{}:*:events", glob_literal(&inner.prefix))];
        let pubsub = link.subscribe(&[], &patterns).await?;
        let follower = Follower::spawn(link, vec![], patterns, pubsub, Arc::downgrade(&inner));
        let _ = inner.follower.set(follower);
        Ok(RedisStore { inner })
    }
}

impl Inner {
    fn hash(grant: &str) -> String {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, grant.as_bytes());
        hex(&d.as_ref()[..16])
    }

    fn keys(&self, h: &str) -> Keys {
        let base = format!("{}:{{{h}}}", self.prefix);
        Keys {
            doc: format!("{base}:doc"),
            lease: format!("{base}:lease"),
            fence: format!("{base}:fence"),
            channel: format!("{base}:events"),
        }
    }

    fn aad(doc_key: &str, version: u64) -> String {
        format!("{doc_key}|{version}")
    }

    fn seal(
        &self,
        doc_key: &str,
        version: u64,
        tokens: &StoredTokens,
    ) -> Result<Vec<u8>, StoreError> {
        let plain = serde_json::to_vec(tokens).map_err(|_| StoreError::Unreadable)?;
        self.key.seal(&Inner::aad(doc_key, version), &plain)
    }

    fn open(&self, doc_key: &str, version: u64, blob: &[u8]) -> Result<Versioned, StoreError> {
        let plain = self.key.open(&Inner::aad(doc_key, version), blob)?;
        let tokens = serde_json::from_slice(&plain).map_err(|_| StoreError::Unreadable)?;
        Ok(Versioned { version, tokens })
    }

    fn lock_seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn restore_blob(
        &self,
        keys: &Keys,
        version: u64,
        blob: &[u8],
    ) -> Result<(Option<String>, Option<Vec<u8>>), StoreError> {
        let mut conn = self.link.connection();
        self.scripts
            .restore
            .key(&keys.doc)
            .arg(version)
            .arg(blob)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn load(&self, grant: &str) -> Result<Option<Versioned>, StoreError> {
        let h = Inner::hash(grant);
        let keys = self.keys(&h);
        let mut conn = self.link.connection();
        let (mut v, mut blob): (Option<String>, Option<Vec<u8>>) = redis::cmd("HMGET")
            .arg(&keys.doc)
            .arg("v")
            .arg("blob")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let stored = v.as_deref().map(parse_version).transpose()?;
        let newer = self.lock_seen().newer_than(&h, stored);
        if let Some((seen, seen_blob)) = newer {
            // Redis lost (or never had) what this process saw: write it back.
            tracing::warn!(target: "portcullis::client", version = seen, stored = ?stored, "credential store behind what this process saw; restoring");
            (v, blob) = self.restore_blob(&keys, seen, &seen_blob).await?;
        }
        match (v, blob) {
            (Some(v), Some(blob)) => {
                let v = parse_version(&v)?;
                let doc = self.open(&keys.doc, v, &blob)?;
                self.lock_seen().record(&h, v, &blob, true);
                Ok(Some(doc))
            }
            _ => Ok(None),
        }
    }
}

impl Followed for Inner {
    fn on_message(&self, channel: &str, payload: &[u8]) {
        // `<prefix>:{h}:events` carrying `<version> <blob>`.
        let h = channel
            .strip_prefix(self.prefix.as_str())
            .and_then(|c| c.strip_prefix(":{"))
            .and_then(|c| c.strip_suffix("}:events"));
        let Some(h) = h.filter(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            return;
        };
        // Believed only once it opens with the store key, this grant and this version: one
        // `PUBLISH` of anything else must neither wake waiters nor be written back later.
        let opened = payload.iter().position(|b| *b == b' ').and_then(|space| {
            let version = std::str::from_utf8(&payload[..space])
                .ok()
                .and_then(|v| parse_version(v).ok())?;
            let blob = &payload[space + 1..];
            self.open(&self.keys(h).doc, version, blob)
                .ok()
                .map(|_| (version, blob))
        });
        let Some((version, blob)) = opened else {
            tracing::warn!(target: "portcullis::client", channel, "a publication on a grant's channel does not open with the store key; ignored");
            return;
        };
        self.lock_seen().record(h, version, blob, false);
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn resync(&self) -> impl std::future::Future<Output = Result<(), RedisLinkError>> + Send {
        // Commits missed while away: waiters read the store again.
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        std::future::ready(Ok(()))
    }

    fn resync_every(&self) -> Duration {
        RESYNC_EVERY
    }
}

impl CredentialStore for RedisStore {
    fn load<'a>(&'a self, grant: &'a str) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(self.inner.load(grant))
    }

    fn restore<'a>(&'a self, grant: &'a str, doc: &'a Versioned) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let i = &self.inner;
            let h = Inner::hash(grant);
            let keys = i.keys(&h);
            let blob = i.seal(&keys.doc, doc.version, &doc.tokens)?;
            let (v, stored) = i.restore_blob(&keys, doc.version, &blob).await?;
            let written = v.as_deref() == Some(&*doc.version.to_string())
                && stored.as_deref() == Some(&blob[..]);
            if written {
                i.lock_seen().record(&h, doc.version, &blob, true);
            }
            Ok(written)
        })
    }

    fn acquire<'a>(&'a self, grant: &'a str, ttl: Duration) -> StoreFuture<'a, Option<Lease>> {
        Box::pin(async move {
            let i = &self.inner;
            let keys = i.keys(&Inner::hash(grant));
            let mut conn = i.link.connection();
            let fence: u64 = i
                .scripts
                .acquire
                .key(&keys.lease)
                .key(&keys.fence)
                .arg(lease_millis(ttl))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok((fence > 0).then_some(Lease { fence }))
        })
    }

    fn renew<'a>(&'a self, grant: &'a str, lease: Lease, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let i = &self.inner;
            let keys = i.keys(&Inner::hash(grant));
            let mut conn = i.link.connection();
            let renewed: u64 = i
                .scripts
                .renew
                .key(&keys.lease)
                .arg(lease.fence)
                .arg(lease_millis(ttl))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(renewed == 1)
        })
    }

    fn release<'a>(&'a self, grant: &'a str, lease: Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let i = &self.inner;
            let keys = i.keys(&Inner::hash(grant));
            let mut conn = i.link.connection();
            let _: u64 = i
                .scripts
                .release
                .key(&keys.lease)
                .arg(lease.fence)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn commit<'a>(
        &'a self,
        grant: &'a str,
        expected: u64,
        lease: Option<Lease>,
        tokens: &'a StoredTokens,
    ) -> StoreFuture<'a, Commit> {
        Box::pin(async move {
            let i = &self.inner;
            let h = Inner::hash(grant);
            let keys = i.keys(&h);
            let version = crate::store::next_version(expected)?;
            let blob = i.seal(&keys.doc, version, tokens)?;
            let mut conn = i.link.connection();
            let written: i64 = i
                .scripts
                .commit
                .key(&keys.doc)
                .key(&keys.lease)
                .arg(expected)
                .arg(version)
                .arg(&blob[..])
                .arg(lease.map_or(0, |l| l.fence))
                .arg(&keys.channel)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if written < 0 {
                return Ok(Commit::Conflict);
            }
            i.lock_seen().record(&h, version, &blob, true);
            Ok(Commit::Committed(version))
        })
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }
}

/// A lease's TTL in whole milliseconds for `PX`: at least 1, and a duration past `u64::MAX`
/// milliseconds is capped rather than wrapped (a wrapped TTL could expire a lease at once).
fn lease_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_token_sets_open_only_with_their_key_name_and_version() {
        let key = StoreKey::from_bytes(&[1; 32]).unwrap();
        let blob = key
            .seal("p:{h}:doc|3", b"{\"refresh_token\":\"rt\"}")
            .unwrap();
        assert!(!blob.windows(2).any(|w| w == b"rt"), "not in the clear");
        assert_eq!(
            key.open("p:{h}:doc|3", &blob).unwrap(),
            b"{\"refresh_token\":\"rt\"}"
        );
        assert_eq!(key.open("p:{h}:doc|4", &blob), Err(StoreError::Unreadable));
        assert_eq!(key.open("p:{g}:doc|3", &blob), Err(StoreError::Unreadable));
        let other = StoreKey::from_bytes(&[2; 32]).unwrap();
        assert_eq!(
            other.open("p:{h}:doc|3", &blob),
            Err(StoreError::Unreadable)
        );
        assert_eq!(
            key.open("p:{h}:doc|3", &blob[..5]),
            Err(StoreError::Unreadable)
        );
        let mut flipped = blob.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            key.open("p:{h}:doc|3", &flipped),
            Err(StoreError::Unreadable)
        );
    }

    #[test]
    fn versions_are_read_back_exactly_as_written() {
        assert_eq!(parse_version("1"), Ok(1));
        assert_eq!(parse_version(&u64::MAX.to_string()), Ok(u64::MAX));
        for bad in ["", "05", "+5", "-1", "1e3", "18446744073709551616", "x"] {
            assert_eq!(parse_version(bad), Err(StoreError::Unreadable), "{bad}");
        }
    }

    #[test]
    fn the_seen_map_follows_only_its_own_grants_and_forgets_the_least_recently_used() {
        let mut seen = Seen::new(2);
        // A publication for a grant this process never read is not remembered.
        seen.record("a", 5, b"a5", false);
        assert!(seen.newer_than("a", None).is_none());
        seen.record("a", 1, b"a1", true);
        seen.record("b", 1, b"b1", true);
        seen.record("a", 2, b"a2", false);
        assert_eq!(seen.newer_than("a", Some(1)), Some((2, b"a2".to_vec())));
        // Older news never replaces newer.
        seen.record("a", 1, b"a1", false);
        assert_eq!(seen.newer_than("a", None), Some((2, b"a2".to_vec())));
        // Full: "b" is the one used least recently.
        seen.record("c", 1, b"c1", true);
        assert_eq!(seen.grants.len(), 2);
        assert!(seen.newer_than("b", None).is_none());
        assert!(seen.newer_than("a", None).is_some() && seen.newer_than("c", None).is_some());
    }

    #[test]
    fn keys_base64_and_globs() {
        assert!(StoreKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_ok());
        assert!(StoreKey::from_base64("not base64!").is_err());
        assert!(StoreKey::from_base64("AAAA").is_err());
        assert_eq!(glob_literal("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(Inner::hash("x").len(), 32);
    }
}
