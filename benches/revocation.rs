//! What a reload of the shared revocation list costs the requests that read it meanwhile
//! (`cargo bench -p portcullis-benches --bench revocation -- --noplot`; it starts a
//! `redis-server` of its own on a free loopback port).
//!
//! Each case asks `is_revoked` about a token that is not revoked: the read lock and two hash
//! look-ups, what every request pays. Two lists:
//! - `100k`: 100,000 live token ids (written straight into Redis, then loaded by
//!   `SharedRevocations::builder(..).connect()`) under the default bound of 100,000;
//! - `12k-over-4k`: 12,000 live token ids with `max_entries(4_000)`, the overflow of the
//!   original finding (reloads used to re-insert the excess at O(bound) each under the lock).
//!
//! For each, `idle` (nothing else runs) and `during-resync` (a task reloads the whole list
//! again and again on the runtime's workers: read from Redis, a new set built, swapped in).
//! Criterion gives the mean of each case; the tail is what a reload could hurt, so before the
//! groups each case is also timed call by call (at least 2,000,000 calls and, during reloads,
//! at least five whole reloads) and its percentiles are printed.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::server::{CredentialKind, Principal, Revocation, SharedRevocations};
use portcullis::testkit::redis_process::RedisProcess;
use portcullis_wire::redis_link::redis;

const MIN_CALLS: u64 = 2_000_000;
const MIN_RELOADS: u64 = 5;

/// Write `n` live token ids into `<prefix>:jti`, 10,000 per command.
async fn fill(url: &str, prefix: &str, n: u64) {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let until = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3_600;
    for start in (0..n).step_by(10_000) {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(format!("{prefix}:jti"));
        for i in start..(start + 10_000).min(n) {
            cmd.arg(until + i % 600)
                .arg(format!("revoked-token-{i:08}"));
        }
        cmd.query_async::<()>(&mut conn).await.unwrap();
    }
}

/// Call latencies: one bucket per nanosecond below 10 µs, the rest kept as they are.
struct Latencies {
    small: Vec<u64>,
    large: Vec<u64>,
    calls: u64,
}

impl Latencies {
    const SMALL: usize = 10_000;

    fn new() -> Self {
        Latencies {
            small: vec![0; Self::SMALL],
            large: Vec::new(),
            calls: 0,
        }
    }

    fn add(&mut self, ns: u64) {
        self.calls += 1;
        match self.small.get_mut(ns as usize) {
            Some(b) => *b += 1,
            None => self.large.push(ns),
        }
    }

    /// The `q` quantile, in nanoseconds.
    fn at(&mut self, q: f64) -> u64 {
        let rank = ((self.calls as f64 * q) as u64).min(self.calls - 1);
        let mut seen = 0;
        for (ns, n) in self.small.iter().enumerate() {
            seen += n;
            if seen > rank {
                return ns as u64;
            }
        }
        self.large.sort_unstable();
        self.large[(rank - seen) as usize]
    }

    fn summary(mut self) -> String {
        format!(
            "p50 {} ns, p99 {} ns, p99.9 {} ns, p99.99 {} ns, max {} ns ({} calls)",
            self.at(0.5),
            self.at(0.99),
            self.at(0.999),
            self.at(0.9999),
            self.at(1.0),
            self.calls
        )
    }
}

/// Time calls one by one until `enough` says so (and at least `MIN_CALLS`).
fn timed(list: &SharedRevocations, p: &Principal, enough: impl Fn() -> bool) -> Latencies {
    let mut l = Latencies::new();
    while l.calls < MIN_CALLS || !enough() {
        for _ in 0..10_000 {
            let start = Instant::now();
            black_box(list.is_revoked(black_box(p)));
            l.add(start.elapsed().as_nanos() as u64);
        }
    }
    l
}

/// Reloads the list again and again until stopped; counts the reloads and their time.
struct Reloading {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    nanos: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Reloading {
    fn start(rt: &tokio::runtime::Runtime, list: &SharedRevocations) -> Reloading {
        let (stop, done, nanos) = (
            Arc::<AtomicBool>::default(),
            Arc::<AtomicU64>::default(),
            Arc::<AtomicU64>::default(),
        );
        let task = rt.spawn({
            let (stop, done, nanos, list) =
                (stop.clone(), done.clone(), nanos.clone(), list.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    list.resync().await.unwrap();
                    nanos.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Reloading {
            stop,
            done,
            nanos,
            task,
        }
    }

    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Stop (waiting for the reload under way), and say how many ran and their mean time.
    fn stop(self, rt: &tokio::runtime::Runtime) -> String {
        self.stop.store(true, Ordering::Relaxed);
        rt.block_on(self.task).unwrap();
        let done = self.done.load(Ordering::Relaxed);
        let mean = Duration::from_nanos(self.nanos.load(Ordering::Relaxed) / done.max(1));
        format!("{done} reloads ran meanwhile, {mean:.1?} each on average")
    }
}

fn revocation(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let redis = RedisProcess::start();
    let live = Principal::builder(CredentialKind::Bearer)
        .subject("alice")
        .token_id("not-revoked")
        .build();

    for (name, entries, bound) in [
        ("100k", 100_000u64, 100_000usize),
        ("12k-over-4k", 12_000, 4_000),
    ] {
        let prefix = format!("bench:{name}");
        rt.block_on(fill(&redis.url(), &prefix, entries));
        let list = rt
            .block_on(
                SharedRevocations::builder(redis.url())
                    .key_prefix(&prefix)
                    .max_entries(bound)
                    // The follower's own reloads stay out of the idle case.
                    .resync_every(Duration::from_secs(3_600))
                    .connect(),
            )
            .unwrap();
        assert_eq!(list.len(), bound.min(entries as usize));
        assert_eq!(list.stats().overflowing, entries as usize > bound);
        let revoked = Principal::builder(CredentialKind::Bearer)
            .token_id(format!("revoked-token-{:08}", entries - 1))
            .build();
        assert!(list.is_revoked(&revoked));

        // Warm up, then alternate idle and during, twice.
        timed(&list, &live, || true);
        for round in 1..=2 {
            println!(
                "{name} idle (round {round}): {}",
                timed(&list, &live, || true).summary()
            );
            let reloading = Reloading::start(&rt, &list);
            let during = timed(&list, &live, || reloading.done() >= MIN_RELOADS);
            println!(
                "{name} during-resync (round {round}): {}; {}",
                during.summary(),
                reloading.stop(&rt)
            );
        }

        let mut g = c.benchmark_group(format!("is_revoked/{name}"));
        g.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
        g.bench_function("idle", |b| b.iter(|| list.is_revoked(black_box(&live))));
        let reloading = Reloading::start(&rt, &list);
        g.bench_function("during-resync", |b| {
            b.iter(|| list.is_revoked(black_box(&live)))
        });
        g.finish();
        println!("{name} criterion during-resync: {}", reloading.stop(&rt));
        // Nothing was dropped by any reload.
        assert!(list.is_revoked(&revoked));
        assert_eq!(list.len(), bound.min(entries as usize));
    }
}

criterion_group!(benches, revocation);
criterion_main!(benches);
