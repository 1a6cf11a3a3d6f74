//! [`RedisStoreBuilder`]: where the store connects, and how it keeps token sets.

use std::fmt;
use std::time::Duration;

use super::{RedisStore, StoreKey};
use crate::error::StoreError;

/// The prefix of every key and channel unless [`key_prefix`](RedisStoreBuilder::key_prefix)
/// says otherwise.
const DEFAULT_KEY_PREFIX: &str = "portcullis:grant";

/// How long one Redis command may take unless [`timeout`](RedisStoreBuilder::timeout) says
/// otherwise: long enough for a loaded server, short enough that a refresh waiting on the
/// store fails well within a layer's default refresh timeout (30 s).
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Of how many grants a process remembers the newest token set unless
/// [`remembered_grants`](RedisStoreBuilder::remembered_grants) says otherwise.
const DEFAULT_REMEMBERED_GRANTS: usize = 1024;

/// Configures a [`RedisStore`]; see [`RedisStore::builder`].
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use portcullis::client::store::redis::{RedisStore, StoreKey};
/// let store = RedisStore::builder("redis://127.0.0.1:6379/", StoreKey::from_bytes(&[7; 32])?)
///     .key_prefix("billing-gateway:tokens")
///     .timeout(Duration::from_millis(500))
///     .connect()
///     .await?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    key: StoreKey,
    prefix: String,
    timeout: Duration,
    remembered: usize,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: only its presence is shown.
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("remembered", &self.remembered)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Start configuring a store at `url` (`redis://…` or `rediss://…`) that encrypts token
    /// sets with `key`; finish with [`connect`](RedisStoreBuilder::connect).
    pub fn builder(url: impl Into<String>, key: StoreKey) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            key,
            prefix: DEFAULT_KEY_PREFIX.into(),
            timeout: DEFAULT_COMMAND_TIMEOUT,
            remembered: DEFAULT_REMEMBERED_GRANTS,
        }
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key and channel (default `portcullis:grant`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one Redis command may take (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Of how many grants this process remembers the newest token set, to write back if
    /// Redis loses its data (default 1024, at least 1; see the
    /// [module docs](super#when-redis-loses-its-data) for what happens when full).
    pub fn remembered_grants(mut self, grants: usize) -> Self {
        self.remembered = grants.max(1);
        self
    }

    /// Connect, and follow the commits of every grant under the prefix. Fails
    /// ([`StoreError::InvalidUrl`], [`StoreError::Unavailable`]) when the URL is not a Redis
    /// URL or Redis cannot be reached now; later outages are ridden out.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        RedisStore::connect(
            &self.url,
            self.key,
            self.prefix,
            self.timeout,
            self.remembered,
        )
        .await
    }
}
