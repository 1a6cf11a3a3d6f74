//! The client under a refresh storm, over real HTTP on loopback: an API protected by the auth
//! layer, a token endpoint (`client_credentials`), and a hyper-util client with the refresh
//! layer. Cases, all in one run:
//!
//! - `request`: one call with a fresh token (a request round trip);
//! - `refresh`: one token-endpoint call through the same source the layer uses (a refresh
//!   round trip);
//! - `burst-1000`: 1,000 concurrent calls with a fresh token (one wave);
//! - `storm-1000`: 1,000 concurrent calls with an expired token: every one is refused, the
//!   layer refreshes once and retries each once. Each iteration checks that all 1,000 succeed
//!   and that exactly one refresh happened.
//!
//! The storm is two waves plus one refresh, so its target is `refresh + 2 × burst`.
//!
//! `cargo bench -p portcullis-benches --bench storm`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::{BodyExt, Full};
use portcullis::client::{Credential, CredentialSource, OAuth2, RefreshLayer, RefreshService};
use portcullis::server::AuthLayer;
use portcullis::server::jwt::JwtAuthenticator;
use portcullis::testkit::{TestIssuer, TestTokenEndpoint};
use tower::{Layer, ServiceExt};

use portcullis::testkit::loopback::{LoopbackClient as Http, client, serve};

const WAVE: usize = 1000;

struct World {
    url: String,
    token_url: String,
    endpoint: TestTokenEndpoint,
    layer: RefreshLayer,
    client: RefreshService<Http>,
    http: Http,
}

async fn world() -> World {
    let issuer = Arc::new(TestIssuer::new("https://id.bench"));
    let endpoint = TestTokenEndpoint::new(issuer.clone(), "api", "demo", "demo-secret");
    // Long-lived tokens: no proactive refresh during the run, only the storms' own.
    endpoint.set_access_ttl(Duration::from_secs(3600));
    let token_addr = serve(endpoint.router()).await;
    let jwt = issuer
        .verification_keys()
        .into_iter()
        .fold(JwtAuthenticator::builder(), |b, k| b.key(k))
        .audience("api")
        .build()
        .unwrap();
    let api = axum::Router::new()
        .route("/api/me", axum::routing::get(|| async { "ok" }))
        .layer(AuthLayer::bearer(jwt).unwrap());
    let api_addr = serve(api).await;
    let http = client();
    let token_url = format!("http://{token_addr}/oauth/token");
    let source = OAuth2::builder(&token_url, "demo")
        .client_secret("demo-secret")
        .client_credentials(http.clone())
        .unwrap();
    let layer = RefreshLayer::builder(source)
        .allow_origin(format!("http://{api_addr}"))
        .build()
        .unwrap();
    World {
        url: format!("http://{api_addr}/api/me"),
        token_url,
        endpoint,
        client: layer.layer(http.clone()),
        layer,
        http,
    }
}

impl World {
    async fn call(&self) {
        let req = Request::get(&self.url).body(Full::default()).unwrap();
        let res = self.client.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        res.into_body().collect().await.unwrap();
    }

    async fn wave(self: &Arc<Self>) {
        let tasks: Vec<_> = (0..WAVE)
            .map(|_| {
                let w = self.clone();
                tokio::spawn(async move { w.call().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }

    /// A storm: the current credential is an expired token, then one wave.
    async fn storm(self: &Arc<Self>) -> Duration {
        let handle = self.layer.handle();
        let expired = self.endpoint.access_token("bench", "read", -120);
        handle.set(Credential::bearer(&expired).unwrap());
        let refreshes = handle.refreshes();
        let start = Instant::now();
        self.wave().await;
        let took = start.elapsed();
        assert_eq!(handle.refreshes(), refreshes + 1, "one refresh per storm");
        took
    }
}

fn storm(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let w = Arc::new(rt.block_on(world()));
    // Warm the connection pool so that every case reuses connections.
    rt.block_on(w.wave());
    let mut g = c.benchmark_group("client");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("request", |b| b.to_async(&rt).iter(|| w.call()));
    let source = OAuth2::builder(&w.token_url, "demo")
        .client_secret("demo-secret")
        .client_credentials(w.http.clone())
        .unwrap();
    g.bench_function("refresh", |b| {
        b.to_async(&rt)
            .iter(|| async { source.fetch().await.unwrap() })
    });
    g.bench_function("burst-1000", |b| b.to_async(&rt).iter(|| w.wave()));
    g.bench_function("storm-1000", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let w = w.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += w.storm().await;
                }
                total
            }
        })
    });
    g.finish();
}

criterion_group!(benches, storm);
criterion_main!(benches);
