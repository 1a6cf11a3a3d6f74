//! Decision counters: one per [`ErrorCode`] plus accepted requests.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ErrorCode;

/// Counts every decision a layer made. Cheap to read at any time; export it to your metrics
/// system by polling [`AuthMetrics::snapshot`].
///
/// # Example
/// ```
/// use portcullis::server::{AuthMetrics};
/// use portcullis::wire::ErrorCode;
/// let m = AuthMetrics::default();
/// assert_eq!(m.rejected(ErrorCode::TokenExpired), 0);
/// assert_eq!(m.snapshot().len(), ErrorCode::ALL.len());
/// ```
#[derive(Debug, Default)]
pub struct AuthMetrics {
    accepted: AtomicU64,
    anonymous: AtomicU64,
    rejected: [AtomicU64; ErrorCode::ALL.len()],
}

impl AuthMetrics {
    pub(crate) fn record_accept(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_anonymous(&self) {
        self.anonymous.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_reject(&self, code: ErrorCode) {
        self.rejected[code.position()].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests that were authenticated.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Requests let through without credentials (optional mode).
    pub fn anonymous(&self) -> u64 {
        self.anonymous.load(Ordering::Relaxed)
    }

    /// Requests refused with `code`.
    pub fn rejected(&self, code: ErrorCode) -> u64 {
        self.rejected[code.position()].load(Ordering::Relaxed)
    }

    /// Every code with its count, in [`ErrorCode::ALL`] order.
    pub fn snapshot(&self) -> Vec<(ErrorCode, u64)> {
        ErrorCode::ALL
            .iter()
            .map(|&c| (c, self.rejected(c)))
            .collect()
    }
}
