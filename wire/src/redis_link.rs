//! One way of talking to Redis for both sides: how a connection is made, how long a command
//! may take, how a subscription is kept through outages, and what an error may say.
//!
//! The server's shared revocation list and the client's shared credential store both use it,
//! so they fail the same way: a command that gets no answer within the configured time is
//! [`RedisLinkError::Unavailable`], never a hang, and an error carries the kind of failure
//! only (the server's words may quote a key or a value; ours never do).
//!
//! A [`Follower`] keeps a subscription: it reconnects with a bounded backoff (100 ms doubling
//! to 5 s) and, after every (re)subscription and at a fixed interval, asks its owner to reload
//! everything ([`Followed::resync`]), so a message lost during an outage costs at most that
//! interval. It holds its owner weakly and stops when the owner is dropped.
//!
//! ```no_run
//! # async fn run() -> Result<(), portcullis::wire::redis_link::RedisLinkError> {
//! use std::time::Duration;
//! use portcullis::wire::redis_link::{RedisLink, redis};
//! let link = RedisLink::connect("redis://127.0.0.1:6379/", Duration::from_secs(2)).await?;
//! let mut conn = link.connection();
//! let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
//! assert_eq!(pong, "PONG");
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};

pub use redis;

/// Why Redis could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisLinkError {
    /// The Redis URL is not one the client understands.
    #[error("the Redis URL is not valid")]
    InvalidUrl,
    /// Redis could not be reached or did not answer in time.
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
}

impl From<redis::RedisError> for RedisLinkError {
    fn from(e: redis::RedisError) -> Self {
        // The kind and category only: a RedisError can carry the server's words, never ours.
        RedisLinkError::Unavailable(format!("{:?} ({})", e.kind(), e.category()))
    }
}

/// A client and a multiplexed, self-reconnecting connection, each command bounded in time.
#[derive(Clone)]
pub struct RedisLink {
    client: redis::Client,
    conn: ConnectionManager,
    timeout: Duration,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("RedisLink")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisLink {
    /// Connect to `url` (`redis://`, `rediss://`, `unix://`); every command, the connection
    /// and each reconnection may take at most `timeout`. Fails when Redis cannot be reached
    /// now; later outages are retried by the connection itself.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, RedisLinkError> {
        let client = redis::Client::open(url).map_err(|_| RedisLinkError::InvalidUrl)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
        Ok(RedisLink {
            client,
            conn,
            timeout,
        })
    }

    /// A handle on the shared connection (cheap: commands are multiplexed).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The time one command may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A new subscription to `channels` and channel `patterns`, within the timeout (a server
    /// that accepts the connection and never answers must not hold anything up).
    pub async fn subscribe(
        &self,
        channels: &[String],
        patterns: &[String],
    ) -> Result<PubSub, RedisLinkError> {
        let attempt = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            for c in channels {
                pubsub.subscribe(c).await?;
            }
            for p in patterns {
                pubsub.psubscribe(p).await?;
            }
            Ok(pubsub)
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or_else(|_| Err(RedisLinkError::Unavailable("no answer in time".into())))
    }
}

/// What a [`Follower`] keeps up to date.
pub trait Followed: Send + Sync + 'static {
    /// A message arrived on `channel`.
    fn on_message(&self, channel: &str, payload: &[u8]);

    /// Reload everything (after a (re)subscription, and every [`resync_every`](Self::resync_every)).
    fn resync(&self) -> impl Future<Output = Result<(), RedisLinkError>> + Send;

    /// How often to reload even when nothing seems lost.
    fn resync_every(&self) -> Duration;
}

/// A background task that follows channels for a [`Followed`] owner; aborted when dropped.
#[derive(Debug)]
pub struct Follower(tokio::task::JoinHandle<()>);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Follower {
    /// Follow `channels` and `patterns` for `owner`, starting from `first` (a subscription made
    /// before the owner's first load, so nothing published in between is missed).
    pub fn spawn<T: Followed>(
        link: RedisLink,
        channels: Vec<String>,
        patterns: Vec<String>,
        first: PubSub,
        owner: Weak<T>,
    ) -> Follower {
        Follower(tokio::spawn(follow(link, channels, patterns, first, owner)))
    }
}

async fn follow<T: Followed>(
    link: RedisLink,
    channels: Vec<String>,
    patterns: Vec<String>,
    first: PubSub,
    owner: Weak<T>,
) {
    let mut pubsub = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(every) = owner.upgrade().map(|o| o.resync_every()) else {
            return;
        };
        if let Some(p) = pubsub.take() {
            let mut messages = p.into_on_message();
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    msg = messages.next() => {
                        let Some(msg) = msg else { break };
                        let Some(o) = owner.upgrade() else { return };
                        o.on_message(msg.get_channel_name(), msg.get_payload_bytes());
                    }
                    _ = tick.tick() => {
                        let Some(o) = owner.upgrade() else { return };
                        if let Err(e) = o.resync().await {
                            tracing::warn!(target: "portcullis::redis", error = %e, "resync failed");
                        }
                    }
                }
            }
            tracing::warn!(target: "portcullis::redis", "lost the Redis subscription; reconnecting");
        }
        tokio::time::sleep(backoff).await;
        if owner.strong_count() == 0 {
            return;
        }
        match link.subscribe(&channels, &patterns).await {
            Ok(p) => {
                // Subscribed again: reload what was published while away.
                let reloaded = match owner.upgrade() {
                    Some(o) => o.resync().await.is_ok(),
                    None => return,
                };
                if reloaded {
                    backoff = Duration::from_millis(100);
                }
                pubsub = Some(p);
            }
            Err(e) => {
                tracing::warn!(target: "portcullis::redis", error = %e, "Redis unavailable");
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
