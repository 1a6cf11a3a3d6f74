//! An orders API behind Portcullis: the shape of a real app, to copy from top to bottom.
//!
//! - RS256 access tokens from your identity provider, verified with its public key (PEM), with
//!   `iss` and `aud` checked, and the app's own `tenant` claim handed to handlers.
//! - A scope per route (`read` to list, `write` to create), an API-key route for machines
//!   (`/deploy`), a public route (`/health`).
//! - CORS with credentials for one browser app, outside the auth layer so that 401/403 answers
//!   are readable by the page.
//!
//! `examples/orders_api/main.rs` runs it with a development identity provider;
//! `tests/newcomer_app.rs` tests it with a client and the refresh layer.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use portcullis::server::cors::CorsPreset;
use portcullis::server::jsonwebtoken::Algorithm;
use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
use portcullis::server::policy::RequireCredential;
use portcullis::server::{
    ApiKeys, AuthLayer, Claims, ConfigError, CredentialKind, Principal, RequireScope,
};
use serde::Deserialize;

/// What the app needs to know; in production it comes from your configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The identity provider's `iss`.
    pub issuer: String,
    /// This API's identifier: tokens for other APIs of the same issuer are refused.
    pub audience: String,
    /// The provider's RS256 public key (`-----BEGIN PUBLIC KEY-----`).
    pub public_pem: Vec<u8>,
    /// Machine clients: an API key and who it belongs to.
    pub api_keys: Vec<(String, String)>,
    /// The browser app that calls this API with credentials.
    pub allow_origin: String,
    /// How far past `exp` a token is still accepted (clock skew between machines).
    pub leeway: Duration,
}

/// The app's own claims, parsed from every token.
#[derive(Clone, Debug, Deserialize)]
pub struct OrderClaims {
    /// The customer the caller acts for.
    pub tenant: String,
}

async fn list(Claims(c): Claims<OrderClaims>) -> String {
    format!("orders of {}", c.tenant)
}

async fn create(p: Principal, Claims(c): Claims<OrderClaims>) -> String {
    format!(
        "order created for {} by {}",
        c.tenant,
        p.subject().unwrap_or("?")
    )
}

async fn deploy(p: Principal) -> String {
    format!("deployed by {}", p.subject().unwrap_or("?"))
}

/// The whole app: routes, policies, the auth layer, CORS.
pub fn router(config: Config) -> Result<Router, ConfigError> {
    let jwt = JwtAuthenticator::builder()
        .key(JwtKey::rsa_pem(&config.public_pem, &[Algorithm::RS256])?)
        .issuer(config.issuer)
        .audience(config.audience)
        .leeway(config.leeway)
        .claims::<OrderClaims>()
        .build()?;
    let machines = config
        .api_keys
        .iter()
        .fold(ApiKeys::new(), |keys, (key, owner)| {
            keys.with_key(
                key,
                Principal::builder(CredentialKind::ApiKey)
                    .subject(owner.clone())
                    .build(),
            )
        });
    let auth = AuthLayer::builder()
        .realm("orders")
        .bearer(jwt)
        .api_key("x-api-key", machines)
        .build()?;
    Ok(Router::new()
        .route(
            "/orders",
            get(list)
                .route_layer(RequireScope::all(["read"]))
                .merge(post(create).route_layer(RequireScope::all(["write"]))),
        )
        .route(
            "/deploy",
            post(deploy).route_layer(RequireCredential::any_of([CredentialKind::ApiKey])),
        )
        .layer(auth)
        // Added after the auth layer: public.
        .route("/health", get(|| async { "ok" }))
        .layer(
            CorsPreset::new()
                .allow_origin(config.allow_origin)
                .allow_header("x-api-key")
                .build()?,
        ))
}
