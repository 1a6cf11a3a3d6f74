//! Whole-server throughput: three servers on loopback — no auth, HS256 with the verified-token
//! cache off, and on — each on one worker thread, for a load generator on the other core.
//! `benches/throughput.sh` starts this and runs `wrk` against each (bounded in time).
//!
//! With `serve`: prints `ADDR NAME` per server, then `TOKEN <jwt>`, and serves until stdin
//! closes.

use std::io::BufRead;

use axum::Router;
use axum::routing::get;
use jsonwebtoken::Algorithm;
use portcullis::server::AuthLayer;
use portcullis::server::jwt::JwtAuthenticator;
use portcullis::testkit::{TestIssuer, now};

fn main() {
    // `cargo bench` runs every bench binary; this one only serves for the driver script.
    if !std::env::args().any(|a| a == "serve") {
        println!("throughput: run benches/throughput.sh (it starts this with `serve` and wrk)");
        return;
    }
    let issuer = TestIssuer::new("https://id.bench");
    let mut claims = issuer.access_claims("user-4711", "bench-api", "read write profile", 3600);
    claims["exp"] = serde_json::json!(now() + 3600);
    let token = issuer.mint(Algorithm::HS256, claims);
    let jwt = |cache| {
        JwtAuthenticator::builder()
            .key(issuer.verification_keys().remove(0))
            .issuer("https://id.bench")
            .audience("bench-api")
            .cache_capacity(cache)
            .build()
            .unwrap()
    };
    let plain = Router::new().route("/", get(|| async { "ok" }));
    let servers = [
        ("no-auth", plain.clone()),
        (
            "hs256-cache-off",
            plain.clone().layer(AuthLayer::bearer(jwt(0)).unwrap()),
        ),
        (
            "hs256-cache-on",
            plain.layer(AuthLayer::bearer(jwt(10_000)).unwrap()),
        ),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (name, app) in servers {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            println!("{} {name}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        println!("TOKEN {token}");
        // Serve until the driver closes stdin.
        tokio::task::spawn_blocking(|| for _ in std::io::stdin().lock().lines() {})
            .await
            .unwrap();
    });
}
