//! Eight replicas of the server example, each its own OS process, sharing one revocation list
//! through a real `redis-server`: a logout on one is refused by all the others within a second.
//! Needs `redis-server` (Debian's; `.ci/run` installs it): `cargo test --features redis-tests
//! --test replicas`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use portcullis::testkit::redis::RedisServer;
use portcullis::testkit::{TestIssuer, TokenEndpoint};
use support::*;

const REPLICAS: usize = 8;

fn addr(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_replica_is_refused_by_the_seven_others_within_a_second() {
    let redis = RedisServer::start();
    let redis_url = redis.url();
    // One identity provider for all replicas; they verify its tokens through its JWKS.
    let idp = Arc::new(TestIssuer::new("https://id.replicas.test"));
    let provider = TokenEndpoint::new(idp.clone(), "orders", "x", "y");
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
        loop {
            let reply = send(&c, bearer_req(r, "/api/me", &token)).await;
            if reply.status == 401 {
                reply.assert_problem(401, "token_revoked");
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{r} still accepts the token after {:?}",
                start.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        slowest = slowest.max(start.elapsed());
    }
    eprintln!("all {REPLICAS} replicas refused the revoked token {slowest:?} after the logout");
    // The other token of the same subject is untouched.
    for &r in &replicas {
        assert_eq!(send(&c, bearer_req(r, "/api/me", &other)).await.status, 200);
    }
    drop(children);
}

#[tokio::test]
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
    }
}
