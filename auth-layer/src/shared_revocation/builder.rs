//! Building a shared list: [`SharedRevocations::builder`] … [`connect`](SharedRevocationsBuilder::connect).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use portcullis_wire::redis_link::{Follower, RedisLink};

use super::logout_limit::{Limiter, LogoutLimit};
use super::revocations::SharedRevocations;
use super::settings::{MIN_RESYNC_EVERY, Settings};
use super::state::{Counters, Inner};
use crate::error::SharedRevocationError;

/// How the shared list is kept: [`SharedRevocations::builder`], the setters, then
/// [`connect`](Self::connect).
///
/// ```no_run
/// use std::time::Duration;
/// use portcullis::server::SharedRevocations;
/// # async fn run() -> Result<(), portcullis::server::SharedRevocationError> {
/// let revoked = SharedRevocations::builder("redis://127.0.0.1:6379/")
///     .key_prefix("orders-api:revoked")
///     .max_entries(50_000)
///     .resync_every(Duration::from_secs(10))
///     .limit_self_service_logouts(20, Duration::from_secs(60), 100_000)
///     .connect()
///     .await?;
/// # let _ = revoked; Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct SharedRevocationsBuilder {
    url: String,
    settings: Settings,
}

impl std::fmt::Debug for SharedRevocationsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password, and whoever holds it can write the list: left out.
        f.debug_struct("SharedRevocationsBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SharedRevocations {
    /// A list kept in the Redis at `redis_url`, with the default settings until changed.
    pub fn builder(redis_url: impl Into<String>) -> SharedRevocationsBuilder {
        SharedRevocationsBuilder {
            url: redis_url.into(),
            settings: Settings::default(),
        }
    }
}

impl SharedRevocationsBuilder {
    /// The prefix of the Redis keys and of the channel (`<prefix>:jti`, `<prefix>:sub`,
    /// `<prefix>:events`). Give each issuer its own: token ids are unique per issuer only.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.prefix = prefix.into();
        self
    }

    /// At most this many entries of each kind (token ids, subjects) are held in each process
    /// (default 100,000). Past that, nothing is dropped: the process holds those that run
    /// longest and looks the others up in Redis (see the module docs).
    pub fn max_entries(mut self, n: usize) -> Self {
        self.settings.max_entries = n.max(1);
        self
    }

    /// How long past its `until` a revocation is kept (default 5 minutes). An authenticator
    /// accepts a token for its leeway past `exp` (60 s by default), so a revocation that ended
    /// at `exp` would let a revoked token in again for that long: keep this at least as long as
    /// the leeway of every authenticator that uses the list.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.settings.grace = grace;
        self
    }

    /// How often the whole list is reloaded, in case a publication was missed (default 30 s).
    pub fn resync_every(mut self, every: Duration) -> Self {
        self.settings.resync_every = every.max(MIN_RESYNC_EVERY);
        self
    }

    /// How long one Redis command may take (default 2 s); also bounds the look-up a request
    /// waits for while the list is past [`max_entries`](Self::max_entries).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
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
        self.settings.logout_limit = Some(LogoutLimit {
            per_subject: per_subject.max(1),
            window: window.max(Duration::from_millis(1)),
            max_subjects: max_subjects.max(1),
        });
        self
    }

    /// Connect, load the current list and start following it. Fails when Redis cannot be
    /// reached now; once connected, outages are ridden out (see the module docs).
    pub async fn connect(self) -> Result<SharedRevocations, SharedRevocationError> {
        let config = self.settings;
        let url = self.url.as_str();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_part_of_the_redis_url() {
        let b =
            SharedRevocations::builder("redis://:s3cret-pw@redis.internal:6379/").max_entries(7);
        let shown = format!("{b:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(!shown.contains("redis.internal"), "{shown}");
        assert!(
            shown.contains("max_entries: 7"),
            "the settings are shown: {shown}"
        );
    }
}
