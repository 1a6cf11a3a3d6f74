//! Holes an adversarial review found in the refresh layer, each pinned over real HTTP: token
//! endpoints that overflow the clock or answer late, account switches during a refresh,
//! duplicated cookies, short-lived tokens, 401s to requests that did not carry the credential,
//! and which methods are retried.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use auth_layer::jwt::JwtAuthenticator;
use auth_layer::{AuthLayer, Principal};
use axum::Router;
use axum::http::HeaderMap;
use axum::response::Redirect;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use portcullis_testkit::loopback::serve;
use portcullis_testkit::{TestIssuer, TestTokenEndpoint, TokenEndpointMode};
use refresh_layer::{
    Credential, CredentialSource, Error, OAuth2, RefreshError, RefreshLayer, RefreshService,
    SignIn, SignInError, from_fn,
};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::follow_redirect::FollowRedirectLayer;

use common::{Http, get_req, http, text};

const AUD: &str = "api";

/// An API that answers with the subject of the token it accepted, and counts requests.
struct Api {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
}

async fn api(issuer: &TestIssuer) -> Api {
    let jwt = issuer
        .verification_keys()
        .into_iter()
        .fold(JwtAuthenticator::builder().audience(AUD), |b, k| b.key(k))
        .build()
        .unwrap();
    let requests = Arc::new(AtomicU64::new(0));
    let r = requests.clone();
    let app = Router::new()
        .route(
            "/me",
            get(|p: Principal| async move { p.subject().unwrap_or_default().to_owned() }),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
        .layer(AuthLayer::bearer(jwt).unwrap())
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                r.fetch_add(1, Ordering::SeqCst);
                next.run(req)
            },
        ));
    Api {
        addr: serve(app).await,
        requests,
    }
}

/// A client whose credentials come from `source` and go to `api` only.
fn client_for(source: impl CredentialSource, api: SocketAddr) -> RefreshService<Http> {
    ServiceBuilder::new()
        .layer(
            RefreshLayer::builder(source)
                .allow_origin(format!("http://{api}"))
                .build()
                .unwrap(),
        )
        .service(http())
}

/// `n` requests, each answered 200.
async fn burst(svc: &RefreshService<Http>, api: SocketAddr, n: usize) {
    for _ in 0..n {
        let res = svc.clone().oneshot(get_req(api, "/me")).await.unwrap();
        assert_eq!(res.status(), 200);
    }
}

fn bearer(issuer: &TestIssuer, sub: &str, ttl: i64) -> Credential {
    Credential::bearer(&issuer.mint(
        jsonwebtoken::Algorithm::ES256,
        issuer.access_claims(sub, AUD, "read", ttl),
    ))
    .unwrap()
}

/// A source that mints alice's tokens (after `delay`), and how many it minted.
fn counting_source(
    issuer: &Arc<TestIssuer>,
    delay: Duration,
) -> (impl CredentialSource + use<>, Arc<AtomicU64>) {
    let fetches = Arc::new(AtomicU64::new(0));
    let (i, f) = (issuer.clone(), fetches.clone());
    let source = from_fn(move || {
        f.fetch_add(1, Ordering::SeqCst);
        let i = i.clone();
        async move {
            tokio::time::sleep(delay).await;
            Ok(bearer(&i, "alice", 300))
        }
    });
    (source, fetches)
}

/// `"expires_in": 18446744073709551615` used to overflow `Instant + Duration` inside the refresh
/// task: the task died before storing anything, and every later request fetched (and would have
/// rotated) a new token. Now the lifetime is clamped: one fetch serves every request.
#[tokio::test]
async fn a_lifetime_beyond_the_clock_from_the_token_endpoint_is_clamped() {
    let issuer = Arc::new(TestIssuer::new("https://id.test"));
    let a = api(&issuer).await;
    let calls = Arc::new(AtomicU64::new(0));
    let (i, c) = (issuer.clone(), calls.clone());
    let endpoint = serve(Router::new().route(
        "/token",
        post(move || async move {
            c.fetch_add(1, Ordering::SeqCst);
            let token = i.mint(
                jsonwebtoken::Algorithm::ES256,
                i.access_claims("svc", AUD, "read", 300),
            );
            (
                [("content-type", "application/json")],
                format!(
                    r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":18446744073709551615}}"#
                ),
            )
        }),
    ))
    .await;
    let source = OAuth2::builder(&format!("http://{endpoint}/token"), "c")
        .client_secret("s")
        .client_credentials(http())
        .unwrap();
    burst(&client_for(source, a.addr), a.addr, 5).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// The server rotated the refresh token and its answer arrived after the caller's timeout. The
/// answer is still read and stored, so the next refresh presents the new refresh token: no
/// reuse, no revoked family, no forced sign-in.
#[tokio::test]
async fn a_late_token_answer_after_rotation_is_kept() {
    let issuer = Arc::new(TestIssuer::new("https://id.test"));
    let a = api(&issuer).await;
    let endpoint = TestTokenEndpoint::new(issuer.clone(), AUD, "demo", "demo-secret");
    let token_addr = serve(endpoint.router()).await;
    let rt = endpoint.issue_refresh_token("alice", "read");
    let source = OAuth2::builder(&format!("http://{token_addr}/oauth/token"), "demo")
        .client_secret("demo-secret")
        .refresh_token(&rt, http())
        .unwrap();
    let layer = RefreshLayer::builder(source)
        .allow_origin(format!("http://{}", a.addr))
        .initial_credential(bearer(&issuer, "alice", -120))
        .refresh_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new().layer(layer).service(http());
    // Tokens that expire soon, so the next refresh comes by itself.
    endpoint.set_access_ttl(Duration::from_secs(2));
    endpoint.set_mode(TokenEndpointMode::AnswerLate(Duration::from_millis(700)));
    let first = svc.clone().oneshot(get_req(a.addr, "/me")).await;
    assert!(
        matches!(first, Err(Error::Refresh(RefreshError::Timeout(_)))),
        "{first:?}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    endpoint.set_mode(TokenEndpointMode::Normal);
    let res = svc.clone().oneshot(get_req(a.addr, "/me")).await.unwrap();
    assert_eq!(res.status(), 200, "the late answer was stored");
    assert_eq!(endpoint.calls(), 1);
    // Refresh again once that token expires: it must present the rotated refresh token.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = svc.clone().oneshot(get_req(a.addr, "/me")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(endpoint.calls(), 2);
    assert_eq!(
        endpoint.reuse_detected(),
        0,
        "a spent refresh token was sent"
    );
}

/// After an account switch (`set` while a refresh for the previous user runs), requests go out
/// as the new user: the refresh's result is dropped. `clear` signs out without a token call;
/// `set_refresh_token` starts again from another user's refresh token.
#[tokio::test]
async fn an_account_switch_during_a_refresh_is_not_overwritten() {
    let issuer = Arc::new(TestIssuer::new("https://id.test"));
    let a = api(&issuer).await;
    let (source, fetches) = counting_source(&issuer, Duration::from_millis(300));
    let layer = RefreshLayer::builder(source)
        .allow_origin(format!("http://{}", a.addr))
        .build()
        .unwrap();
    let handle = layer.handle();
    let svc = ServiceBuilder::new().layer(layer).service(http());
    let first = tokio::spawn(svc.clone().oneshot(get_req(a.addr, "/me")));
    tokio::time::sleep(Duration::from_millis(50)).await;
    handle.set(bearer(&issuer, "bob", 300));
    let res = first.await.unwrap().unwrap();
    assert_eq!(text(res).await, "bob", "the waiting request goes as bob");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let res = svc.clone().oneshot(get_req(a.addr, "/me")).await.unwrap();
    assert_eq!(
        text(res).await,
        "bob",
        "the old refresh did not overwrite bob"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // Sign out: nothing is sent, the source is not asked.
    handle.sign_out();
    let before = a.requests.load(Ordering::SeqCst);
    let out = svc.clone().oneshot(get_req(a.addr, "/me")).await;
    assert!(
        matches!(out, Err(Error::Refresh(RefreshError::SignedOut))),
        "{out:?}"
    );
    assert_eq!(a.requests.load(Ordering::SeqCst), before);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    handle.set(bearer(&issuer, "bob", 300));
    let res = svc.clone().oneshot(get_req(a.addr, "/me")).await.unwrap();
    assert_eq!(text(res).await, "bob");
    assert_eq!(
        handle.sign_in(SignIn::with_refresh_token("rt")),
        Err(SignInError::SourceKeepsNoRefreshToken),
        "a closure source keeps no refresh token"
    );
}

/// Alice signed in through a refresh-token source: the API, the token endpoint, the layer's
/// handle and the client, after one request that went as alice.
struct SignedIn {
    issuer: Arc<TestIssuer>,
    a: Api,
    endpoint: TestTokenEndpoint,
    handle: refresh_layer::CredentialHandle,
    svc: RefreshService<Http>,
}

async fn signed_in_as_alice() -> SignedIn {
    let issuer = Arc::new(TestIssuer::new("https://id.test"));
    let a = api(&issuer).await;
    let endpoint = TestTokenEndpoint::new(issuer.clone(), AUD, "demo", "demo-secret");
    let token_addr = serve(endpoint.router()).await;
    let source = OAuth2::builder(&format!("http://{token_addr}/oauth/token"), "demo")
        .client_secret("demo-secret")
        .refresh_token(&endpoint.issue_refresh_token("alice", "read"), http())
        .unwrap();
    let layer = RefreshLayer::builder(source)
        .allow_origin(format!("http://{}", a.addr))
        .build()
        .unwrap();
    let handle = layer.handle();
    let svc = ServiceBuilder::new().layer(layer).service(http());
    let res = svc.clone().oneshot(get_req(a.addr, "/me")).await.unwrap();
    assert_eq!(text(res).await, "alice");
    SignedIn {
        issuer,
        a,
        endpoint,
        handle,
        svc,
    }
}

#[tokio::test]
async fn a_new_refresh_token_replaces_the_previous_sign_in() {
    let SignedIn {
        a,
        endpoint,
        handle,
        svc,
        ..
    } = signed_in_as_alice().await;
    handle
        .sign_in(SignIn::with_refresh_token(
            endpoint.issue_refresh_token("carol", "read"),
        ))
        .unwrap();
    let res = svc.clone().oneshot(get_req(a.addr, "/me")).await.unwrap();
    assert_eq!(text(res).await, "carol");
    // Signing out forgets the refresh token too.
    handle.sign_out();
    let out = svc.clone().oneshot(get_req(a.addr, "/me")).await;
    assert!(matches!(out, Err(Error::Refresh(RefreshError::SignedOut))));
    assert_eq!(endpoint.calls(), 2);
}

/// With `replace_existing(true)` a cookie credential replaces a cookie of the same name the
/// request carries; the server sees one `sid`, ours.
#[tokio::test]
async fn replacing_a_cookie_credential_leaves_one_cookie_of_that_name() {
    let addr = serve(Router::new().route(
        "/cookies",
        get(|h: HeaderMap| async move {
            h.get_all("cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join(" | ")
        }),
    ))
    .await;
    let c = Credential::cookie("sid", "ours").unwrap();
    let svc = ServiceBuilder::new()
        .layer(
            RefreshLayer::builder(c.clone())
                .allow_origin(format!("http://{addr}"))
                .initial_credential(c)
                .replace_existing(true)
                .build()
                .unwrap(),
        )
        .service(http());
    let req = Request::get(format!("http://{addr}/cookies"))
        .header("cookie", "sid=theirs; theme=dark")
        .body(Full::default())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(text(res).await, "theme=dark; sid=ours");
}

/// Tokens that live 10 s with the default 30 s skew: one token call for a burst of requests,
/// not one per request.
#[tokio::test]
async fn short_lived_tokens_are_not_refreshed_before_every_request() {
    let issuer = Arc::new(TestIssuer::new("https://id.test"));
    let a = api(&issuer).await;
    let endpoint = TestTokenEndpoint::new(issuer.clone(), AUD, "demo", "demo-secret");
    endpoint.set_access_ttl(Duration::from_secs(10));
    let token_addr = serve(endpoint.router()).await;
    let source = OAuth2::builder(&format!("http://{token_addr}/oauth/token"), "demo")
        .client_secret("demo-secret")
        .client_credentials(http())
        .unwrap();
    burst(&client_for(source, a.addr), a.addr, 10).await;
    assert_eq!(endpoint.calls(), 1);
}

/// A: `/to-b` → B; B: `/back` → A `/final`; A: `/same` → A `/final`; `/final` needs a token.
/// B counts its visits.
struct Bounce {
    a: SocketAddr,
    b_visits: Arc<AtomicU64>,
}

async fn bounce(issuer: &TestIssuer) -> Bounce {
    let la = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a, b) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let jwt = issuer
        .verification_keys()
        .into_iter()
        .fold(JwtAuthenticator::builder().audience(AUD), |bld, k| {
            bld.key(k)
        })
        .build()
        .unwrap();
    let app_a = Router::new()
        .route(
            "/final",
            get(|p: Principal| async move { p.subject().unwrap_or_default().to_owned() })
                .layer(AuthLayer::bearer(jwt).unwrap()),
        )
        .route(
            "/to-b",
            get(move || async move { Redirect::temporary(&format!("http://{b}/back")) }),
        )
        .route("/same", get(|| async { Redirect::temporary("/final") }));
    let b_visits = Arc::new(AtomicU64::new(0));
    let v = b_visits.clone();
    let app_b = Router::new().route(
        "/back",
        get(move || async move {
            v.fetch_add(1, Ordering::SeqCst);
            Redirect::temporary(&format!("http://{a}/final"))
        }),
    );
    tokio::spawn(async move { axum::serve(la, app_a).await.unwrap() });
    tokio::spawn(async move { axum::serve(lb, app_b).await.unwrap() });
    Bounce { a, b_visits }
}

/// A → B → A with `FollowRedirect` inside the layer: the credential is (rightly) dropped on the
/// way back, so the final 401 says nothing about it. The layer returns it as it is: no refresh
/// of a good token, no replay of the chain (B visited once). A same-origin redirect keeps the
/// credential, and there a 401 still refreshes and retries.
#[tokio::test]
async fn a_401_to_a_redirect_hop_without_the_credential_does_not_refresh() {
    let issuer = Arc::new(TestIssuer::new("https://id.test"));
    let s = bounce(&issuer).await;
    for scoped in [true, false] {
        s.b_visits.store(0, Ordering::SeqCst);
        let (source, fetches) = counting_source(&issuer, Duration::ZERO);
        let layer = RefreshLayer::builder(source)
            .allow_origin(format!("http://{}", s.a))
            .initial_credential(bearer(&issuer, "alice", 300))
            .build()
            .unwrap();
        let svc = if scoped {
            let policy = layer.redirect_policy();
            ServiceBuilder::new()
                .layer(layer)
                .layer(FollowRedirectLayer::with_policy(policy))
                .service(http())
                .boxed_clone()
        } else {
            ServiceBuilder::new()
                .layer(layer)
                .layer(FollowRedirectLayer::new())
                .service(http())
                .boxed_clone()
        };
        let res = svc.clone().oneshot(get_req(s.a, "/to-b")).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "scoped: {scoped}");
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            0,
            "scoped: {scoped}: refreshed"
        );
        assert_eq!(
            s.b_visits.load(Ordering::SeqCst),
            1,
            "scoped: {scoped}: replayed"
        );
        if scoped {
            // Same origin: the credential travels, and an expired one is refreshed once.
            let (source, fetches) = counting_source(&issuer, Duration::ZERO);
            let expired = RefreshLayer::builder(source)
                .allow_origin(format!("http://{}", s.a))
                .initial_credential(Credential::bearer("not-a-valid-token").unwrap())
                .build()
                .unwrap();
            let policy = expired.redirect_policy();
            let mut svc = ServiceBuilder::new()
                .layer(expired)
                .layer(FollowRedirectLayer::with_policy(policy))
                .service(http());
            let res = svc
                .ready()
                .await
                .unwrap()
                .call(get_req(s.a, "/same"))
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(text(res).await, "alice");
            assert_eq!(fetches.load(Ordering::SeqCst), 1);
        }
    }
}

/// With `retry_only([GET])` a POST refused with 401 is not sent twice; the credential is still
/// refreshed, so the next request succeeds without another token call.
#[tokio::test]
async fn retry_only_keeps_other_methods_from_being_sent_twice() {
    let issuer = Arc::new(TestIssuer::new("https://id.test"));
    let a = api(&issuer).await;
    let (source, fetches) = counting_source(&issuer, Duration::ZERO);
    let svc = ServiceBuilder::new()
        .layer(
            RefreshLayer::builder(source)
                .allow_origin(format!("http://{}", a.addr))
                .initial_credential(bearer(&issuer, "alice", -120))
                .retry_only([Method::GET, Method::HEAD])
                .build()
                .unwrap(),
        )
        .service(http());
    let post = Request::post(format!("http://{}/echo", a.addr))
        .body(Full::from("transfer 100"))
        .unwrap();
    let before = a.requests.load(Ordering::SeqCst);
    let res = svc.clone().oneshot(post).await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(a.requests.load(Ordering::SeqCst), before + 1, "sent once");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "refreshed in the background"
    );
    let post = Request::post(format!("http://{}/echo", a.addr))
        .body(Full::from("transfer 100"))
        .unwrap();
    let res = svc.clone().oneshot(post).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

/// A new sign-in with only an access token (bob's) replaces the previous account's whole
/// state: when bob's token is refused, the refresh cannot bring alice back.
#[tokio::test]
async fn a_new_sign_in_never_refreshes_back_into_the_previous_account() {
    let SignedIn {
        issuer,
        a,
        endpoint,
        handle,
        svc,
    } = signed_in_as_alice().await;
    let calls = endpoint.calls();
    // Bob signs in on this client; his access token is (or soon is) refused by the API.
    handle.set(bearer(&issuer, "bob", -60));
    let out = svc.clone().oneshot(get_req(a.addr, "/me")).await;
    if let Ok(res) = out {
        assert_ne!(
            text(res).await,
            "alice",
            "refreshed back into alice's account"
        );
    }
    assert_eq!(
        endpoint.calls(),
        calls,
        "alice's refresh token was used after bob signed in"
    );
    // Bob's whole sign-in (access and refresh token together): the refresh stays bob's.
    handle
        .sign_in(
            SignIn::access(bearer(&issuer, "bob", -60))
                .refresh_token(endpoint.issue_refresh_token("bob", "read")),
        )
        .unwrap();
    let res = svc.clone().oneshot(get_req(a.addr, "/me")).await.unwrap();
    assert_eq!(text(res).await, "bob", "refreshed with bob's refresh token");
    assert_eq!(endpoint.calls(), calls + 1);
    // Signing out drops both: nothing is sent, no token request.
    handle.sign_out();
    let out = svc.clone().oneshot(get_req(a.addr, "/me")).await;
    assert!(
        matches!(out, Err(Error::Refresh(RefreshError::SignedOut))),
        "{out:?}"
    );
    assert_eq!(endpoint.calls(), calls + 1);
}
