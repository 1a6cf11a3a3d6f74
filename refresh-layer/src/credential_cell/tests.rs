//! Unit tests of the credential cell.

use super::*;
use crate::source::credential_source::FetchFuture;
use crate::source::from_fn::from_fn;
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
    assert!(
        at.iter()
            .all(|t| *t >= exp - Duration::from_secs(30) && *t <= exp - Duration::from_secs(24))
    );
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
