//! `refresh_on_revoked_token`: a `403` whose problem body says `token_revoked` refreshes once
//! and is retried once, like a `401`; nothing else about a `403` ever refreshes. Over real
//! HTTP on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use http::StatusCode;
use portcullis_testkit::loopback::serve;
use portcullis_wire::ErrorCode;
use refresh_layer::{
    AuthFailure, Credential, CredentialSource, FetchFuture, RefreshLayer, RefreshOutcome,
    RefreshService, RetriedAfter, from_fn,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Layer, ServiceExt};

use common::{Http, get_req, http, text};

/// The credentials each request carried, in order.
type Seen = Arc<Mutex<Vec<String>>>;

fn problem(code: &str) -> axum::response::Response {
    let body =
        format!(r#"{{"type":"about:blank","title":"Forbidden","status":403,"code":"{code}"}}"#);
    (
        StatusCode::FORBIDDEN,
        [(http::header::CONTENT_TYPE, "application/problem+json")],
        body,
    )
        .into_response()
}

/// An API where `t0` has been revoked: `/revoked` refuses it with `403 token_revoked` and
/// accepts any later token; `/always-revoked` refuses every token that way; `/forbidden`
/// refuses every token with `403` and another code.
async fn api() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let auth = move |h: &HeaderMap| {
        let a = h["authorization"].to_str().unwrap().to_owned();
        log.lock().unwrap().push(a.clone());
        a
    };
    let (a1, a2, a3) = (auth.clone(), auth.clone(), auth);
    let app = Router::new()
        .route(
            "/revoked",
            get(move |h: HeaderMap| async move {
                if a1(&h) == "Bearer t0" {
                    problem("token_revoked")
                } else {
                    "hello".into_response()
                }
            }),
        )
        .route(
            "/always-revoked",
            get(move |h: HeaderMap| async move {
                a2(&h);
                problem("token_revoked")
            }),
        )
        .route(
            "/forbidden",
            get(move |h: HeaderMap| async move {
                a3(&h);
                problem("insufficient_scope")
            }),
        );
    (serve(app).await, seen)
}

/// A layer whose source hands out `t0`, `t1`, … and counts its fetches.
fn client(addr: SocketAddr, revoked_token_rule: bool) -> (RefreshService<Http>, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let source = from_fn(move || {
        let i = counter.fetch_add(1, Ordering::SeqCst);
        async move { Ok(Credential::bearer(&format!("t{i}")).unwrap()) }
    });
    let layer = RefreshLayer::builder(source)
        .allow_origin(format!("http://{addr}"))
        .refresh_on_revoked_token(revoked_token_rule)
        .build()
        .unwrap();
    (layer.layer(http()), fetches)
}

#[tokio::test]
async fn a_403_token_revoked_problem_refreshes_once_and_is_retried_once_with_the_rule_on() {
    let (addr, seen) = api().await;
    let (svc, fetches) = client(addr, true);
    let res = svc.oneshot(get_req(addr, "/revoked")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.extensions().get::<RefreshOutcome>().unwrap().retried);
    let first = &res.extensions().get::<RetriedAfter>().unwrap().0;
    assert_eq!(first.status, StatusCode::FORBIDDEN);
    assert_eq!(first.code(), Some(ErrorCode::TokenRevoked));
    assert_eq!(text(res).await, "hello");
    assert_eq!(*seen.lock().unwrap(), ["Bearer t0", "Bearer t1"]);
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "the first fetch and one refresh"
    );
}

#[tokio::test]
async fn a_second_token_revoked_403_is_the_final_answer() {
    let (addr, seen) = api().await;
    let (svc, fetches) = client(addr, true);
    let res = svc.oneshot(get_req(addr, "/always-revoked")).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.extensions().get::<RefreshOutcome>().unwrap().retried);
    assert_eq!(*seen.lock().unwrap(), ["Bearer t0", "Bearer t1"]);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn without_the_rule_a_403_never_refreshes_and_its_body_is_untouched() {
    let (addr, seen) = api().await;
    let (svc, fetches) = client(addr, false);
    let res = svc.oneshot(get_req(addr, "/revoked")).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(!res.extensions().get::<RefreshOutcome>().unwrap().retried);
    assert!(text(res).await.contains("token_revoked"));
    assert_eq!(*seen.lock().unwrap(), ["Bearer t0"]);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_403_with_another_code_never_refreshes_even_with_the_rule_on() {
    let (addr, seen) = api().await;
    let (svc, fetches) = client(addr, true);
    let res = svc.oneshot(get_req(addr, "/forbidden")).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(!res.extensions().get::<RefreshOutcome>().unwrap().retried);
    // The layer read the problem body to judge it: what it said is in `AuthFailure`.
    let failure = res.extensions().get::<AuthFailure>().unwrap();
    assert_eq!(failure.code(), Some(ErrorCode::InsufficientScope));
    assert_eq!(*seen.lock().unwrap(), ["Bearer t0"]);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

/// A `403` problem whose body stops halfway and stays stalled past the time the layer gives it
/// (a raw HTTP/1.1 answer on loopback): the layer had to read into it to judge it, so the
/// caller gets an error, never the rest of the body as if it were all of it.
#[tokio::test]
async fn a_403_problem_body_cut_short_is_an_error_not_a_truncated_answer() {
    let (listener, addr) = common::bind().await;
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = conn.read(&mut request).await;
        let body = r#"{"type":"about:blank","status":403,"code":"insufficient_scope"}"#;
        let head = format!(
            "HTTP/1.1 403 Forbidden\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(&body.as_bytes()[..20]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = conn.write_all(&body.as_bytes()[20..]).await;
    });
    let (svc, fetches) = client(addr, true);
    match svc.oneshot(get_req(addr, "/stalls")).await {
        Err(e) => assert!(
            e.to_string().contains("403"),
            "the error says which answer was lost: {e}"
        ),
        Ok(res) => {
            let status = res.status();
            panic!(
                "a cut-short body was handed on as a {status} with body {:?}",
                text(res).await
            )
        }
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "nothing was refreshed");
}

/// A source that hands out `t0`, `t1`, … and records the scopes each refusal asked for with
/// `insufficient_scope` (what a source like `Discovery` would add to its next token request).
#[derive(Clone, Default)]
struct ScopeRecorder(Arc<Recorded>);

#[derive(Default)]
struct Recorded {
    fetches: AtomicUsize,
    asked: Mutex<Vec<String>>,
}

impl CredentialSource for ScopeRecorder {
    fn fetch(&self) -> FetchFuture {
        let i = self.0.fetches.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(Credential::bearer(&format!("t{i}")).unwrap()) })
    }

    fn refused(&self, failure: &AuthFailure) {
        for c in &failure.challenges {
            if c.param("error") == Some("insufficient_scope") {
                let scope = c.param("scope").unwrap_or("").to_owned();
                self.0.asked.lock().unwrap().push(scope);
            }
        }
    }
}

/// The scopes a server names in a `403` reach the source only where step-up was asked for:
/// with the revoked-token rule alone, a revoked token is replaced by one like it.
#[tokio::test]
async fn a_revoked_token_403_asks_for_no_new_scopes_without_step_up() {
    let app = Router::new().route(
        "/revoked-wants-admin",
        get(|h: HeaderMap| async move {
            let mut res = if h["authorization"] == "Bearer t0" {
                problem("token_revoked")
            } else {
                "hello".into_response()
            };
            res.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                r#"Bearer error="insufficient_scope", scope="admin:all""#
                    .parse()
                    .unwrap(),
            );
            res
        }),
    );
    let addr = serve(app).await;
    for step_up in [false, true] {
        let source = ScopeRecorder::default();
        let svc = RefreshLayer::builder(source.clone())
            .allow_origin(format!("http://{addr}"))
            .refresh_on_revoked_token(true)
            .step_up(step_up)
            .build()
            .unwrap()
            .layer(http());
        let res = svc
            .oneshot(get_req(addr, "/revoked-wants-admin"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "step_up({step_up})");
        let asked = source.0.asked.lock().unwrap().clone();
        if step_up {
            assert_eq!(
                asked,
                ["admin:all"],
                "with step-up the source hears the scope"
            );
        } else {
            assert!(
                asked.is_empty(),
                "without step-up it was told to add {asked:?}"
            );
        }
    }
}
