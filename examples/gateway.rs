//! Both sides at once: a gateway that authenticates incoming requests with the auth layer and
//! forwards them to an upstream API with the refresh layer holding the gateway's own
//! credential. The caller's token never reaches the upstream; the gateway's never reaches the
//! caller.
//!
//! ```text
//! cargo run --example gateway -- [--listen ADDR]
//! ```
//! It starts the demo API (the upstream, with its identity provider) on a free port itself and
//! prints both addresses; call the gateway with a token from the upstream's provider.

#[path = "support/demo_app.rs"]
mod demo_app;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use demo_app::{AUDIENCE, CLIENT_ID, CLIENT_SECRET, DemoApi, DemoConfig};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis::client::{OAuth2, RefreshLayer, RefreshService};
use portcullis::server::jwt::JwtAuthenticator;
use portcullis::server::{AuthLayer, Principal};
use tower::ServiceExt;

type Upstream = RefreshService<Client<HttpConnector, Full<Bytes>>>;

#[derive(Clone)]
struct Gateway {
    upstream: Upstream,
    base: String,
}

/// Forward `/api/...` to the upstream with the gateway's credential; the caller's
/// `Authorization` is dropped, its subject passed on as `x-forwarded-user`.
async fn forward(State(gw): State<Gateway>, principal: Principal, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return (http::StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let uri = format!(
        "{}{}",
        gw.base,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut out = http::Request::builder().method(parts.method).uri(uri);
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "authorization" | "cookie" | "host" | "x-forwarded-user"
        ) {
            out = out.header(name, value);
        }
    }
    if let Some(sub) = principal.subject() {
        out = out.header("x-forwarded-user", sub);
    }
    let Ok(req) = out.body(Full::new(body)) else {
        return (http::StatusCode::BAD_REQUEST, "bad request").into_response();
    };
    match gw.upstream.oneshot(req).await {
        Ok(res) => res.map(Body::new).into_response(),
        Err(e) => {
            eprintln!("gateway: upstream call failed: {e}");
            (http::StatusCode::BAD_GATEWAY, "upstream unavailable").into_response()
        }
    }
}

/// Build the gateway in front of the upstream at `base`, verifying callers' tokens with the
/// upstream provider's keys (a shared identity provider).
fn gateway(
    upstream_demo: &DemoApi,
    base: &str,
    http: Client<HttpConnector, Full<Bytes>>,
) -> Result<Router, Box<dyn std::error::Error>> {
    let mut jwt = JwtAuthenticator::builder().issuer(base).audience(AUDIENCE);
    for k in upstream_demo.issuer.verification_keys() {
        jwt = jwt.key(k);
    }
    let source = OAuth2::builder(&format!("{base}/oauth/token"), CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .scope("read write")
        .client_credentials(http.clone())?;
    let upstream = tower::Layer::layer(
        &RefreshLayer::builder(source).allow_origin(base).build()?,
        http,
    );
    Ok(Router::new()
        .route("/api/{*rest}", axum::routing::any(forward))
        .layer(
            AuthLayer::builder()
                .realm("gateway")
                .bearer(jwt.build()?)
                .build()?,
        )
        .with_state(Gateway {
            upstream,
            base: base.to_owned(),
        }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen = "127.0.0.1:8081".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--listen", Some(v)) => listen = v,
            _ => {
                eprintln!("usage: gateway [--listen ADDR]");
                std::process::exit(2);
            }
        }
    }
    let upstream_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", upstream_listener.local_addr()?);
    let demo = DemoApi::new(DemoConfig {
        issuer: base.clone(),
        access_ttl: Duration::from_secs(60),
        allow_origins: vec![],
        secure_cookies: true,
        shared_revocations: None,
    })?;
    let upstream_app = demo.router();
    tokio::spawn(async move { axum::serve(upstream_listener, upstream_app).await });

    let http = Client::builder(TokioExecutor::new()).build_http();
    let app = gateway(&demo, &base, http)?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!("upstream (API and identity provider) on {base}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
