//! What this process has seen published, bounded, and only what opened.

use super::*;

/// The newest sealed token set seen of each grant this process follows, bounded; see the
/// [module docs](self#when-redis-loses-its-data). Only blobs that opened are ever put here.
pub(super) struct Seen {
    capacity: usize,
    /// Grows with every use; orders the entries for eviction.
    clock: u64,
    pub(super) grants: HashMap<String, SeenBlob>,
}

pub(super) struct SeenBlob {
    version: u64,
    blob: Vec<u8>,
    used: u64,
}

impl Seen {
    pub(super) fn new(capacity: usize) -> Self {
        Seen {
            capacity: capacity.max(1),
            clock: 0,
            grants: HashMap::new(),
        }
    }

    pub(super) fn tick(&mut self) -> u64 {
        self.clock = self.clock.wrapping_add(1);
        self.clock
    }

    /// Remember `blob` (one that opened) as `version` of grant `h` if it is the newest seen.
    /// `follow`: start following `h` if not yet (this process read or wrote it), forgetting
    /// the grant used least recently when full; otherwise (a publication) only a followed
    /// grant is updated.
    pub(super) fn record(&mut self, h: &str, version: u64, blob: &[u8], follow: bool) {
        let now = self.tick();
        if let Some(e) = self.grants.get_mut(h) {
            e.used = now;
            if version > e.version {
                e.version = version;
                e.blob = blob.to_vec();
            }
            return;
        }
        if !follow {
            return;
        }
        if self.grants.len() >= self.capacity
            && let Some(oldest) = self
                .grants
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
        {
            self.grants.remove(&oldest);
        }
        self.grants.insert(
            h.to_owned(),
            SeenBlob {
                version,
                blob: blob.to_vec(),
                used: now,
            },
        );
    }

    /// The newest blob seen of `h` if it is newer than `stored`.
    pub(super) fn newer_than(&mut self, h: &str, stored: Option<u64>) -> Option<(u64, Vec<u8>)> {
        let now = self.tick();
        let e = self.grants.get_mut(h)?;
        e.used = now;
        stored
            .is_none_or(|v| e.version > v)
            .then(|| (e.version, e.blob.clone()))
    }
}
