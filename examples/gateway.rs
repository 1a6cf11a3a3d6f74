//! Both sides at once: a gateway that authenticates incoming requests with the auth layer and
//! forwards them to an upstream API with the refresh layer holding the gateway's own
//! credential. The caller's token never reaches the upstream; the gateway's never reaches the
//! caller.
//!
//! ```text
//! cargo run --example gateway -- [--listen ADDR] [--upstream URL [--issuer ISS] [--audience AUD]]
//!                                 [--refresh-token-env VAR]
//!                                 [--redis URL --store-key-env VAR [--lease-ttl-ms MS]]
//! ```
//! Without `--upstream` it starts the demo API (the upstream, with its identity provider) on a
//! free port itself and prints both addresses; call the gateway with a token from the
//! upstream's provider. With `--upstream URL` it forwards to an API already running there
//! (`cargo run --example server`, say), whose provider serves `/oauth/token` and
//! `/.well-known/jwks.json`; callers' tokens are verified through that JWKS.
//!
//! The gateway's own grant is `client_credentials` for the demo client, or `refresh_token`
//! starting from the refresh token in the environment variable `--refresh-token-env` names
//! (an environment variable, so it does not show in `ps`).
//!
//! With `--redis`, every gateway started against the same Redis shares one token set
//! (encrypted with the base64 key in the variable `--store-key-env` names): at expiry one of
//! them refreshes and all use the result, so a rotating refresh token is presented once.
//! The first line on stdout is `listening on http://ADDR`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis::client::source::shared_grant::{NewSeed, SharedGrant};
use portcullis::client::store::redis::{RedisStore, StoreKey};
use portcullis::client::{CredentialSource, OAuth2, RefreshLayer, RefreshService, StoreError};
use portcullis::server::jwt::{JwksKeySource, JwtAuthenticator};
use portcullis::server::{AuthLayer, Principal};
use portcullis_examples_support::demo_app::{
    self, AUDIENCE, CLIENT_ID, CLIENT_SECRET, DemoApi, DemoConfig,
};
use tower::ServiceExt;

type Upstream = RefreshService<Client<HttpConnector, Full<Bytes>>>;

/// The identity of the gateway's own grant in the shared store (one grant id per identity).
const GRANT_ID: &str = "gateway";

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

/// A gateway: the auth layer in front, the refresh layer towards the upstream.
#[derive(Parser)]
struct Args {
    /// The address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// The upstream API (without it, the demo API is started here).
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// The `iss` of the upstream provider's tokens (default: the upstream URL).
    #[arg(long, value_name = "ISS")]
    issuer: Option<String>,
    /// The `aud` of the upstream provider's tokens.
    #[arg(long, value_name = "AUD")]
    audience: Option<String>,
    /// The environment variable holding the refresh token the gateway's grant starts from.
    #[arg(long, value_name = "VAR")]
    refresh_token_env: Option<String>,
    /// Share one token set with every gateway started against this Redis.
    #[arg(long, value_name = "URL", requires = "store_key_env")]
    redis: Option<String>,
    /// The environment variable holding the store's key (base64 of 32 bytes).
    #[arg(long, value_name = "VAR", requires = "redis")]
    store_key_env: Option<String>,
    /// How long a refresh lease in the shared store lasts, in milliseconds.
    #[arg(long = "lease-ttl-ms", value_name = "MS", default_value = "10000", value_parser = millis)]
    lease_ttl: Duration,
}

fn millis(value: &str) -> Result<Duration, String> {
    value
        .parse()
        .map(Duration::from_millis)
        .map_err(|_| "takes milliseconds".to_owned())
}

/// The value of the environment variable `name`, or why not.
fn env_var(name: &str, flag: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{flag}: the environment variable {name} is not set"))
}

/// The gateway's own credential source: the demo client's grant, shared through Redis when
/// asked. Errors are for the user: (exit code, message).
async fn source(
    args: &Args,
    base: &str,
    http: &Client<HttpConnector, Full<Bytes>>,
) -> Result<Arc<dyn CredentialSource>, (i32, String)> {
    let usage = |e: String| (2, e);
    let oauth = OAuth2::builder(&format!("{base}/oauth/token"), CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .scope("read write");
    let oauth = match &args.refresh_token_env {
        Some(var) => oauth.refresh_token(
            &env_var(var, "--refresh-token-env").map_err(usage)?,
            http.clone(),
        ),
        None => oauth.client_credentials(http.clone()),
    }
    .map_err(|e| usage(e.to_string()))?;
    let (Some(url), Some(key_var)) = (&args.redis, &args.store_key_env) else {
        return Ok(Arc::new(oauth));
    };
    let key = StoreKey::from_base64(&env_var(key_var, "--store-key-env").map_err(usage)?)
        .map_err(|e| usage(format!("--store-key-env: {e}")))?;
    let store = RedisStore::builder(url, key)
        .connect()
        .await
        .map_err(|e| match e {
            StoreError::InvalidUrl => (2, format!("invalid --redis: {e}")),
            e => (1, format!("cannot use --redis: {e}")),
        })?;
    // One identity: the gateway's own grant. `Replace`: a refresh token rotated into the
    // environment (after a leak, say) takes over from the stored one on the next start.
    let grant = SharedGrant::builder(oauth, Arc::new(store), GRANT_ID, NewSeed::Replace)
        .lease_ttl(args.lease_ttl)
        .poll_every(Duration::from_millis(250))
        .build()
        .map_err(|e| usage(e.to_string()))?;
    Ok(Arc::new(grant))
}

/// The gateway's router: callers verified with `jwt`, requests forwarded to `base` with the
/// credential from `source`.
fn gateway(
    jwt: JwtAuthenticator,
    base: &str,
    source: Arc<dyn CredentialSource>,
    http: Client<HttpConnector, Full<Bytes>>,
) -> Result<Router, Box<dyn std::error::Error>> {
    let upstream = tower::Layer::layer(
        &RefreshLayer::builder(source).allow_origin(base).build()?,
        http,
    );
    Ok(Router::new()
        .route("/api/{*rest}", axum::routing::any(forward))
        .layer(AuthLayer::builder().realm("gateway").bearer(jwt).build()?)
        .with_state(Gateway {
            upstream,
            base: base.to_owned(),
        }))
}

/// True for a URL whose host is this machine.
fn is_loopback(url: &str) -> bool {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_owned))
        .is_some_and(|h| {
            h == "localhost"
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

fn fail(code: i32, message: impl std::fmt::Display) -> ! {
    eprintln!("{message}");
    std::process::exit(code)
}

#[tokio::main]
async fn main() {
    let mut args = Args::parse();
    args.upstream = args.upstream.map(|u| u.trim_end_matches('/').to_owned());
    let http = Client::builder(TokioExecutor::new()).build_http();
    // The upstream: given, or the demo API started here.
    let (base, jwt) = match &args.upstream {
        Some(base) => {
            let keys = JwksKeySource::builder(format!("{base}/.well-known/jwks.json"))
                .allow_http(is_loopback(base))
                .build()
                .unwrap_or_else(|e| fail(2, format!("invalid --upstream: {e}")));
            let jwt = JwtAuthenticator::builder()
                .key_source(keys)
                .issuer(args.issuer.as_deref().unwrap_or(base))
                .audience(args.audience.as_deref().unwrap_or(AUDIENCE))
                .build()
                .unwrap_or_else(|e| fail(2, e));
            (base.clone(), jwt)
        }
        None => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| fail(1, e));
            let base = format!(
                "http://{}",
                listener.local_addr().unwrap_or_else(|e| fail(1, e))
            );
            let demo = DemoApi::new(DemoConfig {
                issuer: base.clone(),
                access_ttl: Duration::from_secs(60),
                allow_origins: vec![],
                secure_cookies: true,
                shared_revocations: None,
                csrf_key: demo_app::demo_csrf_key(),
            })
            .unwrap_or_else(|e| fail(2, e));
            let mut jwt = JwtAuthenticator::builder().issuer(&base).audience(AUDIENCE);
            for k in demo.issuer.verification_keys() {
                jwt = jwt.key(k);
            }
            let app = demo.router();
            tokio::spawn(async move { axum::serve(listener, app).await });
            (base, jwt.build().unwrap_or_else(|e| fail(2, e)))
        }
    };
    let source = source(&args, &base, &http)
        .await
        .unwrap_or_else(|(code, e)| fail(code, e));
    let app = gateway(jwt, &base, source, http).unwrap_or_else(|e| fail(2, e));
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .unwrap_or_else(|e| fail(1, format!("cannot listen on {}: {e}", args.listen)));
    let addr = listener.local_addr().unwrap_or_else(|e| fail(1, e));
    println!("listening on http://{addr}");
    println!("upstream (API and identity provider) on {base}");
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    {
        fail(1, format!("server error: {e}"));
    }
}
