//! Credentials stay on their origin through redirects, with `tower_http::follow_redirect`
//! outside or inside the refresh layer, over real HTTP. Server B records every credential
//! header it ever receives and must see none.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request as AxumRequest;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use refresh_layer::{Credential, RefreshLayer, RetriedAfter, from_fn};
use serde_json::json;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::follow_redirect::FollowRedirectLayer;

use common::{body_json, get_req, http};

type Log = Arc<Mutex<Vec<String>>>;

const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "x-api-key"];

fn credentials(h: &HeaderMap) -> Vec<String> {
    CREDENTIAL_HEADERS
        .iter()
        .filter_map(|n| {
            h.get(*n)
                .map(|v| format!("{n}: {}", v.to_str().unwrap_or("?")))
        })
        .collect()
}

struct Servers {
    a: SocketAddr,
    b: SocketAddr,
    b_saw: Log,
}

/// A: `/to-b` redirects to B, `/echo` shows what credentials arrived. B: `/landing` redirects
/// back to A's `/echo`, `/plain` answers; B logs every credential header.
impl Servers {
    /// No credential of A reached B.
    fn assert_b_saw_nothing(&self) {
        let saw = self.b_saw.lock().unwrap();
        assert!(saw.is_empty(), "B received {saw:?}");
    }
}

async fn servers() -> Servers {
    let la = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a, b) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let app_a = Router::new()
        .route(
            "/to-b",
            get(move || async move { Redirect::temporary(&format!("http://{b}/landing")) }),
        )
        .route(
            "/echo",
            get(|h: HeaderMap| async move { axum::Json(json!(credentials(&h))) }),
        );
    let b_saw: Log = Arc::default();
    let log = b_saw.clone();
    let app_b = Router::new()
        .route(
            "/landing",
            get(move || async move { Redirect::temporary(&format!("http://{a}/echo")) }),
        )
        .route("/plain", get(|| async { "b" }))
        .layer(axum::middleware::from_fn(
            move |req: AxumRequest, next: axum::middleware::Next| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().extend(credentials(req.headers()));
                    next.run(req).await
                }
            },
        ));
    tokio::spawn(async move { axum::serve(la, app_a).await.unwrap() });
    tokio::spawn(async move { axum::serve(lb, app_b).await.unwrap() });
    Servers { a, b, b_saw }
}

fn layers(a: SocketAddr) -> Vec<(&'static str, RefreshLayer)> {
    let make = |c: Credential| {
        RefreshLayer::builder(c.clone())
            .allow_origin(format!("http://{a}"))
            .initial_credential(c)
            .build()
            .unwrap()
    };
    vec![
        ("bearer", make(Credential::bearer("tok-a").unwrap())),
        (
            "api key",
            make(Credential::api_key_header("x-api-key", "key-a").unwrap()),
        ),
        (
            "cookie",
            make(Credential::cookie("sid", "cookie-a").unwrap()),
        ),
    ]
}

#[tokio::test]
async fn follow_redirect_outside_with_scoped_policy_never_carries_or_re_adds_credentials() {
    let s = servers().await;
    for (kind, layer) in layers(s.a) {
        let svc = ServiceBuilder::new()
            .layer(FollowRedirectLayer::with_policy(layer.redirect_policy()))
            .layer(layer)
            .service(http());
        // Without redirects the credential arrives at A.
        let res = svc.clone().oneshot(get_req(s.a, "/echo")).await.unwrap();
        assert_eq!(body_json(res).await.as_array().unwrap().len(), 1, "{kind}");
        // A -> B -> A: nothing at B, nothing re-added at A.
        let res = svc.oneshot(get_req(s.a, "/to-b")).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            body_json(res).await,
            json!([]),
            "{kind}: re-added after leaving the origin"
        );
    }
    s.assert_b_saw_nothing();
}

#[tokio::test]
async fn follow_redirect_inside_with_scoped_policy_strips_every_credential_header() {
    let s = servers().await;
    for (kind, layer) in layers(s.a) {
        let policy = layer.redirect_policy();
        let svc = ServiceBuilder::new()
            .layer(layer)
            .layer(FollowRedirectLayer::with_policy(policy))
            .service(http());
        let res = svc.oneshot(get_req(s.a, "/to-b")).await.unwrap();
        assert_eq!(body_json(res).await, json!([]), "{kind}");
    }
    s.assert_b_saw_nothing();
}

#[tokio::test]
async fn follow_redirect_outside_with_the_standard_policy_still_sends_nothing_to_b() {
    let s = servers().await;
    for (_, layer) in layers(s.a) {
        let svc = ServiceBuilder::new()
            .layer(FollowRedirectLayer::new())
            .layer(layer)
            .service(http());
        let res = svc.oneshot(get_req(s.a, "/to-b")).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    s.assert_b_saw_nothing();
}

/// Why `redirect_policy()` exists: tower-http's own filter strips `Authorization` and `Cookie`
/// across origins but not a custom API-key header.
#[tokio::test]
async fn standard_policy_inside_would_leak_an_api_key_header() {
    let s = servers().await;
    let (_, layer) = layers(s.a).remove(1);
    let svc = ServiceBuilder::new()
        .layer(layer)
        .layer(FollowRedirectLayer::new())
        .service(http());
    svc.oneshot(get_req(s.a, "/to-b")).await.unwrap();
    assert_eq!(*s.b_saw.lock().unwrap(), ["x-api-key: key-a"]);
}

#[tokio::test]
async fn requests_to_another_origin_carry_no_credential() {
    let s = servers().await;
    for (_, layer) in layers(s.a) {
        let svc = ServiceBuilder::new().layer(layer).service(http());
        let res = svc.oneshot(get_req(s.b, "/plain")).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    // Same host, other port: another origin.
    s.assert_b_saw_nothing();
}

/// A compromised allowed origin: `/hop/{i}` refuses (401, `invalid_token`) every token but
/// `t{i+1}`, and redirects to `/hop/{i+1}` once it gets it; `/once` refuses `t0` only.
async fn refusing_chain() -> SocketAddr {
    refusing_chain_with(|| refused().into_response()).await
}

/// [`refusing_chain`], each refusal answered by `refusal`.
async fn refusing_chain_with(refusal: fn() -> axum::response::Response) -> SocketAddr {
    let (l, a) = common::bind().await;
    let hop = move |axum::extract::Path(i): axum::extract::Path<u32>, h: HeaderMap| async move {
        let want = format!("Bearer t{}", i + 1);
        if h.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str()) {
            Redirect::temporary(&format!("/hop/{}", i + 1)).into_response()
        } else {
            refusal()
        }
    };
    let once = |h: HeaderMap| async move {
        if h.get("authorization").is_some_and(|v| v == "Bearer t0") {
            refused().into_response()
        } else {
            "ok".into_response()
        }
    };
    let app = Router::new()
        .route("/hop/{i}", get(hop))
        .route("/once", get(once));
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    a
}

fn refused() -> impl IntoResponse {
    (
        axum::http::StatusCode::UNAUTHORIZED,
        [("www-authenticate", r#"Bearer error="invalid_token""#)],
    )
}

/// Starts from `t0`; each refresh yields the next token (`t1`, `t2`, …) and is counted.
fn counting_layer(a: SocketAddr) -> (RefreshLayer, Arc<AtomicUsize>) {
    counting_layer_with(a, false)
}

/// [`counting_layer`], with the opt-in refresh rules (`token_revoked`, step-up) on or off.
fn counting_layer_with(a: SocketAddr, opt_ins: bool) -> (RefreshLayer, Arc<AtomicUsize>) {
    let fetched = Arc::new(AtomicUsize::new(0));
    let n = fetched.clone();
    let source = from_fn(move || {
        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Ok(Credential::bearer(&format!("t{i}")).unwrap()) }
    });
    let layer = RefreshLayer::builder(source)
        .allow_origin(format!("http://{a}"))
        .initial_credential(Credential::bearer("t0").unwrap())
        .refresh_on_revoked_token(opt_ins)
        .step_up(opt_ins)
        .build()
        .unwrap();
    (layer, fetched)
}

#[tokio::test]
async fn a_redirect_chain_refreshes_once_however_many_hops_refuse() {
    let a = refusing_chain().await;
    let (layer, fetched) = counting_layer(a);
    let handle = layer.handle();
    let svc = ServiceBuilder::new()
        .layer(FollowRedirectLayer::with_policy(layer.redirect_policy()))
        .layer(layer)
        .service(http());
    let res = svc.clone().oneshot(get_req(a, "/hop/0")).await.unwrap();
    // /hop/0: t0 refused, refreshed to t1, retried, redirected; /hop/1 refuses t1 and its 401
    // comes back as it is instead of a second refresh.
    assert_eq!(res.status(), 401);
    let uri = &res
        .extensions()
        .get::<tower_http::follow_redirect::RequestUri>()
        .unwrap()
        .0;
    assert_eq!(uri.path(), "/hop/1");
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        1,
        "one refresh for the chain"
    );
    assert_eq!(handle.refreshes(), 1);
    // Another call is another chain: it gets its own refresh (t1 refused at /hop/1, t2 taken).
    let res = svc.oneshot(get_req(a, "/hop/1")).await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(fetched.load(Ordering::SeqCst), 2);
}

/// The chain's one refresh is also the one of the opt-in rules: a `403 token_revoked` (with
/// `refresh_on_revoked_token`) and an `insufficient_scope` step-up refuse hop after hop too.
#[tokio::test]
async fn a_redirect_chain_gets_one_revoked_token_refresh_or_step_up_too() {
    fn revoked() -> axum::response::Response {
        (
            axum::http::StatusCode::FORBIDDEN,
            [("content-type", "application/problem+json")],
            r#"{"type":"about:blank","title":"Token revoked","status":403,"code":"token_revoked"}"#,
        )
            .into_response()
    }
    fn more_scope() -> axum::response::Response {
        (
            axum::http::StatusCode::FORBIDDEN,
            [(
                "www-authenticate",
                r#"Bearer error="insufficient_scope", scope="write""#,
            )],
        )
            .into_response()
    }
    for (name, refusal, status) in [
        ("token_revoked", revoked as fn() -> _, 403),
        ("step-up", more_scope as fn() -> _, 403),
    ] {
        let a = refusing_chain_with(refusal).await;
        let (layer, fetched) = counting_layer_with(a, true);
        let svc = ServiceBuilder::new()
            .layer(FollowRedirectLayer::with_policy(layer.redirect_policy()))
            .layer(layer)
            .service(http());
        let res = svc.oneshot(get_req(a, "/hop/0")).await.unwrap();
        assert_eq!(res.status(), status, "{name}");
        let uri = &res
            .extensions()
            .get::<tower_http::follow_redirect::RequestUri>()
            .unwrap()
            .0;
        // The first hop's refusal was refreshed and retried (it redirected on); the second
        // hop's is returned as it is.
        assert_eq!(uri.path(), "/hop/1", "{name}");
        assert_eq!(fetched.load(Ordering::SeqCst), 1, "{name}: one refresh");
    }
}

#[tokio::test]
async fn a_single_401_under_the_redirect_policy_still_refreshes_and_retries() {
    let a = refusing_chain().await;
    let (layer, fetched) = counting_layer(a);
    let svc = ServiceBuilder::new()
        .layer(FollowRedirectLayer::with_policy(layer.redirect_policy()))
        .layer(layer)
        .service(http());
    let res = svc.oneshot(get_req(a, "/once")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.extensions().get::<RetriedAfter>().is_some());
    assert_eq!(fetched.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_location_that_is_not_http_is_not_followed_and_the_3xx_is_returned() {
    let (l, a) = common::bind().await;
    let app = Router::new().route(
        "/away/{n}",
        get(
            |axum::extract::Path(n): axum::extract::Path<u8>| async move {
                let to = [
                    "data:,x",
                    "javascript:alert(1)",
                    "file:///etc/passwd",
                    "ftp://a/x",
                ];
                (
                    axum::http::StatusCode::FOUND,
                    [("location", to[usize::from(n)])],
                )
            },
        ),
    );
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let key = Credential::bearer("tok-a").unwrap();
    let layer = RefreshLayer::builder(key.clone())
        .allow_origin(format!("http://{a}"))
        .initial_credential(key)
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(FollowRedirectLayer::with_policy(layer.redirect_policy()))
        .layer(layer)
        .service(http());
    for n in 0..4 {
        let res = svc.clone().oneshot(get_req(a, &format!("/away/{n}"))).await;
        let res = res.unwrap_or_else(|e| panic!("location {n}: {e}"));
        assert_eq!(res.status(), 302, "location {n}");
    }
}
