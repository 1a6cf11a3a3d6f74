//! The demo application with its embedded identity provider, shared by the examples (each
//! example uses part of it).
//!
//! - Provider: `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json`,
//!   `POST /oauth/token` (`client_credentials` for `demo`/`demo-secret`, scopes `read` and
//!   `write` only; rotating `refresh_token`), `POST /session/login` (cookie session for
//!   browsers: `username` and the password `demo`, scopes `read` and `write` only; the
//!   answer carries the session's CSRF token, in its body and in a cookie the page can
//!   read), `POST /dev/expired-token` (an already-expired access token, so clients
//!   can watch a refresh happen; a demo provider only), `POST /dev/refresh-token` (a new
//!   refresh-token family for the client, as a sign-in would give) and `GET /dev/token-stats`
//!   (token requests, `refresh_token` grants, reuse detections).
//! - API: `GET /public`, `GET /api/me` (any valid token), `GET /api/admin` (scope `admin`),
//!   `POST /api/echo` (scope `write`), `POST /api/logout` (revokes the token it is called with,
//!   on every replica when they share a Redis revocation list).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis::server::cors::CorsPreset;
use portcullis::server::jwt::{JwtAuthenticator, KeySource};
use portcullis::server::{
    AuthLayer, AuthMetrics, ConfigError, CsrfKey, CsrfPolicy, Denylist, Principal, RequireScope,
    Revocation, SharedRevocations,
};
use serde_json::json;

use portcullis::testkit::{TestIssuer, TestTokenEndpoint};

/// The OAuth2 client the demo provider knows.
pub const CLIENT_ID: &str = "demo";
/// Its secret.
pub const CLIENT_SECRET: &str = "demo-secret";
/// The audience of the demo API's tokens.
pub const AUDIENCE: &str = "demo-api";

/// How the demo server is set up.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The issuer URL (`http://ADDR`, known once the listener is bound).
    pub issuer: String,
    /// Lifetime of issued access tokens.
    pub access_ttl: Duration,
    /// Browser origins allowed by CORS.
    pub allow_origins: Vec<String>,
    /// Mark session cookies `Secure` (browsers accept them on `http://localhost`).
    pub secure_cookies: bool,
    /// A revocation list shared with other replicas; `None` keeps one in this process.
    pub shared_revocations: Option<SharedRevocations>,
    /// The key the CSRF tokens of cookie sessions are minted and checked with; every replica
    /// needs the same.
    pub csrf_key: CsrfKey,
}

/// The demo's CSRF key. It is written here, so anyone can read it, like the demo client's
/// secret: a real app reads its key from its secret store (as `--csrf-key-env` does).
pub fn demo_csrf_key() -> CsrfKey {
    CsrfKey::new(b"portcullis demo csrf key: public, never deploy it").expect("long enough")
}

/// Where `POST /api/logout` records a revoked token.
#[derive(Clone)]
enum Revoker {
    Local(Arc<Denylist>),
    Shared(SharedRevocations),
}

impl Revoker {
    fn for_config(config: &DemoConfig) -> Self {
        match &config.shared_revocations {
            Some(shared) => Revoker::Shared(shared.clone()),
            None => Revoker::Local(Arc::default()),
        }
    }

    fn hook(&self) -> Arc<dyn Revocation> {
        match self {
            Revoker::Local(list) => list.clone(),
            Revoker::Shared(list) => Arc::new(list.clone()),
        }
    }
}

/// Revoke the token this request was made with, until it would have expired anyway.
async fn logout(State(revoker): State<Revoker>, p: Principal) -> Response {
    let (Some(jti), Some(exp)) = (p.token_id(), p.expires_at()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "only a token with a jti and an exp can be revoked"})),
        )
            .into_response();
    };
    match revoker {
        Revoker::Local(list) => list.revoke_token_id(jti),
        Revoker::Shared(list) => {
            let subject = p.subject().unwrap_or_default();
            if let Err(e) = list.revoke_own_token(subject, jti, exp).await {
                // Revoked here; the other replicas learn of it once Redis is back.
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "revoked on this replica only", "detail": e.to_string()})),
                )
                    .into_response();
            }
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The session cookie holding the access token (`HttpOnly`).
pub const SESSION_COOKIE: &str = "access_token";
/// The cookie the page reads the session's CSRF token from (not `HttpOnly`; the layer does
/// not read it: a cookie anyone on the site could have planted proves nothing).
pub const CSRF_COOKIE: &str = "csrf_token";
/// The header that must carry the session's CSRF token on unsafe cookie-authenticated
/// requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the sign-in route needs: the provider, `Secure` cookies or not, the CSRF key.
#[derive(Clone)]
struct SignIn {
    tokens: TestTokenEndpoint,
    secure: bool,
    csrf_key: CsrfKey,
}

#[derive(serde::Deserialize)]
struct Login {
    username: String,
    password: String,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct ExpiredRequest {
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    subject: Option<String>,
}

async fn login(
    State(SignIn {
        tokens,
        secure,
        csrf_key,
    }): State<SignIn>,
    Json(l): Json<Login>,
) -> Response {
    if l.password != "demo" || l.username.is_empty() {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid username or password"})),
        )
            .into_response();
    }
    // A session gets what a user of the demo may have, never more (no `admin`).
    let scope = l.scope.unwrap_or_else(|| "read write".into());
    if !tokens.client_may_have(&scope) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_scope", "error_description": "sessions may have the scopes read and write"})),
        )
            .into_response();
    }
    let ttl = tokens.access_ttl().as_secs();
    let token = tokens.access_token(&l.username, &scope, ttl as i64);
    // Bound to this session cookie: with another session (the attacker's own) it is refused.
    let csrf = csrf_key.mint(&token);
    let secure = if secure { "; Secure" } else { "" };
    let mut res =
        Json(json!({"sub": l.username, "scope": scope, "csrf_token": csrf})).into_response();
    let h = res.headers_mut();
    for cookie in [
        format!("{SESSION_COOKIE}={token}; Path=/; Max-Age={ttl}; HttpOnly; SameSite=Lax{secure}"),
        format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={ttl}; SameSite=Lax{secure}"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.append(SET_COOKIE, v);
        }
    }
    res
}

/// The demo API: a router and handles to its provider and metrics.
pub struct DemoApi {
    /// The embedded provider's signing keys.
    pub issuer: Arc<TestIssuer>,
    /// The embedded provider's token endpoint (counts calls).
    pub tokens: TestTokenEndpoint,
    /// The auth layer's decision counters.
    pub metrics: Arc<AuthMetrics>,
    router: Router,
}

impl std::fmt::Debug for DemoApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoApi")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

async fn me(p: Principal) -> Json<serde_json::Value> {
    Json(json!({"sub": p.subject(), "scopes": p.scopes().collect::<Vec<_>>()}))
}

impl DemoApi {
    /// Build the demo with the embedded provider issuing and verifying tokens.
    pub fn new(config: DemoConfig) -> Result<Self, ConfigError> {
        let issuer = Arc::new(TestIssuer::new(config.issuer.clone()));
        let tokens = TestTokenEndpoint::new(issuer.clone(), AUDIENCE, CLIENT_ID, CLIENT_SECRET);
        tokens.set_access_ttl(config.access_ttl);
        let revoker = Revoker::for_config(&config);
        let mut jwt = JwtAuthenticator::builder()
            .issuer(config.issuer.clone())
            .audience(AUDIENCE)
            .revocation(revoker.hook());
        for key in issuer.verification_keys() {
            jwt = jwt.key(key);
        }
        DemoApi::assemble(issuer, tokens, jwt.build()?, revoker, &config)
    }

    /// Build the demo verifying tokens from another provider's keys (`--jwks-url`); the
    /// embedded provider still runs but its tokens are not accepted.
    pub fn with_keys(
        config: DemoConfig,
        keys: impl KeySource,
        issuer_url: &str,
        audience: &str,
    ) -> Result<Self, ConfigError> {
        let issuer = Arc::new(TestIssuer::new(config.issuer.clone()));
        let tokens = TestTokenEndpoint::new(issuer.clone(), AUDIENCE, CLIENT_ID, CLIENT_SECRET);
        tokens.set_access_ttl(config.access_ttl);
        let revoker = Revoker::for_config(&config);
        let jwt = JwtAuthenticator::builder()
            .key_source(keys)
            .issuer(issuer_url)
            .audience(audience)
            .revocation(revoker.hook())
            .build()?;
        DemoApi::assemble(issuer, tokens, jwt, revoker, &config)
    }

    fn assemble(
        issuer: Arc<TestIssuer>,
        tokens: TestTokenEndpoint,
        jwt: JwtAuthenticator,
        revoker: Revoker,
        config: &DemoConfig,
    ) -> Result<Self, ConfigError> {
        let (api, metrics) = protected_api(jwt, revoker, config)?;
        let discovery = discovery_document(&config.issuer);
        let mut cors = CorsPreset::new().allow_header(CSRF_HEADER);
        for o in &config.allow_origins {
            cors = cors.allow_origin(o.clone());
        }
        let mut router = Router::new()
            .route("/public", get(|| async { "hello, anyone" }))
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let d = discovery.clone();
                    async move { Json(d) }
                }),
            )
            .merge(api)
            .route(
                "/session/login",
                post(login).with_state(SignIn {
                    tokens: tokens.clone(),
                    secure: config.secure_cookies,
                    csrf_key: config.csrf_key.clone(),
                }),
            )
            .merge(dev_routes(&tokens))
            .merge(tokens.router());
        if !config.allow_origins.is_empty() {
            router = router.layer(cors.build()?);
        }
        Ok(DemoApi {
            issuer,
            tokens,
            metrics,
            router,
        })
    }

    /// The complete router.
    pub fn router(&self) -> Router {
        self.router.clone()
    }
}

/// `/api/*` behind the auth layer (bearer or session cookie, CSRF-checked), and the layer's
/// metrics.
fn protected_api(
    jwt: JwtAuthenticator,
    revoker: Revoker,
    config: &DemoConfig,
) -> Result<(Router, Arc<AuthMetrics>), ConfigError> {
    let auth = AuthLayer::builder()
        .realm("demo")
        .bearer(jwt.clone())
        .cookie(SESSION_COOKIE, jwt)
        .csrf(config.allow_origins.iter().fold(
            CsrfPolicy::session_bound(config.csrf_key.clone()).header(CSRF_HEADER),
            |c, o| c.trusted_origin(o.clone()),
        ))
        .build()?;
    let metrics = auth.metrics();
    let api = Router::new()
        .route("/api/me", get(me))
        .route(
            "/api/admin",
            get(me).route_layer(RequireScope::all(["admin"])),
        )
        .route(
            "/api/echo",
            post(|body: Bytes| async move { body }).route_layer(RequireScope::all(["write"])),
        )
        .route("/api/logout", post(logout).with_state(revoker))
        .layer(auth);
    Ok((api, metrics))
}

/// The provider's OpenID discovery document.
fn discovery_document(iss: &str) -> serde_json::Value {
    json!({
        "issuer": iss,
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "grant_types_supported": ["client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["ES256"],
    })
}

/// `/dev/*`: what only a demo provider offers (an expired token, a fresh refresh-token family,
/// counters).
fn dev_routes(tokens: &TestTokenEndpoint) -> Router {
    Router::new()
        .route(
            "/dev/expired-token",
            post(|State(t): State<TestTokenEndpoint>, body: Option<Json<ExpiredRequest>>| async move {
                let r = body.map(|Json(r)| r).unwrap_or_default();
                let sub = r.subject.unwrap_or_else(|| "alice".into());
                Json(json!({"access_token": t.access_token(&sub, r.scope.as_deref().unwrap_or("read"), -300), "token_type": "Bearer"}))
            })
            .with_state(tokens.clone()),
        )
        .route(
            "/dev/refresh-token",
            post(|State(t): State<TestTokenEndpoint>| async move {
                Json(json!({"refresh_token": t.issue_refresh_token("gateway", "read write")}))
            })
            .with_state(tokens.clone()),
        )
        .route(
            "/dev/token-stats",
            get(|State(t): State<TestTokenEndpoint>| async move {
                Json(json!({
                    "token_requests": t.calls(),
                    "refresh_token_grants": t.refresh_grants(),
                    "reuse_detected": t.reuse_detected(),
                }))
            })
            .with_state(tokens.clone()),
        )
}
