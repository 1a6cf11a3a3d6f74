//! Credentials stay on their origin through redirects, with `tower_http::follow_redirect`
//! outside or inside the refresh layer, over real HTTP. Server B records every credential
//! header it ever receives and must see none.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request as AxumRequest;
use axum::http::HeaderMap;
use axum::response::Redirect;
use axum::routing::get;
use refresh_layer::{Credential, RefreshLayer};
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
