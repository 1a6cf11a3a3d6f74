//! The settings of a shared list, with their defaults.

use std::time::Duration;

use super::logout_limit::LogoutLimit;

/// The prefix of the Redis keys and channel when none is given.
pub(super) const DEFAULT_PREFIX: &str = "portcullis:revoked";
/// Entries of each kind held in memory: a few MiB, and far more than a list of revocations
/// usually holds.
pub(super) const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// How often the whole list is reloaded, in case a publication was missed.
pub(super) const DEFAULT_RESYNC_EVERY: Duration = Duration::from_secs(30);
/// The shortest reload interval accepted: reloads more often would load Redis for nothing.
pub(super) const MIN_RESYNC_EVERY: Duration = Duration::from_millis(100);
/// How long one Redis command may take.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long past its `until` a revocation is kept: longer than the default authenticator
/// leeway (60 s), so a revoked token is not let in again during it.
pub(super) const DEFAULT_GRACE: Duration = Duration::from_secs(300);

/// How the shared list is kept (set with [`SharedRevocationsBuilder`](super::SharedRevocationsBuilder)).
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) prefix: String,
    pub(super) max_entries: usize,
    pub(super) resync_every: Duration,
    pub(super) timeout: Duration,
    pub(super) logout_limit: Option<LogoutLimit>,
    pub(super) grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            prefix: DEFAULT_PREFIX.into(),
            max_entries: DEFAULT_MAX_ENTRIES,
            resync_every: DEFAULT_RESYNC_EVERY,
            timeout: DEFAULT_TIMEOUT,
            logout_limit: None,
            grace: DEFAULT_GRACE,
        }
    }
}
