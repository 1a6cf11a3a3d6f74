//! One task does the work, everyone else waits for its outcome: the single-flight pattern the
//! server's key-set refetch and the client's credential refresh both need.
//!
//! [`SingleFlight`] is a slot that lives inside the caller's own state, under the caller's own
//! lock, so that "is a flight running?" and the state it protects are read and changed together.
//! The [`Leader`] runs the work (usually in a task of its own, so that a caller that stops
//! waiting cancels nothing) and [`land`](Leader::land)s its outcome; each [`Waiter`] gets a
//! clone of it. A leader dropped without landing — a panic, a runtime shutting down — wakes its
//! waiters with `None` instead of leaving them waiting forever.

use tokio::sync::watch;

/// The slot of at most one running flight. See the [module docs](self).
///
/// # Example
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use portcullis::wire::single_flight::SingleFlight;
/// use std::sync::{Arc, Mutex};
///
/// let slot = Arc::new(Mutex::new(SingleFlight::<u32>::new()));
/// let (leader, first) = slot.lock().unwrap().start();
/// // A second caller joins the flight instead of starting another.
/// let second = slot.lock().unwrap().join().expect("a flight is running");
/// let worker = slot.clone();
/// tokio::spawn(async move {
///     worker.lock().unwrap().end(&leader);
///     leader.land(42);
/// });
/// assert_eq!(first.wait().await, Some(42));
/// assert_eq!(second.wait().await, Some(42));
/// assert!(!slot.lock().unwrap().is_running());
/// # }
/// ```
#[derive(Debug)]
pub struct SingleFlight<T> {
    running: Option<watch::Receiver<Option<T>>>,
}

impl<T: Clone> Default for SingleFlight<T> {
    fn default() -> Self {
        SingleFlight::new()
    }
}

impl<T: Clone> SingleFlight<T> {
    /// An empty slot.
    pub const fn new() -> Self {
        SingleFlight { running: None }
    }

    /// True while a flight is in the slot and its leader has not gone away.
    pub fn is_running(&self) -> bool {
        self.running
            .as_ref()
            .is_some_and(|rx| rx.has_changed().is_ok())
    }

    /// Wait for the flight in the slot, if there is one whose leader is still alive. A slot
    /// whose leader is gone is emptied, so that the caller starts a new flight.
    pub fn join(&mut self) -> Option<Waiter<T>> {
        match &self.running {
            Some(rx) if rx.has_changed().is_ok() => Some(Waiter { rx: rx.clone() }),
            Some(_) => {
                self.running = None;
                None
            }
            None => None,
        }
    }

    /// Start a new flight in the slot (a flight already there is no longer found by
    /// [`join`](Self::join), but still answers its own waiters).
    pub fn start(&mut self) -> (Leader<T>, Waiter<T>) {
        let (tx, rx) = watch::channel(None);
        self.running = Some(rx.clone());
        (Leader { tx }, Waiter { rx })
    }

    /// Empty the slot if `leader`'s flight is the one in it; true if it was. Call it under the
    /// same lock as the state the flight's outcome changes, before landing.
    pub fn end(&mut self, leader: &Leader<T>) -> bool {
        let ours = self
            .running
            .as_ref()
            .is_some_and(|rx| rx.same_channel(&leader.tx.subscribe()));
        if ours {
            self.running = None;
        }
        ours
    }

    /// Empty the slot whatever runs in it: the running flight no longer speaks for the state
    /// (its waiters still get its outcome).
    pub fn forget(&mut self) {
        self.running = None;
    }
}

/// The one who does the work of a flight.
#[derive(Debug)]
#[must_use = "a leader dropped without landing wakes its waiters with None"]
pub struct Leader<T> {
    tx: watch::Sender<Option<T>>,
}

impl<T> Leader<T> {
    /// Hand `outcome` to every waiter of this flight.
    pub fn land(self, outcome: T) {
        // No waiter left is fine: the outcome was also stored by whoever called `end`.
        let _ = self.tx.send(Some(outcome));
    }
}

/// A handle to wait for one flight's outcome.
#[derive(Debug, Clone)]
pub struct Waiter<T> {
    rx: watch::Receiver<Option<T>>,
}

impl<T: Clone> Waiter<T> {
    /// The flight's outcome, or `None` when its leader went away without one.
    pub async fn wait(mut self) -> Option<T> {
        match self.rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_flight_answers_every_waiter() {
        let mut slot = SingleFlight::new();
        let (leader, first) = slot.start();
        let others: Vec<_> = (0..100).map(|_| slot.join().unwrap()).collect();
        assert!(slot.is_running());
        assert!(slot.end(&leader));
        leader.land("done");
        assert!(slot.join().is_none(), "an ended flight is not joined");
        assert_eq!(first.wait().await, Some("done"));
        for w in others {
            assert_eq!(w.wait().await, Some("done"));
        }
    }

    #[tokio::test]
    async fn a_dropped_leader_wakes_its_waiters_and_frees_the_slot() {
        let mut slot = SingleFlight::<u8>::new();
        let (leader, waiter) = slot.start();
        let task = tokio::spawn(waiter.wait());
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(leader);
        let got = tokio::time::timeout(Duration::from_secs(5), task).await;
        assert_eq!(got.unwrap().unwrap(), None);
        assert!(!slot.is_running());
        assert!(slot.join().is_none());
        let (_leader, _waiter) = slot.start();
        assert!(slot.is_running());
    }

    #[test]
    fn end_only_ends_its_own_flight() {
        let mut slot = SingleFlight::<u8>::new();
        let (old, _w) = slot.start();
        slot.forget();
        let (new, _w2) = slot.start();
        assert!(
            !slot.end(&old),
            "a forgotten flight does not end the new one"
        );
        assert!(slot.is_running());
        assert!(slot.end(&new));
        assert!(!slot.is_running());
    }
}
