//! An opt-in limit on self-service logouts per subject, so that one user cannot fill every
//! replica's list with their own revocations. Fixed windows: the count of every subject starts
//! again when a window ends, and the table of subjects is cleared with it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::SharedRevocationError;

/// Why a self-service logout ([`SharedRevocations::revoke_own_token`]) was not done, or not
/// shared.
///
/// [`SharedRevocations::revoke_own_token`]: super::SharedRevocations::revoke_own_token
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutError {
    /// This subject has logged out as many tokens as the limit allows in this window. Nothing
    /// was revoked; the token stays valid until it expires or the client tries again.
    #[error("too many logouts for this subject; try again in {} s", whole_seconds(*retry_after))]
    RateLimited {
        /// When the subject's next window starts.
        retry_after: Duration,
    },
    /// As many distinct subjects as the limit tracks have logged out in this window (its
    /// table is full). Nothing was revoked. Administrator revocations are never refused.
    #[error("too many subjects are logging out right now; try again in {} s", whole_seconds(*retry_after))]
    Busy {
        /// When the next window starts.
        retry_after: Duration,
    },
    /// Revoked on this replica, but Redis could not be reached: the others learn of it when
    /// this replica reaches Redis again.
    #[error("revoked on this replica only: {0}")]
    NotShared(#[from] SharedRevocationError),
}

fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The limit's settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct LogoutLimit {
    pub(super) per_subject: u32,
    pub(super) window: Duration,
    pub(super) max_subjects: usize,
}

#[derive(Debug)]
pub(super) struct Limiter {
    limit: LogoutLimit,
    start: Instant,
    /// The window the counts belong to (windows since `start`).
    window: u64,
    counts: HashMap<String, u32>,
}

impl Limiter {
    pub(super) fn new(limit: LogoutLimit) -> Self {
        Limiter {
            limit,
            start: Instant::now(),
            window: 0,
            counts: HashMap::new(),
        }
    }

    /// Count one logout of `subject` at `now`, or say why not (O(1); the table is cleared
    /// once per window).
    pub(super) fn admit(&mut self, subject: &str, now: Instant) -> Result<(), LogoutError> {
        let width = self.limit.window.as_nanos().max(1);
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        let window = u64::try_from(elapsed / width).unwrap_or(u64::MAX);
        if window != self.window {
            self.window = window;
            self.counts.clear();
        }
        let next = u64::try_from((u128::from(window) + 1) * width - elapsed).unwrap_or(u64::MAX);
        let retry_after = Duration::from_nanos(next);
        if let Some(n) = self.counts.get_mut(subject) {
            if *n >= self.limit.per_subject {
                return Err(LogoutError::RateLimited { retry_after });
            }
            *n += 1;
            return Ok(());
        }
        if self.counts.len() >= self.limit.max_subjects {
            return Err(LogoutError::Busy { retry_after });
        }
        self.counts.insert(subject.to_owned(), 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_subject_has_its_allowance_per_window_and_a_full_table_refuses_new_subjects() {
        let mut l = Limiter::new(LogoutLimit {
            per_subject: 2,
            window: Duration::from_secs(60),
            max_subjects: 2,
        });
        let t0 = l.start;
        assert!(l.admit("alice", t0).is_ok());
        assert!(l.admit("alice", t0 + Duration::from_secs(1)).is_ok());
        assert_eq!(
            l.admit("alice", t0 + Duration::from_secs(10)),
            Err(LogoutError::RateLimited {
                retry_after: Duration::from_secs(50)
            })
        );
        assert!(l.admit("bob", t0 + Duration::from_secs(10)).is_ok());
        assert_eq!(
            l.admit("carol", t0 + Duration::from_secs(30)),
            Err(LogoutError::Busy {
                retry_after: Duration::from_secs(30)
            })
        );
        // The next window: every count and the table start again.
        assert!(l.admit("carol", t0 + Duration::from_secs(61)).is_ok());
        assert!(l.admit("alice", t0 + Duration::from_secs(62)).is_ok());
        assert!(matches!(
            l.admit("dave", t0 + Duration::from_secs(63)),
            Err(LogoutError::Busy { .. })
        ));
    }
}
