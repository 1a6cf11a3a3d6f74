//! The shared credential cell: one current credential with a generation number, and a
//! single-flight refresh.
//!
//! - N concurrent callers that need a refresh share one: the first starts it in its own task,
//!   the others subscribe to its result. The task finishes (and stores a rotated refresh
//!   token) even if every caller is dropped.
//! - A caller whose 401 came from a credential that was already replaced (an older
//!   generation) gets the current one without a new refresh.
//! - A failed refresh is remembered with exponential backoff (`invalid_grant`: until a new
//!   credential is set), so the token endpoint is not hammered and nobody waits forever.
//! - The lock is a `std::sync::Mutex` held for a few field reads/writes, never across `.await`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::credential::Credential;
use crate::error::RefreshError;
use crate::source::CredentialSource;

/// A credential and the generation it belongs to (each refresh makes a new generation).
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) credential: Credential,
    pub(crate) generation: u64,
}

type Outcome = Result<Arc<Current>, RefreshError>;

struct Failure {
    error: RefreshError,
    /// `None`: until a new credential is set (sign in again).
    until: Option<Instant>,
    streak: u32,
}

#[derive(Default)]
struct State {
    current: Option<Arc<Current>>,
    next_generation: u64,
    inflight: Option<watch::Receiver<Option<Outcome>>>,
    failure: Option<Failure>,
}

/// Timing of refreshes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) skew: Duration,
    pub(crate) timeout: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

pub(crate) struct Cell {
    source: Arc<dyn CredentialSource>,
    timing: Timing,
    state: Mutex<State>,
    refreshes: AtomicU64,
    failures: AtomicU64,
}

impl Cell {
    pub(crate) fn new(
        source: Arc<dyn CredentialSource>,
        timing: Timing,
        initial: Option<Credential>,
    ) -> Self {
        let mut state = State::default();
        if let Some(c) = initial {
            state.current = Some(Arc::new(Current {
                credential: c,
                generation: 0,
            }));
            state.next_generation = 1;
        }
        Cell {
            source,
            timing,
            state: Mutex::new(state),
            refreshes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub(crate) fn generation(&self) -> Option<u64> {
        self.lock().current.as_ref().map(|c| c.generation)
    }

    /// The header the current credential travels in, if any.
    pub(crate) fn header_name(&self) -> Option<http::HeaderName> {
        self.lock().current.as_ref()?.credential.header_name()
    }

    /// The current credential when it needs no refresh now: one lock, and the clock is read
    /// only for credentials that expire (the per-request fast path).
    pub(crate) fn fresh(&self) -> Option<Arc<Current>> {
        let st = self.lock();
        let c = st.current.as_ref()?;
        (!c.credential.expires_within(self.timing.skew, Instant::now)).then(|| c.clone())
    }

    /// The current credential without refreshing it.
    pub(crate) fn peek(&self) -> Option<Arc<Current>> {
        self.lock().current.clone()
    }

    /// Replace the credential (after a new sign-in, say); clears any backoff.
    pub(crate) fn set(&self, credential: Credential) {
        let mut st = self.lock();
        let generation = st.next_generation;
        st.next_generation += 1;
        st.current = Some(Arc::new(Current {
            credential,
            generation,
        }));
        st.failure = None;
    }

    /// The credential to send now: refreshed first when missing or within the skew of its
    /// expiry. When that refresh fails but the old credential has not expired yet, the old
    /// one is still used.
    pub(crate) async fn current(self: &Arc<Self>) -> Outcome {
        let (rx, fallback) = {
            let mut st = self.lock();
            let now = Instant::now();
            let fallback = match &st.current {
                Some(c) if !c.credential.expires_within(self.timing.skew, || now) => {
                    return Ok(c.clone());
                }
                Some(c) if !c.credential.is_expired(now) => Some(c.clone()),
                _ => None,
            };
            (self.start_or_join(&mut st), fallback)
        };
        let outcome = match rx {
            Ok(rx) => wait(rx).await,
            Err(e) => Err(e),
        };
        match (outcome, fallback) {
            (Err(e), Some(old)) => {
                tracing::warn!(target: "portcullis::client", error = %e, "proactive refresh failed; using the unexpired credential");
                Ok(old)
            }
            (outcome, _) => outcome,
        }
    }

    /// A request sent with generation `failed` was refused: refresh, unless that credential
    /// has been replaced already.
    pub(crate) async fn refresh_after(self: &Arc<Self>, failed: u64) -> Outcome {
        let rx = {
            let mut st = self.lock();
            if let Some(c) = &st.current
                && c.generation != failed
            {
                return Ok(c.clone());
            }
            self.start_or_join(&mut st)?
        };
        wait(rx).await
    }

    fn start_or_join(
        self: &Arc<Self>,
        st: &mut State,
    ) -> Result<watch::Receiver<Option<Outcome>>, RefreshError> {
        if let Some(rx) = &st.inflight {
            // A refresh task that died (panicked) leaves a closed channel: start a new one.
            if rx.has_changed().is_ok() {
                return Ok(rx.clone());
            }
            st.inflight = None;
        }
        if let Some(f) = &st.failure {
            let now = Instant::now();
            match f.until {
                None => return Err(f.error.clone()),
                Some(until) if now < until => {
                    return Err(RefreshError::BackingOff {
                        retry_in: until - now,
                        last: Box::new(f.error.clone()),
                    });
                }
                Some(_) => {}
            }
        }
        let (tx, rx) = watch::channel(None);
        st.inflight = Some(rx.clone());
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let cell = self.clone();
        // Spawned, so that dropping the request that started it does not cancel it for the
        // others (or lose a rotated refresh token).
        tokio::spawn(async move {
            let started = Instant::now();
            tracing::debug!(target: "portcullis::client", "credential refresh started");
            let result = match tokio::time::timeout(cell.timing.timeout, cell.source.fetch()).await
            {
                Ok(r) => r,
                Err(_) => Err(RefreshError::Timeout(cell.timing.timeout)),
            };
            let outcome = cell.finish(result);
            match &outcome {
                Ok(c) => {
                    tracing::debug!(target: "portcullis::client", generation = c.generation, elapsed_ms = started.elapsed().as_millis() as u64, "credential refreshed")
                }
                Err(e) => {
                    tracing::warn!(target: "portcullis::client", error = %e, elapsed_ms = started.elapsed().as_millis() as u64, "credential refresh failed")
                }
            }
            let _ = tx.send(Some(outcome));
        });
        Ok(rx)
    }

    fn finish(&self, result: Result<Credential, RefreshError>) -> Outcome {
        let mut st = self.lock();
        st.inflight = None;
        match result {
            Ok(credential) => {
                let generation = st.next_generation;
                st.next_generation += 1;
                let c = Arc::new(Current {
                    credential,
                    generation,
                });
                st.current = Some(c.clone());
                st.failure = None;
                Ok(c)
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let streak = st.failure.as_ref().map_or(0, |f| f.streak) + 1;
                let until = if error.is_sign_in_again() {
                    None
                } else {
                    let factor = 1u32 << streak.saturating_sub(1).min(16);
                    let delay = self
                        .timing
                        .backoff_initial
                        .saturating_mul(factor)
                        .min(self.timing.backoff_max);
                    Some(Instant::now() + delay)
                };
                st.failure = Some(Failure {
                    error: error.clone(),
                    until,
                    streak,
                });
                Err(error)
            }
        }
    }
}

async fn wait(mut rx: watch::Receiver<Option<Outcome>>) -> Outcome {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.clone().unwrap_or(Err(RefreshError::Aborted)),
        Err(_) => Err(RefreshError::Aborted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{FetchFuture, from_fn};
    use std::sync::atomic::AtomicUsize;

    fn timing() -> Timing {
        Timing {
            skew: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(8),
        }
    }

    struct Counting {
        calls: Arc<AtomicUsize>,
        ttl: Duration,
        delay: Duration,
        fail: bool,
    }

    impl CredentialSource for Counting {
        fn fetch(&self) -> FetchFuture {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let (ttl, delay, fail) = (self.ttl, self.delay, self.fail);
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                if fail {
                    return Err(RefreshError::TokenEndpoint {
                        status: http::StatusCode::INTERNAL_SERVER_ERROR,
                        error: None,
                        description: None,
                    });
                }
                Ok(Credential::bearer(&format!("t{n}"))
                    .unwrap()
                    .expires_in(ttl))
            })
        }
    }

    fn cell(ttl: u64, delay_ms: u64, fail: bool) -> (Arc<Cell>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let src = Counting {
            calls: calls.clone(),
            ttl: Duration::from_secs(ttl),
            delay: Duration::from_millis(delay_ms),
            fail,
        };
        (Arc::new(Cell::new(Arc::new(src), timing(), None)), calls)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_refresh() {
        let (cell, calls) = cell(300, 50, false);
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let c = cell.clone();
                tokio::spawn(async move { c.current().await.unwrap().generation })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 0);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // 100 failures of generation 0 -> one refresh; stale failures reuse generation 1.
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let c = cell.clone();
                tokio::spawn(async move { c.refresh_after(0).await.unwrap().generation })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 1);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cell.refresh_after(0).await.unwrap().generation, 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn credential_within_skew_is_refreshed_before_use() {
        let (cell, calls) = cell(60, 0, false);
        assert_eq!(cell.current().await.unwrap().generation, 0);
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(
            cell.current().await.unwrap().generation,
            0,
            "40 s left, skew 30 s"
        );
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(
            cell.current().await.unwrap().generation,
            1,
            "25 s left: refreshed first"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_and_nobody_hangs() {
        let (cell, calls) = cell(60, 0, true);
        assert!(matches!(
            cell.current().await,
            Err(RefreshError::TokenEndpoint { .. })
        ));
        assert!(matches!(
            cell.current().await,
            Err(RefreshError::BackingOff { .. })
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(cell.current().await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert!(
            matches!(cell.current().await, Err(RefreshError::BackingOff { .. })),
            "second backoff is 2 s"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn hanging_source_times_out() {
        let (cell, _) = cell(60, 60_000, false);
        assert!(matches!(
            cell.current().await,
            Err(RefreshError::Timeout(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_survives_the_caller_being_dropped() {
        let (cell, calls) = cell(300, 100, false);
        let c = cell.clone();
        let first = tokio::spawn(async move { c.current().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        first.abort();
        assert_eq!(cell.current().await.unwrap().generation, 0);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_grant_stops_refreshing_until_a_credential_is_set() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c2 = calls.clone();
        let src = from_fn(move || {
            c2.fetch_add(1, Ordering::SeqCst);
            async { Err(RefreshError::SignInAgain { description: None }) }
        });
        let cell = Arc::new(Cell::new(Arc::new(src), timing(), None));
        for _ in 0..5 {
            assert!(cell.current().await.unwrap_err().is_sign_in_again());
            tokio::time::advance(Duration::from_secs(3600)).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        cell.set(Credential::bearer("fresh").unwrap());
        assert!(cell.current().await.is_ok());
    }
}
