//! The app a newcomer builds from the README, with the `portcullis` package alone: an axum API
//! verifying RS256 tokens (public key as PEM, `iss` and `aud` checked) with a typed `tenant`
//! claim, a scope per route, a public route, CORS with credentials, an API key on one route for
//! machine clients; and a hyper-util client with the `client_credentials` refresh layer, whose
//! 401 → refresh → retry path is tested with an already-expired token. All over real HTTP.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis::client::{Credential, OAuth2, RefreshLayer};
use portcullis::server::cors::CorsPreset;
use portcullis::server::jwt::{Algorithm, JwtAuthenticator, JwtKey};
use portcullis::server::{
    ApiKeys, AuthLayer, Claims, CredentialKind, Principal, RequireCredential, RequireScope,
};
use portcullis::testkit::TokenEndpoint;
use portcullis::testkit::http::serve;
use serde::Deserialize;
use tower::{ServiceBuilder, ServiceExt};

const AUDIENCE: &str = "orders-api";
const APP: &str = "https://app.example.com";

#[derive(Clone, Deserialize)]
struct OrderClaims {
    tenant: String,
}

async fn orders(Claims(c): Claims<OrderClaims>) -> String {
    format!("orders of {}", c.tenant)
}

/// The server of the README, with its keys from a token endpoint on loopback.
async fn api(tokens: &TokenEndpoint) -> std::net::SocketAddr {
    let pem = tokens.issuer().public_pem(Algorithm::RS256).unwrap();
    let jwt = JwtAuthenticator::builder()
        .key(JwtKey::rsa_pem(pem.as_bytes(), &[Algorithm::RS256]).unwrap())
        .issuer(tokens.issuer().issuer())
        .audience(AUDIENCE)
        // Tests of expiry: no leeway, so a token that expired is refused at once.
        .leeway(Duration::ZERO)
        .claims::<OrderClaims>()
        .build()
        .unwrap();
    let machines = ApiKeys::new().with_key(
        "deploy-key-1",
        Principal::builder(CredentialKind::ApiKey)
            .subject("ci")
            .build(),
    );
    let app = Router::new()
        .route(
            "/orders",
            get(orders)
                .route_layer(RequireScope::all(["read"]))
                .merge(post(|| async { "created" }).route_layer(RequireScope::all(["write"]))),
        )
        .route(
            "/deploy",
            post(|p: Principal| async move { format!("deployed by {}", p.subject().unwrap()) })
                .route_layer(RequireCredential::any_of([CredentialKind::ApiKey])),
        )
        .layer(
            AuthLayer::builder()
                .realm("orders")
                .bearer(jwt)
                .api_key("x-api-key", machines)
                .build()
                .unwrap(),
        )
        // After the auth layer: public.
        .route("/health", get(|| async { "ok" }))
        .layer(
            CorsPreset::new()
                .allow_origin(APP)
                .allow_header("x-api-key")
                .build()
                .unwrap(),
        );
    serve(app).await
}

async fn body(res: http::Response<impl http_body::Body<Error: std::fmt::Debug>>) -> String {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn the_readme_app_works_end_to_end() {
    let (tokens, token_url) = TokenEndpoint::start(AUDIENCE, "my-client", "my-secret").await;
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
