//! One revocation list for every replica, kept in Redis and followed by each process.
//!
//! The list lives in two Redis sorted sets (token ids and subjects), each member scored by the
//! time its revocation may be forgotten (the token's `exp`, or the end of a subject's ban). A
//! revocation is written and published in one transaction; every replica applies the
//! publication as it arrives (milliseconds on a LAN), and reloads the list when it
//! (re)subscribes and at a fixed interval, so a missed message costs at most that interval.
//!
//! Each replica holds up to [`max_entries`](SharedRevocationConfig::max_entries) of each kind
//! in memory and, while the list fits, answers every request from there: no request waits for
//! Redis. **A live revocation is never dropped**: when the list outgrows the bound, the replica
//! keeps the entries that run longest and is *overflowing* until the ones it left out would
//! have expired. Meanwhile a token whose id (or subject) it does not hold is looked up in Redis
//! (one round trip) before it passes; when Redis cannot answer, the request gets 503
//! `revocation_unavailable` with `Retry-After`, never a pass. An overflow is logged
//! (`tracing::warn!`, target `portcullis::revocation`) and counted ([`SharedRevocationStats`]).
//! Self-service logouts can be limited per subject
//! ([`limit_self_service_logouts`](SharedRevocationConfig::limit_self_service_logouts)), so one
//! user cannot push every replica into that mode.
//!
//! While Redis cannot be reached, each replica keeps refusing what it holds. A revocation made
//! on a replica that cannot reach Redis is applied there, reported as not shared
//! ([`SharedRevocationError::Unavailable`]), and written to Redis by the next reload that
//! reaches it.
//!
//! A reload builds the new set outside the lock that requests read through and swaps it in, so
//! a request waits at most for a swap, whatever the size of the list; adding or evicting an
//! entry costs O(log n).

mod held;
mod logout_limit;
mod sync;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portcullis_wire::redis_link::{Followed, Follower, RedisLink, RedisLinkError, redis};

use crate::principal::Principal;
use crate::revocation::{Revocation, RevocationCheck, RevocationStatus};
use held::{Held, Timed};
pub use logout_limit::LogoutError;
use logout_limit::{Admit, Limiter, LogoutLimit};

/// How the shared list is kept.
///
/// ```
/// use std::time::Duration;
/// use auth_layer::SharedRevocationConfig;
/// let config = SharedRevocationConfig::default()
///     .key_prefix("orders-api:revoked")
///     .max_entries(50_000)
///     .resync_every(Duration::from_secs(10))
///     .limit_self_service_logouts(20, Duration::from_secs(60), 100_000);
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct SharedRevocationConfig {
    prefix: String,
    max_entries: usize,
    resync_every: Duration,
    timeout: Duration,
    logout_limit: Option<LogoutLimit>,
    grace: Duration,
}

impl Default for SharedRevocationConfig {
    fn default() -> Self {
        SharedRevocationConfig {
            prefix: "portcullis:revoked".into(),
            max_entries: 100_000,
            resync_every: Duration::from_secs(30),
            timeout: Duration::from_secs(2),
            logout_limit: None,
            grace: Duration::from_secs(300),
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

    /// At most this many entries of each kind (token ids, subjects) are held in each process
    /// (default 100,000). Past that, nothing is dropped: the process holds those that run
    /// longest and looks the others up in Redis (see the module docs).
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// How long past its `until` a revocation is kept (default 5 minutes). An authenticator
    /// accepts a token for its leeway past `exp` (60 s by default), so a revocation that ended
    /// at `exp` would let a revoked token in again for that long: keep this at least as long as
    /// the leeway of every authenticator that uses the list.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How often the whole list is reloaded, in case a publication was missed (default 30 s).
    pub fn resync_every(mut self, every: Duration) -> Self {
        self.resync_every = every.max(Duration::from_millis(100));
        self
    }

    /// How long one Redis command may take (default 2 s); also bounds the look-up a request
    /// waits for while the list is past [`max_entries`](Self::max_entries).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opt in to a limit on self-service logouts
    /// ([`SharedRevocations::revoke_own_token`]): at most `per_subject` for each subject in
    /// each `window` (fixed windows), and at most `max_subjects` distinct subjects per window
    /// in each process. A logout is never refused (that would leave the token valid): past its
    /// allowance, a subject's logout revokes the whole subject until that token's `exp` (one
    /// entry, however many follow); when the table of subjects is full, logouts are revoked as
    /// asked, uncounted. Administrator revocations
    /// ([`revoke_token_id`](SharedRevocations::revoke_token_id),
    /// [`revoke_subject`](SharedRevocations::revoke_subject)) are never limited. Off by default.
    pub fn limit_self_service_logouts(
        mut self,
        per_subject: u32,
        window: Duration,
        max_subjects: usize,
    ) -> Self {
        self.logout_limit = Some(LogoutLimit {
            per_subject: per_subject.max(1),
            window: window.max(Duration::from_millis(1)),
            max_subjects: max_subjects.max(1),
        });
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

/// What a request that could not be decided is told (`Retry-After`): the follower's first
/// reconnection attempts come within this.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Entries copied from the held set per read lock during a reload.
const COPY_CHUNK: usize = 1_024;

/// The numbers an operator watches; read with [`SharedRevocations::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedRevocationStats {
    /// Entries held in this process (both kinds).
    pub held: usize,
    /// True while some live revocation is not held here: tokens this process does not hold
    /// are looked up in Redis.
    pub overflowing: bool,
    /// Times this process started overflowing.
    pub overflows: u64,
    /// Look-ups in Redis made for tokens that could not be decided from memory.
    pub redis_checks: u64,
    /// Of those, the ones Redis did not answer (each answered 503 `revocation_unavailable`).
    pub redis_check_failures: u64,
    /// Self-service logouts past their subject's allowance (each revoked the whole subject).
    pub logouts_over_allowance: u64,
    /// Revocations made here that Redis has not taken yet (written by the next reload).
    pub unshared: usize,
}

#[derive(Debug, Default)]
struct Counters {
    overflows: AtomicU64,
    redis_checks: AtomicU64,
    redis_check_failures: AtomicU64,
    logouts_over_allowance: AtomicU64,
}

/// What a replica holds.
#[derive(Debug, Default)]
struct Local {
    token_ids: Held,
    subjects: Held,
    /// While a reload runs: what was applied meanwhile, replayed into the new sets at the swap.
    journal: Option<Vec<(Kind, Arc<str>, u64)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    fn name(self) -> &'static str {
        match self {
            Kind::TokenId => "token ids",
            Kind::Subject => "subjects",
        }
    }
}

impl Local {
    fn held(&self, kind: Kind) -> &Held {
        match kind {
            Kind::TokenId => &self.token_ids,
            Kind::Subject => &self.subjects,
        }
    }

    fn held_mut(&mut self, kind: Kind) -> &mut Held {
        match kind {
            Kind::TokenId => &mut self.token_ids,
            Kind::Subject => &mut self.subjects,
        }
    }

    fn complete(&self, now: u64) -> bool {
        self.token_ids.complete(now) && self.subjects.complete(now)
    }
}

/// What memory alone says about a principal.
enum Locally<'p> {
    Revoked,
    Live,
    /// Not held, but the list is past the bound: Redis has to say.
    Ask {
        jti: Option<&'p str>,
        sub: Option<&'p str>,
    },
}

struct Inner {
    local: RwLock<Local>,
    /// Revocations made here that Redis did not take, by kind and id (written by the next
    /// reload; never dropped before they expire).
    unshared: Mutex<HashMap<(Kind, String), u64>>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    limiter: Option<Mutex<Limiter>>,
    counters: Counters,
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
/// Lookups are in memory while the list fits in
/// [`max_entries`](SharedRevocationConfig::max_entries), and in Redis for what does not (see
/// the module docs). [`revoke_token_id`](Self::revoke_token_id) and
/// [`revoke_subject`](Self::revoke_subject) are an administrator's revocations (never refused,
/// never dropped); [`revoke_own_token`](Self::revoke_own_token) is a user's logout, which may
/// be limited per subject. Each reaches every replica within milliseconds. Cloning shares the
/// list; the background follower stops when the last clone is dropped.
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
/// // A user logs out: refused everywhere until the token would have expired anyway.
/// revoked.revoke_own_token("alice", "the-jti", 1_900_000_000).await?;
/// // An administrator revokes a stolen token.
/// revoked.revoke_token_id("stolen-jti", 1_900_000_000).await?;
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
            unshared: Mutex::default(),
            reloading: tokio::sync::Mutex::new(()),
            limiter: config.logout_limit.map(|l| Mutex::new(Limiter::new(l))),
            counters: Counters::default(),
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

    /// An administrator's revocation: refuse the token with this `jti` on every replica until
    /// `until` (seconds since the epoch; the token's `exp`). Never refused, never dropped.
    /// Applied here first, so this replica refuses it even when the error says it could not be
    /// shared.
    pub async fn revoke_token_id(
        &self,
        jti: &str,
        until: u64,
    ) -> Result<(), SharedRevocationError> {
        self.inner.revoke(Kind::TokenId, jti, until).await
    }

    /// An administrator's revocation: refuse every token of this subject on every replica
    /// until `until` (seconds since the epoch: the latest `exp` its tokens can have).
    pub async fn revoke_subject(&self, sub: &str, until: u64) -> Result<(), SharedRevocationError> {
        self.inner.revoke(Kind::Subject, sub, until).await
    }

    /// A self-service logout: `subject` revokes its own token `jti` until `until`. The same as
    /// [`revoke_token_id`](Self::revoke_token_id), except that with
    /// [`limit_self_service_logouts`](SharedRevocationConfig::limit_self_service_logouts) it
    /// counts against the subject's allowance, and past it revokes the whole subject until
    /// `until` (so the list grows by one entry per subject, and the token is revoked all the
    /// same).
    /// Pass the subject of the token being revoked, as the authenticator verified it.
    pub async fn revoke_own_token(
        &self,
        subject: &str,
        jti: &str,
        until: u64,
    ) -> Result<(), LogoutError> {
        let admitted = self.inner.limiter.as_ref().map(|limiter| {
            limiter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .admit(subject, Instant::now())
        });
        if admitted == Some(Admit::OverAllowance) {
            self.inner
                .counters
                .logouts_over_allowance
                .fetch_add(1, Ordering::Relaxed);
            // One entry for the subject, however many logouts follow: the list stays bounded
            // and the token asked about is revoked all the same.
            return Ok(self.inner.revoke(Kind::Subject, subject, until).await?);
        }
        Ok(self.inner.revoke(Kind::TokenId, jti, until).await?)
    }

    /// Reload the whole list from Redis now (the follower does it every
    /// [`resync_every`](SharedRevocationConfig::resync_every)), first writing what was revoked
    /// here while Redis was away. Nothing held is dropped.
    pub async fn resync(&self) -> Result<(), SharedRevocationError> {
        self.inner.resync().await
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

    /// The overflow and look-up counters, to export to a metrics system.
    pub fn stats(&self) -> SharedRevocationStats {
        let c = &self.inner.counters;
        let (held, overflowing) = {
            let l = self.inner.local.read().unwrap_or_else(|e| e.into_inner());
            (l.token_ids.len() + l.subjects.len(), !l.complete(now()))
        };
        SharedRevocationStats {
            held,
            overflowing,
            overflows: c.overflows.load(Ordering::Relaxed),
            redis_checks: c.redis_checks.load(Ordering::Relaxed),
            redis_check_failures: c.redis_check_failures.load(Ordering::Relaxed),
            logouts_over_allowance: c.logouts_over_allowance.load(Ordering::Relaxed),
            unshared: self
                .inner
                .unshared
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
        }
    }
}

impl Revocation for SharedRevocations {
    /// From memory only: true when revoked, and also when only Redis could say (the list is
    /// past [`max_entries`](SharedRevocationConfig::max_entries) and this token is not held),
    /// so that a caller who cannot wait fails closed. The authenticator calls
    /// [`check`](Revocation::check), which asks Redis instead.
    fn is_revoked(&self, p: &Principal) -> bool {
        !matches!(self.inner.locally(p, now()), Locally::Live)
    }

    fn check(&self, p: &Principal) -> RevocationCheck {
        let now = now();
        match self.inner.locally(p, now) {
            Locally::Live => RevocationCheck::ready(RevocationStatus::Live),
            Locally::Revoked => RevocationCheck::ready(RevocationStatus::Revoked),
            Locally::Ask { jti, sub } => {
                if self.inner.unshared_holds(jti, sub, now) {
                    return RevocationCheck::ready(RevocationStatus::Revoked);
                }
                let inner = self.inner.clone();
                let (jti, sub) = (jti.map(str::to_owned), sub.map(str::to_owned));
                RevocationCheck::pending(async move { inner.look_up(jti, sub).await })
            }
        }
    }
}
