//! Waiting for something another task or process does: poll a condition until it holds, up to
//! a deadline, instead of a hand-written sleep loop in every test.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How long [`eventually`] sleeps between two polls (less when the deadline is nearer): short
/// enough not to slow a test down, long enough not to busy-loop.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The condition given to [`eventually`] was still false at its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StillFalse {
    /// How long the condition was polled.
    pub waited: Duration,
}

impl fmt::Display for StillFalse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the condition was still false after {:?}", self.waited)
    }
}

impl std::error::Error for StillFalse {}

/// Polls `condition` until it returns `true` (then `Ok`) or `deadline` has passed since the
/// call (then [`StillFalse`]), sleeping [`POLL_INTERVAL`] between polls. The condition is polled
/// at least once, and once more at the deadline.
///
/// It returns an error rather than panicking so that a test says what it waited for:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::Duration;
/// use portcullis::testkit::eventually;
///
/// let done = Arc::new(AtomicBool::new(false));
/// let flag = done.clone();
/// tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
/// eventually(Duration::from_secs(5), || async { done.load(Ordering::SeqCst) })
///     .await
///     .expect("the task ran");
/// # }
/// ```
pub async fn eventually<F, Fut>(deadline: Duration, mut condition: F) -> Result<(), StillFalse>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    let end = start + deadline;
    loop {
        if condition().await {
            return Ok(());
        }
        let now = Instant::now();
        if now >= end {
            return Err(StillFalse {
                waited: now - start,
            });
        }
        tokio::time::sleep(POLL_INTERVAL.min(end - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_condition_that_becomes_true_is_ok() {
        let polls = AtomicU32::new(0);
        let result = eventually(Duration::from_secs(1), || async {
            polls.fetch_add(1, Ordering::SeqCst) == 3
        })
        .await;
        assert_eq!(result, Ok(()));
        assert_eq!(polls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_condition_still_false_at_the_deadline_is_a_timeout() {
        let result = eventually(Duration::from_millis(50), || async { false }).await;
        let Err(StillFalse { waited }) = result else {
            panic!("{result:?}");
        };
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_deadline_still_polls_once() {
        assert_eq!(eventually(Duration::ZERO, || async { true }).await, Ok(()));
    }
}
