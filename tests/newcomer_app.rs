//! The app a newcomer builds from the README, with the `portcullis` package alone: an axum API
//! verifying RS256 tokens (public key as PEM, `iss` and `aud` checked) with a typed `tenant`
//! claim, a scope per route, a public route, CORS with credentials, an API key on one route for
//! machine clients; and a hyper-util client with the `client_credentials` refresh layer, whose
//! 401 → refresh → retry path is tested with an already-expired token. All over real HTTP.
//! The server is the one of `examples/orders_api` (`portcullis_examples_support::orders_app`),
//! the example users copy.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis::client::{Credential, OAuth2, RefreshLayer};
use portcullis::server::jsonwebtoken::Algorithm;
use portcullis::testkit::TestTokenEndpoint;
use portcullis::testkit::loopback::serve;
use portcullis_examples_support::orders_app as app;
use tower::{ServiceBuilder, ServiceExt};

const AUDIENCE: &str = "orders-api";
const APP: &str = "https://app.example.com";

/// The app of `examples/orders_api`, with its keys from a token endpoint on loopback.
async fn api(tokens: &TestTokenEndpoint) -> std::net::SocketAddr {
    let app = app::router(app::Config {
        issuer: tokens.issuer().issuer().to_owned(),
        audience: AUDIENCE.into(),
        public_pem: tokens
            .issuer()
            .public_pem(Algorithm::RS256)
            .unwrap()
            .into_bytes(),
        api_keys: vec![("deploy-key-1".into(), "ci".into())],
        allow_origin: APP.into(),
        // Tests of expiry: no leeway, so a token that expired is refused at once.
        leeway: Duration::ZERO,
    })
    .unwrap();
    serve(app).await
}

async fn body(res: http::Response<impl http_body::Body<Error: std::fmt::Debug>>) -> String {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn the_readme_app_works_end_to_end() {
    let (tokens, token_url) = TestTokenEndpoint::start(AUDIENCE, "my-client", "my-secret").await;
    tokens.set_algorithm(Algorithm::RS256);
    tokens.set_extra_claims(serde_json::json!({"tenant": "acme"}));
    tokens.set_client_scopes(["read"]);
    let addr = api(&tokens).await;
    let url = |path: &str| format!("http://{addr}{path}");

    // The client: hyper-util with the refresh layer, scoped to the API's origin.
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let source = OAuth2::builder(&token_url, "my-client")
        .client_secret("my-secret")
        .scope("read")
        .client_credentials(http.clone())
        .unwrap();
    let layer = RefreshLayer::builder(source)
        .allow_origin(format!("http://{addr}"))
        .build()
        .unwrap();
    let handle = layer.handle();
    let api = ServiceBuilder::new().layer(layer).service(http.clone());
    let get_req = |path: &str| Request::get(url(path)).body(Full::default()).unwrap();

    // A typed claim reaches the handler; the first request fetched a token.
    let res = api.clone().oneshot(get_req("/orders")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, "orders of acme");
    assert_eq!(tokens.calls(), 1);

    // A scope the client was not granted: 403, and no refresh (a new token would not help).
    let res = api
        .clone()
        .oneshot(Request::post(url("/orders")).body(Full::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(tokens.calls(), 1);

    // Expiry: the token in hand expired; one 401, one refresh, one retry, then 200.
    handle.set(Credential::bearer(&tokens.expired_access_token("my-client", "read")).unwrap());
    let res = api.clone().oneshot(get_req("/orders")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(tokens.calls(), 2);

    // The machine route takes the API key, and refuses the user's token.
    let deploy = |key: Option<&str>| {
        let mut r = Request::post(url("/deploy"));
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        r.body(Full::<Bytes>::default()).unwrap()
    };
    let res = http.request(deploy(Some("deploy-key-1"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, "deployed by ci");
    let res = api.clone().oneshot(deploy(None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // The public route, and a browser page's view of a failure: readable, with credentials.
    let res = http.request(get_req("/health")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = http
        .request(
            Request::builder()
                .method(Method::GET)
                .uri(url("/orders"))
                .header("origin", APP)
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], APP);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(
        h["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("www-authenticate")
    );
}

/// The example runs as is: its first line names the API, which answers on its public route
/// and refuses an anonymous call to a protected one.
#[tokio::test]
async fn the_orders_example_starts_and_serves() {
    let (mut child, api) = support::start_example("orders_api", &[]).await;
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let get = |path: &str| {
        Request::get(format!("{api}{path}"))
            .body(Full::default())
            .unwrap()
    };
    assert_eq!(
        http.request(get("/health")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        http.request(get("/orders")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    child.kill().await.unwrap();
}
