//! Portcullis: HTTP authentication failures that are *correct* on the server and
//! *recoverable* on the client, as Tower layers.
//!
//! - [`server`]: a layer that finds the credential (bearer header, cookie, API-key header),
//!   verifies it, authorizes per route and answers every failure with the right status, a
//!   `WWW-Authenticate` challenge (RFC 6750 / RFC 9110) and an RFC 9457 problem body with a
//!   stable `code`.
//! - [`client`]: a layer for HTTP clients that sends a credential only to its origins,
//!   refreshes it before expiry, and on a `401` refreshes **once** for any number of
//!   concurrent failures and retries **exactly once**.
//! - [`wire`]: the contract both speak (challenges, [`ErrorCode`](wire::ErrorCode), problem
//!   bodies, origins).
//! - `testkit` (feature `testkit`): an identity provider, a token endpoint and loopback HTTP
//!   for your integration tests.
//!
//! # Cargo.toml
//! ```toml
//! [dependencies]
//! portcullis = { version = "0.1", features = ["jwks"] }
//! axum = "0.8"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }
//! serde = { version = "1", features = ["derive"] }
//! # for the client below: hyper-util's client, with TLS
//! hyper-util = { version = "0.1", features = ["client-legacy", "http1", "tokio"] }
//! hyper-rustls = "0.27"
//! http = "1"
//! http-body-util = "0.1"
//! bytes = "1"
//! tower = { version = "0.5", features = ["util"] }
//!
//! [dev-dependencies]
//! portcullis = { version = "0.1", features = ["testkit"] }
//! ```
//!
//! | feature | default | turns on |
//! |---|---|---|
//! | `server`, `client` | yes | `portcullis::server`, `portcullis::client` |
//! | `axum` | yes | the `Principal`, `Option<Principal>` and `Claims<T>` extractors |
//! | `jwks` | no | `server::jwt::JwksKeySource`: a JWKS URL or OpenID Connect discovery (hyper-util, rustls) |
//! | `redis` | no | one revocation list (`server::SharedRevocations`) and one refresh (`client::store::redis::RedisStore`) for every replica |
//! | `loopback` | no | `client::source::authorization_code::LoopbackBrowser`: a person's sign-in from a CLI |
//! | `reqwest` | no | `client::reqwest`: the client layer in front of a `reqwest::Client`, redirects kept inside the credential's origins |
//! | `testkit` | no | `portcullis::testkit` |
//!
//! No TLS stack or HTTP client is compiled in unless you ask for `jwks` (key sets over https)
//! or `reqwest`; `redis` adds the Redis client.
//!
//! # A server
//! Keys from your identity provider, your own claims type, one route per rule, and CORS
//! outside the auth layer so that browser pages can read the failures too:
//! ```no_run
//! use axum::{Router, routing::get};
//! use portcullis::server::cors::CorsPreset;
//! use portcullis::server::jwt::{JwksKeySource, JwtAuthenticator};
//! use portcullis::server::{AuthLayer, Claims, Principal, RequireScope};
//!
//! #[derive(Clone, serde::Deserialize)]
//! struct MyClaims { tenant: String }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let jwt = JwtAuthenticator::builder()
//!         .key_source(JwksKeySource::discover("https://id.example.com").await?)
//!         .issuer("https://id.example.com")
//!         .audience("orders-api")
//!         .claims::<MyClaims>()
//!         .build()?;
//!     let app = Router::new()
//!         .route("/me", get(|p: Principal| async move { p.subject().unwrap_or("?").to_owned() }))
//!         .route("/orders", get(|Claims(c): Claims<MyClaims>| async move { c.tenant }))
//!         .route("/admin", get(|| async { "ok" }).route_layer(RequireScope::all(["admin"])))
//!         // `.claims::<MyClaims>()`: a handler's `Claims<T>` that the authenticator does not
//!         // attach is a ConfigError here, not a 500 at the first request.
//!         .layer(AuthLayer::builder().realm("orders").bearer(jwt).claims::<MyClaims>().build()?)
//!         .route("/health", get(|| async { "ok" })) // added after the auth layer: public
//!         .layer(CorsPreset::new().allow_origin("https://app.example.com").build()?);
//!     axum::serve(tokio::net::TcpListener::bind("0.0.0.0:8080").await?, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! What a client sees when it is refused (the problem body's `code` is a
//! [`wire::ErrorCode`]; [`client`] reads it back as the same type):
//!
//! | failure | status | challenge | `code` |
//! |---|---|---|---|
//! | no credentials | 401 | `Bearer realm="orders"` | `missing_credentials` |
//! | another scheme (`Basic …`) | 401 | `Bearer realm="orders"` | `unsupported_scheme` |
//! | malformed (`Bearer a b`, two headers, two places) | 400 | `…, error="invalid_request"` | `invalid_request` |
//! | bad, expired, unknown-key or revoked token | 401 | `…, error="invalid_token"` | `token_expired`, `invalid_signature`, `unknown_key`, `token_revoked`, … |
//! | authentic token, claims not of your claims type | 403 | none | `invalid_claims` |
//! | lacks a scope | 403 | `…, error="insufficient_scope", scope="admin"` | `insufficient_scope` |
//! | role or custom policy says no | 403 | none | `forbidden` |
//! | cookie-authenticated change without its CSRF proof | 403 | none | `csrf_failed` |
//! | keys or revocation list unreachable | 503 + `Retry-After` | none | `key_set_unavailable`, `revocation_unavailable` |
//!
//! # A client
//! OAuth 2 client credentials over hyper-util's client; the token endpoint is called through
//! the plain client, never through the layer:
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//! use portcullis::client::{OAuth2, RefreshLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let https = hyper_rustls::HttpsConnectorBuilder::new()
//!         .with_native_roots()?.https_only().enable_http1().build();
//!     let http = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(https);
//!     let source = OAuth2::builder("https://id.example.com/oauth/token", "my-client")
//!         .client_secret(std::env::var("CLIENT_SECRET")?)
//!         .scope("orders:read")
//!         .client_credentials(http.clone())?;
//!     let layer = RefreshLayer::builder(source).allow_origin("https://api.example.com").build()?;
//!     let api = ServiceBuilder::new().layer(layer).service(http);
//!     let req = http::Request::get("https://api.example.com/orders").body(Full::default())?;
//!     println!("{}", api.oneshot(req).await?.status());
//!     Ok(())
//! }
//! ```
//!
//! # Testing
//! With `portcullis::testkit` (feature `testkit`): an issuer with fresh keys mints tokens, the
//! app is served on `127.0.0.1:0`, and each answer is checked against the contract (status,
//! `application/problem+json`, `no-store`, `code`, challenges parsed strictly):
//! ```
//! use axum::{Router, routing::get};
//! use portcullis::server::jsonwebtoken::Algorithm;
//! use portcullis::server::jwt::JwtAuthenticator;
//! use portcullis::server::{AuthLayer, RequireScope};
//! use portcullis::testkit::TestIssuer;
//! use portcullis::testkit::loopback::{TestRequest, serve};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // In tests/api.rs, inside a #[tokio::test] async fn:
//! let issuer = TestIssuer::new("https://id.test");
//! let jwt = JwtAuthenticator::builder()
//!     .key(issuer.verification_key(Algorithm::ES256))
//!     .issuer(issuer.issuer())
//!     .audience("orders-api")
//!     .build()
//!     .unwrap();
//! let app = Router::new()
//!     .route("/admin", get(|| async { "ok" }).route_layer(RequireScope::all(["admin"])))
//!     .layer(AuthLayer::builder().realm("orders").bearer(jwt).build().unwrap());
//! let addr = serve(app).await;
//!
//! let claims = issuer.access_claims("alice", "orders-api", "orders:read", 300);
//! let token = issuer.mint(Algorithm::ES256, claims);
//! let reply = TestRequest::get(addr, "/admin").bearer(&token).send().await;
//! reply.assert_problem(403, "insufficient_scope");
//! assert_eq!(reply.challenge("Bearer").param("scope"), Some("admin"));
//!
//! // Every method, with its credential and body: TestRequest::post(addr, "/x").json(&body)…
//! TestRequest::delete(addr, "/admin").send().await.assert_problem(401, "missing_credentials");
//! # }
//! ```
//! `TestTokenEndpoint` serves a token endpoint (client credentials, rotating refresh tokens)
//! for testing a client, and `TestAuthorizationServer` a person's sign-in.
//!
//! # Where things are
//! The everyday names sit at the root of [`server`] and [`client`]; each other name has one
//! path, in the module of its concept.
//!
//! | path | what |
//! |---|---|
//! | `server::{AuthLayer, Principal, Claims, RequireScope, RequireRole, ApiKeys, ProtectedResource, Revocation, Denylist}` | the layer (`AuthLayer::accepting`: a copy for routes that take only some credential kinds), who is calling, route rules, API keys, RFC 9728 metadata, revocation |
//! | [`server::jwt`] | `JwtAuthenticator` (its builder's `roles_claim` names where roles come from), `JwtKey`, `KeySource`; `JwksKeySource` (feature `jwks`) |
//! | [`server::policy`] | `RequirePolicy` (a closure), `RequireCredential` (which credential kinds a route takes) |
//! | [`server::mcp`] | `ToolScopesLayer`: per-tool scopes for MCP (JSON-RPC) endpoints |
//! | [`server::cors`] | `CorsPreset`: tower-http's `CorsLayer`, configured for credentials |
//! | `server::{CsrfPolicy, CsrfKey}` | the CSRF proof cookie-authenticated changes need |
//! | `client::{RefreshLayer, OAuth2, from_fn, Credential, CredentialHandle, AuthFailure}` | the layer, the built-in sources, signing in and out, a refusal read back |
//! | [`client::source::discovery`] | `Discovery`: from a resource's `401` to its authorization server (MCP) |
//! | [`client::source::shared_grant`] | `SharedGrant`: one grant refreshed once for every process |
//! | [`client::source::authorization_code`] | `AuthorizationCode`: a person's sign-in (PKCE); `LoopbackBrowser` (feature `loopback`) |
//! | [`client::store`] | `CredentialStore`, `MemoryStore`, `FileStore`; `store::redis::RedisStore` (feature `redis`) |
//! | [`wire`] | `ErrorCode`, `Problem`, `ProblemDetails`, `parse_challenges`, `ChallengeBuilder`, `Origin`, `well_known` |
//! | `client::reqwest` (feature `reqwest`) | `ReqwestClient`, `ReqwestService`: the layer in front of reqwest |
//! | `testkit` | `TestIssuer`, `TestTokenEndpoint`, `TestAuthorizationServer`, `loopback::{serve, TestRequest, Reply}` |
//!
//! `jsonwebtoken` is re-exported as `portcullis::server::jsonwebtoken` (and
//! `portcullis::client::jsonwebtoken`): naming an `Algorithm` needs no dependency of your own.
#![deny(missing_docs)]

pub use portcullis_wire as wire;

#[cfg(feature = "server")]
pub use auth_layer as server;
#[cfg(feature = "client")]
pub use refresh_layer as client;

#[cfg(feature = "testkit")]
pub use portcullis_testkit as testkit;

/// The README's examples compile (they are run as doctests).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
