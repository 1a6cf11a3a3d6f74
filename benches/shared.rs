//! What sharing a grant through a store costs, in one run (`cargo bench -p portcullis-benches
//! --bench shared`; it starts a `redis-server` of its own on a free loopback port).
//!
//! - `fresh/*`: one request through the refresh layer while the access token is fresh. The
//!   inner service answers at once (no network), so the case measures the layer itself:
//!   `in-process` is an `OAuth2` refresh-token source given to the layer directly (no store);
//!   `memory-store` and `redis-store` are the same grant behind a [`SharedGrant`]. The claim
//!   under test is that the per-process cache serves a fresh token, so the three are the same
//!   and Redis sees no command (counted with `INFO stats` after the group).
//! - `refresh/*`: one refresh, from the source the layer would call, against a token endpoint
//!   on loopback that rotates refresh tokens: the token request alone (`in-process`), then
//!   with the store's read, lease, commit and publication (`memory-store`, `redis-store`).
//!
//! [`SharedGrant`]: portcullis::client::source::shared_grant::SharedGrant

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use portcullis::client::source::shared_grant::{NewSeed, SharedGrant};
use portcullis::client::store::redis::{RedisStore, StoreKey};
use portcullis::client::store::{CredentialStore, MemoryStore};
use portcullis::client::{CredentialSource, OAuth2, RefreshLayer};
use portcullis::testkit::redis_process::RedisProcess;
use portcullis::testkit::{TestIssuer, TestTokenEndpoint};
use tower::{Layer, Service, ServiceExt};

use portcullis::testkit::loopback::{LoopbackClient as Http, client, serve};

/// Counted fresh requests per layer, after the timed group.
const COUNTED: u64 = 10_000;

struct World {
    provider: TestTokenEndpoint,
    token_url: String,
    http: Http,
}

impl World {
    async fn new() -> World {
        let issuer = Arc::new(TestIssuer::new("https://id.bench"));
        let provider = TestTokenEndpoint::new(issuer, "api", "gw", "gw-secret");
        // Long-lived tokens: the fresh cases never reach a refresh.
        provider.set_access_ttl(Duration::from_secs(3600));
        let addr = serve(provider.router()).await;
        World {
            token_url: format!("http://{addr}/oauth/token"),
            provider,
            http: client(),
        }
    }

    /// A refresh-token grant, with a refresh token of its own (each case rotates its own
    /// family, so the cases never present one another's tokens).
    fn oauth(&self) -> OAuth2 {
        let rt = self.provider.issue_refresh_token("gw", "read");
        OAuth2::builder(&self.token_url, "gw")
            .client_secret("gw-secret")
            .scope("read")
            .refresh_token(&rt, self.http.clone())
            .unwrap()
    }

    /// The grant behind a store: each store here holds one, the bench client's own.
    fn shared(&self, store: Arc<dyn CredentialStore>) -> SharedGrant {
        SharedGrant::builder(self.oauth(), store, "bench-client", NewSeed::Replace)
            .build()
            .unwrap()
    }
}

/// The layer over a service that answers 200 at once.
fn layered<S: CredentialSource>(
    source: S,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = impl std::fmt::Debug,
    Future = impl Send,
> + Clone {
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    RefreshLayer::builder(source)
        .allow_origin("http://api.bench")
        .build()
        .unwrap()
        .layer(inner)
}

async fn call<S>(svc: &S)
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>> + Clone,
    S::Error: std::fmt::Debug,
{
    let req = Request::get("http://api.bench/me")
        .body(Full::default())
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
}

fn shared(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let redis = RedisProcess::start();
    let w = rt.block_on(World::new());
    // One prefix per store: the grant's name is the same for every case (same endpoint, client
    // and scope), and a store already holding a fresh token set would serve it without a refresh.
    let redis_store = |prefix: &str| -> Arc<dyn CredentialStore> {
        Arc::new(
            rt.block_on(
                RedisStore::builder(redis.url(), StoreKey::from_bytes(&[9; 32]).unwrap())
                    .key_prefix(prefix)
                    .connect(),
            )
            .unwrap(),
        )
    };

    let in_process = layered(w.oauth());
    let memory = layered(w.shared(Arc::new(MemoryStore::new())));
    let in_redis = layered(w.shared(redis_store("bench:fresh")));
    // The first request of each fetches its token; the cases measure what follows.
    rt.block_on(async {
        call(&in_process).await;
        call(&memory).await;
        call(&in_redis).await;
    });

    let mut g = c.benchmark_group("fresh");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.bench_function("in-process", |b| b.to_async(&rt).iter(|| call(&in_process)));
    g.bench_function("memory-store", |b| b.to_async(&rt).iter(|| call(&memory)));
    g.bench_function("redis-store", |b| b.to_async(&rt).iter(|| call(&in_redis)));
    g.finish();

    let before = redis.commands_processed();
    rt.block_on(async {
        for _ in 0..COUNTED {
            call(&in_redis).await;
        }
    });
    // The second INFO is one command of its own.
    let fresh_commands = redis.commands_processed() - before - 1;
    println!(
        "Redis commands for {COUNTED} fresh requests through the Redis store: {fresh_commands}"
    );
    assert_eq!(fresh_commands, 0, "a fresh token costs no Redis command");

    let plain = w.oauth();
    let memory = w.shared(Arc::new(MemoryStore::new()));
    let in_redis = w.shared(redis_store("bench:refresh"));
    let mut g = c.benchmark_group("refresh");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("in-process", |b| {
        b.to_async(&rt)
            .iter(|| async { plain.fetch().await.unwrap() })
    });
    g.bench_function("memory-store", |b| {
        b.to_async(&rt)
            .iter(|| async { memory.fetch().await.unwrap() })
    });
    let grants = w.provider.refresh_grants();
    let before = redis.commands_processed();
    let mut refreshes = 0u64;
    g.bench_function("redis-store", |b| {
        b.to_async(&rt).iter(|| {
            refreshes += 1;
            async { in_redis.fetch().await.unwrap() }
        })
    });
    g.finish();
    let commands = redis.commands_processed() - before - 1;
    assert_eq!(
        w.provider.refresh_grants() - grants,
        refreshes,
        "every fetch of the shared grant was one token request"
    );
    println!(
        "Redis commands per refresh through the Redis store: {:.2} ({commands} for {refreshes})",
        commands as f64 / refreshes as f64
    );
    assert_eq!(w.provider.reuse_detected(), 0);
}

criterion_group!(benches, shared);
criterion_main!(benches);
