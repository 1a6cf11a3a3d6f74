//! The shared credential cell: one current credential with a generation number, and a
//! single-flight refresh.
//!
//! - N concurrent callers that need a refresh share one: the first starts it in its own task,
//!   the others subscribe to its result. The task finishes (and stores a rotated refresh
//!   token) even if every caller is dropped.
//! - Callers wait at most the refresh timeout; the token request itself is not cut off then.
//!   A server may have rotated the refresh token already, and dropping its answer would
//!   leave only the old one, whose reuse revokes the whole family. The exchange has its own,
//!   longer limit.
//! - A caller whose 401 came from a credential that was already replaced (an older
//!   generation) gets the current one without a new refresh.
//! - A failed refresh is remembered with exponential backoff (`invalid_grant`: until a new
//!   credential is set), so the token endpoint is not hammered and nobody waits forever.
//!   The refresh task's bookkeeping runs on every way out of it, a panic included.
//! - A credential set by hand (a new sign-in, a sign-out) wins over any refresh that was
//!   started before it: that refresh's result is dropped.
//! - The lock is a `std::sync::Mutex` held for a few field reads/writes, never across `.await`.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use portcullis_wire::single_flight::{Leader, SingleFlight, Waiter};
use tokio::time::Instant;

use crate::credential::Credential;
use crate::error::RefreshError;
use crate::source::CredentialSource;

/// A credential and the generation it belongs to (each refresh makes a new generation).
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) credential: Credential,
    pub(crate) generation: u64,
    /// When it is refreshed before use (see `Credential::refresh_at`); `None`: never ahead.
    refresh_at: Option<Instant>,
}

impl Current {
    fn needs_refresh(&self, now: Instant) -> bool {
        self.refresh_at.is_some_and(|t| now >= t)
    }
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
    /// The refresh under way, which every request that needs a credential joins.
    inflight: SingleFlight<Outcome>,
    failure: Option<Failure>,
    /// Bumped by every credential set by hand (`set`, `clear`, a new refresh token): a
    /// refresh started under an older epoch does not store its result.
    epoch: u64,
    /// After `clear`: no refresh until a credential or refresh token is set.
    signed_out: bool,
}

/// Timing of refreshes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) skew: Duration,
    /// How long a caller waits for a refresh.
    pub(crate) timeout: Duration,
    /// How long the token exchange itself may run.
    pub(crate) exchange_limit: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

pub(crate) struct Cell {
    source: Arc<dyn CredentialSource>,
    timing: Timing,
    state: Mutex<State>,
    refreshes: AtomicU64,
    failures: AtomicU64,
    /// A redirect policy was handed out: requests carry a trail it can mark.
    pub(crate) tracks_redirects: AtomicBool,
}

/// A number in 0..1 that differs between processes and calls (std's per-process random keys).
fn jitter() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

impl Cell {
    pub(crate) fn new(
        source: Arc<dyn CredentialSource>,
        timing: Timing,
        initial: Option<Credential>,
    ) -> Self {
        let cell = Cell {
            source,
            timing,
            state: Mutex::new(State::default()),
            refreshes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            tracks_redirects: AtomicBool::new(false),
        };
        if let Some(c) = initial {
            let mut st = cell.lock();
            cell.store(&mut st, c);
        }
        cell
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make `credential` the current one, as a new generation.
    fn store(&self, st: &mut State, credential: Credential) -> Arc<Current> {
        let generation = st.next_generation;
        st.next_generation += 1;
        let c = Arc::new(Current {
            refresh_at: credential.refresh_at(self.timing.skew, jitter()),
            credential,
            generation,
        });
        st.current = Some(c.clone());
        st.failure = None;
        c
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
        c.refresh_at
            .is_none_or(|t| Instant::now() < t)
            .then(|| c.clone())
    }

    /// The current credential without refreshing it.
    pub(crate) fn peek(&self) -> Option<Arc<Current>> {
        self.lock().current.clone()
    }

    /// A new epoch: whatever refresh is under way no longer speaks for the cell.
    fn new_epoch(st: &mut State) {
        st.epoch += 1;
        st.inflight.forget();
        st.failure = None;
    }

    /// A new sign-in: the access credential and the source's refresh token are replaced
    /// together, under the cell's lock, so no refresh (started before or after) can mix the
    /// previous account's refresh token with the new account's state. Without a refresh token
    /// the source forgets the one it had: the next refresh cannot return to the previous
    /// account. False (and nothing changed) when a refresh token is given to a source that
    /// keeps none.
    pub(crate) fn sign_in(
        &self,
        credential: Option<Credential>,
        refresh_token: Option<&str>,
    ) -> bool {
        let mut st = self.lock();
        match refresh_token {
            Some(rt) => {
                if !self.source.set_refresh_token(rt) {
                    return false;
                }
            }
            None => self.source.forget(),
        }
        Cell::new_epoch(&mut st);
        st.signed_out = false;
        st.current = None;
        if let Some(credential) = credential {
            self.store(&mut st, credential);
        }
        true
    }

    /// Tell the source what the server said before it is asked for a new credential.
    pub(crate) fn refused(&self, failure: &crate::AuthFailure) {
        self.source.refused(failure);
    }

    /// The current credential is due now: the next request refreshes it first (with the same
    /// sign-in's refresh token). Its generation is kept, so a 401 to it still coalesces.
    pub(crate) fn expire(&self) {
        let mut st = self.lock();
        if let Some(c) = &st.current {
            st.current = Some(Arc::new(Current {
                credential: c.credential.clone(),
                generation: c.generation,
                refresh_at: Some(Instant::now()),
            }));
        }
    }

    /// Sign out: forget the credential and the source's refresh token together; requests fail
    /// with [`RefreshError::SignedOut`] until the next sign-in.
    pub(crate) fn sign_out(&self) {
        let mut st = self.lock();
        Cell::new_epoch(&mut st);
        st.current = None;
        st.signed_out = true;
        self.source.forget();
    }

    /// The credential to send now: refreshed first when missing or within its refresh
    /// window. When that refresh fails but the old credential has not expired yet, the old
    /// one is still used.
    pub(crate) async fn current(self: &Arc<Self>) -> Outcome {
        let (rx, fallback) = {
            let mut st = self.lock();
            let now = Instant::now();
            let fallback = match &st.current {
                Some(c) if !c.needs_refresh(now) => return Ok(c.clone()),
                Some(c) if !c.credential.is_expired(now) => Some(c.clone()),
                _ => None,
            };
            (self.start_or_join(&mut st), fallback)
        };
        let outcome = match rx {
            Ok(rx) => self.wait(rx).await,
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
        self.wait(rx).await
    }

    /// As [`refresh_after`](Self::refresh_after), without waiting: the refresh runs for the
    /// requests that come next.
    pub(crate) fn refresh_after_in_background(self: &Arc<Self>, failed: u64) {
        let mut st = self.lock();
        if st.current.as_ref().is_some_and(|c| c.generation == failed) {
            let _ = self.start_or_join(&mut st);
        }
    }

    /// Wait for a refresh, at most the refresh timeout (the refresh itself goes on).
    async fn wait(&self, waiter: Waiter<Outcome>) -> Outcome {
        match tokio::time::timeout(self.timing.timeout, waiter.wait()).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => Err(RefreshError::Aborted),
            Err(_) => Err(RefreshError::Timeout(self.timing.timeout)),
        }
    }

    fn start_or_join(self: &Arc<Self>, st: &mut State) -> Result<Waiter<Outcome>, RefreshError> {
        if st.signed_out {
            return Err(RefreshError::SignedOut);
        }
        // (A refresh task that ended without clearing its slot is not joined: a new one starts.)
        if let Some(waiter) = st.inflight.join() {
            return Ok(waiter);
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
        let (leader, waiter) = st.inflight.start();
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let task = RefreshTask {
            cell: self.clone(),
            epoch: st.epoch,
            leader: Some(leader),
            started: Instant::now(),
        };
        // Spawned, so that dropping the request that started it does not cancel it for the
        // others (or lose a rotated refresh token).
        tokio::spawn(task.run());
        Ok(waiter)
    }

    /// Record the result of a refresh started in `epoch`.
    fn finish(
        &self,
        epoch: u64,
        leader: &Leader<Outcome>,
        result: Result<Credential, RefreshError>,
    ) -> Outcome {
        let mut st = self.lock();
        if st.epoch != epoch {
            // A credential was set by hand while this refresh ran: it wins, and this result
            // (a token for whoever was signed in before) is dropped.
            tracing::debug!(target: "portcullis::client", "refresh result dropped: the credential was replaced meanwhile");
            return match (&st.current, st.signed_out) {
                (Some(c), _) => Ok(c.clone()),
                (None, true) => Err(RefreshError::SignedOut),
                (None, false) => Err(RefreshError::Superseded),
            };
        }
        st.inflight.end(leader);
        match result {
            Ok(credential) => Ok(self.store(&mut st, credential)),
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
                    let now = Instant::now();
                    Some(now.checked_add(delay).unwrap_or(now))
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

/// One refresh, in its own task. Its bookkeeping (store the result, clear the in-flight
/// marker, answer the waiters) runs in `Drop` when the task ends any other way than by
/// finishing: a panic in the credential source, or the runtime shutting down.
struct RefreshTask {
    cell: Arc<Cell>,
    epoch: u64,
    leader: Option<Leader<Outcome>>,
    started: Instant,
}

impl RefreshTask {
    async fn run(mut self) {
        tracing::debug!(target: "portcullis::client", "credential refresh started");
        let limit = self.cell.timing.exchange_limit;
        let result = match tokio::time::timeout(limit, self.cell.source.fetch()).await {
            Ok(r) => r,
            Err(_) => Err(RefreshError::Timeout(limit)),
        };
        self.complete(result);
    }

    fn complete(&mut self, result: Result<Credential, RefreshError>) {
        let Some(leader) = self.leader.take() else {
            return;
        };
        let outcome = self.cell.finish(self.epoch, &leader, result);
        let elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &outcome {
            Ok(c) => {
                tracing::debug!(target: "portcullis::client", generation = c.generation, elapsed_ms, "credential refreshed")
            }
            Err(e) => {
                tracing::warn!(target: "portcullis::client", error = %e, elapsed_ms, "credential refresh failed")
            }
        }
        leader.land(outcome);
    }
}

impl Drop for RefreshTask {
    fn drop(&mut self) {
        self.complete(Err(RefreshError::Aborted));
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
            exchange_limit: Duration::from_secs(120),
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
        let (cell, calls) = cell(120, 0, false);
        assert_eq!(cell.current().await.unwrap().generation, 0);
        tokio::time::advance(Duration::from_secs(80)).await;
        assert_eq!(
            cell.current().await.unwrap().generation,
            0,
            "40 s left, skew 30 s"
        );
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(
            cell.current().await.unwrap().generation,
            1,
            "20 s left: refreshed first"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// A token that lives less than twice the skew is refreshed at half its lifetime at the
    /// earliest, not before every use.
    #[tokio::test(start_paused = true)]
    async fn a_token_shorter_than_the_skew_is_not_refreshed_for_every_use() {
        let (cell, calls) = cell(10, 0, false);
        for _ in 0..10 {
            assert_eq!(cell.current().await.unwrap().generation, 0);
            tokio::time::advance(Duration::from_millis(400)).await;
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "4 s of a 10 s token: no refresh"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            cell.current().await.unwrap().generation,
            1,
            "6 s: refreshed"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// Replicas that got their tokens at the same moment do not all refresh at once.
    #[test]
    fn refresh_windows_are_jittered() {
        let src = Arc::new(Credential::bearer("t").unwrap());
        let cell = Cell::new(src, timing(), None);
        let c = Credential::bearer("t")
            .unwrap()
            .expires_in(Duration::from_secs(3600));
        let mut st = cell.lock();
        let at: std::collections::HashSet<_> = (0..20)
            .map(|_| cell.store(&mut st, c.clone()).refresh_at.unwrap())
            .collect();
        assert!(at.len() > 10, "{} distinct refresh times of 20", at.len());
        let exp = c.expiry().unwrap();
        assert!(at.iter().all(|t| *t >= exp - Duration::from_secs(30)
            && *t <= exp - Duration::from_secs(24)));
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
        let (cell, _) = cell(60, 600_000, false);
        assert!(matches!(
            cell.current().await,
            Err(RefreshError::Timeout(_))
        ));
        // The exchange is abandoned at its own limit: then refreshing starts over.
        tokio::time::advance(Duration::from_secs(121)).await;
        tokio::task::yield_now().await;
        assert!(!cell.lock().inflight.is_running());
    }

    /// The caller stops waiting at the timeout; the exchange goes on, and what it brings back
    /// (a rotated refresh token, a new access token) is stored for the next callers.
    #[tokio::test(start_paused = true)]
    async fn a_refresh_outlives_the_callers_timeout_and_is_stored() {
        let (cell, calls) = cell(300, 8_000, false);
        assert!(matches!(
            cell.current().await,
            Err(RefreshError::Timeout(_))
        ));
        tokio::time::advance(Duration::from_secs(4)).await;
        tokio::task::yield_now().await;
        let c = cell.current().await.unwrap();
        assert_eq!(c.generation, 0, "the late answer was kept");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "and not asked for again");
    }

    /// A credential source that panics: the waiters get an error at once (no hang), the
    /// in-flight marker is gone, and the failure backs off like any other.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_source_fails_the_refresh_and_backs_off() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c2 = calls.clone();
        let src = from_fn(move || {
            c2.fetch_add(1, Ordering::SeqCst);
            async {
                if true {
                    panic!("credential source bug");
                }
                Err(RefreshError::Aborted)
            }
        });
        let cell = Arc::new(Cell::new(Arc::new(src), timing(), None));
        assert!(matches!(cell.current().await, Err(RefreshError::Aborted)));
        assert!(!cell.lock().inflight.is_running());
        assert!(matches!(
            cell.current().await,
            Err(RefreshError::BackingOff { .. })
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cell.failures(), 1);
    }

    /// After an account switch, a refresh that was started for the previous user must not
    /// overwrite the new credential when it finishes.
    #[tokio::test(start_paused = true)]
    async fn a_credential_set_during_a_refresh_wins() {
        let (cell, _) = cell(300, 100, false);
        let c = cell.clone();
        let waiter = tokio::spawn(async move { c.current().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        cell.sign_in(Some(Credential::bearer("bob").unwrap()), None);
        let got = waiter.await.unwrap().unwrap();
        assert_eq!(got.credential.placement(), crate::Placement::Bearer);
        let now = cell.peek().unwrap();
        assert!(
            Arc::ptr_eq(&got, &now),
            "the waiter got the credential that was set"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(Arc::ptr_eq(&cell.peek().unwrap(), &now), "still bob's");
    }

    #[tokio::test(start_paused = true)]
    async fn after_clear_nothing_is_refreshed_until_a_credential_is_set() {
        let (cell, calls) = cell(300, 0, false);
        assert!(cell.current().await.is_ok());
        cell.sign_out();
        for _ in 0..3 {
            assert!(matches!(cell.current().await, Err(RefreshError::SignedOut)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(cell.current().await.unwrap_err().is_sign_in_again());
        cell.sign_in(Some(Credential::bearer("again").unwrap()), None);
        assert!(cell.current().await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
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
        cell.sign_in(Some(Credential::bearer("fresh").unwrap()), None);
        assert!(cell.current().await.is_ok());
    }
}
