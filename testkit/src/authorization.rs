//! An authorization server for tests of a person's sign-in: the authorization-code grant with
//! PKCE (RFC 6749 §4.1, RFC 7636), dynamic client registration (RFC 7591), RFC 8707 resources
//! and the RFC 9207 `iss`, on top of a [`TestTokenEndpoint`] whose issuer signs the tokens.
//!
//! Its `/authorize` redirects at once, like a server whose user already consented, so a client
//! that follows redirects (refresh-layer's `FollowRedirects`) completes the flow without a
//! browser. [`AuthorizeMode`] makes it misbehave for the tests of a client's checks.

mod clients;
mod codes;
mod grant;
mod mode;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::issuer::{TestIssuer, random_hex};
use crate::token_endpoint::TestTokenEndpoint;
use clients::Clients;
use codes::{Authorize, Codes};
use grant::{Grants, Parts};

pub use clients::TestClient;
pub use codes::SeenAuthorizeRequest;
pub use grant::SeenRedemption;
pub use mode::{AuthorizeMode, HOSTILE_DESCRIPTION};

/// What the metadata advertises, as the test set it.
struct Advertised {
    code_challenge_methods: Option<Vec<String>>,
    iss_parameter_supported: bool,
    issuer: Option<String>,
    registration: bool,
    scopes: Option<Vec<String>>,
}

struct Shared {
    clients: Clients,
    codes: Codes,
    grants: Grants,
    mode: Mutex<AuthorizeMode>,
    user: Mutex<String>,
    advertised: Mutex<Advertised>,
}

/// An authorization server for tests: `GET /authorize`, `POST /register`, and the token
/// endpoint's `/oauth/token` taught the `authorization_code` grant, with RFC 8414 metadata
/// that says so. Cheap to clone (shared state).
///
/// - `/authorize` needs `response_type=code`, a registered `client_id`, one of its redirect
///   URIs (exactly, or on any port for `http://127.0.0.1` and `http://[::1]`, RFC 8252 §7.3)
///   and an `S256` PKCE challenge; it redirects back at once with a code (random, single-use,
///   valid 60 s, bound to the client, redirect URI, challenge and `resource`), the `state`
///   and `iss`, or with the error the request earns.
/// - `/register` takes RFC 7591 JSON (`redirect_uris` required; `token_endpoint_auth_method`
///   `none` by default, or `client_secret_basic`/`client_secret_post` for a secret). A
///   `private_key_jwt` client is registered by the test with its public key
///   ([`register_key_client`](Self::register_key_client)).
/// - The token endpoint redeems a code once, for the client it was issued to (authenticated as
///   it registered: a key client with an RFC 7523 client assertion, whose `aud` is the issuer
///   or the token URL), with the same redirect URI, the PKCE verifier and the same `resource`;
///   a code presented again is refused and revokes the refresh tokens issued from it. Access
///   tokens are the endpoint's issuer's JWTs for the `resource` asked for (else the
///   endpoint's audience) with the scope asked for; refresh tokens rotate as the endpoint's
///   own do.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use portcullis::testkit::TestAuthorizationServer;
/// use portcullis::testkit::loopback::{client, empty, send};
/// let server = TestAuthorizationServer::start("https://api.test/mcp").await;
/// let app = server.register_client(&["http://127.0.0.1/callback"], "none");
/// let url = format!(
///     "{}/authorize?response_type=code&client_id={}&redirect_uri=http://127.0.0.1:8976/callback\
///      &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256\
///      &state=xyz",
///     server.issuer(),
///     app.client_id,
/// );
/// let reply = send(&client(), http::Request::get(url).body(empty()).unwrap()).await;
/// assert_eq!(reply.status, 302);
/// let location = reply.header("location").unwrap();
/// assert!(location.starts_with("http://127.0.0.1:8976/callback?code="));
/// assert!(location.contains("&state=xyz&iss="));
/// assert_eq!(server.authorize_requests().len(), 1);
/// # }
/// ```
#[derive(Clone)]
pub struct TestAuthorizationServer {
    endpoint: TestTokenEndpoint,
    shared: Arc<Shared>,
}

/// Opaque: the state holds client secrets, codes and tokens.
impl fmt::Debug for TestAuthorizationServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestAuthorizationServer")
            .field("issuer", &self.issuer())
            .finish_non_exhaustive()
    }
}

impl TestAuthorizationServer {
    /// The authorization server of `endpoint` (served by [`router`](Self::router) on the
    /// origin of the endpoint's issuer, which is the server's issuer identifier). Its metadata
    /// lists the client authentication methods `none`, `client_secret_basic`,
    /// `client_secret_post` and `private_key_jwt`, all of which it verifies, whether or not a
    /// client that uses one is registered yet, as a real server lists what it supports (change
    /// them with the endpoint's [`set_auth_methods`](TestTokenEndpoint::set_auth_methods)).
    pub fn new(endpoint: TestTokenEndpoint) -> Self {
        endpoint.set_auth_methods(Some(&[
            "none",
            "client_secret_basic",
            "client_secret_post",
            clients::PRIVATE_KEY_JWT,
        ]));
        TestAuthorizationServer {
            endpoint,
            shared: Arc::new(Shared {
                clients: Clients::default(),
                codes: Codes::default(),
                grants: Grants::default(),
                mode: Mutex::new(AuthorizeMode::Normal),
                user: Mutex::new("alice".into()),
                advertised: Mutex::new(Advertised {
                    code_challenge_methods: Some(vec!["S256".into()]),
                    iss_parameter_supported: true,
                    issuer: None,
                    registration: true,
                    scopes: None,
                }),
            }),
        }
    }

    /// Start one on a fresh loopback port: its issuer is `http://127.0.0.1:PORT`, tokens
    /// asked for without a `resource` are for `audience`. (The endpoint's own
    /// `client_credentials` client is `test-client` with a random secret.)
    pub async fn start(audience: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let origin = format!("http://{}", listener.local_addr().expect("bound"));
        let issuer = Arc::new(TestIssuer::new(origin));
        let endpoint = TestTokenEndpoint::new(issuer, audience, "test-client", &random_hex(16));
        let server = TestAuthorizationServer::new(endpoint);
        let app = server.router();
        tokio::spawn(async move { axum::serve(listener, app).await });
        server
    }

    /// Everything it serves: `GET /authorize`, `POST /register`, `POST /oauth/token`,
    /// `GET /.well-known/jwks.json` and the metadata at `/.well-known/oauth-authorization-server`
    /// and `/.well-known/openid-configuration` (in place of the endpoint's own
    /// [`router`](TestTokenEndpoint::router) and
    /// [`metadata_router`](TestTokenEndpoint::metadata_router)).
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/authorize",
                get(
                    |State(this): State<Self>, Form(q): Form<Vec<(String, String)>>| async move {
                        this.authorize(q)
                    },
                ),
            )
            .route(
                "/register",
                post(
                    |State(this): State<Self>, Json(body): Json<Value>| async move {
                        this.register(body)
                    },
                ),
            )
            .route(
                "/oauth/token",
                post(
                    |State(this): State<Self>,
                     headers: HeaderMap,
                     Form(form): Form<HashMap<String, String>>| async move {
                        this.token(headers, form).await
                    },
                ),
            )
            .route(
                "/.well-known/jwks.json",
                get(|State(this): State<Self>| async move { Json(this.endpoint.issuer().jwks()) }),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                get(|State(this): State<Self>| async move { this.metadata(false) }),
            )
            .route(
                "/.well-known/openid-configuration",
                get(|State(this): State<Self>| async move { this.metadata(true) }),
            )
            .with_state(self.clone())
    }

    /// Its issuer identifier (the endpoint's issuer's), exactly as `iss` carries it.
    pub fn issuer(&self) -> &str {
        self.endpoint.issuer().issuer()
    }

    /// The token endpoint underneath: its issuer, token lifetime, failure modes, and
    /// [`token_requests`](TestTokenEndpoint::token_requests) (every grant's).
    pub fn token_endpoint(&self) -> &TestTokenEndpoint {
        &self.endpoint
    }

    /// Register a client as a test would out of band: `token_endpoint_auth_method` is `none`
    /// (a public client), `client_secret_basic` or `client_secret_post` (a secret is issued).
    /// Panics on a redirect URI that is not absolute, or another method.
    pub fn register_client(
        &self,
        redirect_uris: &[&str],
        token_endpoint_auth_method: &str,
    ) -> TestClient {
        let uris = redirect_uris.iter().map(|u| (*u).to_owned()).collect();
        match self
            .shared
            .clients
            .register(uris, token_endpoint_auth_method)
        {
            Ok(client) => client,
            Err(r) => panic!(
                "cannot register the client: {} ({})",
                r.error, r.description
            ),
        }
    }

    /// Register a `private_key_jwt` client as a test would out of band (RFC 7523 §2.2): no
    /// secret; at the token endpoint it must send `client_assertion_type`
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a `client_assertion`
    /// signed with `alg` by the key whose public half is `public_pem` (PEM, SPKI), with `iss`
    /// and `sub` its `client_id`, `aud` the [issuer](Self::issuer) or the token URL
    /// (`{issuer}/oauth/token`), an `exp` not passed (60 s leeway), and a `jti` not seen
    /// before, and nothing else (no secret, no `Authorization` header). Anything else is
    /// `401 invalid_client`. Panics on a redirect URI that is not absolute, or a PEM that is
    /// not a public key for `alg`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use portcullis::server::jsonwebtoken::Algorithm;
    /// use portcullis::testkit::{TestAuthorizationServer, es256_key_pair};
    /// let server = TestAuthorizationServer::start("https://api.test/mcp").await;
    /// let (_private, public) = es256_key_pair();
    /// let app = server.register_key_client(
    ///     &["http://127.0.0.1/callback"],
    ///     public.as_bytes(),
    ///     Algorithm::ES256,
    /// );
    /// assert_eq!(app.token_endpoint_auth_method, "private_key_jwt");
    /// assert_eq!(app.client_secret, None);
    /// # }
    /// ```
    pub fn register_key_client(
        &self,
        redirect_uris: &[&str],
        public_pem: &[u8],
        alg: Algorithm,
    ) -> TestClient {
        let uris = redirect_uris.iter().map(|u| (*u).to_owned()).collect();
        match self.shared.clients.register_key(uris, public_pem, alg) {
            Ok(client) => client,
            Err(r) => panic!(
                "cannot register the client: {} ({})",
                r.error, r.description
            ),
        }
    }

    /// How `/authorize` answers from now on.
    pub fn set_authorize_mode(&self, mode: AuthorizeMode) {
        *self.shared.mode.lock().expect("not poisoned") = mode;
    }

    /// The person who signs in from now on: the `sub` of the tokens (default `alice`).
    pub fn set_user(&self, subject: &str) {
        *self.shared.user.lock().expect("not poisoned") = subject.to_owned();
    }

    /// What the metadata lists as `code_challenge_methods_supported` (default `["S256"]`;
    /// `None` leaves it out). `/authorize` requires `S256` whatever it says.
    pub fn set_code_challenge_methods(&self, methods: Option<&[&str]>) {
        self.advertise(|a| a.code_challenge_methods = methods.map(strings));
    }

    /// What the metadata says as `authorization_response_iss_parameter_supported` (default
    /// `true`). Redirects carry `iss` either way, unless [`AuthorizeMode::OmitIssuer`].
    pub fn set_iss_parameter_supported(&self, supported: bool) {
        self.advertise(|a| a.iss_parameter_supported = supported);
    }

    /// Serve metadata naming `issuer` as its `issuer` (`None`: the real one), wherever it is
    /// fetched from: a metadata document for another server (RFC 8414 §3.3).
    pub fn set_metadata_issuer(&self, issuer: Option<&str>) {
        self.advertise(|a| a.issuer = issuer.map(str::to_owned));
    }

    /// Whether the metadata names the `registration_endpoint` and `/register` registers
    /// (default `true`; off, `/register` answers `404`).
    pub fn set_dynamic_registration(&self, on: bool) {
        self.advertise(|a| a.registration = on);
    }

    /// What the metadata lists as `scopes_supported` (default: nothing listed).
    pub fn set_scopes_supported(&self, scopes: Option<&[&str]>) {
        self.advertise(|a| a.scopes = scopes.map(strings));
    }

    /// Every `/authorize` request so far, in order.
    pub fn authorize_requests(&self) -> Vec<SeenAuthorizeRequest> {
        self.shared.codes.seen()
    }

    /// Every `/register` request body so far (valid or not), in order.
    pub fn registrations(&self) -> Vec<Value> {
        self.shared.clients.requests()
    }

    /// Every `authorization_code` token request that reached the grant, in order (those a
    /// [`TokenEndpointMode`](crate::TokenEndpointMode) failed are only in
    /// [`token_requests`](TestTokenEndpoint::token_requests)).
    pub fn redemptions(&self) -> Vec<SeenRedemption> {
        self.shared.grants.redemptions()
    }

    /// Codes presented a second time (each refused, revoking what it had issued).
    pub fn replayed_codes(&self) -> u64 {
        self.shared.codes.replays()
    }

    fn advertise(&self, change: impl FnOnce(&mut Advertised)) {
        change(&mut self.shared.advertised.lock().expect("not poisoned"));
    }

    fn authorize(&self, query: Vec<(String, String)>) -> Response {
        let at = Authorize {
            issuer: self.issuer(),
            mode: self.shared.mode.lock().expect("not poisoned").clone(),
            subject: self.shared.user.lock().expect("not poisoned").clone(),
            clients: &self.shared.clients,
        };
        self.shared.codes.authorize(at, query)
    }

    fn register(&self, body: Value) -> Response {
        if !self
            .shared
            .advertised
            .lock()
            .expect("not poisoned")
            .registration
        {
            return StatusCode::NOT_FOUND.into_response();
        }
        let (status, body) = self.shared.clients.register_request(body);
        let mut res = (status, Json(body)).into_response();
        res.headers_mut()
            .insert("cache-control", "no-store".parse().expect("static"));
        res
    }

    async fn token(self, headers: HeaderMap, form: HashMap<String, String>) -> Response {
        if !self.shared.grants.answers(&form) {
            return self.endpoint.clone().token(headers, form).await;
        }
        let parts = Parts {
            endpoint: &self.endpoint,
            clients: &self.shared.clients,
            codes: &self.shared.codes,
        };
        self.shared.grants.token(parts, headers, form).await
    }

    /// The endpoint's metadata document, with what this server adds and the test changed.
    fn metadata(&self, openid: bool) -> Response {
        let Some(mut doc) = self.endpoint.metadata(openid) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let origin = self.issuer();
        let a = self.shared.advertised.lock().expect("not poisoned");
        doc["authorization_endpoint"] = json!(format!("{origin}/authorize"));
        doc["response_types_supported"] = json!(["code"]);
        doc["grant_types_supported"] =
            json!(["authorization_code", "refresh_token", "client_credentials"]);
        doc["authorization_response_iss_parameter_supported"] = json!(a.iss_parameter_supported);
        if let Some(m) = &a.code_challenge_methods {
            doc["code_challenge_methods_supported"] = json!(m);
        }
        if a.registration {
            doc["registration_endpoint"] = json!(format!("{origin}/register"));
        }
        if let Some(s) = &a.scopes {
            doc["scopes_supported"] = json!(s);
        }
        if let Some(issuer) = &a.issuer {
            doc["issuer"] = json!(issuer);
        }
        Json(doc).into_response()
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}
