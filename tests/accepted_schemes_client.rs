//! `AuthLayer::accepting` with Portcullis's own client in front: a `RefreshLayer` that holds a
//! bearer token and calls a route that takes only API keys. The route answers 403 `forbidden`,
//! which no new token can fix, so the client neither refreshes nor retries; a 401 there used
//! to cost a token fetch and a second request per call.
//! Over loopback: an axum server on 127.0.0.1:0 and a hyper-util client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis::client::{Credential, RefreshLayer, from_fn};
use portcullis::server::jsonwebtoken::Algorithm;
use portcullis::server::jwt::JwtAuthenticator;
use portcullis::server::{ApiKeys, AuthLayer, CredentialKind, Principal};
use portcullis::testkit::TestIssuer;
use portcullis::testkit::loopback::serve;
use tower::util::MapRequestLayer;
use tower::{Service, ServiceBuilder, ServiceExt};

/// `/me` takes bearer tokens only, `/deploy` API keys only, each behind its copy of one layer;
/// every request that reaches the server is counted, refused or not.
async fn api(issuer: &TestIssuer, requests: Arc<AtomicU64>) -> std::net::SocketAddr {
    let jwt = JwtAuthenticator::builder()
        .any_audience()
        .key(issuer.verification_keys().remove(0))
        .build()
        .unwrap();
    let keys = ApiKeys::new().with_key(
        "key-for-build-bot",
        Principal::builder(CredentialKind::ApiKey)
            .subject("build-bot")
            .build(),
    );
    let auth = AuthLayer::builder()
        .realm("api")
        .bearer(jwt)
        .api_key("x-api-key", keys)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/me",
            get(|| async { "me" }).route_layer(auth.accepting([CredentialKind::Bearer]).unwrap()),
        )
        .route(
            "/deploy",
            get(|| async { "deployed" })
                .route_layer(auth.accepting([CredentialKind::ApiKey]).unwrap()),
        )
        .layer(MapRequestLayer::new(move |req| {
            requests.fetch_add(1, Ordering::SeqCst);
            req
        }));
    serve(app).await
}

#[tokio::test]
async fn a_client_with_a_bearer_token_on_the_api_key_route_neither_refreshes_nor_retries() {
    let issuer = TestIssuer::new("https://id.test");
    let requests = Arc::new(AtomicU64::new(0));
    let addr = api(&issuer, requests.clone()).await;
    let fetches = Arc::new(AtomicU64::new(0));
    let counted = fetches.clone();
    // A valid user token each time: only its kind is wrong for `/deploy`.
    let token = move || {
        issuer.mint(
            Algorithm::HS256,
            issuer.access_claims("alice", "api", "read", 300),
        )
    };
    let source = from_fn(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let credential = Credential::bearer(&token()).unwrap();
        async move { Ok(credential) }
    });
    let layer = RefreshLayer::builder(source)
        .allow_origin(format!("http://{addr}"))
        .build()
        .unwrap();
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut client = ServiceBuilder::new().layer(layer).service(http);
    // Each call: its status, then (token fetches, requests the server saw) so far.
    let mut call = async |path: &str| {
        let req = Request::get(format!("http://{addr}{path}"))
            .body(Full::default())
            .unwrap();
        let res = client.ready().await.unwrap().call(req).await.unwrap();
        assert!(
            res.status() != StatusCode::FORBIDDEN
                || res.headers().get("www-authenticate").is_none(),
            "a 403 invites no new token"
        );
        let counts = (
            fetches.load(Ordering::SeqCst),
            requests.load(Ordering::SeqCst),
        );
        (res.status(), counts)
    };

    assert_eq!(
        call("/deploy").await,
        (StatusCode::FORBIDDEN, (1, 1)),
        "one token fetch and one request: no refresh, no retry"
    );
    // Two more calls: the held token is reused, each call is one request.
    assert_eq!(call("/deploy").await, (StatusCode::FORBIDDEN, (1, 2)));
    assert_eq!(call("/deploy").await, (StatusCode::FORBIDDEN, (1, 3)));
    // The same token is good where bearer tokens are taken: the 403 was about the kind.
    assert_eq!(call("/me").await, (StatusCode::OK, (1, 4)));
}
