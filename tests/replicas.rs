//! Eight replicas, each its own OS process, sharing state through a real `redis-server`:
//! - the server example: one revocation list (a logout on one is refused by all the others
//!   within a second);
//! - the gateway example: one token set for its own rotating refresh-token grant (one refresh
//!   for all of them at expiry, a killed lease holder, a slow token endpoint, Redis restarted).
//!
//! Needs `redis-server` (Debian's; `.ci/run` installs it): `cargo test --test replicas
//! -- --ignored`. The suites run one at a time: each starts eight processes, and the
//! timings they assert are not meant to be shared with another eight on two cores.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use jsonwebtoken::Algorithm;
use portcullis::server::jwt::JwtAuthenticator;
use portcullis::server::{AuthLayer, Principal};
use portcullis::testkit::redis_process::RedisProcess;
use portcullis::testkit::{TestIssuer, TestTokenEndpoint, TokenEndpointMode, eventually};
use support::*;

const REPLICAS: usize = 8;

/// One suite at a time (see the module docs); a tokio mutex works across the tests' runtimes.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn addr(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn a_logout_on_one_replica_is_refused_by_the_seven_others_within_a_second() {
    let _one = ONE_AT_A_TIME.lock().await;
    let redis = RedisProcess::start();
    let redis_url = redis.url();
    // One identity provider for all replicas; they verify its tokens through its JWKS.
    let idp = Arc::new(TestIssuer::new("https://id.replicas.test"));
    let provider = TestTokenEndpoint::new(idp.clone(), "orders", "x", "y");
    let p = serve(provider.router()).await;
    let jwks = format!("http://{p}/.well-known/jwks.json");
    let mut children = Vec::new();
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        let (child, url) = start_example(
            "server",
            &[
                "--listen",
                "127.0.0.1:0",
                "--jwks-url",
                &jwks,
                "--issuer",
                idp.issuer(),
                "--audience",
                "orders",
                "--redis",
                &redis_url,
            ],
        )
        .await;
        children.push(child);
        replicas.push(addr(&url));
    }
    let c = client();
    let token = idp.mint(
        Algorithm::ES256,
        idp.access_claims("alice", "orders", "read", 300),
    );
    let other = idp.mint(
        Algorithm::ES256,
        idp.access_claims("alice", "orders", "read", 300),
    );
    for &r in &replicas {
        assert_eq!(send(&c, bearer_req(r, "/api/me", &token)).await.status, 200);
    }

    let logout = req_to(replicas[0], "/api/logout")
        .method("POST")
        .header("authorization", format!("Bearer {token}"))
        .body(empty())
        .unwrap();
    let start = Instant::now();
    assert_eq!(send(&c, logout).await.status, 204);
    let mut slowest = Duration::ZERO;
    for &r in &replicas {
        let refused = || async { send(&c, bearer_req(r, "/api/me", &token)).await.status == 401 };
        eventually(
            Duration::from_secs(1).saturating_sub(start.elapsed()),
            refused,
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{r} still accepts the token {:?} after: {e}",
                start.elapsed()
            )
        });
        slowest = slowest.max(start.elapsed());
        send(&c, bearer_req(r, "/api/me", &token))
            .await
            .assert_problem(401, "token_revoked");
    }
    eprintln!("all {REPLICAS} replicas refused the revoked token {slowest:?} after the logout");
    // The other token of the same subject is untouched.
    for &r in &replicas {
        assert_eq!(send(&c, bearer_req(r, "/api/me", &other)).await.status, 200);
    }
    drop(children);
}

#[tokio::test]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn an_unreachable_or_invalid_redis_stops_the_server_with_a_clear_exit() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (url, code) in [
        (format!("redis://127.0.0.1:{port}/"), 1),
        ("not a url".to_owned(), 2),
    ] {
        let out = tokio::process::Command::new(example_bin("server"))
            .args(["--listen", "127.0.0.1:0", "--redis", &url])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--redis"), "{err}");
        let out = tokio::process::Command::new(example_bin("gateway"))
            .args(["--listen", "127.0.0.1:0", "--redis", &url])
            .args(["--store-key-env", "GATEWAY_STORE_KEY"])
            .env("GATEWAY_STORE_KEY", STORE_KEY)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "gateway, {url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--redis"), "{err}");
    }
    // A store key that is not 32 bytes of base64 is a usage error, and is not echoed.
    let out = tokio::process::Command::new(example_bin("gateway"))
        .args(["--listen", "127.0.0.1:0", "--redis", "redis://127.0.0.1:1/"])
        .args(["--store-key-env", "GATEWAY_STORE_KEY"])
        .env("GATEWAY_STORE_KEY", "c2hvcnQtc2VjcmV0")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--store-key-env") && !err.contains("c2hvcnQtc2VjcmV0"),
        "{err}"
    );
}

/// The identity provider (rotating refresh tokens, reuse revokes the family) and the upstream
/// API, in this process; eight gateway processes in front, sharing one Redis.
struct Fleet {
    provider: TestTokenEndpoint,
    redis: RedisProcess,
    gateways: Vec<(tokio::process::Child, std::net::SocketAddr)>,
    caller: String,
}

/// The demo client and audience the gateway example uses.
const CLIENT: (&str, &str) = ("demo", "demo-secret");
const AUDIENCE: &str = "demo-api";
const STORE_KEY: &str = "c3RvcmUta2V5LW9mLXRoZS1yZXBsaWNhLXN1aXRlcyE=";

async fn fleet(access_ttl: Duration, lease_ttl_ms: u64) -> Fleet {
    let redis = RedisProcess::start();
    let idp = Arc::new(TestIssuer::new("https://id.gateways.test"));
    let provider = TestTokenEndpoint::new(idp.clone(), AUDIENCE, CLIENT.0, CLIENT.1);
    provider.set_access_ttl(access_ttl);
    let mut jwt = JwtAuthenticator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE);
    for k in idp.verification_keys() {
        jwt = jwt.key(k);
    }
    let upstream = Router::new()
        .route(
            "/api/me",
            get(|p: Principal| async move { p.subject().unwrap_or_default().to_owned() }),
        )
        .layer(AuthLayer::bearer(jwt.build().unwrap()).unwrap())
        .merge(provider.router());
    let base = format!("http://{}", serve(upstream).await);
    let rt = provider.issue_refresh_token("gateway", "read write");
    let lease = lease_ttl_ms.to_string();
    let mut gateways = Vec::new();
    for _ in 0..REPLICAS {
        let (child, url) = start_example_with_env(
            "gateway",
            &[
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                &base,
                "--issuer",
                idp.issuer(),
                "--refresh-token-env",
                "GATEWAY_REFRESH_TOKEN",
                "--redis",
                &redis.url(),
                "--store-key-env",
                "GATEWAY_STORE_KEY",
                "--lease-ttl-ms",
                &lease,
            ],
            &[
                ("GATEWAY_REFRESH_TOKEN", &rt),
                ("GATEWAY_STORE_KEY", STORE_KEY),
            ],
        )
        .await;
        gateways.push((child, addr(&url)));
    }
    let caller = idp.mint(
        Algorithm::ES256,
        idp.access_claims("caller", AUDIENCE, "read", 900),
    );
    Fleet {
        provider,
        redis,
        gateways,
        caller,
    }
}

impl Fleet {
    /// `n` requests at once, spread over the gateways in `which`; their statuses (0: no
    /// answer within 30 s, or the connection failed).
    async fn burst(&self, which: &[usize], n: usize) -> Vec<u16> {
        let c = client();
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let g = self.gateways[which[i % which.len()]].1;
                let req = bearer_req(g, "/api/me", &self.caller);
                let c = c.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(30), c.request(req)).await {
                        Ok(Ok(res)) => res.status().as_u16(),
                        _ => 0,
                    }
                })
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    fn all(&self) -> Vec<usize> {
        (0..self.gateways.len()).collect()
    }

    /// Every gateway answers 200 (after a refresh the first time).
    async fn warm(&self) {
        let statuses = self.burst(&self.all(), 2 * REPLICAS).await;
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Case 1: 1,000 requests over eight replicas whose tokens have all expired: one token
/// request, no reuse, every request answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn eight_gateways_with_expired_tokens_make_one_token_request_for_1000_requests() {
    let _one = ONE_AT_A_TIME.lock().await;
    let ttl = Duration::from_secs(3);
    let f = fleet(ttl, 2_000).await;
    f.warm().await;
    assert_eq!(
        f.provider.refresh_grants(),
        1,
        "one refresh for the first requests of all eight"
    );
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    f.provider.set_access_ttl(Duration::from_secs(300));
    let started = Instant::now();
    let statuses = f.burst(&f.all(), 1_000).await;
    let took = started.elapsed();
    assert_eq!(count(&statuses, 200), 1_000, "{statuses:?}");
    assert_eq!(
        f.provider.refresh_grants(),
        2,
        "exactly one token request for the 1,000"
    );
    assert_eq!(f.provider.reuse_detected(), 0);
    eprintln!("8 gateways, 1,000 requests at expiry: 1 token request, all 200 in {took:?}");
}

/// Case 2: the lease holder is killed during its token request; another replica completes
/// the refresh once the lease's time to live has run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn a_killed_lease_holder_is_replaced_within_the_lease_ttl() {
    let _one = ONE_AT_A_TIME.lock().await;
    let ttl = Duration::from_secs(3);
    let lease = Duration::from_millis(1_000);
    let mut f = fleet(ttl, lease.as_millis() as u64).await;
    f.warm().await;
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    f.provider.set_access_ttl(Duration::from_secs(300));
    // Gateway 0 alone needs a token now: it takes the lease and asks, slowly.
    let slow = Duration::from_secs(3);
    f.provider.set_mode(TokenEndpointMode::Delay(slow));
    let calls = f.provider.calls();
    let holder = f.gateways[0].1;
    let c = client();
    let first = {
        let req = bearer_req(holder, "/api/me", &f.caller);
        tokio::spawn(async move { c.request(req).await.map(|r| r.status().as_u16()) })
    };
    eventually(Duration::from_secs(10), || async {
        f.provider.calls() != calls
    })
    .await
    .expect("gateway 0 asks for a token");
    let asked = Instant::now();
    f.gateways[0].0.start_kill().unwrap();
    let _ = f.gateways[0].0.wait().await;
    let killed = Instant::now();
    f.provider.set_mode(TokenEndpointMode::Normal);
    assert!(
        first.await.unwrap().is_err(),
        "the killed gateway answered nothing"
    );
    let others: Vec<usize> = (1..REPLICAS).collect();
    let statuses = f.burst(&others, 70).await;
    let took = killed.elapsed();
    assert_eq!(count(&statuses, 200), 70, "{statuses:?}");
    assert!(
        took < lease + Duration::from_millis(1_500),
        "the others waited {took:?} (lease {lease:?})"
    );
    // Past the time the dead holder's request would have been answered: the provider dropped
    // it with its connection, so the refresh token it carried was never spent.
    tokio::time::sleep(
        (asked + slow + Duration::from_millis(300)).saturating_duration_since(Instant::now()),
    )
    .await;
    assert_eq!(f.provider.reuse_detected(), 0);
    assert_eq!(
        f.provider.refresh_grants(),
        2,
        "the dead holder's request never completed"
    );
    eprintln!(
        "lease holder killed: the refresh was completed by another gateway {took:?} later (lease TTL {lease:?})"
    );
}

/// Case 3: a token endpoint slower than three lease TTLs: the holder keeps renewing, and
/// there is still one token request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn a_token_endpoint_slower_than_three_lease_ttls_sees_one_request() {
    let _one = ONE_AT_A_TIME.lock().await;
    let ttl = Duration::from_secs(3);
    let lease = Duration::from_millis(500);
    let f = fleet(ttl, lease.as_millis() as u64).await;
    f.warm().await;
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    f.provider.set_access_ttl(Duration::from_secs(300));
    f.provider.set_mode(TokenEndpointMode::Delay(lease * 4));
    let statuses = f.burst(&f.all(), 200).await;
    assert_eq!(count(&statuses, 200), 200, "{statuses:?}");
    assert_eq!(
        f.provider.refresh_grants(),
        2,
        "one token request in 4 lease TTLs"
    );
    assert_eq!(f.provider.reuse_detected(), 0);
}

/// Case 4: Redis stopped, then restarted empty (no persistence). While it is down, valid
/// tokens keep serving and an expired one fails (502 from the gateway) without any token
/// request; once it is back, the replicas write back the newest token set they saw and one
/// of them refreshes from the rotated refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (run by .ci/run)"]
async fn redis_stopped_and_restarted_empty_loses_no_rotated_token() {
    let _one = ONE_AT_A_TIME.lock().await;
    let ttl = Duration::from_secs(3);
    let mut f = fleet(ttl, 2_000).await;
    f.warm().await;
    // One rotation through the store, so that what must be kept is not the first token.
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    f.warm().await;
    assert_eq!(f.provider.refresh_grants(), 2);
    f.redis.stop();
    let statuses = f.burst(&f.all(), 80).await;
    assert_eq!(
        count(&statuses, 200),
        80,
        "valid tokens do not need Redis: {statuses:?}"
    );
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let calls = f.provider.calls();
    let statuses = f.burst(&f.all(), REPLICAS).await;
    assert_eq!(
        count(&statuses, 502),
        REPLICAS,
        "expired, and no store: {statuses:?}"
    );
    assert_eq!(
        f.provider.calls(),
        calls,
        "no refresh of their own while Redis is down"
    );
    f.redis.restart();
    f.provider.set_access_ttl(Duration::from_secs(300));
    let back = Instant::now();
    loop {
        let statuses = f.burst(&f.all(), REPLICAS).await;
        if count(&statuses, 200) == REPLICAS {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(20), "{statuses:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "Redis restarted empty: all 8 gateways served again {:?} later",
        back.elapsed()
    );
    assert_eq!(
        f.provider.refresh_grants(),
        3,
        "one refresh after the restart"
    );
    assert_eq!(
        f.provider.reuse_detected(),
        0,
        "the rotated refresh token was written back"
    );
}
