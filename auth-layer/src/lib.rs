//! A Tower layer that authenticates HTTP requests and answers every failure with the right
//! status, a `WWW-Authenticate` challenge (RFC 6750, RFC 9110) and an RFC 9457
//! `application/problem+json` body with a stable `code`.
//!
//! | failure | status | `code` |
//! |---|---|---|
//! | no credentials | 401 | `missing_credentials` |
//! | malformed credentials | 400 | `invalid_request` |
//! | bad, expired, unknown-key, revoked token | 401 | `token_expired`, `invalid_signature`, … |
//! | authenticated, lacks a scope | 403 | `insufficient_scope` |
//! | keys unavailable | 503 + `Retry-After` | `key_set_unavailable` |
//! | revocation cannot be checked | 503 + `Retry-After` | `revocation_unavailable` |
//!
//! # Example
//! ```
//! use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
//! use portcullis::server::{AuthLayer, Principal, RequireScope};
//! use axum::{Router, routing::get};
//! use portcullis::server::jsonwebtoken::Algorithm;
//!
//! # fn main() -> Result<(), portcullis::server::ConfigError> {
//! let jwt = JwtAuthenticator::builder()
//!     .key(JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::HS256])?)
//!     .issuer("https://id.example.com")
//!     .audience("orders-api")
//!     .build()?;
//!
//! let app: Router = Router::new()
//!     .route("/me", get(|p: Principal| async move { p.subject().unwrap_or("?").to_owned() }))
//!     .route(
//!         "/admin",
//!         get(|| async { "secret" }).route_layer(RequireScope::all(["admin"])),
//!     )
//!     .layer(AuthLayer::builder().realm("orders").bearer(jwt).build()?);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! Put `tower_http::cors::CorsLayer` (or the [`cors::CorsPreset`]) *outside* this layer: it
//! answers preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) before
//! any authentication, and adds CORS headers to failures too. A preflight-shaped request that
//! does reach this layer is answered here, `204 No Content` without CORS headers, and never
//! reaches your service: otherwise any handler that answers `OPTIONS` (`any()`, a fallback,
//! a proxy) would run unauthenticated for anyone who adds two headers. If your service
//! answers preflights itself, opt in with
//! [`pass_preflights`](AuthLayerBuilder::pass_preflights).
//!
//! Revocation is a hook ([`Revocation`]), asked on every request including verified-cache
//! hits: an in-memory [`Denylist`], a closure over your store, or (feature `redis`)
//! `SharedRevocations`, one list for every replica, followed over Redis pub/sub and answered
//! from memory.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The JOSE types this crate's API names (`Algorithm`, `DecodingKey`, `jwk::Jwk`), from the
/// version this crate is built with: naming them needs no dependency of your own.
pub use jsonwebtoken;

mod apikey;
mod authenticator;
mod body;
mod context;
pub mod cors;
mod credential;
mod csrf;
mod error;
#[cfg(feature = "axum")]
mod extract;
pub mod future;
pub mod jwt;
mod layer;
pub mod mcp;
mod metrics;
pub mod policy;
mod principal;
mod resource_metadata;
mod response;
mod revocation;
mod service;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
mod shared_revocation;
mod sources;
mod state;

pub use apikey::ApiKeys;
pub use authenticator::{Authentication, Authenticator};
pub use body::AuthBody;
pub use credential::{CredentialKind, PresentedCredential};
pub use csrf::{CsrfKey, CsrfPolicy};
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use error::JwksError;
pub use error::{AuthError, ConfigError, KeyError};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use error::{LogoutError, SharedRevocationError};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::{AuthRejection, Claims, ClaimsRejection};
pub use layer::{AuthLayer, AuthLayerBuilder};
pub use metrics::AuthMetrics;
pub use policy::layer::{RequireRole, RequireScope};
pub use principal::{ClaimsType, Principal, PrincipalBuilder};
pub use resource_metadata::ProtectedResource;
pub use response::problem::{ProblemJson, ProblemRenderer, RenderedProblem};
pub use revocation::{Denylist, Revocation, RevocationCheck, RevocationStatus};
pub use service::AuthService;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use shared_revocation::{SharedRevocationStats, SharedRevocations, SharedRevocationsBuilder};
