//! An OAuth2 token endpoint for tests and demos: `client_credentials` and `refresh_token`
//! grants, refresh tokens that rotate on every use (reuse revokes the whole family, as
//! OAuth 2.0 Security BCP §4.14 recommends), a JWKS, call counters and failure modes.
//!
//! It behaves like a real authorization server where that matters to people who copy it: the
//! client must authenticate with its secret on every request (HTTP Basic or form), and it gets
//! only the scopes it is registered for (`invalid_scope` otherwise).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::client_assertion::{client_public_key, verified_assertion};
use crate::endpoint_mode::TokenEndpointMode;
use crate::issuer::{TestIssuer, rand_u32};

/// One token request as the endpoint saw it (secrets and assertions left out).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeenTokenRequest {
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// RFC 8707 `resource`.
    pub resource: Option<String>,
    /// How the client authenticated: `client_secret_basic`, `client_secret_post`,
    /// `private_key_jwt`, or `none` (refused, but for the public clients of a
    /// [`TestAuthorizationServer`](crate::TestAuthorizationServer)'s sign-ins).
    pub client_auth: &'static str,
}

struct Family {
    subject: String,
    scope: String,
    revoked: bool,
}

pub(crate) struct State_ {
    pub(crate) issuer: Arc<TestIssuer>,
    pub(crate) audience: String,
    pub(crate) alg: Mutex<Algorithm>,
    /// Claims added to every access token issued from now on.
    pub(crate) extra_claims: Mutex<serde_json::Map<String, serde_json::Value>>,
    pub(crate) access_ttl: Mutex<Duration>,
    client_id: String,
    client_secret: String,
    /// The scopes the client may ask for.
    client_scopes: Mutex<Vec<String>>,
    pub(crate) mode: Mutex<TokenEndpointMode>,
    /// What `/.well-known/oauth-authorization-server` lists as
    /// `token_endpoint_auth_methods_supported`; `None` serves no such document (only the
    /// OpenID Connect one).
    pub(crate) auth_methods: Mutex<Option<Vec<String>>>,
    /// The public key of a `private_key_jwt` client.
    client_key: Mutex<Option<(jsonwebtoken::DecodingKey, Algorithm)>>,
    seen: Mutex<Vec<SeenTokenRequest>>,
    pub(crate) calls: AtomicU64,
    reuse_detected: AtomicU64,
    pub(crate) refresh_grants: AtomicU64,
    next_id: AtomicU64,
    families: Mutex<Vec<Family>>,
    /// refresh token -> (family, times used)
    refresh_tokens: Mutex<HashMap<String, (usize, u32)>>,
}

/// The token endpoint; cheap to clone (shared state).
#[derive(Clone)]
pub struct TestTokenEndpoint {
    pub(crate) state: Arc<State_>,
}

/// Opaque: the endpoint's state holds the client secret and every token it issued.
impl std::fmt::Debug for TestTokenEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestTokenEndpoint").finish_non_exhaustive()
    }
}

pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut res = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    res.headers_mut()
        .insert("cache-control", "no-store".parse().expect("static"));
    res
}

impl TestTokenEndpoint {
    /// A token endpoint issuing access tokens for `audience` (ES256 unless
    /// [`set_algorithm`](Self::set_algorithm) says otherwise), to the one client
    /// `client_id`/`client_secret` (HTTP Basic or form parameters), registered for the scopes
    /// `read` and `write` (see [`set_client_scopes`](Self::set_client_scopes)).
    pub fn new(
        issuer: Arc<TestIssuer>,
        audience: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Self {
        TestTokenEndpoint {
            state: Arc::new(State_ {
                issuer,
                audience: audience.to_owned(),
                alg: Mutex::new(Algorithm::ES256),
                extra_claims: Mutex::new(serde_json::Map::new()),
                access_ttl: Mutex::new(Duration::from_secs(60)),
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned(),
                client_scopes: Mutex::new(vec!["read".into(), "write".into()]),
                mode: Mutex::new(TokenEndpointMode::Normal),
                auth_methods: Mutex::new(Some(vec![
                    "client_secret_basic".into(),
                    "client_secret_post".into(),
                ])),
                client_key: Mutex::new(None),
                seen: Mutex::new(Vec::new()),
                calls: AtomicU64::new(0),
                reuse_detected: AtomicU64::new(0),
                refresh_grants: AtomicU64::new(0),
                next_id: AtomicU64::new(1),
                families: Mutex::new(Vec::new()),
                refresh_tokens: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The scopes the client is registered for: a `client_credentials` request for any other
    /// is refused with `invalid_scope`.
    pub fn set_client_scopes<I, S>(&self, scopes: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        *self.state.client_scopes.lock().expect("not poisoned") =
            scopes.into_iter().map(Into::into).collect();
    }

    /// True when every scope in the space-separated `scope` is one the client is registered
    /// for.
    pub fn client_may_have(&self, scope: &str) -> bool {
        let allowed = self.state.client_scopes.lock().expect("not poisoned");
        scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .all(|s| allowed.iter().any(|a| a == s))
    }

    /// Start a token endpoint on a fresh loopback port, for the client `client_id` /
    /// `client_secret`, issuing tokens for `audience` signed by a new [`TestIssuer`] named
    /// `http://127.0.0.1:PORT`. Returns the endpoint and its token URL; the issuer is
    /// [`issuer`](Self::issuer), its keys at `/.well-known/jwks.json` and its
    /// [discovery documents](Self::metadata_router) on the same origin.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use portcullis::testkit::TestTokenEndpoint;
    /// let (endpoint, token_url) = TestTokenEndpoint::start("orders-api", "my-client", "my-secret").await;
    /// assert!(token_url.ends_with("/oauth/token"));
    /// assert!(token_url.starts_with(endpoint.issuer().issuer()));
    /// # }
    /// ```
    pub async fn start(audience: &str, client_id: &str, client_secret: &str) -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let origin = format!("http://{}", listener.local_addr().expect("bound"));
        let issuer = Arc::new(TestIssuer::new(origin.clone()));
        let endpoint = TestTokenEndpoint::new(issuer, audience, client_id, client_secret);
        let app = endpoint.router().merge(endpoint.metadata_router());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (endpoint, format!("{origin}/oauth/token"))
    }

    /// The client authentication methods the RFC 8414 metadata lists (default
    /// `client_secret_basic` and `client_secret_post`). `None`: no RFC 8414 document at all,
    /// only the OpenID Connect one (which lists none, so RFC 8414's default applies).
    pub fn set_auth_methods(&self, methods: Option<&[&str]>) {
        *self.state.auth_methods.lock().expect("not poisoned") =
            methods.map(|m| m.iter().map(|s| (*s).to_owned()).collect());
    }

    /// Accept client assertions (`private_key_jwt`, RFC 7523) signed by the key whose public
    /// half is `public_pem`, with `alg`; their `aud` must be the issuer or the token URL.
    pub fn accept_client_key(&self, public_pem: &[u8], alg: Algorithm) {
        let key = client_public_key(public_pem, alg);
        *self.state.client_key.lock().expect("not poisoned") = Some((key, alg));
    }

    /// Every token request so far, in order.
    pub fn token_requests(&self) -> Vec<SeenTokenRequest> {
        self.state.seen.lock().expect("not poisoned").clone()
    }

    /// The RFC 8414 / OpenID Connect metadata document (`None`: not served).
    pub(crate) fn metadata(&self, openid: bool) -> Option<serde_json::Value> {
        let methods = self
            .state
            .auth_methods
            .lock()
            .expect("not poisoned")
            .clone();
        if methods.is_none() && !openid {
            return None;
        }
        let issuer = self.state.issuer.issuer().to_owned();
        let mut doc = json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}/oauth/token"),
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "grant_types_supported": ["client_credentials", "refresh_token"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256"],
        });
        if let Some(m) = methods.filter(|_| !openid) {
            doc["token_endpoint_auth_methods_supported"] = json!(m);
        }
        Some(doc)
    }

    /// The issuer that signs this endpoint's tokens.
    pub fn issuer(&self) -> &TestIssuer {
        &self.state.issuer
    }

    /// Sign the access tokens issued from now on with `alg` (any of [`ALGORITHMS`](crate::ALGORITHMS)).
    pub fn set_algorithm(&self, alg: Algorithm) {
        *self.state.alg.lock().expect("not poisoned") = alg;
    }

    /// Add `claims` (a JSON object: a typed `tenant`, roles, …) to every access token issued
    /// from now on; they are added after the standard claims and replace any of the same name.
    pub fn set_extra_claims(&self, claims: serde_json::Value) {
        let serde_json::Value::Object(map) = claims else {
            panic!("extra claims are a JSON object, got {claims}");
        };
        *self.state.extra_claims.lock().expect("not poisoned") = map;
    }

    /// Lifetime of the access tokens issued from now on.
    pub fn set_access_ttl(&self, ttl: Duration) {
        *self.state.access_ttl.lock().expect("not poisoned") = ttl;
    }

    /// Lifetime of the access tokens issued now.
    pub fn access_ttl(&self) -> Duration {
        *self.state.access_ttl.lock().expect("not poisoned")
    }

    /// Change how the endpoint behaves.
    pub fn set_mode(&self, mode: TokenEndpointMode) {
        *self.state.mode.lock().expect("not poisoned") = mode;
    }

    /// Token requests received.
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Token requests with the `refresh_token` grant received (answered or not).
    pub fn refresh_grants(&self) -> u64 {
        self.state.refresh_grants.load(Ordering::SeqCst)
    }

    /// Refresh tokens presented a second time (each revoked its family).
    pub fn reuse_detected(&self) -> u64 {
        self.state.reuse_detected.load(Ordering::SeqCst)
    }

    /// The most times any one refresh token was presented.
    pub fn max_refresh_token_uses(&self) -> u32 {
        let rts = self.state.refresh_tokens.lock().expect("not poisoned");
        rts.values().map(|(_, n)| *n).max().unwrap_or(0)
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.state.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Start a refresh-token family for `subject` (what a sign-in would do).
    pub fn issue_refresh_token(&self, subject: &str, scope: &str) -> String {
        let mut families = self.state.families.lock().expect("not poisoned");
        families.push(Family {
            subject: subject.into(),
            scope: scope.into(),
            revoked: false,
        });
        let family = families.len() - 1;
        drop(families);
        self.new_refresh_token(family)
    }

    fn new_refresh_token(&self, family: usize) -> String {
        let rt = format!("rt-{family}-{}-{:08x}", self.next_id(), rand_u32());
        self.state
            .refresh_tokens
            .lock()
            .expect("not poisoned")
            .insert(rt.clone(), (family, 0));
        rt
    }

    /// An access token for `subject` with `scope` that expired ten minutes ago: older than
    /// any default leeway (60 s) or refresh skew (30 s), so a server refuses it with 401
    /// `token_expired` and a refresh layer given it refreshes on that 401.
    pub fn expired_access_token(&self, subject: &str, scope: &str) -> String {
        self.access_token(subject, scope, -600)
    }

    /// An access token for `subject` with `scope`, valid for `ttl_secs` (negative: expired).
    pub fn access_token(&self, subject: &str, scope: &str, ttl_secs: i64) -> String {
        let s = &self.state;
        self.mint_access(subject, &s.audience, &s.client_id, scope, ttl_secs)
    }

    /// An access token of this endpoint's issuer: its algorithm and extra claims, a fresh `jti`.
    pub(crate) fn mint_access(
        &self,
        subject: &str,
        audience: &str,
        client_id: &str,
        scope: &str,
        ttl_secs: i64,
    ) -> String {
        let s = &self.state;
        let mut claims = s.issuer.access_claims(subject, audience, scope, ttl_secs);
        claims["jti"] = json!(format!("at-{}", self.next_id()));
        claims["client_id"] = json!(client_id);
        for (k, v) in s.extra_claims.lock().expect("not poisoned").iter() {
            claims[k] = v.clone();
        }
        let alg = *s.alg.lock().expect("not poisoned");
        s.issuer.mint(alg, claims)
    }

    fn token_response(
        &self,
        subject: &str,
        scope: &str,
        refresh_token: Option<String>,
    ) -> Response {
        let ttl = *self.state.access_ttl.lock().expect("not poisoned");
        let mut body = json!({
            "access_token": self.access_token(subject, scope, ttl.as_secs() as i64),
            "token_type": "Bearer",
            "expires_in": ttl.as_secs(),
            "scope": scope,
        });
        if let Some(rt) = refresh_token {
            body["refresh_token"] = json!(rt);
        }
        let mut res = Json(body).into_response();
        res.headers_mut()
            .insert("cache-control", "no-store".parse().expect("static"));
        res
    }

    /// The client authenticates on every request, with its secret (compared in constant
    /// time). A request without one is refused, whatever grant it asks for.
    fn client_ok(&self, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
        let s = &self.state;
        if form.get("client_assertion_type").map(String::as_str)
            == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return self.assertion_ok(form);
        }
        let same = |a: &str, b: &str| {
            aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
        };
        let basic = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok());
        match basic {
            Some(pair) => pair
                .split_once(':')
                .is_some_and(|(id, secret)| id == s.client_id && same(secret, &s.client_secret)),
            None => {
                form.get("client_id") == Some(&s.client_id)
                    && form
                        .get("client_secret")
                        .is_some_and(|x| same(x, &s.client_secret))
            }
        }
    }

    /// RFC 7523 §3: signed by the registered key, `iss` and `sub` the client, `aud` this
    /// server, not expired.
    fn assertion_ok(&self, form: &HashMap<String, String>) -> bool {
        let s = &self.state;
        let key = s.client_key.lock().expect("not poisoned");
        let (Some((key, alg)), Some(assertion)) = (key.as_ref(), form.get("client_assertion"))
        else {
            return false;
        };
        let ok =
            verified_assertion(assertion, key, *alg, &s.client_id, s.issuer.issuer()).is_some();
        ok && form.get("client_id").is_none_or(|id| *id == s.client_id)
    }

    pub(crate) fn record(&self, headers: &HeaderMap, form: &HashMap<String, String>) {
        let client_auth = if form.contains_key("client_assertion") {
            "private_key_jwt"
        } else if headers.contains_key("authorization") {
            "client_secret_basic"
        } else if form.contains_key("client_secret") {
            "client_secret_post"
        } else {
            "none"
        };
        self.state
            .seen
            .lock()
            .expect("not poisoned")
            .push(SeenTokenRequest {
                grant_type: form.get("grant_type").cloned(),
                scope: form.get("scope").cloned(),
                resource: form.get("resource").cloned(),
                client_auth,
            });
    }

    pub(crate) async fn token(self, headers: HeaderMap, form: HashMap<String, String>) -> Response {
        self.record(&headers, &form);
        let mode = *self.state.mode.lock().expect("not poisoned");
        let res = self.answer(mode, headers, form).await;
        if let TokenEndpointMode::AnswerLate(d) = mode {
            tokio::time::sleep(d).await;
        }
        res
    }

    async fn answer(
        &self,
        mode: TokenEndpointMode,
        headers: HeaderMap,
        form: HashMap<String, String>,
    ) -> Response {
        self.state.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(failure) = Self::apply_mode(mode).await {
            return failure;
        }
        if !self.client_ok(&headers, &form) {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            );
        }
        match form.get("grant_type").map(String::as_str) {
            Some("client_credentials") => self.client_credentials_grant(&form),
            Some("refresh_token") => self.refresh_token_grant(&form),
            _ => oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "use client_credentials or refresh_token",
            ),
        }
    }

    /// What the failure mode does before any other work: an answer of its own, or a delay.
    pub(crate) async fn apply_mode(mode: TokenEndpointMode) -> Option<Response> {
        match mode {
            TokenEndpointMode::Fail500 => {
                Some((StatusCode::INTERNAL_SERVER_ERROR, "token endpoint failure").into_response())
            }
            TokenEndpointMode::InvalidGrant => Some(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the grant is no longer valid",
            )),
            TokenEndpointMode::Delay(d) => {
                tokio::time::sleep(d).await;
                None
            }
            TokenEndpointMode::Normal | TokenEndpointMode::AnswerLate(_) => None,
        }
    }

    fn client_credentials_grant(&self, form: &HashMap<String, String>) -> Response {
        let scope = form.get("scope").cloned().unwrap_or_else(|| "read".into());
        if !self.client_may_have(&scope) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "the client is not registered for the requested scope",
            );
        }
        let subject = self.state.client_id.clone();
        self.token_response(&subject, &scope, None)
    }

    fn refresh_token_grant(&self, form: &HashMap<String, String>) -> Response {
        match self.rotate_refresh_token(form) {
            Ok((subject, scope, next)) => self.token_response(&subject, &scope, Some(next)),
            Err((error, why)) => oauth_error(StatusCode::BAD_REQUEST, error, why),
        }
    }

    /// The `refresh_token` grant's rotation: the presented token spent, the family's subject
    /// and scope, and its next refresh token; or the refusal (`error`, `error_description`).
    pub(crate) fn rotate_refresh_token(
        &self,
        form: &HashMap<String, String>,
    ) -> Result<(String, String, String), (&'static str, &'static str)> {
        self.state.refresh_grants.fetch_add(1, Ordering::SeqCst);
        let Some(rt) = form.get("refresh_token") else {
            return Err(("invalid_request", "refresh_token is required"));
        };
        let entry = {
            let mut rts = self.state.refresh_tokens.lock().expect("not poisoned");
            rts.get_mut(rt).map(|e| {
                e.1 += 1;
                *e
            })
        };
        let Some((family, uses)) = entry else {
            return Err(("invalid_grant", "unknown refresh token"));
        };
        let (subject, scope) = {
            let mut families = self.state.families.lock().expect("not poisoned");
            let f = &mut families[family];
            if uses > 1 {
                // Reuse means the token leaked or the client raced: revoke the family.
                f.revoked = true;
                self.state.reuse_detected.fetch_add(1, Ordering::SeqCst);
            }
            if f.revoked {
                return Err(("invalid_grant", "refresh token reused; family revoked"));
            }
            (f.subject.clone(), f.scope.clone())
        };
        Ok((subject, scope, self.new_refresh_token(family)))
    }

    /// `POST /oauth/token` and `GET /.well-known/jwks.json`.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/oauth/token",
                post(
                    |State(this): State<TestTokenEndpoint>,
                     headers: HeaderMap,
                     Form(form): Form<HashMap<String, String>>| {
                        this.token(headers, form)
                    },
                ),
            )
            .route(
                "/.well-known/jwks.json",
                get(|State(this): State<TestTokenEndpoint>| async move {
                    Json(this.state.issuer.jwks())
                }),
            )
            .with_state(self.clone())
    }

    /// The discovery documents: RFC 8414 at `/.well-known/oauth-authorization-server` and
    /// OpenID Connect at `/.well-known/openid-configuration` (kept apart from
    /// [`router`](Self::router) for apps that serve their own; [`start`](Self::start) serves
    /// both).
    pub fn metadata_router(&self) -> Router {
        Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(|State(this): State<TestTokenEndpoint>| async move {
                    this.metadata(false).map(Json).ok_or(StatusCode::NOT_FOUND)
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                get(|State(this): State<TestTokenEndpoint>| async move {
                    this.metadata(true).map(Json).ok_or(StatusCode::NOT_FOUND)
                }),
            )
            .with_state(self.clone())
    }
}
