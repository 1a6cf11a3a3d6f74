//! The refresh layer end to end over real HTTP: a hyper-util client with the layer, an API
//! protected by the auth layer, and a token endpoint that counts calls and rotates refresh
//! tokens (reuse revokes the family).

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_layer::jwt::JwtAuthenticator;
use auth_layer::{AuthLayer, Principal, RequireScope};
use axum::Router;
use axum::extract::Request as AxumRequest;
use axum::middleware::{self, Next};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use portcullis_testkit::loopback::serve;
use portcullis_testkit::{TestIssuer, TestTokenEndpoint, TokenEndpointMode};
use refresh_layer::{
    Credential, Error, OAuth2, RefreshError, RefreshLayer, RefreshOutcome, RefreshService,
};
use serde_json::json;
use tower::{Service, ServiceBuilder, ServiceExt};

use common::{Http, http};

/// Counts what the API receives: per `x-req-id`, and every credential header.
#[derive(Default)]
struct Seen {
    per_request: Mutex<HashMap<String, u32>>,
    total: AtomicU64,
}

struct Api {
    addr: SocketAddr,
    seen: Arc<Seen>,
    revoked: Arc<Mutex<HashSet<String>>>,
}

async fn api(issuer: &TestIssuer, audience: &str) -> Api {
    let revoked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let r = revoked.clone();
    let mut jwt =
        JwtAuthenticator::builder()
            .audience(audience)
            .revocation(move |p: &Principal| {
                p.token_id().is_some_and(|j| r.lock().unwrap().contains(j))
            });
    for k in issuer.verification_keys() {
        jwt = jwt.key(k);
    }
    let seen: Arc<Seen> = Arc::default();
    let counter = seen.clone();
    let app = Router::new()
        .route(
            "/api/me",
            get(|p: Principal| async move {
                axum::Json(json!({"sub": p.subject(), "jti": p.token_id()}))
            }),
        )
        .route(
            "/api/admin",
            get(|| async { "admin" }).route_layer(RequireScope::all(["admin"])),
        )
        .route("/api/echo", post(|body: Bytes| async move { body }))
        .layer(AuthLayer::bearer(jwt.build().unwrap()).unwrap())
        .layer(middleware::from_fn(move |req: AxumRequest, next: Next| {
            let seen = counter.clone();
            async move {
                seen.total.fetch_add(1, Ordering::SeqCst);
                if let Some(id) = req.headers().get("x-req-id").and_then(|v| v.to_str().ok()) {
                    *seen
                        .per_request
                        .lock()
                        .unwrap()
                        .entry(id.to_owned())
                        .or_default() += 1;
                }
                next.run(req).await
            }
        }));
    Api {
        addr: serve(app).await,
        seen,
        revoked,
    }
}

struct World {
    issuer: Arc<TestIssuer>,
    endpoint: TestTokenEndpoint,
    token_addr: SocketAddr,
    api: Api,
}

async fn world() -> World {
    let issuer = Arc::new(TestIssuer::new("https://id.test"));
    let endpoint = TestTokenEndpoint::new(issuer.clone(), "api", "demo", "demo-secret");
    let token_addr = serve(endpoint.router()).await;
    let api = api(&issuer, "api").await;
    World {
        issuer,
        endpoint,
        token_addr,
        api,
    }
}

impl World {
    fn token_url(&self) -> String {
        format!("http://{}/oauth/token", self.token_addr)
    }

    fn refresh_source(&self) -> OAuth2 {
        let rt = self.endpoint.issue_refresh_token("alice", "read");
        OAuth2::builder(&self.token_url(), "demo")
            .client_secret("demo-secret")
            .refresh_token(&rt, http())
            .unwrap()
    }

    fn expired(&self) -> Credential {
        Credential::bearer(&self.endpoint.access_token("alice", "read", -120)).unwrap()
    }

    fn layer_with(&self, initial: Credential) -> RefreshLayer {
        RefreshLayer::builder(self.refresh_source())
            .allow_origin(format!("http://{}", self.api.addr))
            .initial_credential(initial)
            .build()
            .unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api.addr)
    }
}

fn get_req(url: &str, id: usize) -> Request<Full<Bytes>> {
    Request::get(url)
        .header("x-req-id", id.to_string())
        .body(Full::default())
        .unwrap()
}

async fn call<S>(
    svc: &S,
    req: Request<Full<Bytes>>,
) -> Result<(StatusCode, Option<RefreshOutcome>, Bytes), S::Error>
where
    S: Service<
            Request<Full<Bytes>>,
            Response = http::Response<hyper::body::Incoming>,
            Error = Error<hyper_util::client::legacy::Error>,
        > + Clone,
{
    let res = svc.clone().oneshot(req).await?;
    let outcome = res.extensions().get::<RefreshOutcome>().copied();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Ok((status, outcome, body))
}

type Svc = RefreshService<Http>;

fn service(layer: RefreshLayer) -> Svc {
    ServiceBuilder::new().layer(layer).service(http())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_expired_requests_cause_exactly_one_refresh() {
    let w = world().await;
    let layer = w.layer_with(w.expired());
    let handle = layer.handle();
    let svc = service(layer);
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let svc = svc.clone();
            let url = w.url("/api/me");
            tokio::spawn(async move { call(&svc, get_req(&url, i)).await })
        })
        .collect();
    let mut retried = 0;
    for t in tasks {
        let (status, outcome, _) = t.await.unwrap().unwrap();
        assert_eq!(status, 200);
        retried += usize::from(outcome.unwrap().retried);
    }
    assert_eq!(w.endpoint.calls(), 1, "one refresh for every failure");
    assert_eq!(handle.refreshes(), 1);
    let per = w.api.seen.per_request.lock().unwrap();
    assert_eq!(per.len(), 1000);
    assert!(
        per.values().all(|&n| n <= 2),
        "a request was sent more than twice"
    );
    assert_eq!(
        w.api.seen.total.load(Ordering::SeqCst),
        1000 + retried as u64
    );
    assert!(retried > 0);
}

#[tokio::test]
async fn refresh_token_rotation_with_50_simultaneous_401s_uses_each_token_once() {
    let w = world().await;
    let layer = w.layer_with(w.expired());
    let svc = service(layer);
    for round in 0..4 {
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let svc = svc.clone();
                let url = w.url("/api/me");
                tokio::spawn(async move { call(&svc, get_req(&url, round * 100 + i)).await })
            })
            .collect();
        let mut jtis = HashSet::new();
        for t in tasks {
            let (status, _, body) = t.await.unwrap().unwrap();
            assert_eq!(status, 200, "round {round}: {body:?}");
            let j: serde_json::Value = serde_json::from_slice(&body).unwrap();
            jtis.insert(j["jti"].as_str().unwrap().to_owned());
        }
        assert_eq!(jtis.len(), 1, "everyone used the one refreshed token");
        // Revoke it at the API, so the next round's 50 requests all fail with 401 together.
        w.api.revoked.lock().unwrap().extend(jtis);
    }
    assert_eq!(w.endpoint.calls(), 4);
    assert_eq!(w.endpoint.reuse_detected(), 0);
    assert_eq!(w.endpoint.max_refresh_token_uses(), 1);
}

#[tokio::test]
async fn token_endpoint_down_fails_every_request_fast_with_a_typed_error() {
    let w = world().await;
    // A port with nothing listening: connection refused.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let source = OAuth2::builder(&format!("http://{dead}/oauth/token"), "demo")
        .refresh_token("rt", http())
        .unwrap();
    let layer = RefreshLayer::builder(source)
        .allow_origin(format!("http://{}", w.api.addr))
        .initial_credential(w.expired())
        .backoff(Duration::from_secs(60), Duration::from_secs(60))
        .build()
        .unwrap();
    let handle = layer.handle();
    let svc = service(layer);
    let all = async {
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let svc = svc.clone();
                let url = w.url("/api/me");
                tokio::spawn(async move { call(&svc, get_req(&url, i)).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    };
    let results = tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .expect("no caller waits forever");
    for r in results {
        match r {
            Err(Error::Refresh(RefreshError::Network(_) | RefreshError::BackingOff { .. })) => {}
            other => panic!("expected a refresh error, got {:?}", other.map(|o| o.0)),
        }
    }
    assert_eq!(handle.refreshes(), 1, "backoff bounds refresh attempts");
}

#[tokio::test]
async fn token_endpoint_500_and_invalid_grant_are_typed_and_bounded() {
    let w = world().await;
    w.endpoint.set_mode(TokenEndpointMode::Fail500);
    let layer = w.layer_with(w.expired());
    let handle = layer.handle();
    let svc = service(layer);
    match call(&svc, get_req(&w.url("/api/me"), 1)).await {
        Err(Error::Refresh(RefreshError::TokenEndpoint { status, .. })) => assert_eq!(status, 500),
        other => panic!("{:?}", other.map(|o| o.0)),
    }
    for i in 0..20 {
        assert!(matches!(
            call(&svc, get_req(&w.url("/api/me"), i)).await,
            Err(Error::Refresh(RefreshError::BackingOff { .. }))
        ));
    }
    assert_eq!(w.endpoint.calls(), 1);

    w.endpoint.set_mode(TokenEndpointMode::InvalidGrant);
    let layer = w.layer_with(w.expired());
    let handle2 = layer.handle();
    let svc = service(layer);
    for i in 0..5 {
        let err = call(&svc, get_req(&w.url("/api/me"), i)).await.unwrap_err();
        assert!(
            matches!(err, Error::Refresh(ref e) if e.is_sign_in_again()),
            "{err}"
        );
    }
    assert_eq!(handle2.refreshes(), 1, "invalid_grant stops refreshing");
    assert_eq!(handle.failures(), 1);
}

type Buffered = tower::buffer::Buffer<
    Request<Full<Bytes>>,
    <RefreshService<tower::limit::ConcurrencyLimit<Http>> as Service<Request<Full<Bytes>>>>::Future,
>;

/// The oneshot future itself is spawned: wrapping it in an `async` block trips a compiler
/// limitation (a "higher-ranked lifetime error" proving `Send`) with `Buffer`'s future.
fn buffered_status(
    s: Buffered,
    url: String,
    id: usize,
) -> tower::util::Oneshot<Buffered, Request<Full<Bytes>>> {
    s.oneshot(get_req(&url, id))
}

#[tokio::test]
async fn no_deadlock_with_concurrency_limit_or_buffer_around_the_client() {
    let w = world().await;
    let limited = ServiceBuilder::new()
        .layer(w.layer_with(w.expired()))
        .concurrency_limit(1)
        .service(http());
    let buffered = ServiceBuilder::new()
        .buffer(4)
        .layer(w.layer_with(w.expired()))
        .concurrency_limit(1)
        .service(http());
    let run = async {
        let a: Vec<_> = (0..20)
            .map(|i| {
                let s = limited.clone();
                let url = w.url("/api/me");
                tokio::spawn(async move { s.oneshot(get_req(&url, i)).await.map(|r| r.status()) })
            })
            .collect();
        let b: Vec<_> = (0..20)
            .map(|i| tokio::spawn(buffered_status(buffered.clone(), w.url("/api/me"), 100 + i)))
            .collect();
        for t in a {
            assert_eq!(t.await.unwrap().unwrap(), 200);
        }
        for t in b {
            assert_eq!(t.await.unwrap().unwrap().status(), 200);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("deadlock");
    assert_eq!(w.endpoint.calls(), 2, "one refresh per layer");
}

#[tokio::test]
async fn forbidden_is_never_refreshed_and_a_second_401_is_returned() {
    let w = world().await;
    let valid = Credential::bearer(&w.endpoint.access_token("alice", "read", 300)).unwrap();
    let svc = service(w.layer_with(valid));
    let (status, outcome, _) = call(&svc, get_req(&w.url("/api/admin"), 1)).await.unwrap();
    assert_eq!(status, 403);
    assert!(!outcome.unwrap().retried);
    assert_eq!(w.endpoint.calls(), 0);

    // An API that refuses every token this issuer makes (wrong audience): 401, one refresh,
    // one retry, and the second 401 is the answer.
    let strict = api(&w.issuer, "another-api").await;
    let layer = RefreshLayer::builder(w.refresh_source())
        .allow_origin(format!("http://{}", strict.addr))
        .initial_credential(w.expired())
        .build()
        .unwrap();
    let svc = service(layer);
    let res = svc
        .clone()
        .oneshot(get_req(&format!("http://{}/api/me", strict.addr), 7))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.extensions().get::<RefreshOutcome>().unwrap().retried);
    let failure = res
        .extensions()
        .get::<refresh_layer::AuthFailure>()
        .unwrap();
    assert_eq!(failure.bearer_error(), Some("invalid_token"));
    assert_eq!(w.endpoint.calls(), 1);
    assert_eq!(strict.seen.per_request.lock().unwrap()["7"], 2);
}

#[tokio::test]
async fn oversized_body_is_sent_once_and_its_401_returned() {
    let w = world().await;
    let layer = RefreshLayer::builder(w.refresh_source())
        .allow_origin(format!("http://{}", w.api.addr))
        .initial_credential(w.expired())
        .max_replay_body(16)
        .build()
        .unwrap();
    let svc = service(layer);
    let big = Request::post(w.url("/api/echo"))
        .header("x-req-id", "big")
        .body(Full::new(Bytes::from(vec![b'x'; 1024])))
        .unwrap();
    let (status, outcome, _) = call(&svc, big).await.unwrap();
    assert_eq!(status, 401);
    assert!(!outcome.unwrap().retried);
    assert_eq!(w.endpoint.calls(), 0);
    // A small body is replayed intact.
    let small = Request::post(w.url("/api/echo"))
        .header("x-req-id", "small")
        .body(Full::new(Bytes::from_static(b"0123456789")))
        .unwrap();
    let (status, outcome, body) = call(&svc, small).await.unwrap();
    assert_eq!((status.as_u16(), &body[..]), (200, &b"0123456789"[..]));
    assert!(outcome.unwrap().retried);
    assert_eq!(w.api.seen.per_request.lock().unwrap()["big"], 1);
}

#[tokio::test]
async fn request_with_its_own_authorization_is_left_alone() {
    let w = world().await;
    let mine = w.endpoint.access_token("bob", "read", 300);
    let svc = service(w.layer_with(w.expired()));
    let req = Request::get(w.url("/api/me"))
        .header("authorization", format!("Bearer {mine}"))
        .body(Full::default())
        .unwrap();
    let (status, outcome, body) = call(&svc, req).await.unwrap();
    assert_eq!(status, 200);
    assert!(!outcome.unwrap().credential_sent);
    assert!(String::from_utf8_lossy(&body).contains("\"bob\""));
    assert_eq!(w.endpoint.calls(), 0);
}

#[tokio::test]
async fn dropping_the_request_that_started_a_refresh_lets_the_others_finish() {
    let w = world().await;
    w.endpoint
        .set_mode(TokenEndpointMode::Delay(Duration::from_millis(300)));
    let svc = service(w.layer_with(w.expired()));
    let first = {
        let svc = svc.clone();
        let url = w.url("/api/me");
        tokio::spawn(async move { call(&svc, get_req(&url, 0)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let others: Vec<_> = (1..11)
        .map(|i| {
            let svc = svc.clone();
            let url = w.url("/api/me");
            tokio::spawn(async move { call(&svc, get_req(&url, i)).await })
        })
        .collect();
    first.abort();
    for t in others {
        assert_eq!(t.await.unwrap().unwrap().0, 200);
    }
    assert_eq!(w.endpoint.calls(), 1);
}

#[tokio::test]
async fn client_credentials_source_fetches_on_first_use_with_basic_and_post_auth() {
    let w = world().await;
    for auth in [
        portcullis_wire::client_auth::ClientAuth::Basic,
        portcullis_wire::client_auth::ClientAuth::Post,
    ] {
        let source = OAuth2::builder(&w.token_url(), "demo")
            .client_secret("demo-secret")
            .scope("read")
            .client_auth(auth)
            .client_credentials(http())
            .unwrap();
        let layer = RefreshLayer::builder(source)
            .allow_origin(format!("http://{}", w.api.addr))
            .build()
            .unwrap();
        let (status, _, body) = call(&service(layer), get_req(&w.url("/api/me"), 1))
            .await
            .unwrap();
        assert_eq!(status, 200, "{auth:?}");
        assert!(String::from_utf8_lossy(&body).contains("\"demo\""));
    }
    let bad = OAuth2::builder(&w.token_url(), "demo")
        .client_secret("wrong")
        .client_credentials(http())
        .unwrap();
    let layer = RefreshLayer::builder(bad)
        .allow_origin(format!("http://{}", w.api.addr))
        .build()
        .unwrap();
    match call(&service(layer), get_req(&w.url("/api/me"), 1)).await {
        Err(Error::Refresh(RefreshError::TokenEndpoint { error: Some(e), .. })) => {
            assert_eq!(e, "invalid_client")
        }
        other => panic!("{:?}", other.map(|o| o.0)),
    }
}
