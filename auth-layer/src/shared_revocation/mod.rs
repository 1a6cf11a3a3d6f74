//! One revocation list for every replica, kept in Redis and followed by each process.
//!
//! Every replica keeps the whole list in memory and answers [`Revocation::is_revoked`] from it:
//! a request never waits for Redis. The list lives in two Redis sorted sets (token ids and
//! subjects), each member scored by the time its revocation may be forgotten (the token's
//! `exp`, or the end of a subject's ban). A revocation is written and published in one
//! transaction; every replica applies the publication as it arrives (milliseconds on a LAN),
//! and reloads the whole list when it (re)subscribes and at a fixed interval, so a missed
//! message costs at most that interval.
//!
//! While Redis cannot be reached, each replica keeps refusing what it knew; revocations made
//! elsewhere during the outage are seen on reconnection. A revocation made on a replica that
//! cannot reach Redis is applied there and reported as not shared
//! ([`SharedRevocationError::Unavailable`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_wire::redis_link::{Followed, Follower, RedisLink, RedisLinkError, redis};

use crate::principal::Principal;
use crate::revocation::Revocation;

/// How the shared list is kept.
///
/// ```
/// use std::time::Duration;
/// use auth_layer::SharedRevocationConfig;
/// let config = SharedRevocationConfig::default()
///     .key_prefix("orders-api:revoked")
///     .max_entries(50_000)
///     .resync_every(Duration::from_secs(10));
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct SharedRevocationConfig {
    prefix: String,
    max_entries: usize,
    resync_every: Duration,
    timeout: Duration,
}

impl Default for SharedRevocationConfig {
    fn default() -> Self {
        SharedRevocationConfig {
            prefix: "portcullis:revoked".into(),
            max_entries: 100_000,
            resync_every: Duration::from_secs(30),
            timeout: Duration::from_secs(2),
        }
    }
}

impl SharedRevocationConfig {
    /// The prefix of the Redis keys and of the channel (`<prefix>:jti`, `<prefix>:sub`,
    /// `<prefix>:events`). Give each issuer its own: token ids are unique per issuer only.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// At most this many entries are kept in each process (default 100,000). When full, the
    /// entry that would be forgotten soonest goes first.
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// How often the whole list is reloaded, in case a publication was missed (default 30 s).
    pub fn resync_every(mut self, every: Duration) -> Self {
        self.resync_every = every.max(Duration::from_millis(100));
        self
    }

    /// How long one Redis command may take (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Why the shared list could not be used (the same errors as the client's shared store).
pub type SharedRevocationError = RedisLinkError;

fn unavailable(e: redis::RedisError) -> SharedRevocationError {
    e.into()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A member of a sorted set: an identifier and the time its revocation may be forgotten, as
/// the double Redis keeps (read as such, so no score can make a reload fail).
type Entry = (String, f64);

/// The latest time a revocation is kept until: the year 9999.
const MAX_UNTIL: u64 = 253_402_300_799;

/// What a replica knows: identifier → the time its revocation may be forgotten.
#[derive(Debug, Default)]
struct Local {
    token_ids: HashMap<String, u64>,
    subjects: HashMap<String, u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TokenId,
    Subject,
}

impl Kind {
    fn tag(self) -> char {
        match self {
            Kind::TokenId => 't',
            Kind::Subject => 's',
        }
    }
}

impl Local {
    fn map(&mut self, kind: Kind) -> &mut HashMap<String, u64> {
        match kind {
            Kind::TokenId => &mut self.token_ids,
            Kind::Subject => &mut self.subjects,
        }
    }

    fn insert(&mut self, kind: Kind, id: &str, until: u64, max: usize, now: u64) {
        if until <= now {
            return;
        }
        let map = self.map(kind);
        if let Some(t) = map.get_mut(id) {
            *t = (*t).max(until);
            return;
        }
        if map.len() >= max {
            map.retain(|_, t| *t > now);
        }
        if map.len() >= max {
            // Full of live entries: forget the one that would be forgotten soonest.
            if let Some(first) = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) {
                map.remove(&first);
            }
        }
        map.insert(id.to_owned(), until);
    }

    fn holds(&self, kind: Kind, id: &str, now: u64) -> bool {
        let map = match kind {
            Kind::TokenId => &self.token_ids,
            Kind::Subject => &self.subjects,
        };
        map.get(id).is_some_and(|t| *t > now)
    }
}

struct Inner {
    local: RwLock<Local>,
    link: RedisLink,
    jti_key: String,
    sub_key: String,
    channel: String,
    config: SharedRevocationConfig,
    last_sync: RwLock<Option<SystemTime>>,
    /// Stops when the list is dropped.
    follower: std::sync::OnceLock<Follower>,
}

/// A revocation list shared by every replica through Redis; give it to
/// [`JwtAuthenticatorBuilder::revocation`](crate::jwt::JwtAuthenticatorBuilder::revocation).
///
/// Lookups are in memory; [`revoke_token_id`](Self::revoke_token_id) and
/// [`revoke_subject`](Self::revoke_subject) reach every replica within milliseconds. Cloning
/// shares the list; the background follower stops when the last clone is dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use auth_layer::{SharedRevocationConfig, SharedRevocations};
/// use auth_layer::jwt::{Algorithm, JwtAuthenticator, JwtKey};
///
/// let revoked = SharedRevocations::connect("redis://127.0.0.1:6379/", SharedRevocationConfig::default()).await?;
/// let jwt = JwtAuthenticator::builder()
///     .key(JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::HS256])?)
///     .audience("orders-api")
///     .revocation(revoked.clone())
///     .build()?;
/// // On logout, on any replica: refused everywhere until the token would have expired anyway.
/// revoked.revoke_token_id("the-jti", 1_900_000_000).await?;
/// # let _ = jwt;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SharedRevocations {
    inner: Arc<Inner>,
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
    /// Connect, load the current list and start following it. Fails when Redis cannot be
    /// reached now; once connected, outages are ridden out (see the module docs).
    pub async fn connect(
        url: &str,
        config: SharedRevocationConfig,
    ) -> Result<Self, SharedRevocationError> {
        let link = RedisLink::connect(url, config.timeout).await?;
        let inner = Arc::new(Inner {
            local: RwLock::default(),
            link: link.clone(),
            jti_key: format!("{}:jti", config.prefix),
            sub_key: format!("{}:sub", config.prefix),
            channel: format!("{}:events", config.prefix),
            config,
            last_sync: RwLock::default(),
            follower: std::sync::OnceLock::new(),
        });
        // Subscribed before the first load, so nothing published in between is missed.
        let channels = vec![inner.channel.clone()];
        let pubsub = link.subscribe(&channels, &[]).await?;
        inner.resync().await?;
        let follower = Follower::spawn(link, channels, vec![], pubsub, Arc::downgrade(&inner));
        let _ = inner.follower.set(follower);
        Ok(SharedRevocations { inner })
    }

    /// Refuse the token with this `jti` on every replica until `until` (seconds since the
    /// epoch; the token's `exp`). Applied here first, so this replica refuses it even when the
    /// error says it could not be shared.
    pub async fn revoke_token_id(
        &self,
        jti: &str,
        until: u64,
    ) -> Result<(), SharedRevocationError> {
        self.inner.revoke(Kind::TokenId, jti, until).await
    }

    /// Refuse every token of this subject on every replica until `until` (seconds since the
    /// epoch: the latest `exp` its tokens can have).
    pub async fn revoke_subject(&self, sub: &str, until: u64) -> Result<(), SharedRevocationError> {
        self.inner.revoke(Kind::Subject, sub, until).await
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
}

impl Revocation for SharedRevocations {
    fn is_revoked(&self, p: &Principal) -> bool {
        let now = now();
        let l = self.inner.local.read().unwrap_or_else(|e| e.into_inner());
        p.token_id().is_some_and(|j| l.holds(Kind::TokenId, j, now))
            || p.subject().is_some_and(|s| l.holds(Kind::Subject, s, now))
    }
}

impl Inner {
    fn key(&self, kind: Kind) -> &str {
        match kind {
            Kind::TokenId => &self.jti_key,
            Kind::Subject => &self.sub_key,
        }
    }

    fn apply(&self, kind: Kind, id: &str, until: u64) {
        let max = self.config.max_entries;
        self.local
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind, id, until, max, now());
    }

    async fn revoke(&self, kind: Kind, id: &str, until: u64) -> Result<(), SharedRevocationError> {
        // A score Redis writes back as an integer (doubles are exact below 2^53; Redis prints
        // large ones in exponent form), so every replica reads the list back whatever `exp`
        // a token carried.
        let until = until.min(MAX_UNTIL);
        self.apply(kind, id, until);
        let now = now();
        if until <= now {
            return Ok(());
        }
        // One transaction: the entry, the clean-up of entries past their time, and the news.
        let message = format!("{} {until} {id}", kind.tag());
        let mut conn = self.link.connection();
        redis::pipe()
            .atomic()
            // GT adds a new member, and moves an existing one only later.
            .cmd("ZADD")
            .arg(self.key(kind))
            .arg("GT")
            .arg(until)
            .arg(id)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(self.key(kind))
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("PUBLISH")
            .arg(&self.channel)
            .arg(message)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    /// Read the whole list (what has not passed its time) and add it to what is held.
    async fn resync(&self) -> Result<(), SharedRevocationError> {
        let now = now();
        let mut conn = self.link.connection();
        let (jtis, subs): (Vec<Entry>, Vec<Entry>) = redis::pipe()
            .cmd("ZRANGE")
            .arg(&self.jti_key)
            .arg(now + 1)
            .arg("+inf")
            .arg("BYSCORE")
            .arg("WITHSCORES")
            .cmd("ZRANGE")
            .arg(&self.sub_key)
            .arg(now + 1)
            .arg("+inf")
            .arg("BYSCORE")
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        {
            let max = self.config.max_entries;
            let mut l = self.local.write().unwrap_or_else(|e| e.into_inner());
            // A union, not a replacement: what this replica revoked while Redis was away stays.
            // `as` saturates: NaN and negatives are 0 (forgotten), the huge are kept longest.
            for (id, until) in jtis {
                l.insert(Kind::TokenId, &id, until as u64, max, now);
            }
            for (id, until) in subs {
                l.insert(Kind::Subject, &id, until as u64, max, now);
            }
            l.token_ids.retain(|_, t| *t > now);
            l.subjects.retain(|_, t| *t > now);
        }
        *self.last_sync.write().unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now());
        Ok(())
    }

    /// A publication: `t <until> <jti>` or `s <until> <sub>`.
    fn apply_message(&self, payload: &[u8]) {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        let mut parts = text.splitn(3, ' ');
        let kind = match parts.next() {
            Some("t") => Kind::TokenId,
            Some("s") => Kind::Subject,
            _ => return,
        };
        let (Some(Ok(until)), Some(id)) = (parts.next().map(str::parse::<u64>), parts.next())
        else {
            return;
        };
        self.apply(kind, id, until.min(MAX_UNTIL));
    }
}

impl Followed for Inner {
    fn on_message(&self, _channel: &str, payload: &[u8]) {
        self.apply_message(payload);
    }

    fn resync(&self) -> impl std::future::Future<Output = Result<(), RedisLinkError>> + Send {
        Inner::resync(self)
    }

    fn resync_every(&self) -> Duration {
        self.config.resync_every
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_list_is_bounded_and_forgets_the_soonest_first() {
        let mut l = Local::default();
        for (i, until) in [(1, 500), (2, 300), (3, 400)] {
            l.insert(Kind::TokenId, &format!("j{i}"), until, 2, 100);
        }
        assert_eq!(l.token_ids.len(), 2);
        assert!(
            !l.holds(Kind::TokenId, "j2", 100),
            "the soonest to go went first"
        );
        assert!(l.holds(Kind::TokenId, "j1", 100) && l.holds(Kind::TokenId, "j3", 100));
        // Entries past their time are not held, and make room first.
        assert!(!l.holds(Kind::TokenId, "j3", 400));
        l.insert(Kind::TokenId, "j4", 900, 2, 450);
        assert!(l.holds(Kind::TokenId, "j1", 450) && l.holds(Kind::TokenId, "j4", 450));
        // A later time extends, an earlier one does not shorten.
        l.insert(Kind::TokenId, "j4", 950, 2, 450);
        l.insert(Kind::TokenId, "j4", 600, 2, 450);
        assert_eq!(l.token_ids["j4"], 950);
        // Already past: not kept at all.
        l.insert(Kind::Subject, "old", 10, 2, 450);
        assert!(l.subjects.is_empty());
    }
}
