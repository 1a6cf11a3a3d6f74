//! The refresh layer in front of a `reqwest::Client` (feature `reqwest`), over real HTTP on
//! 127.0.0.1: origin A (allowed, an API behind the auth layer), origin B (another port, so
//! another origin, never allowed), and the testkit's token endpoint, reached through the same
//! `ReqwestService`. Both servers log every request they receive with the credential headers
//! it carried and the body bytes they read.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use auth_layer::AuthLayer;
use auth_layer::jwt::JwtAuthenticator;
use axum::Router;
use axum::extract::{RawQuery, Request as AxumRequest};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::Full;
use portcullis_testkit::TestTokenEndpoint;
use refresh_layer::reqwest::{ReqwestClient, ReqwestService};
use refresh_layer::{Credential, OAuth2, RefreshLayer, RetriedAfter};
use reqwest::{Body, Method, Request};
use tokio::sync::Barrier;
use tower::ServiceExt;

use common::bind;

const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "x-api-key",
    "proxy-authorization",
];

/// One request as a server received it.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    id: Option<String>,
    authorization: Option<String>,
    /// The names of the credential headers it carried.
    credentials: Vec<&'static str>,
    body_len: usize,
}

type Log = Arc<Mutex<Vec<Hit>>>;

fn credentials(h: &HeaderMap) -> Vec<&'static str> {
    CREDENTIAL_HEADERS
        .into_iter()
        .filter(|n| h.contains_key(*n))
        .collect()
}

fn hits(log: &Log, path: &str) -> Vec<Hit> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|h| h.path == path)
        .cloned()
        .collect()
}

/// Logs each request (its whole body read) before the routes see it; holds requests to
/// `/api/me` with the stale token at `gate` until all of them have arrived.
fn logged(app: Router, log: Log, gate: Arc<Barrier>) -> Router {
    app.layer(middleware::from_fn(move |req: AxumRequest, next: Next| {
        let (log, gate) = (log.clone(), gate.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let header = |n: &str| {
                let v = parts.headers.get(n)?;
                Some(v.to_str().unwrap().to_owned())
            };
            let authorization = header("authorization");
            log.lock().unwrap().push(Hit {
                path: parts.uri.path().to_owned(),
                id: header("x-req-id"),
                authorization: authorization.clone(),
                credentials: credentials(&parts.headers),
                body_len: body.len(),
            });
            if parts.uri.path() == "/api/me" && authorization.as_deref() == Some("Bearer stale") {
                gate.wait().await;
            }
            next.run(AxumRequest::from_parts(parts, body.into())).await
        }
    }))
}

struct World {
    a: SocketAddr,
    b: SocketAddr,
    a_log: Log,
    b_log: Log,
    endpoint: TestTokenEndpoint,
    token_url: String,
    http: ReqwestService,
}

/// A: `/api/me` and `/api/upload` behind the auth layer; `/to-b` redirects to B's `/refuse`
/// (a 401 that names an invalid token), `/to-b-and-back` to B's `/back`, which redirects to
/// A's `/echo` (the credential headers it received); `/teapot` answers 418 with the query it
/// received. B: also `/plain`.
async fn world(gate: usize) -> World {
    let (endpoint, token_url) = TestTokenEndpoint::start("api", "demo", "demo-secret").await;
    let (la, a) = bind().await;
    let (lb, b) = bind().await;
    let mut jwt = JwtAuthenticator::builder().audience("api");
    for k in endpoint.issuer().verification_keys() {
        jwt = jwt.key(k);
    }
    let api = Router::new()
        .route("/api/me", get(|| async { "me" }))
        .route("/api/upload", post(|body: Bytes| async move { body }))
        .layer(AuthLayer::bearer(jwt.build().unwrap()).unwrap());
    let app_a = api
        .route(
            "/to-b",
            get(move || async move { Redirect::temporary(&format!("http://{b}/refuse")) }),
        )
        .route(
            "/to-b-and-back",
            get(move || async move { Redirect::temporary(&format!("http://{b}/back")) }),
        )
        .route(
            "/echo",
            get(|h: HeaderMap| async move { axum::Json(credentials(&h)) }),
        )
        .route(
            "/teapot",
            get(|q: RawQuery| async move { (StatusCode::IM_A_TEAPOT, q.0.unwrap_or_default()) }),
        );
    let app_b = Router::new()
        .route("/refuse", get(refuse))
        .route(
            "/back",
            get(move || async move { Redirect::temporary(&format!("http://{a}/echo")) }),
        )
        .route("/plain", get(|| async { "b" }));
    let gate = Arc::new(Barrier::new(gate));
    let (a_log, b_log) = (Log::default(), Log::default());
    let app_a = logged(app_a, a_log.clone(), gate.clone());
    let app_b = logged(app_b, b_log.clone(), gate);
    tokio::spawn(async move { axum::serve(la, app_a).await.unwrap() });
    tokio::spawn(async move { axum::serve(lb, app_b).await.unwrap() });
    World {
        a,
        b,
        a_log,
        b_log,
        endpoint,
        token_url,
        http: ReqwestService::new().unwrap(),
    }
}

/// What a refreshable 401 looks like, from the wrong origin.
async fn refuse() -> impl IntoResponse {
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", r#"Bearer error="invalid_token""#)],
        "refused by B",
    )
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// OAuth2 client credentials from the token endpoint, fetched on the first request.
    Bearer,
    /// A fixed `x-api-key` header.
    ApiKey,
}

impl World {
    fn oauth2(&self) -> OAuth2 {
        OAuth2::builder(&self.token_url, "demo")
            .client_secret("demo-secret")
            .client_credentials(self.http.clone())
            .unwrap()
    }

    /// A layer for origin A whose first credential is a token A refuses.
    fn stale_bearer_layer(&self) -> RefreshLayer {
        RefreshLayer::builder(self.oauth2())
            .allow_origin(format!("http://{}", self.a))
            .initial_credential(Credential::bearer("stale").unwrap())
            .build()
            .unwrap()
    }

    fn layer(&self, kind: Kind) -> RefreshLayer {
        let builder = match kind {
            Kind::Bearer => RefreshLayer::builder(self.oauth2()),
            Kind::ApiKey => {
                let key = Credential::api_key_header("x-api-key", "key-a").unwrap();
                RefreshLayer::builder(key.clone()).initial_credential(key)
            }
        };
        builder
            .allow_origin(format!("http://{}", self.a))
            .build()
            .unwrap()
    }

    fn client(&self, layer: RefreshLayer) -> ReqwestClient {
        ReqwestClient::new(layer, self.http.clone())
    }

    fn a_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.a)
    }

    fn b_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.b)
    }

    fn assert_b_saw_no_credential(&self) {
        let saw = self.b_log.lock().unwrap();
        assert!(
            saw.iter().all(|h| h.credentials.is_empty()),
            "B received credentials: {saw:?}"
        );
    }
}

/// A request body of unknown length, in two chunks: what the layer cannot buffer.
struct Streaming(VecDeque<Bytes>);

impl http_body::Body for Streaming {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

fn request(method: Method, url: &str) -> Request {
    Request::new(method, url.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_401s_make_one_refresh_and_each_request_is_retried_once() {
    const N: usize = 8;
    let w = world(N).await;
    let layer = w.stale_bearer_layer();
    let handle = layer.handle();
    let api = w.client(layer);
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let api = api.clone();
            let mut req = request(Method::GET, &w.a_url("/api/me"));
            req.headers_mut().insert("x-req-id", i.into());
            tokio::spawn(async move { api.execute(req).await })
        })
        .collect();
    for t in tasks {
        // A guard against a hang (the gate waits for all N), not a timing assertion.
        let res = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("the N requests reach A together")
            .unwrap()
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.extensions().get::<RetriedAfter>().is_some());
        assert_eq!(res.text().await.unwrap(), "me");
    }
    assert_eq!(w.endpoint.calls(), 1, "one token request for N refusals");
    assert_eq!(handle.refreshes(), 1);
    let hits = hits(&w.a_log, "/api/me");
    assert_eq!(hits.len(), 2 * N, "each request sent twice: {hits:?}");
    for i in 0..N {
        let mine: Vec<_> = hits
            .iter()
            .filter(|h| h.id.as_deref() == Some(i.to_string().as_str()))
            .collect();
        assert_eq!(mine.len(), 2, "request {i}: {mine:?}");
        let stale = mine
            .iter()
            .filter(|h| h.authorization.as_deref() == Some("Bearer stale"))
            .count();
        assert_eq!(
            stale, 1,
            "request {i}: once with the stale token, once with the new one"
        );
    }
}

#[tokio::test]
async fn a_redirect_from_a_to_b_reaches_b_without_credentials_and_bs_401_does_not_refresh() {
    for kind in [Kind::Bearer, Kind::ApiKey] {
        let w = world(1).await;
        let layer = w.layer(kind);
        let handle = layer.handle();
        let api = w.client(layer);
        // The first credential is in hand (for OAuth2, fetched) before the redirect.
        assert_eq!(api.get(w.a_url("/echo")).await.unwrap().status(), 200);
        let (refreshes, token_calls) = (handle.refreshes(), w.endpoint.calls());

        let res = api.get(w.a_url("/to-b")).await.unwrap();
        assert_eq!(res.status(), 401, "{kind:?}: B's answer, as it is");
        assert!(res.extensions().get::<RetriedAfter>().is_none(), "{kind:?}");
        assert_eq!(res.url().as_str(), w.b_url("/refuse"), "{kind:?}");
        assert_eq!(res.text().await.unwrap(), "refused by B");

        let to_b = hits(&w.a_log, "/to-b");
        assert_eq!(to_b.len(), 1, "{kind:?}");
        assert_eq!(
            to_b[0].credentials.len(),
            1,
            "{kind:?}: A got the credential"
        );
        assert_eq!(hits(&w.b_log, "/refuse").len(), 1, "{kind:?}: B asked once");
        w.assert_b_saw_no_credential();
        assert_eq!(
            handle.refreshes(),
            refreshes,
            "{kind:?}: no refresh for B's 401"
        );
        assert_eq!(w.endpoint.calls(), token_calls, "{kind:?}");
    }
}

#[tokio::test]
async fn an_a_to_b_to_a_chain_does_not_get_the_credential_back() {
    for kind in [Kind::Bearer, Kind::ApiKey] {
        let w = world(1).await;
        let api = w.client(w.layer(kind));
        let res = api.get(w.a_url("/to-b-and-back")).await.unwrap();
        assert_eq!(res.status(), 200, "{kind:?}");
        assert_eq!(res.url().as_str(), w.a_url("/echo"), "{kind:?}");
        let echoed: Vec<String> = serde_json::from_str(&res.text().await.unwrap()).unwrap();
        assert!(echoed.is_empty(), "{kind:?}: A's last hop got {echoed:?}");

        let first = hits(&w.a_log, "/to-b-and-back");
        assert_eq!(
            first[0].credentials.len(),
            1,
            "{kind:?}: the first hop had it"
        );
        assert_eq!(hits(&w.b_log, "/back").len(), 1, "{kind:?}");
        assert_eq!(hits(&w.a_log, "/echo").len(), 1, "{kind:?}");
        w.assert_b_saw_no_credential();
    }
}

#[tokio::test]
async fn a_streaming_body_gets_its_401_back_without_a_retry_and_is_sent_once() {
    let w = world(1).await;
    let api = w.client(w.stale_bearer_layer());
    let mut req = request(Method::POST, &w.a_url("/api/upload"));
    let chunks = [Bytes::from_static(b"hello "), Bytes::from_static(b"world")];
    *req.body_mut() = Some(Body::wrap(Streaming(chunks.into())));
    let res = api.execute(req).await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.extensions().get::<RetriedAfter>().is_none());
    let sent = hits(&w.a_log, "/api/upload");
    assert_eq!(sent.len(), 1, "sent once: {sent:?}");
    assert_eq!(sent[0].body_len, 11, "the whole body, once");
}

/// The contrast to the streaming body: a small body of known size is buffered and sent again.
#[tokio::test]
async fn a_small_body_is_sent_again_after_the_refresh() {
    let w = world(1).await;
    let api = w.client(w.stale_bearer_layer());
    let mut req = request(Method::POST, &w.a_url("/api/upload"));
    *req.body_mut() = Some(Body::from("hello world"));
    let res = api.execute(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.extensions().get::<RetriedAfter>().is_some());
    assert_eq!(res.text().await.unwrap(), "hello world");
    let sent = hits(&w.a_log, "/api/upload");
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|h| h.body_len == 11), "{sent:?}");
}

#[tokio::test]
async fn a_request_to_an_origin_not_allowed_never_gets_the_credential() {
    for kind in [Kind::Bearer, Kind::ApiKey] {
        let w = world(1).await;
        let api = w.client(w.layer(kind));
        let res = api.get(w.b_url("/plain")).await.unwrap();
        assert_eq!(res.status(), 200, "{kind:?}");
        assert_eq!(hits(&w.b_log, "/plain").len(), 1, "{kind:?}");
        w.assert_b_saw_no_credential();
        assert_eq!(
            w.endpoint.calls(),
            0,
            "{kind:?}: no token is even fetched for B"
        );
    }
}

/// A builder's own redirect policy is replaced: reqwest hands the 307 back instead of
/// following it past the layer.
#[tokio::test]
async fn reqwest_service_follows_no_redirect_whatever_the_builder_said() {
    let w = world(1).await;
    let builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(10));
    let http = ReqwestService::from_builder_unscoped(builder).unwrap();
    let req = http::Request::get(w.a_url("/to-b"))
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = http.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 307);
    assert!(w.b_log.lock().unwrap().is_empty(), "B was reached");
}

/// `ReqwestService::new` has nothing of its own to send: with the layer's API key, a redirect
/// to B and a direct call to B arrive with no credential header at all.
#[tokio::test]
async fn the_plain_service_sends_no_header_of_its_own_to_b() {
    let w = world(1).await;
    let api = w.client(w.layer(Kind::ApiKey));
    assert_eq!(api.get(w.a_url("/to-b")).await.unwrap().status(), 401);
    assert_eq!(api.get(w.b_url("/plain")).await.unwrap().status(), 200);
    assert_eq!(w.b_log.lock().unwrap().len(), 2);
    w.assert_b_saw_no_credential();
}

/// What `from_builder_unscoped` documents: a builder's default headers are added by reqwest
/// after the layer and the redirect policy ran, so they reach B on a redirect and directly.
/// This pins that the risk is real (the reason the constructor is named for it).
#[tokio::test]
async fn an_unscoped_builders_default_headers_reach_every_origin_as_documented() {
    let w = world(1).await;
    let mut defaults = reqwest::header::HeaderMap::new();
    defaults.insert("x-api-key", "default-key".parse().unwrap());
    let builder = reqwest::Client::builder().default_headers(defaults);
    let http = ReqwestService::from_builder_unscoped(builder).unwrap();
    let key = Credential::bearer("layer-token").unwrap();
    let layer = RefreshLayer::builder(key.clone())
        .allow_origin(format!("http://{}", w.a))
        .initial_credential(key)
        .build()
        .unwrap();
    let api = ReqwestClient::new(layer, http);
    api.get(w.a_url("/to-b")).await.unwrap();
    api.get(w.b_url("/plain")).await.unwrap();
    let saw = w.b_log.lock().unwrap().clone();
    assert_eq!(saw.len(), 2, "{saw:?}");
    for hit in &saw {
        assert_eq!(hit.credentials, ["x-api-key"], "{hit:?}");
        assert_eq!(hit.authorization, None, "the layer's own token stays on A");
    }
}

/// A query-parameter credential reaches A, and is in none of what the caller gets back: the
/// response's URL, `error_for_status`'s error, a connect failure's `Display` and `Debug`.
#[tokio::test]
async fn a_query_credential_stays_out_of_response_urls_and_errors() {
    let w = world(1).await;
    // A port nothing listens on once the listener is dropped: the connection is refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let key = Credential::api_key_query("api_key", "query-secret").unwrap();
    let layer = RefreshLayer::builder(key.clone())
        .allow_origin(format!("http://{}", w.a))
        .allow_origin(format!("http://{dead}"))
        .initial_credential(key)
        .build()
        .unwrap();
    let api = w.client(layer);

    let res = api.get(w.a_url("/teapot?x=1")).await.unwrap();
    assert_eq!(res.url().as_str(), w.a_url("/teapot?x=1"));
    let status_error = res.error_for_status_ref().unwrap_err();
    assert_eq!(
        status_error.status(),
        Some(reqwest::StatusCode::IM_A_TEAPOT)
    );
    for text in [status_error.to_string(), format!("{status_error:?}")] {
        assert!(!text.contains("query-secret"), "{text}");
    }
    assert_eq!(
        res.text().await.unwrap(),
        "x=1&api_key=query-secret",
        "A received the credential"
    );

    let err = api.get(format!("http://{dead}/x?y=2")).await.unwrap_err();
    let refresh_layer::Error::Inner(inner) = &err else {
        panic!("not the connect failure: {err}")
    };
    assert!(inner.is_connect(), "{inner:?}");
    assert_eq!(
        inner.url().unwrap().as_str(),
        format!("http://{dead}/x?y=2")
    );
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("query-secret"), "{text}");
    }
}

/// A listener that takes connections and never answers.
async fn tarpit() -> SocketAddr {
    let (l, addr) = bind().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = l.accept().await {
            held.push(conn);
        }
    });
    addr
}

/// A request's timeout bounds the whole call: A redirects to another origin that never
/// answers (tower-http drops the request's own timeout on that hop), and the call ends with
/// `Error::Timeout` carrying that timeout.
#[tokio::test]
async fn a_request_timeout_bounds_a_redirect_to_a_tarpit() {
    let pit = tarpit().await;
    let (l, a) = bind().await;
    let app = Router::new().route(
        "/to-pit",
        get(move || async move { Redirect::temporary(&format!("http://{pit}/wait")) }),
    );
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let key = Credential::bearer("layer-token").unwrap();
    let layer = RefreshLayer::builder(key.clone())
        .allow_origin(format!("http://{a}"))
        .initial_credential(key)
        .build()
        .unwrap();
    let api = ReqwestClient::new(layer, ReqwestService::new().unwrap());
    let limit = Duration::from_millis(200);
    let req = reqwest::Client::new()
        .get(format!("http://{a}/to-pit"))
        .timeout(limit)
        .build()
        .unwrap();
    // A guard against a hang (the bug this test is for), not a timing assertion.
    let res = tokio::time::timeout(Duration::from_secs(60), api.execute(req))
        .await
        .expect("the request's timeout ended the call");
    assert!(
        matches!(res, Err(refresh_layer::Error::Timeout(d)) if d == limit),
        "{res:?}"
    );
}
