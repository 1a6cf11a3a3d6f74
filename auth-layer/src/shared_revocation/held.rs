//! What one process holds of one kind of entry (token ids or subjects): at most a bound,
//! ordered by the time each may be forgotten, so that adding and evicting cost O(log n).
//!
//! When a live entry does not fit, the one forgotten soonest is left out (the new one or a
//! held one) and the set remembers until when it is *incomplete*: until then, an id it does
//! not hold may still be revoked, and only the whole list (in Redis) can say.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

/// An entry in time order: when it may be forgotten, and its id.
pub(super) type Timed = (u64, Arc<str>);

#[derive(Debug, Default)]
pub(super) struct Held {
    until_of: HashMap<Arc<str>, u64>,
    by_until: BTreeSet<Timed>,
    /// Live entries were left out for want of room and may run until this time.
    left_out_until: u64,
}

impl Held {
    /// Hold `id` until `until` (a later time extends, an earlier one does not shorten); past
    /// `max` entries, the one forgotten soonest is left out. Returns the time the left-out
    /// entry ran until, if a live one was.
    pub(super) fn insert(&mut self, id: &str, until: u64, max: usize, now: u64) -> Option<u64> {
        self.insert_with(id, until, max, now, || Arc::from(id))
    }

    fn insert_with(
        &mut self,
        id: &str,
        until: u64,
        max: usize,
        now: u64,
        key: impl FnOnce() -> Arc<str>,
    ) -> Option<u64> {
        if until <= now {
            return None;
        }
        if let Some((k, &held)) = self.until_of.get_key_value(id) {
            if held < until {
                let k = k.clone();
                self.by_until.remove(&(held, k.clone()));
                self.by_until.insert((until, k.clone()));
                self.until_of.insert(k, until);
            }
            return None;
        }
        self.forget_past(now);
        let mut left_out = None;
        if self.until_of.len() >= max {
            match self.by_until.first() {
                // The soonest held goes, to make room for one that runs longer.
                Some((soonest, _)) if *soonest < until => {
                    if let Some((t, k)) = self.by_until.pop_first() {
                        self.until_of.remove(&k);
                        left_out = Some(t);
                    }
                }
                // The new one is the soonest: it is the one left out.
                _ => {
                    self.left_out_until = self.left_out_until.max(until);
                    return Some(until);
                }
            }
        }
        if let Some(t) = left_out {
            self.left_out_until = self.left_out_until.max(t);
        }
        let k = key();
        self.by_until.insert((until, k.clone()));
        self.until_of.insert(k, until);
        left_out
    }

    /// Add what `other` holds (a chunk of another set), sharing its ids.
    pub(super) fn extend(&mut self, chunk: &[Timed], max: usize, now: u64) {
        for (until, id) in chunk {
            self.insert_with(id, *until, max, now, || id.clone());
        }
    }

    /// Drop what has passed its time (the soonest first: O(log n) each).
    pub(super) fn forget_past(&mut self, now: u64) {
        while let Some((t, _)) = self.by_until.first()
            && *t <= now
        {
            if let Some((_, k)) = self.by_until.pop_first() {
                self.until_of.remove(&k);
            }
        }
    }

    /// True when `id` is held and live.
    pub(super) fn holds(&self, id: &str, now: u64) -> bool {
        self.until_of.get(id).is_some_and(|t| *t > now)
    }

    /// True when every live entry of the list is held here (nothing left out is still live).
    pub(super) fn complete(&self, now: u64) -> bool {
        self.left_out_until <= now
    }

    pub(super) fn len(&self) -> usize {
        self.until_of.len()
    }

    /// Up to `n` entries in time order after `after` (from the start when `None`): a copy
    /// made a few entries at a time, so a lock is never held for the whole set.
    pub(super) fn chunk_after(&self, after: Option<&Timed>, n: usize) -> Vec<Timed> {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.by_until
            .range((from, Bound::Unbounded))
            .take(n)
            .cloned()
            .collect()
    }

    #[cfg(test)]
    pub(super) fn until(&self, id: &str) -> Option<u64> {
        self.until_of.get(id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_set_holds_the_latest_and_knows_it_is_incomplete_until_the_rest_expire() {
        let mut h = Held::default();
        assert_eq!(h.insert("j1", 500, 2, 100), None);
        assert_eq!(h.insert("j2", 300, 2, 100), None);
        // Full: j2 (the soonest) is left out to make room for j3.
        assert_eq!(h.insert("j3", 400, 2, 100), Some(300));
        assert_eq!(h.len(), 2);
        assert!(!h.holds("j2", 100));
        assert!(h.holds("j1", 100) && h.holds("j3", 100));
        assert!(!h.complete(100) && !h.complete(299) && h.complete(300));
        // A new entry sooner than everything held is the one left out.
        assert_eq!(h.insert("j0", 350, 2, 100), Some(350));
        assert!(!h.holds("j0", 100) && !h.complete(349) && h.complete(350));
        // Entries past their time are not held, and make room first.
        assert!(!h.holds("j3", 400));
        assert_eq!(h.insert("j4", 900, 2, 450), None);
        assert!(h.holds("j1", 450) && h.holds("j4", 450));
        // A later time extends, an earlier one does not shorten.
        h.insert("j4", 950, 2, 450);
        h.insert("j4", 600, 2, 450);
        assert_eq!(h.until("j4"), Some(950));
        // The time order follows the extension: j1 (500) is now the soonest.
        assert_eq!(h.insert("j5", 700, 2, 450), Some(500));
        // Already past: not kept at all.
        assert_eq!(h.insert("old", 10, 2, 450), None);
        assert!(!h.holds("old", 0));
    }

    #[test]
    fn a_copy_in_chunks_sees_every_entry_once_in_time_order() {
        let mut h = Held::default();
        for i in 0..10u64 {
            h.insert(&format!("e{i}"), 1_000 - i, 100, 0);
        }
        let mut copy = Held::default();
        let mut after = None;
        let mut seen = 0;
        loop {
            let chunk = h.chunk_after(after.as_ref(), 3);
            seen += chunk.len();
            copy.extend(&chunk, 100, 0);
            match chunk.last() {
                Some(last) if chunk.len() == 3 => after = Some(last.clone()),
                _ => break,
            }
        }
        assert_eq!(seen, 10);
        assert_eq!(copy.len(), 10);
        assert!((0..10).all(|i| copy.holds(&format!("e{i}"), 0)));
    }
}
