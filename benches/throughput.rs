//! Whole-server throughput: servers on loopback — no auth, Portcullis HS256 with the
//! verified-token cache off and on, and the peers (jwt-authorizer, axum-jwt-auth, aliri_tower)
//! verifying the same HS256 token — each on one worker thread, all served by the same hyper
//! connection loop, for a load generator on the other core. `benches/throughput.sh` starts this
//! and runs `wrk` against each in interleaved rounds (bounded in time).
//!
//! With `serve`: prints `ADDR NAME` per server, then `TOKEN <jwt>`, and serves until stdin
//! closes.

#[allow(dead_code)]
mod common;

use std::io::BufRead;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use jsonwebtoken::Algorithm;
use portcullis::server::AuthLayer;
use portcullis::testkit::{TestIssuer, now};
use tower::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serve `svc` on a fresh loopback port: one hyper HTTP/1 connection task per connection, the
/// same loop for every server measured.
async fn serve<S, B>(svc: S) -> SocketAddr
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((io, _)) = listener.accept().await else {
                continue;
            };
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .http1_only()
                    .serve_connection(TokioIo::new(io), svc)
                    .await;
            });
        }
    });
    addr
}

fn main() {
    // `cargo bench` runs every bench binary; this one only serves for the driver script.
    if !std::env::args().any(|a| a == "serve") {
        println!("throughput: run benches/throughput.sh (it starts this with `serve` and wrk)");
        return;
    }
    let issuer = TestIssuer::new(common::ISSUER);
    let token = issuer.mint(Algorithm::HS256, common::claims(now() + 3600));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The peers are built outside the runtime: jwt-authorizer's builder is async and is
    // driven to completion by a runtime of its own.
    let hs = Algorithm::HS256;
    let jwt_authorizer = common::peers::jwt_authorizer_router(&issuer, hs).unwrap();
    let axum_jwt_auth = common::peers::axum_jwt_auth_router(&issuer, hs).unwrap();
    let aliri_tower = common::peers::aliri_tower_router(&issuer, hs).unwrap();
    rt.block_on(async {
        let plain = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let servers = [
            ("no-auth", serve(plain.clone()).await),
            (
                "hs256-cache-off",
                serve(plain.clone().layer(
                    AuthLayer::bearer(common::jwt::<common::UserClaims>(&issuer, 0)).unwrap(),
                ))
                .await,
            ),
            (
                "hs256-cache-on",
                serve(plain.layer(
                    AuthLayer::bearer(common::jwt::<common::UserClaims>(&issuer, 10_000)).unwrap(),
                ))
                .await,
            ),
            ("jwt-authorizer", serve(jwt_authorizer).await),
            ("axum-jwt-auth", serve(axum_jwt_auth).await),
            ("aliri_tower", serve(aliri_tower).await),
        ];
        for (name, addr) in servers {
            println!("{addr} {name}");
        }
        println!("TOKEN {token}");
        // Serve until the driver closes stdin.
        tokio::task::spawn_blocking(|| for _ in std::io::stdin().lock().lines() {})
            .await
            .unwrap();
    });
}
