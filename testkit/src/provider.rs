//! An OAuth2 token endpoint for tests and demos: `client_credentials` and `refresh_token`
//! grants, refresh tokens that rotate on every use (reuse revokes the whole family, as
//! OAuth 2.0 Security BCP §4.14 recommends), a JWKS, call counters and failure modes.
//!
//! It behaves like a real authorization server where that matters to people who copy it: the
//! client must authenticate with its secret on every request (HTTP Basic or form), and it gets
//! only the scopes it is registered for (`invalid_scope` otherwise).

use std::collections::{HashMap, HashSet};
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

use super::TestIssuer;

/// How the token endpoint behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answer normally.
    Normal,
    /// Answer every token request with 500.
    Fail500,
    /// Answer every token request with `invalid_grant`.
    InvalidGrant,
    /// Answer normally, after a delay.
    Delay(Duration),
    /// Do the work at once (a refresh token is rotated and the old one spent), then send the
    /// answer after a delay: a slow network after the server has committed.
    AnswerLate(Duration),
}

struct Family {
    subject: String,
    scope: String,
    revoked: bool,
}

struct State_ {
    issuer: Arc<TestIssuer>,
    audience: String,
    alg: Mutex<Algorithm>,
    /// Claims added to every access token issued from now on.
    extra_claims: Mutex<serde_json::Map<String, serde_json::Value>>,
    access_ttl: Mutex<Duration>,
    client_id: String,
    client_secret: String,
    /// The scopes the client may ask for.
    client_scopes: Mutex<Vec<String>>,
    mode: Mutex<Mode>,
    calls: AtomicU64,
    reuse_detected: AtomicU64,
    refresh_grants: AtomicU64,
    next_id: AtomicU64,
    families: Mutex<Vec<Family>>,
    /// refresh token -> (family, times used)
    refresh_tokens: Mutex<HashMap<String, (usize, u32)>>,
    used: Mutex<HashSet<String>>,
}

/// The token endpoint; cheap to clone (shared state).
#[derive(Clone)]
pub struct TokenEndpoint {
    state: Arc<State_>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut res = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    res.headers_mut()
        .insert("cache-control", "no-store".parse().expect("static"));
    res
}

impl TokenEndpoint {
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
        TokenEndpoint {
            state: Arc::new(State_ {
                issuer,
                audience: audience.to_owned(),
                alg: Mutex::new(Algorithm::ES256),
                extra_claims: Mutex::new(serde_json::Map::new()),
                access_ttl: Mutex::new(Duration::from_secs(60)),
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned(),
                client_scopes: Mutex::new(vec!["read".into(), "write".into()]),
                mode: Mutex::new(Mode::Normal),
                calls: AtomicU64::new(0),
                reuse_detected: AtomicU64::new(0),
                refresh_grants: AtomicU64::new(0),
                next_id: AtomicU64::new(1),
                families: Mutex::new(Vec::new()),
                refresh_tokens: Mutex::new(HashMap::new()),
                used: Mutex::new(HashSet::new()),
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
    /// [`issuer`](Self::issuer), its keys at `/.well-known/jwks.json` of the same origin.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use portcullis_testkit::TokenEndpoint;
    /// let (endpoint, token_url) = TokenEndpoint::start("orders-api", "my-client", "my-secret").await;
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
        let endpoint = TokenEndpoint::new(issuer, audience, client_id, client_secret);
        let app = endpoint.router();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (endpoint, format!("{origin}/oauth/token"))
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
    pub fn set_mode(&self, mode: Mode) {
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

    fn next_id(&self) -> u64 {
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
        let rt = format!("rt-{family}-{}-{:08x}", self.next_id(), super::rand_u32());
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
        let mut claims = s
            .issuer
            .access_claims(subject, &s.audience, scope, ttl_secs);
        claims["jti"] = json!(format!("at-{}", self.next_id()));
        claims["client_id"] = json!(s.client_id);
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

    async fn token(self, headers: HeaderMap, form: HashMap<String, String>) -> Response {
        let mode = *self.state.mode.lock().expect("not poisoned");
        let res = self.answer(mode, headers, form).await;
        if let Mode::AnswerLate(d) = mode {
            tokio::time::sleep(d).await;
        }
        res
    }

    async fn answer(
        &self,
        mode: Mode,
        headers: HeaderMap,
        form: HashMap<String, String>,
    ) -> Response {
        self.state.calls.fetch_add(1, Ordering::SeqCst);
        match mode {
            Mode::Fail500 => {
                return (StatusCode::INTERNAL_SERVER_ERROR, "token endpoint failure")
                    .into_response();
            }
            Mode::InvalidGrant => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the grant is no longer valid",
                );
            }
            Mode::Delay(d) => tokio::time::sleep(d).await,
            Mode::Normal | Mode::AnswerLate(_) => {}
        }
        if !self.client_ok(&headers, &form) {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            );
        }
        match form.get("grant_type").map(String::as_str) {
            Some("client_credentials") => {
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
            Some("refresh_token") => {
                self.state.refresh_grants.fetch_add(1, Ordering::SeqCst);
                let Some(rt) = form.get("refresh_token") else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "refresh_token is required",
                    );
                };
                let entry = {
                    let mut rts = self.state.refresh_tokens.lock().expect("not poisoned");
                    rts.get_mut(rt).map(|e| {
                        e.1 += 1;
                        *e
                    })
                };
                let Some((family, uses)) = entry else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "unknown refresh token",
                    );
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
                        return oauth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "refresh token reused; family revoked",
                        );
                    }
                    (f.subject.clone(), f.scope.clone())
                };
                self.state
                    .used
                    .lock()
                    .expect("not poisoned")
                    .insert(rt.clone());
                let next = self.new_refresh_token(family);
                self.token_response(&subject, &scope, Some(next))
            }
            _ => oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "use client_credentials or refresh_token",
            ),
        }
    }

    /// `POST /oauth/token` and `GET /.well-known/jwks.json`.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/oauth/token",
                post(|State(this): State<TokenEndpoint>, headers: HeaderMap, Form(form): Form<HashMap<String, String>>| this.token(headers, form)),
            )
            .route(
                "/.well-known/jwks.json",
                get(|State(this): State<TokenEndpoint>| async move { Json(this.state.issuer.jwks()) }),
            )
            .with_state(self.clone())
    }
}
