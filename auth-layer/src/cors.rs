//! A `tower_http::cors::CorsLayer` preset for credentialed APIs.
//!
//! Browsers hide a 401 behind a "CORS error" unless the failure itself carries CORS headers.
//! Put the layer this preset builds *outside* the [`AuthLayer`], so every
//! answer — 200, 400, 401, 403, 503 — gets them, and preflights are answered before any
//! authentication.
//!
//! # Example
//! ```
//! use portcullis::server::cors::CorsPreset;
//! use portcullis::server::jsonwebtoken::Algorithm;
//! use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
//! use portcullis::server::AuthLayer;
//! use axum::{Router, routing::get};
//!
//! # fn main() -> Result<(), portcullis::server::ConfigError> {
//! let jwt = JwtAuthenticator::builder()
//!     .key(JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::HS256])?)
//!     .audience("orders-api")
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/api/me", get(|| async { "me" }))
//!     .layer(AuthLayer::bearer(jwt)?)
//!     .layer(CorsPreset::new().allow_origin("https://app.example.com").build()?);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ConfigError;
use crate::layer::AuthLayer;

type OriginPredicate = Arc<dyn Fn(&HeaderValue, &Parts) -> bool + Send + Sync>;

/// Builds a [`CorsLayer`] with credentials allowed, explicit origins, `authorization` named
/// in `Access-Control-Allow-Headers` (`*` does not cover it), `WWW-Authenticate` and
/// `Retry-After` exposed, and `Vary: Origin`. A wildcard origin is refused when built.
#[derive(Clone, Default)]
#[must_use]
pub struct CorsPreset {
    origins: Vec<String>,
    predicate: Option<OriginPredicate>,
    headers: Vec<String>,
    max_age: Option<Duration>,
}

impl std::fmt::Debug for CorsPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorsPreset")
            .field("origins", &self.origins)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl CorsPreset {
    /// An empty preset: allow at least one origin before building.
    pub fn new() -> Self {
        CorsPreset::default()
    }

    /// Allow pages from `origin` (`scheme://host[:port]`, exactly as browsers send it).
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Allow origins accepted by `predicate` (in addition to the listed ones).
    pub fn allow_origin_predicate(
        mut self,
        predicate: impl Fn(&HeaderValue, &Parts) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// Allow one more request header besides `authorization` and `content-type`. The headers
    /// an [`AuthLayer`] reads (its CSRF and API-key headers) are better taken from it with
    /// [`allow_headers_of`](Self::allow_headers_of): they cannot then drift apart.
    pub fn allow_header(mut self, name: impl Into<String>) -> Self {
        self.headers.push(name.into());
        self
    }

    /// Allow the request headers `layer` reads from pages: the header of its CSRF token and
    /// its API-key header ([`AuthLayer::request_headers`]). Without them a cross-origin page's
    /// write or API-key request fails its preflight, before the layer ever sees it.
    ///
    /// ```
    /// use portcullis::server::cors::CorsPreset;
    /// use portcullis::server::{ApiKeys, AuthLayer, CsrfKey, CsrfPolicy};
    ///
    /// # fn main() -> Result<(), portcullis::server::ConfigError> {
    /// # let sessions = ApiKeys::new();
    /// let key = CsrfKey::new(b"read-me-from-the-secret-store-not-the-source")?;
    /// let auth = AuthLayer::builder()
    ///     .cookie("sid", sessions)
    ///     .csrf(CsrfPolicy::session_bound(key).trusted_origin("https://app.example.com"))
    ///     .build()?;
    /// // `x-csrf-token` is allowed in preflights, with no name to repeat here.
    /// let cors = CorsPreset::new()
    ///     .allow_origin("https://app.example.com")
    ///     .allow_headers_of(&auth)
    ///     .build()?;
    /// # let _ = cors;
    /// # Ok(())
    /// # }
    /// ```
    pub fn allow_headers_of(mut self, layer: &AuthLayer) -> Self {
        self.headers
            .extend(layer.request_headers().map(|h| h.as_str().to_owned()));
        self
    }

    /// How long browsers may cache a preflight answer (default 10 minutes).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Check the configuration and build the layer.
    pub fn build(self) -> Result<CorsLayer, ConfigError> {
        if self.origins.is_empty() && self.predicate.is_none() {
            return Err(ConfigError::NoOrigin);
        }
        let mut list = Vec::with_capacity(self.origins.len());
        for o in &self.origins {
            if o.trim() == "*" {
                return Err(ConfigError::WildcardOrigin);
            }
            let bad = || ConfigError::InvalidOrigin(o.clone());
            // Browsers send an origin without a trailing slash, and the list is compared byte
            // for byte: `https://a.example/` would never match.
            if portcullis_wire::Origin::parse(o).is_err() || o.ends_with('/') {
                return Err(bad());
            }
            list.push(HeaderValue::from_str(o).map_err(|_| bad())?);
        }
        let mut headers = vec![AUTHORIZATION, CONTENT_TYPE];
        for h in &self.headers {
            let name = HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| ConfigError::InvalidHeaderName(h.clone()))?;
            // A header named twice (by hand and through `allow_headers_of`) is listed once.
            if !headers.contains(&name) {
                headers.push(name);
            }
        }
        let allow_origin = match self.predicate {
            None => AllowOrigin::list(list),
            Some(pred) => AllowOrigin::predicate(move |origin: &HeaderValue, parts: &Parts| {
                list.iter().any(|o| o == origin) || pred(origin, parts)
            }),
        };
        Ok(CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_credentials(true)
            .allow_headers(headers)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .expose_headers([WWW_AUTHENTICATE, RETRY_AFTER])
            .max_age(self.max_age.unwrap_or(Duration::from_secs(600))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_and_malformed_origins_are_config_errors() {
        assert_eq!(
            CorsPreset::new().allow_origin("*").build().err(),
            Some(ConfigError::WildcardOrigin)
        );
        for o in [
            "https://a.example/",
            "https://a.example/path",
            "a.example",
            "",
        ] {
            assert_eq!(
                CorsPreset::new().allow_origin(o).build().err(),
                Some(ConfigError::InvalidOrigin(o.into())),
                "{o:?}"
            );
        }
        assert_eq!(CorsPreset::new().build().err(), Some(ConfigError::NoOrigin));
        assert!(
            CorsPreset::new()
                .allow_origin("http://localhost:3000")
                .build()
                .is_ok()
        );
    }
}
