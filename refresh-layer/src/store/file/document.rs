//! The file's contents: every grant's versioned token set, lease and fence counter, as one
//! JSON document, and each step of the protocol as a change to one grant's entry.
//!
//! ```json
//! {
//!   "format": 1,
//!   "grants": {
//!     "<grant>": {
//!       "stored": { "version": 2, "tokens": { "access_token": "…", "refresh_token": "…" } },
//!       "fence": 3,
//!       "lease": { "fence": 3, "expires_at_ms": 1700000000000 }
//!     }
//!   }
//! }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::store::{Commit, Lease, StoredTokens, Versioned, next_version};

/// The layout written; a file naming another one is not read (nor written over).
const FORMAT: u32 = 1;

/// Every grant in one file.
#[derive(Serialize, Deserialize)]
pub(super) struct Document {
    format: u32,
    #[serde(default)]
    pub(super) grants: BTreeMap<String, Entry>,
}

impl Default for Document {
    fn default() -> Self {
        Document {
            format: FORMAT,
            grants: BTreeMap::new(),
        }
    }
}

/// One grant: its token set, the last fencing value given, and the current lease.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stored: Option<StoredSet>,
    /// The last fencing value given: the next lease gets one more, whatever became of this
    /// one.
    #[serde(default)]
    fence: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease: Option<LeaseRecord>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredSet {
    version: u64,
    tokens: StoredTokens,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct LeaseRecord {
    fence: u64,
    /// Wall-clock time (ms since the Unix epoch): the processes sharing a file share no
    /// other clock.
    expires_at_ms: u64,
}

impl Document {
    /// The document in `bytes`; nothing (a file just created by someone else) is an empty
    /// one. Anything this crate would not have written is [`StoreError::Unreadable`]; what
    /// is wrong is logged by position only, since the text around it may be a token.
    pub(super) fn parse(bytes: &[u8]) -> Result<Document, StoreError> {
        if bytes.is_empty() {
            return Ok(Document::default());
        }
        let doc: Document = serde_json::from_slice(bytes).map_err(|e| {
            tracing::warn!(target: "portcullis::client", line = e.line(), column = e.column(), kind = ?e.classify(), "the credential file is not a JSON document this crate wrote");
            StoreError::Unreadable
        })?;
        if doc.format != FORMAT {
            tracing::warn!(target: "portcullis::client", format = doc.format, "the credential file has a layout this version does not know");
            return Err(StoreError::Unreadable);
        }
        // A lease newer than the counter that gave it was not written by a commit or an
        // acquire here: fencing values read from such a file could repeat.
        if doc
            .grants
            .values()
            .any(|e| e.lease.is_some_and(|l| l.fence > e.fence))
        {
            tracing::warn!(target: "portcullis::client", "the credential file holds a lease its fence counter never gave");
            return Err(StoreError::Unreadable);
        }
        Ok(doc)
    }

    /// The document as written to the file.
    pub(super) fn render(&self) -> Result<Vec<u8>, StoreError> {
        let mut out = serde_json::to_vec_pretty(self).map_err(|_| StoreError::Unreadable)?;
        out.push(b'\n');
        Ok(out)
    }
}

/// A lease's time to live in whole milliseconds: at least 1, capped rather than wrapped.
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Entry {
    /// The lease, while it has not expired at `now_ms`.
    fn held(&self, now_ms: u64) -> Option<Lease> {
        self.lease
            .filter(|l| now_ms < l.expires_at_ms)
            .map(|l| Lease { fence: l.fence })
    }

    pub(super) fn load(&self) -> Option<Versioned> {
        self.stored.as_ref().map(|s| Versioned {
            version: s.version,
            tokens: s.tokens.clone(),
        })
    }

    /// Writes `doc` only when the grant has no token set.
    pub(super) fn restore(&mut self, doc: &Versioned) -> bool {
        if self.stored.is_some() {
            return false;
        }
        self.stored = Some(StoredSet {
            version: doc.version,
            tokens: doc.tokens.clone(),
        });
        true
    }

    /// A new lease with the next fencing value, unless one is held at `now_ms`.
    pub(super) fn acquire(
        &mut self,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        if self.held(now_ms).is_some() {
            return Ok(None);
        }
        self.fence = next_version(self.fence)?;
        self.lease = Some(LeaseRecord {
            fence: self.fence,
            expires_at_ms: now_ms.saturating_add(ttl_ms(ttl)),
        });
        Ok(Some(Lease { fence: self.fence }))
    }

    /// Extends `lease` when it is the one held at `now_ms`.
    pub(super) fn renew(&mut self, lease: Lease, now_ms: u64, ttl: Duration) -> bool {
        if self.held(now_ms) != Some(lease) {
            return false;
        }
        self.lease = Some(LeaseRecord {
            fence: lease.fence,
            expires_at_ms: now_ms.saturating_add(ttl_ms(ttl)),
        });
        true
    }

    /// Drops `lease` when it is the one recorded (expired or not); another is left alone.
    pub(super) fn release(&mut self, lease: Lease) {
        if self.lease.is_some_and(|l| l.fence == lease.fence) {
            self.lease = None;
        }
    }

    /// Compare-and-set: `tokens` as version `expected + 1` when the stored version is
    /// `expected` or nothing is stored, releasing `lease` if it is the one recorded.
    pub(super) fn commit(
        &mut self,
        expected: u64,
        lease: Option<Lease>,
        tokens: &StoredTokens,
    ) -> Result<Commit, StoreError> {
        let version = next_version(expected)?;
        if self.stored.as_ref().is_some_and(|s| s.version != expected) {
            return Ok(Commit::Conflict);
        }
        self.stored = Some(StoredSet {
            version,
            tokens: tokens.clone(),
        });
        if let Some(lease) = lease {
            self.release(lease);
        }
        Ok(Commit::Committed(version))
    }
}
