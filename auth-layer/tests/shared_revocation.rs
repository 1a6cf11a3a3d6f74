//! The revocation list shared through a real `redis-server` (started here on a free loopback
//! port, in a temporary directory, without persistence), by replicas that each serve real HTTP
//! on loopback. Needs `redis-server` on the PATH (or in `PORTCULLIS_REDIS_SERVER`), so those
//! tests are ignored by default; `.ci/run` installs Debian's and runs them with `--ignored`.
#![cfg(feature = "redis")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use auth_layer::jwt::JwtAuthenticator;
use auth_layer::{
    AuthLayer, Principal, Revocation, RevocationStatus, SharedRevocationError, SharedRevocations,
};
use axum::Router;
use axum::routing::get;
use jsonwebtoken::Algorithm;
use portcullis_testkit::loopback::*;
use portcullis_testkit::redis_process::RedisProcess as Redis;
use portcullis_testkit::{TestIssuer, now};
use portcullis_wire::redis_link::redis;
use serde_json::{Value, json};

const ISS: &str = "https://id.test";
const AUD: &str = "api";

async fn list(redis: &Redis) -> SharedRevocations {
    SharedRevocations::builder(redis.url())
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap()
}

/// One replica: its own connection to the list, its own verifier and cache, its own port.
async fn replica(issuer: &TestIssuer, revoked: SharedRevocations) -> SocketAddr {
    let jwt = issuer
        .verification_keys()
        .into_iter()
        .fold(
            JwtAuthenticator::builder()
                .issuer(ISS)
                .audience(AUD)
                .revocation(revoked),
            |b, k| b.key(k),
        )
        .build()
        .unwrap();
    let layer = AuthLayer::builder().bearer(jwt).build().unwrap();
    serve(
        Router::new()
            .route(
                "/me",
                get(|p: Principal| async move { p.subject().unwrap_or("").to_owned() }),
            )
            .layer(layer),
    )
    .await
}

fn token(issuer: &TestIssuer, sub: &str, jti: &str) -> (String, u64) {
    let mut claims = issuer.access_claims(sub, AUD, "read", 300);
    claims["jti"] = json!(jti);
    let exp = claims["exp"].as_u64().unwrap();
    (issuer.mint(Algorithm::ES256, claims), exp)
}

async fn status(client: &LoopbackClient, addr: SocketAddr, token: &str) -> (u16, String) {
    let r = send(client, bearer_req(addr, "/me", token)).await;
    let code = if r.status == 200 {
        String::new()
    } else {
        serde_json::from_slice::<Value>(&r.body).map_or(String::new(), |v| {
            v["code"].as_str().unwrap_or("").to_owned()
        })
    };
    (r.status.as_u16(), code)
}

/// Poll until `addr` refuses `token` as revoked; how long that took.
async fn refused_within(
    client: &LoopbackClient,
    addr: SocketAddr,
    token: &str,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let (s, code) = status(client, addr, token).await;
        if s == 401 {
            assert_eq!(code, "token_revoked");
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "still accepted after {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn a_revocation_on_one_replica_is_refused_by_every_other_within_a_second() {
    let redis = Redis::start();
    let issuer = TestIssuer::new(ISS);
    let lists = [list(&redis).await, list(&redis).await, list(&redis).await];
    let mut replicas = Vec::new();
    for l in &lists {
        replicas.push(replica(&issuer, l.clone()).await);
    }
    let client = client();
    let (t1, exp1) = token(&issuer, "alice", "jti-1");
    let (t2, _) = token(&issuer, "alice", "jti-2");
    let (t3, exp3) = token(&issuer, "bob", "jti-3");
    // Accepted everywhere, twice: the second answer comes from each replica's verified cache.
    for &addr in &replicas {
        for t in [&t1, &t2, &t3] {
            assert_eq!(status(&client, addr, t).await.0, 200);
            assert_eq!(status(&client, addr, t).await.0, 200);
        }
    }

    // Requests cost Redis nothing: 300 of them, and the only command Redis sees in between is
    // the first of the two INFO calls that measure it.
    let before = redis.commands_processed();
    for i in 0..300 {
        let t = [&t1, &t2, &t3][i % 3];
        assert_eq!(status(&client, replicas[i % 3], t).await.0, 200);
    }
    assert_eq!(redis.commands_processed() - before, 1);

    lists[0].revoke_token_id("jti-1", exp1).await.unwrap();
    assert_eq!(
        status(&client, replicas[0], &t1).await,
        (401, "token_revoked".into())
    );
    for &addr in &replicas[1..] {
        let took = refused_within(&client, addr, &t1, Duration::from_secs(1)).await;
        assert!(took < Duration::from_secs(1), "{took:?}");
        eprintln!("revocation seen by {addr} after {took:?}");
    }
    // Only that token: the subject's other token is still good.
    for &addr in &replicas {
        assert_eq!(status(&client, addr, &t2).await.0, 200);
    }

    // A subject, revoked on the last replica.
    lists[2].revoke_subject("bob", exp3).await.unwrap();
    for &addr in &replicas {
        refused_within(&client, addr, &t3, Duration::from_secs(1)).await;
    }

    // A replica that starts now loads the list before it answers anything.
    let late = list(&redis).await;
    let probe = |sub: &str, jti: &str| {
        Principal::builder(auth_layer::CredentialKind::Bearer)
            .subject(sub)
            .token_id(jti)
            .build()
    };
    assert!(late.is_revoked(&probe("alice", "jti-1")));
    assert!(late.is_revoked(&probe("bob", "anything")));
    assert!(!late.is_revoked(&probe("alice", "jti-2")));
    let late_addr = replica(&issuer, late).await;
    assert_eq!(
        status(&client, late_addr, &t1).await,
        (401, "token_revoked".into())
    );
    assert_eq!(status(&client, late_addr, &t2).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn entries_are_forgotten_with_the_token_in_every_process_and_in_redis() {
    let redis = Redis::start();
    // No grace past `until`, so the test need not wait the default five minutes.
    let url = redis.url();
    let config = |url: &str| {
        SharedRevocations::builder(url)
            .timeout(Duration::from_millis(500))
            .grace(Duration::ZERO)
    };
    let a = config(&url).connect().await.unwrap();
    let b = config(&url).connect().await.unwrap();
    let soon = now() + 2;
    a.revoke_token_id("short-lived", soon).await.unwrap();
    let p = Principal::builder(auth_layer::CredentialKind::Bearer)
        .token_id("short-lived")
        .build();
    let start = Instant::now();
    while !b.is_revoked(&p) {
        assert!(start.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert!(!a.is_revoked(&p) && !b.is_revoked(&p));
    // The next write clears what has passed its time from Redis too; a late replica loads
    // only the live entry.
    a.revoke_token_id("long-lived", now() + 600).await.unwrap();
    let late = config(&url).connect().await.unwrap();
    assert_eq!(late.len(), 1);
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg("portcullis:revoked:jti")
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, ["long-lived"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn while_redis_is_down_each_replica_keeps_what_it_knew_and_catches_up_after() {
    let mut redis = Redis::start();
    let issuer = TestIssuer::new(ISS);
    let (a, b) = (list(&redis).await, list(&redis).await);
    let (ra, rb) = (
        replica(&issuer, a.clone()).await,
        replica(&issuer, b.clone()).await,
    );
    let client = client();
    let (t1, exp1) = token(&issuer, "alice", "down-1");
    let (t2, exp2) = token(&issuer, "alice", "down-2");
    let (t3, exp3) = token(&issuer, "alice", "down-3");
    a.revoke_token_id("down-1", exp1).await.unwrap();
    refused_within(&client, rb, &t1, Duration::from_secs(1)).await;

    redis.stop();
    // The list held in memory keeps serving: no request waits for Redis.
    let start = Instant::now();
    assert_eq!(
        status(&client, rb, &t1).await,
        (401, "token_revoked".into())
    );
    assert!(
        start.elapsed() < Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
    // A revocation made now is applied where it was made and reported as not shared.
    let err = a.revoke_token_id("down-2", exp2).await.unwrap_err();
    assert!(
        matches!(err, SharedRevocationError::Unavailable(_)),
        "{err:?}"
    );
    assert_eq!(
        status(&client, ra, &t2).await,
        (401, "token_revoked".into())
    );
    assert_eq!(
        status(&client, rb, &t2).await.0,
        200,
        "documented: not shared while Redis is down"
    );

    // Redis comes back (empty: no persistence here). The followers subscribe again.
    redis.restart();
    let start = Instant::now();
    loop {
        if a.revoke_token_id("down-3", exp3).await.is_ok() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no reconnection");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Once B's follower is back, what is revoked reaches it again. Its subscription may come
    // back a moment after A's connection: publish again until it does (bounded).
    let start = Instant::now();
    loop {
        if status(&client, rb, &t3).await.0 == 401 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "B never caught up"
        );
        let _ = a.revoke_token_id("down-3", exp3 + 1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And nothing either replica held was lost with Redis's memory.
    assert_eq!(status(&client, rb, &t1).await.0, 401);
    assert_eq!(status(&client, ra, &t2).await.0, 401);
    assert!(b.last_sync().is_some());
    // What A revoked during the outage was written by its first reload after it: B refuses it
    // too now.
    a.resync().await.unwrap();
    assert_eq!(a.stats().unshared, 0);
    refused_within(&client, rb, &t2, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_bad_url_or_an_absent_server_is_a_typed_error() {
    assert_eq!(
        SharedRevocations::builder("not a url")
            .connect()
            .await
            .unwrap_err(),
        SharedRevocationError::InvalidUrl
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = SharedRevocations::builder(format!("redis://127.0.0.1:{port}/"))
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, SharedRevocationError::Unavailable(_)),
        "{err:?}"
    );

    // A server that takes the connection and never answers: a typed error, in bounded time.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    let err = SharedRevocations::builder(format!("redis://{}/", silent.local_addr().unwrap()))
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, SharedRevocationError::Unavailable(_)),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn a_revocation_for_ever_is_still_read_back_by_every_replica() {
    let redis = Redis::start();
    let a = list(&redis).await;
    // Whatever `exp` a token carries, the list stays readable: a later replica loads it.
    a.revoke_subject("forever", u64::MAX).await.unwrap();
    a.revoke_token_id("far", i64::MAX as u64).await.unwrap();
    let late = list(&redis).await;
    let p = Principal::builder(auth_layer::CredentialKind::Bearer)
        .subject("forever")
        .build();
    assert!(late.is_revoked(&p));
    let q = Principal::builder(auth_layer::CredentialKind::Bearer)
        .token_id("far")
        .build();
    assert!(late.is_revoked(&q));
}

/// A list that keeps at most `bound` entries of each kind in this process and reloads the whole
/// list every 200 ms.
async fn bounded(redis: &Redis, bound: usize) -> SharedRevocations {
    SharedRevocations::builder(redis.url())
        .timeout(Duration::from_millis(500))
        .max_entries(bound)
        .resync_every(Duration::from_millis(200))
        .connect()
        .await
        .unwrap()
}

fn token_for(issuer: &TestIssuer, sub: &str, jti: &str, ttl: i64) -> (String, u64) {
    let mut claims = issuer.access_claims(sub, AUD, "read", ttl);
    claims["jti"] = json!(jti);
    let exp = claims["exp"].as_u64().unwrap();
    (issuer.mint(Algorithm::ES256, claims), exp)
}

fn jti(id: &str) -> Principal {
    Principal::builder(auth_layer::CredentialKind::Bearer)
        .token_id(id)
        .build()
}

/// Wait (bounded) until every list has been told about `id`.
async fn seen_by_all(lists: &[SharedRevocations], id: &str) {
    let start = Instant::now();
    for l in lists {
        while !l.is_revoked(&jti(id)) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{id} never arrived"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Wait (bounded) until every list has reloaded the whole list from Redis after this call.
async fn resynced(lists: &[SharedRevocations]) {
    let from = std::time::SystemTime::now();
    let start = Instant::now();
    for l in lists {
        while l.last_sync().is_none_or(|t| t <= from) {
            assert!(start.elapsed() < Duration::from_secs(10), "no resync");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn full_list_never_drops_a_live_revocation() {
    const BOUND: usize = 40;
    let redis = Redis::start();
    let issuer = TestIssuer::new(ISS);
    let lists = [
        bounded(&redis, BOUND).await,
        bounded(&redis, BOUND).await,
        bounded(&redis, BOUND).await,
    ];
    let mut replicas = Vec::new();
    for l in &lists {
        replicas.push(replica(&issuer, l.clone()).await);
    }
    let client = client();
    let (stolen, stolen_exp) = token_for(&issuer, "victim", "stolen", 300);
    let (fine, _) = token_for(&issuer, "victim", "fine", 300);
    for &addr in &replicas {
        assert_eq!(status(&client, addr, &stolen).await.0, 200);
    }

    // Users log out of their own sessions until the list is at its bound; each of those
    // tokens outlives the stolen one.
    for i in 0..BOUND {
        lists[i % 3]
            .revoke_token_id(&format!("logout-{i}"), now() + 3600)
            .await
            .unwrap();
    }
    seen_by_all(&lists, &format!("logout-{}", BOUND - 1)).await;

    // An administrator revokes the stolen token; more users log out after that.
    lists[0]
        .revoke_token_id("stolen", stolen_exp)
        .await
        .unwrap();
    for i in BOUND..BOUND + 10 {
        lists[i % 3]
            .revoke_token_id(&format!("logout-{i}"), now() + 3600)
            .await
            .unwrap();
    }
    seen_by_all(&lists, &format!("logout-{}", BOUND + 9)).await;

    for &addr in &replicas {
        assert_eq!(
            status(&client, addr, &stolen).await,
            (401, "token_revoked".into()),
            "{addr} accepts the stolen token"
        );
        assert_eq!(status(&client, addr, &fine).await.0, 200);
    }
    // After every replica has reloaded the list, still refused.
    resynced(&lists).await;
    for &addr in &replicas {
        assert_eq!(
            status(&client, addr, &stolen).await,
            (401, "token_revoked".into()),
            "{addr} accepts the stolen token after a resync"
        );
        assert_eq!(status(&client, addr, &fine).await.0, 200);
    }
    // A replica that starts afterwards refuses it as well.
    let late = replica(&issuer, bounded(&redis, BOUND).await).await;
    assert_eq!(
        status(&client, late, &stolen).await,
        (401, "token_revoked".into()),
        "a late replica accepts the stolen token"
    );
    assert_eq!(status(&client, late, &fine).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn a_resync_above_the_bound_drops_nothing() {
    const BOUND: usize = 20;
    let redis = Redis::start();
    let issuer = TestIssuer::new(ISS);
    let early = bounded(&redis, BOUND).await;
    let writer = list(&redis).await;
    // Three times the bound, the soonest to expire revoked first.
    let mut tokens = Vec::new();
    for i in 0..3 * BOUND {
        let id = format!("over-{i}");
        let (t, _) = token_for(&issuer, "user", &id, 900);
        writer
            .revoke_token_id(&id, now() + 120 + 10 * i as u64)
            .await
            .unwrap();
        tokens.push(t);
    }
    seen_by_all(
        std::slice::from_ref(&early),
        &format!("over-{}", 3 * BOUND - 1),
    )
    .await;
    // Two reloads each over the bound, and a replica whose first load is over it.
    resynced(std::slice::from_ref(&early)).await;
    resynced(std::slice::from_ref(&early)).await;
    let late = bounded(&redis, BOUND).await;
    let client = client();
    let (untouched, _) = token_for(&issuer, "user", "untouched", 900);
    for list in [early, late] {
        let addr = replica(&issuer, list).await;
        for (i, t) in tokens.iter().enumerate() {
            assert_eq!(
                status(&client, addr, t).await,
                (401, "token_revoked".into()),
                "over-{i} was dropped"
            );
        }
        assert_eq!(status(&client, addr, &untouched).await.0, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn while_redis_is_down_an_overflowed_replica_refuses_what_it_cannot_decide() {
    const BOUND: usize = 5;
    let mut redis = Redis::start();
    let issuer = TestIssuer::new(ISS);
    let a = bounded(&redis, BOUND).await;
    let addr = replica(&issuer, a.clone()).await;
    let client = client();
    let mut tokens = Vec::new();
    for i in 0..2 * BOUND {
        let id = format!("down-over-{i}");
        let (t, _) = token_for(&issuer, "user", &id, 900);
        a.revoke_token_id(&id, now() + 120 + 10 * i as u64)
            .await
            .unwrap();
        tokens.push(t);
    }
    let (never_revoked, _) = token_for(&issuer, "user", "never", 900);
    assert_eq!(status(&client, addr, &never_revoked).await.0, 200);

    redis.stop();
    // The latest-expiring revocations are held here: still refused as revoked.
    let held = send(&client, bearer_req(addr, "/me", &tokens[2 * BOUND - 1])).await;
    held.assert_problem(401, "token_revoked");
    // The soonest-expiring one could not be held: only Redis can say, and it cannot answer.
    let dropped = send(&client, bearer_req(addr, "/me", &tokens[0])).await;
    dropped.assert_problem(503, "revocation_unavailable");
    assert!(dropped.header("retry-after").is_some());
    // A token this replica cannot decide is not let through either.
    let undecided = send(&client, bearer_req(addr, "/me", &never_revoked)).await;
    undecided.assert_problem(503, "revocation_unavailable");
    assert!(undecided.header("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn self_service_logouts_are_limited_per_subject_and_administrator_revocations_never_are() {
    let redis = Redis::start();
    let issuer = TestIssuer::new(ISS);
    let list = SharedRevocations::builder(redis.url())
        .timeout(Duration::from_millis(500))
        .limit_self_service_logouts(2, Duration::from_secs(600), 2)
        .connect()
        .await
        .unwrap();
    let addr = replica(&issuer, list.clone()).await;
    let client = client();
    let alice: Vec<_> = (1..=3)
        .map(|i| token_for(&issuer, "alice", &format!("alice-{i}"), 300))
        .collect();
    let (bob, bob_exp) = token_for(&issuer, "bob", "bob-1", 300);
    let (carol, carol_exp) = token_for(&issuer, "carol", "carol-1", 300);

    // Alice's allowance is two logouts per window; the third revokes her whole subject
    // (one entry) rather than nothing: every one of her tokens is refused, the third too.
    let before = list.len();
    for (i, (_, exp)) in alice.iter().enumerate().take(2) {
        list.revoke_own_token("alice", &format!("alice-{}", i + 1), *exp)
            .await
            .unwrap();
    }
    list.revoke_own_token("alice", "alice-3", alice[2].1)
        .await
        .unwrap();
    assert_eq!(list.len(), before + 3, "two token ids and one subject");
    for (token, _) in &alice {
        assert_eq!(
            status(&client, addr, token).await,
            (401, "token_revoked".into())
        );
    }
    assert_eq!(list.stats().logouts_over_allowance, 1);

    // Two subjects fill this window's table: a third subject's logout is still done (a full
    // table never leaves a token valid).
    list.revoke_own_token("bob", "bob-1", bob_exp)
        .await
        .unwrap();
    list.revoke_own_token("carol", "carol-1", carol_exp)
        .await
        .unwrap();
    assert_eq!(status(&client, addr, &bob).await.0, 401);
    assert_eq!(status(&client, addr, &carol).await.0, 401);

    // An administrator's revocations are never limited.
    let (dave, dave_exp) = token_for(&issuer, "dave", "dave-1", 300);
    list.revoke_subject("dave", dave_exp).await.unwrap();
    assert_eq!(status(&client, addr, &dave).await.0, 401);
    assert_eq!(list.stats().logouts_over_allowance, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn an_overflowing_replica_reports_it_and_counts_its_redis_lookups() {
    let mut redis = Redis::start();
    let list = bounded(&redis, 3).await;
    for i in 0..3u64 {
        list.revoke_token_id(&format!("fits-{i}"), now() + 600 + i)
            .await
            .unwrap();
    }
    // Under the bound: nothing overflows and a token not held is decided from memory.
    let stats = list.stats();
    assert!(!stats.overflowing && stats.overflows == 0, "{stats:?}");
    assert_eq!(
        list.check(&jti("not-revoked")).resolve().await,
        RevocationStatus::Live
    );
    assert_eq!(list.stats().redis_checks, 0);

    // Past it: the soonest entry is left out, and the replica says it is overflowing.
    list.revoke_token_id("sooner", now() + 300).await.unwrap();
    let stats = list.stats();
    assert!(stats.overflowing, "{stats:?}");
    assert_eq!((stats.overflows, stats.held), (1, 3));
    assert_eq!(
        list.check(&jti("sooner")).resolve().await,
        RevocationStatus::Revoked
    );
    assert_eq!(
        list.check(&jti("not-revoked")).resolve().await,
        RevocationStatus::Live
    );
    assert_eq!(list.stats().redis_checks, 2);

    redis.stop();
    let status = list.check(&jti("not-revoked")).resolve().await;
    assert!(
        matches!(status, RevocationStatus::Unavailable { .. }),
        "{status:?}"
    );
    let stats = list.stats();
    assert_eq!((stats.redis_checks, stats.redis_check_failures), (3, 1));
    // Held entries are still answered from memory.
    assert_eq!(
        list.check(&jti("fits-2")).resolve().await,
        RevocationStatus::Revoked
    );
}

/// A revocation made until the token's `exp` (as the docs say) outlasts the authenticator's
/// leeway on `exp`: a token expired 10 s ago (inside the default 60 s leeway) and revoked stays
/// refused on this replica and on another that learns of it from Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn a_revocation_outlasts_the_leeway_on_exp() {
    let redis = Redis::start();
    let issuer = TestIssuer::new(ISS);
    let config = |url: &str| SharedRevocations::builder(url).timeout(Duration::from_millis(500));
    let one = config(&redis.url()).connect().await.unwrap();
    let a = replica(&issuer, one.clone()).await;
    let client = client();
    let (token, exp) = token_for(&issuer, "alice", "stolen-late", -10);
    assert_eq!(status(&client, a, &token).await.0, 200, "inside the leeway");
    one.revoke_token_id("stolen-late", exp).await.unwrap();
    assert_eq!(
        status(&client, a, &token).await,
        (401, "token_revoked".into())
    );
    let two = config(&redis.url()).connect().await.unwrap();
    let b = replica(&issuer, two).await;
    assert_eq!(
        status(&client, b, &token).await,
        (401, "token_revoked".into())
    );
}
