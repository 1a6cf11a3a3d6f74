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
use crate::source::credential_source::CredentialSource;

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
mod tests;
