//! What a replica holds and counts, shared by its requests, its follower and its reloads.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_wire::redis_link::{Follower, RedisLink, redis};

use super::held::Held;
use super::logout_limit::Limiter;
use super::settings::Settings;
use crate::error::SharedRevocationError;

pub(super) fn unavailable(e: redis::RedisError) -> SharedRevocationError {
    e.into()
}

pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A member of a sorted set: an identifier and the time its revocation may be forgotten, as
/// the double Redis keeps (read as such, so no score can make a reload fail).
pub(super) type Entry = (String, f64);

/// The latest time a revocation is kept until: the year 9999.
pub(super) const MAX_UNTIL: u64 = 253_402_300_799;

/// What a request that could not be decided is told (`Retry-After`): the follower's first
/// reconnection attempts come within this.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Entries copied from the held set per read lock during a reload.
pub(super) const COPY_CHUNK: usize = 1_024;

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) overflows: AtomicU64,
    pub(super) redis_checks: AtomicU64,
    pub(super) redis_check_failures: AtomicU64,
    pub(super) logouts_over_allowance: AtomicU64,
}

/// What a replica holds.
#[derive(Debug, Default)]
pub(super) struct Local {
    pub(super) token_ids: Held,
    pub(super) subjects: Held,
    /// While a reload runs: what was applied meanwhile, replayed into the new sets at the swap.
    pub(super) journal: Option<Vec<(Kind, Arc<str>, u64)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    TokenId,
    Subject,
}

impl Kind {
    pub(super) fn tag(self) -> char {
        match self {
            Kind::TokenId => 't',
            Kind::Subject => 's',
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::TokenId => "token ids",
            Kind::Subject => "subjects",
        }
    }
}

impl Local {
    pub(super) fn held(&self, kind: Kind) -> &Held {
        match kind {
            Kind::TokenId => &self.token_ids,
            Kind::Subject => &self.subjects,
        }
    }

    pub(super) fn held_mut(&mut self, kind: Kind) -> &mut Held {
        match kind {
            Kind::TokenId => &mut self.token_ids,
            Kind::Subject => &mut self.subjects,
        }
    }

    pub(super) fn complete(&self, now: u64) -> bool {
        self.token_ids.complete(now) && self.subjects.complete(now)
    }
}

/// What memory alone says about a principal.
pub(super) enum Locally<'p> {
    Revoked,
    Live,
    /// Not held, but the list is past the bound: Redis has to say.
    Ask {
        jti: Option<&'p str>,
        sub: Option<&'p str>,
    },
}

pub(super) struct Inner {
    pub(super) local: RwLock<Local>,
    /// Revocations made here that Redis did not take, by kind and id (written by the next
    /// reload; never dropped before they expire).
    pub(super) unshared: Mutex<HashMap<(Kind, String), u64>>,
    /// One reload at a time.
    pub(super) reloading: tokio::sync::Mutex<()>,
    pub(super) limiter: Option<Mutex<Limiter>>,
    pub(super) counters: Counters,
    pub(super) link: RedisLink,
    pub(super) jti_key: String,
    pub(super) sub_key: String,
    pub(super) channel: String,
    pub(super) config: Settings,
    pub(super) last_sync: RwLock<Option<SystemTime>>,
    /// Stops when the list is dropped.
    pub(super) follower: std::sync::OnceLock<Follower>,
}
