//! One revocation list for every replica, kept in Redis and followed by each process.
//!
//! The list lives in two Redis sorted sets (token ids and subjects), each member scored by the
//! time its revocation may be forgotten (the token's `exp`, or the end of a subject's ban). A
//! revocation is written and published in one transaction; every replica applies the
//! publication as it arrives (milliseconds on a LAN), and reloads the list when it
//! (re)subscribes and at a fixed interval, so a missed message costs at most that interval.
//!
//! Each replica holds up to [`max_entries`](SharedRevocationsBuilder::max_entries) of each kind
//! in memory and, while the list fits, answers every request from there: no request waits for
//! Redis. **A live revocation is never dropped**: when the list outgrows the bound, the replica
//! keeps the entries that run longest and is *overflowing* until the ones it left out would
//! have expired. Meanwhile a token whose id (or subject) it does not hold is looked up in Redis
//! (one round trip) before it passes; when Redis cannot answer, the request gets 503
//! `revocation_unavailable` with `Retry-After`, never a pass. An overflow is logged
//! (`tracing::warn!`, target `portcullis::revocation`) and counted ([`SharedRevocationStats`]).
//! Self-service logouts can be limited per subject
//! ([`limit_self_service_logouts`](SharedRevocationsBuilder::limit_self_service_logouts)), so one
//! user cannot push every replica into that mode.
//!
//! While Redis cannot be reached, each replica keeps refusing what it holds. A revocation made
//! on a replica that cannot reach Redis is applied there, reported as not shared
//! ([`SharedRevocationError::Unavailable`](crate::SharedRevocationError::Unavailable)), and written to Redis by the next reload that
//! reaches it.
//!
//! A reload builds the new set outside the lock that requests read through and swaps it in, so
//! a request waits at most for a swap, whatever the size of the list; adding or evicting an
//! entry costs O(log n).

mod builder;
mod held;
mod logout_limit;
mod revocations;
mod settings;
mod state;
mod sync;

pub use builder::SharedRevocationsBuilder;
pub use revocations::{SharedRevocationStats, SharedRevocations};
