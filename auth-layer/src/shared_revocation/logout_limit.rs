//! An opt-in limit on self-service logouts per subject, so that one user cannot fill every
//! replica's list with their own revocations. Fixed windows: the count of every subject starts
//! again when a window ends, and the table of subjects is cleared with it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What the limit says of one logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// Within the subject's allowance: its token is revoked.
    Counted,
    /// Past the subject's allowance in this window: the subject is revoked (one entry
    /// however many logouts follow), never nothing.
    OverAllowance,
    /// The table of subjects is full: the logout is done as asked, uncounted. Refusing would
    /// let whoever fills the table keep everyone else's tokens valid.
    Untracked,
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

    /// Count one logout of `subject` at `now` (O(1); the table is cleared once per window).
    pub(super) fn admit(&mut self, subject: &str, now: Instant) -> Admit {
        let width = self.limit.window.as_nanos().max(1);
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        let window = u64::try_from(elapsed / width).unwrap_or(u64::MAX);
        if window != self.window {
            self.window = window;
            self.counts.clear();
        }
        if let Some(n) = self.counts.get_mut(subject) {
            if *n >= self.limit.per_subject {
                return Admit::OverAllowance;
            }
            *n += 1;
            return Admit::Counted;
        }
        if self.counts.len() >= self.limit.max_subjects {
            return Admit::Untracked;
        }
        self.counts.insert(subject.to_owned(), 1);
        Admit::Counted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_subject_has_its_allowance_per_window_and_a_full_table_counts_no_more_subjects() {
        let mut l = Limiter::new(LogoutLimit {
            per_subject: 2,
            window: Duration::from_secs(60),
            max_subjects: 2,
        });
        let t0 = l.start;
        assert_eq!(l.admit("alice", t0), Admit::Counted);
        assert_eq!(
            l.admit("alice", t0 + Duration::from_secs(1)),
            Admit::Counted
        );
        assert_eq!(
            l.admit("alice", t0 + Duration::from_secs(10)),
            Admit::OverAllowance
        );
        assert_eq!(l.admit("bob", t0 + Duration::from_secs(10)), Admit::Counted);
        assert_eq!(
            l.admit("carol", t0 + Duration::from_secs(30)),
            Admit::Untracked
        );
        // The next window: every count and the table start again.
        assert_eq!(
            l.admit("carol", t0 + Duration::from_secs(61)),
            Admit::Counted
        );
        assert_eq!(
            l.admit("alice", t0 + Duration::from_secs(62)),
            Admit::Counted
        );
        assert_eq!(
            l.admit("dave", t0 + Duration::from_secs(63)),
            Admit::Untracked
        );
    }
}
