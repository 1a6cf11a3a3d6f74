//! How a replica keeps its list in step with Redis: writes, reloads built outside the lock,
//! publications applied as they arrive, and look-ups of what it does not hold.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use portcullis_wire::redis_link::{Followed, redis};

use super::held::{Held, Timed};
use super::state::{
    COPY_CHUNK, Entry, Inner, Kind, Local, Locally, MAX_UNTIL, RETRY_AFTER, now, unavailable,
};
use crate::error::SharedRevocationError;
use crate::principal::Principal;
use crate::revocation::RevocationStatus;

impl Inner {
    pub(super) fn key(&self, kind: Kind) -> &str {
        match kind {
            Kind::TokenId => &self.jti_key,
            Kind::Subject => &self.sub_key,
        }
    }

    pub(super) fn locally<'p>(&self, p: &'p Principal, now: u64) -> Locally<'p> {
        let (jti, sub) = (p.token_id(), p.subject());
        let l = self.local.read().unwrap_or_else(|e| e.into_inner());
        if jti.is_some_and(|j| l.token_ids.holds(j, now))
            || sub.is_some_and(|s| l.subjects.holds(s, now))
        {
            return Locally::Revoked;
        }
        let jti = jti.filter(|_| !l.token_ids.complete(now));
        let sub = sub.filter(|_| !l.subjects.complete(now));
        if jti.is_none() && sub.is_none() {
            Locally::Live
        } else {
            Locally::Ask { jti, sub }
        }
    }

    pub(super) fn unshared_holds(&self, jti: Option<&str>, sub: Option<&str>, now: u64) -> bool {
        let unshared = self.unshared.lock().unwrap_or_else(|e| e.into_inner());
        if unshared.is_empty() {
            return false;
        }
        let holds = |kind: Kind, id: Option<&str>| {
            id.and_then(|id| unshared.get(&(kind, id.to_owned())))
                .is_some_and(|t| *t > now)
        };
        holds(Kind::TokenId, jti) || holds(Kind::Subject, sub)
    }

    /// Ask Redis about what memory could not decide: one round trip, bounded by the timeout.
    pub(super) async fn look_up(
        &self,
        jti: Option<String>,
        sub: Option<String>,
    ) -> RevocationStatus {
        self.counters.redis_checks.fetch_add(1, Ordering::Relaxed);
        let mut pipe = redis::pipe();
        for (key, id) in [(&self.jti_key, &jti), (&self.sub_key, &sub)] {
            if let Some(id) = id {
                pipe.cmd("ZSCORE").arg(key).arg(id);
            }
        }
        let mut conn = self.link.connection();
        match pipe.query_async::<Vec<Option<f64>>>(&mut conn).await {
            Ok(scores) => {
                let now = now();
                // `as` saturates: NaN and negatives are 0 (past), the huge are kept longest.
                if scores.into_iter().flatten().any(|t| t as u64 > now) {
                    RevocationStatus::Revoked
                } else {
                    RevocationStatus::Live
                }
            }
            Err(e) => {
                self.counters
                    .redis_check_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    target: "portcullis::revocation",
                    error = %unavailable(e),
                    "cannot look a token up in the revocation list: answered 503"
                );
                RevocationStatus::Unavailable {
                    retry_after: RETRY_AFTER,
                }
            }
        }
    }

    pub(super) fn apply(&self, kind: Kind, id: &str, until: u64) {
        let (max, now) = (self.config.max_entries, now());
        let mut l = self.local.write().unwrap_or_else(|e| e.into_inner());
        if let Some(journal) = &mut l.journal {
            journal.push((kind, Arc::from(id), until));
        }
        let was_complete = l.held(kind).complete(now);
        let left_out = l.held_mut(kind).insert(id, until, max, now);
        drop(l);
        if left_out.is_some() && was_complete {
            self.overflowed(kind);
        }
    }

    pub(super) fn overflowed(&self, kind: Kind) {
        self.counters.overflows.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            target: "portcullis::revocation",
            kind = kind.name(),
            max_entries = self.config.max_entries,
            "the revocation list is larger than this process holds: tokens it does not hold \
             are looked up in Redis until the revocations left out expire"
        );
    }

    pub(super) async fn revoke(
        &self,
        kind: Kind,
        id: &str,
        until: u64,
    ) -> Result<(), SharedRevocationError> {
        // A score Redis writes back as an integer (doubles are exact below 2^53; Redis prints
        // large ones in exponent form), so every replica reads the list back whatever `exp`
        // a token carried.
        let until = until
            .saturating_add(self.config.grace.as_secs())
            .min(MAX_UNTIL);
        self.apply(kind, id, until);
        if until <= now() {
            return Ok(());
        }
        let written = self.write(&[(kind, id, until)]).await;
        if written.is_err() {
            let mut unshared = self.unshared.lock().unwrap_or_else(|e| e.into_inner());
            let t = unshared.entry((kind, id.to_owned())).or_default();
            *t = (*t).max(until);
        }
        // Again: a reload that ran meanwhile may have read Redis before this write and swapped
        // in a set without it (idempotent; O(1) when held).
        self.apply(kind, id, until);
        written
    }

    /// One transaction: the entries, the clean-up of entries past their time, and the news.
    pub(super) async fn write(
        &self,
        entries: &[(Kind, &str, u64)],
    ) -> Result<(), SharedRevocationError> {
        let now = now();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for &(kind, id, until) in entries {
            // GT adds a new member, and moves an existing one only later.
            pipe.cmd("ZADD")
                .arg(self.key(kind))
                .arg("GT")
                .arg(until)
                .arg(id)
                .ignore();
        }
        for key in [&self.jti_key, &self.sub_key] {
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(key)
                .arg("-inf")
                .arg(now)
                .ignore();
        }
        for &(kind, id, until) in entries {
            pipe.cmd("PUBLISH")
                .arg(&self.channel)
                .arg(format!("{} {until} {id}", kind.tag()))
                .ignore();
        }
        let mut conn = self.link.connection();
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
    }

    /// Write what Redis has not taken yet; on success, forget it as unshared.
    pub(super) async fn write_unshared(&self) -> Result<(), SharedRevocationError> {
        let now = now();
        let pending: Vec<((Kind, String), u64)> = {
            let mut unshared = self.unshared.lock().unwrap_or_else(|e| e.into_inner());
            unshared.retain(|_, t| *t > now);
            unshared.iter().map(|(k, t)| (k.clone(), *t)).collect()
        };
        if pending.is_empty() {
            return Ok(());
        }
        let entries: Vec<(Kind, &str, u64)> = pending
            .iter()
            .map(|((kind, id), t)| (*kind, id.as_str(), *t))
            .collect();
        self.write(&entries).await?;
        let mut unshared = self.unshared.lock().unwrap_or_else(|e| e.into_inner());
        for (k, t) in pending {
            // Extended meanwhile: the later time is still to be written.
            if unshared.get(&k).is_some_and(|now_t| *now_t <= t) {
                unshared.remove(&k);
            }
        }
        Ok(())
    }

    /// Read the list (what has not passed its time, the longest-running first, one more than
    /// is held so an overflow shows), add what is held here, and swap the result in. Built
    /// outside the lock; nothing held is dropped (a union, not a replacement: what this
    /// replica revoked while Redis lost its memory stays).
    pub(super) async fn resync(&self) -> Result<(), SharedRevocationError> {
        let _one = self.reloading.lock().await;
        // A store that reads but refuses writes (a replica promoted late, an ACL) must not stop
        // the reload: a missed publication would then stay missed on this replica for good.
        // What could not be written stays unshared and is tried again next time.
        if let Err(e) = self.write_unshared().await {
            tracing::warn!(target: "portcullis::revocation", error = %e, "revocations made here could not be written to Redis; reloading anyway");
        }
        self.local
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .journal = Some(Vec::new());
        let read = self.read_all().await;
        let (jtis, subs) = match read {
            Ok(lists) => lists,
            Err(e) => {
                self.local
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .journal = None;
                return Err(e);
            }
        };
        let (max, now) = (self.config.max_entries, now());
        let mut fresh = Local::default();
        for (kind, entries) in [(Kind::TokenId, jtis), (Kind::Subject, subs)] {
            let held = fresh.held_mut(kind);
            for (i, (id, until)) in entries.into_iter().enumerate() {
                // `as` saturates: NaN and negatives are 0 (forgotten), the huge are kept longest.
                held.insert(&id, (until as u64).min(MAX_UNTIL), max, now);
                if i % COPY_CHUNK == COPY_CHUNK - 1 {
                    // A long build shares its worker thread with the requests.
                    tokio::task::yield_now().await;
                }
            }
            self.copy_held(kind, held, now).await;
        }
        // Revoked here and not yet in Redis: held as well (or left out, and then looked up).
        for ((kind, id), until) in self
            .unshared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            fresh.held_mut(*kind).insert(id, *until, max, now);
        }
        let (old, overflowed) = {
            let mut l = self.local.write().unwrap_or_else(|e| e.into_inner());
            let now = self::now();
            for (kind, id, until) in l.journal.take().unwrap_or_default() {
                fresh.held_mut(kind).insert(&id, until, max, now);
            }
            let overflowed = [Kind::TokenId, Kind::Subject]
                .map(|k| (k, l.held(k).complete(now) && !fresh.held(k).complete(now)));
            (std::mem::replace(&mut *l, fresh), overflowed)
        };
        // The old sets are freed here, outside the lock.
        drop(old);
        for (kind, _) in overflowed.into_iter().filter(|(_, o)| *o) {
            self.overflowed(kind);
        }
        *self.last_sync.write().unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now());
        Ok(())
    }

    pub(super) async fn read_all(&self) -> Result<(Vec<Entry>, Vec<Entry>), SharedRevocationError> {
        let now = now();
        // One more than is held: if it is there, the set knows it is incomplete, and until when.
        let count = self.config.max_entries.saturating_add(1);
        let mut pipe = redis::pipe();
        for key in [&self.jti_key, &self.sub_key] {
            pipe.cmd("ZRANGE")
                .arg(key)
                .arg("+inf")
                .arg(now + 1)
                .arg("BYSCORE")
                .arg("REV")
                .arg("LIMIT")
                .arg(0)
                .arg(count)
                .arg("WITHSCORES");
        }
        let mut conn = self.link.connection();
        pipe.query_async(&mut conn).await.map_err(unavailable)
    }

    /// Add what is held now to `into`, a chunk per read lock (requests never wait for the
    /// whole copy). Entries applied meanwhile are in the journal.
    pub(super) async fn copy_held(&self, kind: Kind, into: &mut Held, now: u64) {
        let max = self.config.max_entries;
        let mut after: Option<Timed> = None;
        loop {
            let chunk = self
                .local
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .held(kind)
                .chunk_after(after.as_ref(), COPY_CHUNK);
            into.extend(&chunk, max, now);
            match chunk.last() {
                Some(last) if chunk.len() == COPY_CHUNK => after = Some(last.clone()),
                _ => return,
            }
            tokio::task::yield_now().await;
        }
    }

    /// A publication: `t <until> <jti>` or `s <until> <sub>`.
    pub(super) fn apply_message(&self, payload: &[u8]) {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        let mut parts = text.splitn(3, ' ');
        let kind = match parts.next() {
            Some("t") => Kind::TokenId,
            Some("s") => Kind::Subject,
            _ => return,
        };
        let (Some(Ok(until)), Some(id)) = (parts.next().map(str::parse::<u64>), parts.next())
        else {
            return;
        };
        self.apply(kind, id, until.min(MAX_UNTIL));
    }
}

impl Followed for Inner {
    fn on_message(&self, _channel: &str, payload: &[u8]) {
        self.apply_message(payload);
    }

    fn resync(
        &self,
    ) -> impl std::future::Future<Output = Result<(), SharedRevocationError>> + Send {
        Inner::resync(self)
    }

    fn resync_every(&self) -> Duration {
        self.config.resync_every
    }
}
