//! The key source itself: the cached key set, the single fetch every lookup joins, and the
//! refetch rules.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::Uri;
use jsonwebtoken::Algorithm;
use portcullis_wire::single_flight::{Leader, SingleFlight, Waiter};
use tokio::time::Instant;

use super::fetch::{JwksHttp, get, max_age};
use super::key_set::{KeySet, parse_key_set};
use super::settings::JwksSettings;
use crate::error::{AuthError, ErrorCode, JwksError};
use crate::jwt::keys::{KeyLookup, KeySource};

/// The shortest `Retry-After` told while the keys cannot be fetched: `0` would invite an
/// immediate retry that the refetch interval refuses anyway.
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

pub(crate) type FetchOutcome = Result<(), JwksError>;

#[derive(Default)]
pub(crate) struct State {
    keys: Option<Arc<KeySet>>,
    /// When the cached set should be refreshed (in the background).
    refresh_at: Option<Instant>,
    /// When the last fetch was started (paces retries while nothing was ever fetched).
    last_attempt: Option<Instant>,
    /// When an unknown `kid` last caused a refetch (the rate limit for unknown kids; scheduled
    /// and startup fetches do not count, or a rotation right after startup would be refused).
    last_kid_refetch: Option<Instant>,
    /// The fetch under way, which every lookup that needs keys joins.
    inflight: SingleFlight<FetchOutcome>,
}

pub(crate) struct Inner {
    pub(crate) uri: Uri,
    pub(crate) http: JwksHttp,
    pub(crate) settings: JwksSettings,
    pub(crate) state: Mutex<State>,
    pub(crate) fetches: AtomicU64,
    pub(crate) failures: AtomicU64,
}

/// A [`KeySource`] backed by a JWKS URL; cheap to clone (shared cache).
#[derive(Clone)]
pub struct JwksKeySource {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for JwksKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksKeySource")
            .field("uri", &self.inner.uri)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

impl JwksKeySource {
    /// A source for `uri` with checked settings and a client built for them; nothing is
    /// fetched yet.
    pub(crate) fn from_parts(uri: Uri, settings: JwksSettings, http: JwksHttp) -> Self {
        JwksKeySource {
            inner: Arc::new(Inner {
                uri,
                http,
                settings,
                state: Mutex::new(State::default()),
                fetches: AtomicU64::new(0),
                failures: AtomicU64::new(0),
            }),
        }
    }

    /// Fetch the key set now (at startup, say), waiting for the result.
    pub async fn refresh(&self) -> Result<(), JwksError> {
        let rx = {
            let mut st = self.inner.lock();
            self.start_or_join(&mut st)
        };
        wait(rx).await
    }

    /// How many fetches were started.
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// How many fetches failed.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    fn start_or_join(&self, st: &mut State) -> Waiter<FetchOutcome> {
        if let Some(waiter) = st.inflight.join() {
            return waiter;
        }
        let (leader, waiter) = st.inflight.start();
        st.last_attempt = Some(Instant::now());
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let task = FetchTask {
            inner: self.inner.clone(),
            leader: Some(leader),
        };
        // Its own task: a request that gives up waiting does not cancel it for the others.
        tokio::spawn(task.run());
        waiter
    }

    fn retry_after(&self, st: &State) -> Duration {
        let interval = self.inner.settings.refetch_interval;
        match st.last_attempt {
            Some(t) => interval.saturating_sub(t.elapsed()).max(MIN_RETRY_AFTER),
            None => interval,
        }
    }
}

/// One fetch, in its own task. If the task ends without finishing (a panic, a dropped
/// runtime), `Drop` frees the in-flight slot: a slot left behind would make every later lookup
/// join a fetch nobody runs, or start one past the unknown-kid rate limit.
struct FetchTask {
    inner: Arc<Inner>,
    leader: Option<Leader<FetchOutcome>>,
}

impl FetchTask {
    async fn run(mut self) {
        let Some(leader) = &self.leader else { return };
        let outcome = self.inner.fetch(leader).await;
        if let Some(leader) = self.leader.take() {
            leader.land(outcome);
        }
    }
}

impl Drop for FetchTask {
    fn drop(&mut self) {
        if let Some(leader) = self.leader.take()
            && self.inner.lock().inflight.end(&leader)
        {
            // Ended without an outcome: count it as the failure it is.
            self.inner.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn fetch(&self, leader: &Leader<FetchOutcome>) -> FetchOutcome {
        let previous = self.lock().keys.clone();
        let result = async {
            let res = get(&self.http, &self.uri, &self.settings).await?;
            // max then min, not clamp: clamp panics on min > max (validated, but this runs on
            // network input in a task).
            let ttl = max_age(&res)
                .unwrap_or(self.settings.default_ttl)
                .max(self.settings.min_ttl)
                .min(self.settings.max_ttl);
            let set = parse_key_set(res.body(), &self.settings, previous.as_deref())?;
            Ok((set, ttl))
        }
        .await;
        let mut st = self.lock();
        st.inflight.end(leader);
        match result {
            Ok((set, ttl)) => {
                tracing::debug!(target: "portcullis::jwks", uri = %self.uri, keys = set.len(), ttl_secs = ttl.as_secs(), "key set fetched");
                st.keys = Some(Arc::new(set));
                // Refresh in the background once 80 % of the lifetime has passed.
                st.refresh_at = Instant::now().checked_add(ttl.mul_f32(0.8));
                Ok(())
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if st.keys.is_some() {
                    tracing::warn!(target: "portcullis::jwks", uri = %self.uri, error = %e, "key set refresh failed; keeping the cached keys");
                    // Try again no sooner than the refetch interval.
                    st.refresh_at = Instant::now().checked_add(self.settings.refetch_interval);
                } else {
                    tracing::warn!(target: "portcullis::jwks", uri = %self.uri, error = %e, "key set fetch failed");
                }
                Err(e)
            }
        }
    }
}

pub(crate) async fn wait(waiter: Waiter<FetchOutcome>) -> FetchOutcome {
    waiter
        .wait()
        .await
        .unwrap_or_else(|| Err(JwksError::Network("fetch task ended".into())))
}

impl KeySource for JwksKeySource {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        let mut st = self.inner.lock();
        let now = Instant::now();
        if let Some(keys) = &st.keys {
            if let Some(key) = keys.get(kid, alg) {
                if st.refresh_at.is_some_and(|t| now >= t) && !st.inflight.is_running() {
                    // Stale soon: refresh in the background; this request does not wait.
                    drop(self.start_or_join(&mut st));
                }
                return KeyLookup::Found(key);
            }
            // Unknown kid: refetch at most once per interval (joining one under way).
            let recent = st
                .last_kid_refetch
                .is_some_and(|t| now.duration_since(t) < self.inner.settings.refetch_interval);
            if !st.inflight.is_running() {
                if recent {
                    return KeyLookup::Unknown;
                }
                st.last_kid_refetch = Some(now);
            }
        } else if !st.inflight.is_running()
            && st
                .last_attempt
                .is_some_and(|t| now.duration_since(t) < self.inner.settings.refetch_interval)
        {
            // Never fetched successfully and the last try was just now: do not hammer.
            let retry = self.retry_after(&st);
            return KeyLookup::Pending(Box::pin(async move {
                Err(AuthError::key_set_unavailable(retry))
            }));
        }
        let rx = self.start_or_join(&mut st);
        drop(st);
        let this = self.clone();
        let kid = kid.map(str::to_owned);
        KeyLookup::Pending(Box::pin(async move {
            let fetched = wait(rx).await;
            let st = this.inner.lock();
            if let Some(key) = st.keys.as_ref().and_then(|k| k.get(kid.as_deref(), alg)) {
                return Ok(key);
            }
            match fetched {
                // The provider answered and the key is not there.
                Ok(()) => Err(AuthError::new(ErrorCode::UnknownKey)),
                // The key may exist; we cannot tell. The server's fault, not the client's.
                Err(_) => Err(AuthError::key_set_unavailable(this.retry_after(&st))),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::Empty;

    /// A fetch task that dies (here: the HTTP client panics) must not leave its in-flight marker
    /// behind, or every lookup would start another fetch past the rate limit.
    #[tokio::test]
    async fn a_fetch_task_that_panics_still_clears_its_marker_and_keeps_the_rate_limit() {
        let http = tower::service_fn(|_req: Request<Empty<Bytes>>| async {
            if true {
                panic!("HTTP client bug");
            }
            Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new()))
        });
        let source = JwksKeySource::builder("https://id.test/jwks")
            .refetch_interval(Duration::from_secs(60))
            .http_client(http)
            .build()
            .unwrap();
        assert!(source.refresh().await.is_err());
        for _ in 0..20 {
            match source.lookup(Some("k"), Algorithm::RS256) {
                KeyLookup::Pending(f) => {
                    let e = f.await.err().unwrap();
                    assert_eq!(e.code(), ErrorCode::KeySetUnavailable);
                }
                _ => panic!("no key can be known"),
            }
        }
        assert_eq!(
            source.fetches(),
            1,
            "the dead fetch is not restarted per lookup"
        );
        assert_eq!(source.failures(), 1);
        assert!(!source.inner.lock().inflight.is_running());
    }
}
