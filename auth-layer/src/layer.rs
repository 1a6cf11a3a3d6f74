//! [`AuthLayer`] and its builder: configuration only, validated when the layer is built.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderName;
use tower::Layer;

use crate::authenticator::Authenticator;
use crate::authenticator::engine::Engine;
use crate::context::LayerContext;
use crate::credential::CredentialKind;
use crate::csrf::CsrfPolicy;
use crate::error::ConfigError;
use crate::metrics::AuthMetrics;
use crate::principal::ClaimsType;
use crate::resource_metadata::ProtectedResource;
use crate::response::challenge::Challenges;
use crate::response::problem::{ProblemRenderer, Responder, ResponderConfig};
use crate::service::AuthService;
use crate::sources::Sources;
use crate::state::{Engines, Shared};
use portcullis_wire::grammar::is_token;

/// Authenticates every request of the wrapped service; see the [crate docs](crate).
///
/// Holds only configuration (behind an `Arc`): cloning it and applying it to many services is
/// cheap, and all of them share one set of [`AuthMetrics`].
#[derive(Clone)]
#[must_use]
pub struct AuthLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("sources", &self.shared.sources)
            .field("optional", &self.shared.optional)
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// Start configuring a layer.
    pub fn builder() -> AuthLayerBuilder {
        AuthLayerBuilder::default()
    }

    /// A layer that accepts `Authorization: Bearer` tokens checked by `authenticator`, with the
    /// default realm `api`.
    pub fn bearer(authenticator: impl Authenticator) -> Result<Self, ConfigError> {
        AuthLayer::builder().bearer(authenticator).build()
    }

    /// A copy of this layer for routes that take only some of its credential kinds: it reads
    /// only where those are sent (another kind's header is just a header there, not a second
    /// credential) and its failures carry only their challenges. Its 401
    /// `missing_credentials` says what it takes (`…; it takes an API key in the x-api-key
    /// header`). A request that carries none of its kinds but a credential of another kind this
    /// layer reads (a user's bearer token on an API-key route) is answered 403 `forbidden`
    /// without challenge, naming the kinds the route takes, as
    /// [`RequireCredential`](crate::policy::RequireCredential) does: a 401 would only make the
    /// client refresh its token and retry. Cheap: it shares this layer's authenticators (and
    /// their caches), CSRF check, revocation, renderer and [`AuthMetrics`].
    ///
    /// Give each copy to its routes with axum's `route_layer`, and put no broader layer
    /// around them: the outer one would answer first, with all of its challenges. (A
    /// `RequireCredential` inside the full layer refuses the wrong kind with the same 403,
    /// but a 401 there still lists every scheme.)
    ///
    /// Fails with [`ConfigError::CredentialNotConfigured`] for a kind this layer was not built
    /// with, and [`ConfigError::NoCredentialSource`] for none.
    ///
    /// ```
    /// use axum::{Router, routing::{get, post}};
    /// use portcullis::server::jsonwebtoken::Algorithm;
    /// use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
    /// use portcullis::server::{ApiKeys, AuthLayer, CredentialKind, Principal};
    /// # fn main() -> Result<(), portcullis::server::ConfigError> {
    /// # let jwt = JwtAuthenticator::builder()
    /// #     .key(JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::HS256])?)
    /// #     .audience("orders-api")
    /// #     .build()?;
    /// # let machines = ApiKeys::new();
    /// let auth = AuthLayer::builder().bearer(jwt).api_key("x-api-key", machines).build()?;
    /// let app: Router = Router::new()
    ///     // 401 here: `WWW-Authenticate: Bearer realm="api"` only.
    ///     .merge(Router::new()
    ///         .route("/me", get(|p: Principal| async move { format!("{:?}", p.subject()) }))
    ///         .route_layer(auth.accepting([CredentialKind::Bearer])?))
    ///     // 401 here: `WWW-Authenticate: ApiKey realm="api"` only; a bearer token: 403.
    ///     .route("/deploy", post(|| async { "deployed" })
    ///         .route_layer(auth.accepting([CredentialKind::ApiKey])?))
    ///     // Both kinds, both challenges.
    ///     .route("/status", get(|| async { "ok" }).route_layer(auth.clone()));
    /// # let _ = app; Ok(()) }
    /// ```
    pub fn accepting(
        &self,
        kinds: impl IntoIterator<Item = CredentialKind>,
    ) -> Result<AuthLayer, ConfigError> {
        Ok(AuthLayer {
            shared: Arc::new(self.shared.accepting(kinds)?),
        })
    }

    /// The layer's decision counters.
    pub fn metrics(&self) -> Arc<AuthMetrics> {
        self.shared.metrics.clone()
    }

    /// The request headers this layer reads that a page sets itself, besides `authorization`:
    /// its API-key header and the header of its CSRF token. A browser sends them cross-origin
    /// only when the preflight allows them, which
    /// [`CorsPreset::allow_headers_of`](crate::cors::CorsPreset::allow_headers_of) does.
    pub fn request_headers(&self) -> impl Iterator<Item = &HeaderName> + '_ {
        // A copy made by `accepting` names only the headers it reads: the CSRF header matters
        // only where cookies are read.
        let sources = &self.shared.sources;
        let csrf = (self.shared.csrf.as_ref())
            .filter(|_| sources.reads(CredentialKind::Cookie))
            .and_then(|c| c.header());
        sources.read_api_key().into_iter().chain(csrf)
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService::new(inner, self.shared.clone())
    }
}

/// What [`AuthLayerBuilder::csrf`] was told. Unset is not a protection: a layer with a cookie
/// source refuses to build until one is chosen (there is no key to default to).
#[derive(Debug)]
enum CsrfChoice {
    Unset,
    Off,
    On(CsrfPolicy),
}

/// Configures an [`AuthLayer`]; see [`AuthLayer::builder`].
#[must_use]
pub struct AuthLayerBuilder {
    realm: String,
    bearer: Option<Arc<dyn Authenticator>>,
    cookie: Option<(String, Arc<dyn Authenticator>)>,
    api_key: Option<(String, Arc<dyn Authenticator>)>,
    api_key_scheme: String,
    csrf: CsrfChoice,
    optional: bool,
    pass_preflights: bool,
    strip: bool,
    allow_multiple: bool,
    claims: Option<ClaimsType>,
    type_base: Option<String>,
    renderer: Option<Arc<dyn ProblemRenderer>>,
    resource: Option<ProtectedResource>,
}

impl fmt::Debug for AuthLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayerBuilder")
            .field("realm", &self.realm)
            .field("bearer", &self.bearer.is_some())
            .field("cookie", &self.cookie.as_ref().map(|(name, _)| name))
            .field("api_key", &self.api_key.as_ref().map(|(header, _)| header))
            .field("csrf", &self.csrf)
            .field("optional", &self.optional)
            .field("strip_credentials", &self.strip)
            .field("pass_preflights", &self.pass_preflights)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl Default for AuthLayerBuilder {
    fn default() -> Self {
        AuthLayerBuilder {
            realm: "api".into(),
            bearer: None,
            cookie: None,
            api_key: None,
            api_key_scheme: "ApiKey".into(),
            csrf: CsrfChoice::Unset,
            optional: false,
            pass_preflights: false,
            strip: false,
            allow_multiple: false,
            claims: None,
            type_base: None,
            renderer: None,
            resource: None,
        }
    }
}

impl AuthLayerBuilder {
    /// The `realm` of every challenge (default `api`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Accept `Authorization: Bearer <token>`, checked by `authenticator`.
    pub fn bearer(mut self, authenticator: impl Authenticator) -> Self {
        self.bearer = Some(Arc::new(authenticator));
        self
    }

    /// Accept a token in the cookie `name`, checked by `authenticator`.
    pub fn cookie(mut self, name: impl Into<String>, authenticator: impl Authenticator) -> Self {
        self.cookie = Some((name.into(), Arc::new(authenticator)));
        self
    }

    /// How cookie-authenticated unsafe requests prove they come from our pages: usually
    /// [`CsrfPolicy::session_bound`]`(key)`, see [`CsrfPolicy`]. There is no default: with a
    /// [`cookie`](Self::cookie) source, [`build`](Self::build) fails with
    /// [`ConfigError::CsrfNotConfigured`] until this (or
    /// [`disable_csrf_protection`](Self::disable_csrf_protection)) is called.
    pub fn csrf(mut self, csrf: CsrfPolicy) -> Self {
        self.csrf = CsrfChoice::On(csrf);
        self
    }

    /// **Risky**: no CSRF check on cookie-authenticated requests, so any page a signed-in user
    /// visits can make changes in their name. Only for a cookie that is `SameSite=Strict`, on
    /// a site where no other origin (sibling subdomains included) serves pages.
    pub fn disable_csrf_protection(mut self) -> Self {
        self.csrf = CsrfChoice::Off;
        self
    }

    /// Accept an API key in the header `header`, checked by `authenticator` (usually
    /// [`ApiKeys`](crate::ApiKeys)). Failures name the scheme set with [`api_key_scheme`](Self::api_key_scheme).
    pub fn api_key(mut self, header: impl Into<String>, authenticator: impl Authenticator) -> Self {
        self.api_key = Some((header.into(), Arc::new(authenticator)));
        self
    }

    /// The challenge scheme for API keys (default `ApiKey`).
    pub fn api_key_scheme(mut self, scheme: impl Into<String>) -> Self {
        self.api_key_scheme = scheme.into();
        self
    }

    /// Let requests without any credential through, anonymously (no [`Principal`](crate::Principal) in their
    /// extensions). Bad credentials are still refused. Pair with route policies, which
    /// answer 401 for anonymous requests.
    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    /// Let preflight-shaped requests (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`) reach the inner service unauthenticated (default
    /// `false`: the layer answers them `204` itself). Turn it on only when the inner service
    /// answers preflights without running a handler, e.g. a CORS layer placed inside this one.
    pub fn pass_preflights(mut self, pass: bool) -> Self {
        self.pass_preflights = pass;
        self
    }

    /// Remove the credential from every accepted request before the inner service sees it
    /// (default `false`): the `Authorization` header, the API-key header and the credential
    /// cookie (the request's other cookies stay). The [`Principal`](crate::Principal) is all
    /// the service gets, so a handler that forwards headers upstream, logs them or hands them
    /// to a framework (rmcp gives tool handlers the whole request head) cannot pass the
    /// caller's token on: a resource server must never relay the token it was given
    /// (MCP authorization, "token passthrough").
    ///
    /// ```
    /// use portcullis::server::{ApiKeys, AuthLayer};
    /// let layer = AuthLayer::builder()
    ///     .api_key("x-api-key", ApiKeys::new())
    ///     .strip_credentials(true)
    ///     .build()
    ///     .unwrap();
    /// # let _ = layer;
    /// ```
    pub fn strip_credentials(mut self, strip: bool) -> Self {
        self.strip = strip;
        self
    }

    /// Accept a request with credentials in several places, using the first by precedence
    /// (Authorization header, API-key header, cookie). Off by default: RFC 6750 §2 forbids
    /// more than one method per request and the layer answers 400.
    pub fn allow_multiple_credentials(mut self, allow: bool) -> Self {
        self.allow_multiple = allow;
        self
    }

    /// The base of each problem `type` URI; the code is appended
    /// (default `urn:portcullis:error:`).
    pub fn problem_type_base(mut self, base: impl Into<String>) -> Self {
        self.type_base = Some(base.into());
        self
    }

    /// Render problem bodies with your own renderer.
    pub fn renderer(mut self, renderer: impl ProblemRenderer) -> Self {
        self.renderer = Some(Arc::new(renderer));
        self
    }

    /// Serve RFC 9728 metadata and advertise it in Bearer challenges.
    pub fn resource_metadata(mut self, resource: ProtectedResource) -> Self {
        self.resource = Some(resource);
        self
    }

    /// Where credentials are read from, checked: at least one source, a cookie name that is
    /// a token, an API-key header of its own.
    fn sources(&self) -> Result<Sources, ConfigError> {
        if self.bearer.is_none() && self.cookie.is_none() && self.api_key.is_none() {
            return Err(ConfigError::NoCredentialSource);
        }
        if let Some((name, _)) = &self.cookie
            && !is_token(name)
        {
            return Err(ConfigError::InvalidCookieName(name.clone()));
        }
        let api_key_header = match &self.api_key {
            Some((h, _)) => {
                let name = HeaderName::from_bytes(h.as_bytes())
                    .map_err(|_| ConfigError::InvalidHeaderName(h.clone()))?;
                // The bearer and cookie sources read these; an API key there would be read
                // twice, as two credentials.
                if name == http::header::AUTHORIZATION || name == http::header::COOKIE {
                    return Err(ConfigError::ReservedHeader(h.clone()));
                }
                Some(name)
            }
            None => None,
        };
        Ok(Sources {
            bearer: self.bearer.is_some(),
            cookie: self.cookie.as_ref().map(|(n, _)| n.clone()),
            api_key: api_key_header,
            allow_multiple: self.allow_multiple,
            reads: [true; CredentialKind::COUNT],
        })
    }

    /// One engine per credential kind the layer accepts.
    fn engines(
        bearer: Option<Arc<dyn Authenticator>>,
        cookie: Option<(String, Arc<dyn Authenticator>)>,
        api_key: Option<(String, Arc<dyn Authenticator>)>,
    ) -> Engines {
        let mut engines = Engines::default();
        let authenticators = [
            (CredentialKind::Bearer, bearer),
            (CredentialKind::Cookie, cookie.map(|(_, a)| a)),
            (CredentialKind::ApiKey, api_key.map(|(_, a)| a)),
        ];
        for (kind, authenticator) in authenticators {
            if let Some(a) = authenticator {
                engines.set(kind, Engine::new(a));
            }
        }
        engines
    }

    /// The claims type the handlers behind this layer read with `Claims<T>`: `build()` then
    /// refuses a bearer or cookie authenticator whose principals carry another type, or none
    /// ([`ConfigError::ClaimsTypeMismatch`]), instead of every request to those handlers
    /// failing with 500. Only authenticators that say what they attach
    /// ([`Authenticator::claims_type`]: `JwtAuthenticator` does) can be checked; your own, and
    /// [`ApiKeys`](crate::ApiKeys) (whose principals carry whatever claims you built them
    /// with), are not. A `Claims<T>` handler answers an API key without claims with 403
    /// `forbidden` (a credential this route cannot serve): keep API keys off such routes
    /// with `RequireCredential` or [`AuthLayer::accepting`].
    ///
    /// ```
    /// use portcullis::server::jsonwebtoken::Algorithm;
    /// use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
    /// use portcullis::server::{AuthLayer, ConfigError};
    ///
    /// #[derive(Clone, serde::Deserialize)]
    /// struct Org { org_id: String }
    /// #[derive(Clone, serde::Deserialize)]
    /// struct Tenant { tenant: String }
    ///
    /// # fn main() -> Result<(), ConfigError> {
    /// let key = || JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::HS256]);
    /// let jwt = JwtAuthenticator::builder().key(key()?).audience("api").claims::<Org>().build()?;
    /// assert!(AuthLayer::builder().bearer(jwt.clone()).claims::<Org>().build().is_ok());
    /// // Handlers reading `Claims<Tenant>` behind an authenticator of `Org`: caught here.
    /// let err = AuthLayer::builder().bearer(jwt).claims::<Tenant>().build().unwrap_err();
    /// assert!(matches!(err, ConfigError::ClaimsTypeMismatch { .. }));
    /// # Ok(())
    /// # }
    /// ```
    pub fn claims<T: Clone + Send + Sync + 'static>(mut self) -> Self {
        self.claims = Some(ClaimsType::of::<T>());
        self
    }

    /// A bearer or cookie authenticator whose principals carry another claims type than the
    /// one declared with [`claims`](Self::claims).
    fn check_claims(&self) -> Result<(), ConfigError> {
        let Some(expected) = self.claims else {
            return Ok(());
        };
        let token_sources = [
            ("bearer", self.bearer.as_ref()),
            ("cookie", self.cookie.as_ref().map(|(_, a)| a)),
        ];
        for (credential, authenticator) in token_sources {
            if let Some(found) = authenticator.and_then(|a| a.claims_type())
                && found != expected
            {
                return Err(ConfigError::ClaimsTypeMismatch {
                    credential,
                    expected: expected.name(),
                    found: found.name(),
                });
            }
        }
        Ok(())
    }

    /// Check the configuration and build the layer.
    pub fn build(self) -> Result<AuthLayer, ConfigError> {
        self.check_claims()?;
        let sources = self.sources()?;
        let (metadata_url, metadata) = match &self.resource {
            Some(r) => {
                let invalid = || ConfigError::InvalidResource(r.resource().to_owned());
                let url = r.metadata_url().ok_or_else(invalid)?;
                let json = serde_json::to_vec(r).map_err(|_| invalid())?;
                (Some(url), Some((r.served_paths(), Bytes::from(json))))
            }
            None => (None, None),
        };
        let defaults = ResponderConfig::default();
        let challenges = Challenges::new(
            self.realm,
            self.bearer.is_some() || self.cookie.is_some(),
            self.api_key.as_ref().map(|_| self.api_key_scheme.clone()),
            metadata_url,
        )?
        .with_scope(
            self.resource
                .as_ref()
                .and_then(|r| r.scope_of_challenge())
                .map(str::to_owned),
        )?;
        let responder = Responder::new(ResponderConfig {
            challenges,
            type_base: self.type_base.unwrap_or(defaults.type_base),
            renderer: self.renderer.unwrap_or(defaults.renderer),
        });
        let csrf = match (&self.cookie, self.csrf) {
            (Some(_), CsrfChoice::On(c)) => Some(Arc::new(c.compile()?)),
            (Some(_), CsrfChoice::Unset) => return Err(ConfigError::CsrfNotConfigured),
            _ => None,
        };
        let responder = Arc::new(responder);
        let metrics = Arc::<AuthMetrics>::default();
        let engines = Self::engines(self.bearer, self.cookie, self.api_key);
        Ok(AuthLayer {
            shared: Arc::new(Shared {
                sources,
                engines,
                optional: self.optional,
                pass_preflights: self.pass_preflights,
                strip: self.strip,
                csrf,
                context: LayerContext::new(responder.clone(), metrics.clone()),
                responder,
                metrics,
                metadata,
                wrong_kind: None,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApiKeys, ProtectedResource};

    /// Each mistake is named by its own variant, carrying the value that was refused.
    #[test]
    fn configuration_mistakes_are_typed() {
        let keys = ApiKeys::new;
        assert_eq!(
            AuthLayer::builder().build().err(),
            Some(ConfigError::NoCredentialSource)
        );
        assert_eq!(
            AuthLayer::builder().cookie("a b", keys()).build().err(),
            Some(ConfigError::InvalidCookieName("a b".into()))
        );
        // A cookie source with no CSRF protection chosen: there is no key to default to.
        assert_eq!(
            AuthLayer::builder().cookie("sid", keys()).build().err(),
            Some(ConfigError::CsrfNotConfigured)
        );
        assert!(
            AuthLayer::builder()
                .cookie("sid", keys())
                .disable_csrf_protection()
                .build()
                .is_ok()
        );
        assert_eq!(
            AuthLayer::builder()
                .cookie("sid", keys())
                .csrf(
                    crate::CsrfPolicy::origin_only()
                        .previous_key(crate::CsrfKey::new(&[1; 32]).unwrap())
                )
                .build()
                .err(),
            Some(ConfigError::CsrfNotSessionBound("previous_key"))
        );
        assert_eq!(
            AuthLayer::builder().api_key("x:y", keys()).build().err(),
            Some(ConfigError::InvalidHeaderName("x:y".into()))
        );
        for reserved in ["authorization", "Cookie"] {
            assert_eq!(
                AuthLayer::builder().api_key(reserved, keys()).build().err(),
                Some(ConfigError::ReservedHeader(reserved.into()))
            );
        }
        assert_eq!(
            AuthLayer::builder()
                .api_key("x-api-key", keys())
                .api_key_scheme("Api Key")
                .build()
                .err(),
            Some(ConfigError::InvalidScheme("Api Key".into()))
        );
        assert_eq!(
            AuthLayer::builder()
                .bearer(keys())
                .realm("a\"b")
                .build()
                .err(),
            Some(ConfigError::InvalidRealm)
        );
        assert_eq!(
            AuthLayer::builder()
                .bearer(keys())
                .resource_metadata(ProtectedResource::new("/relative"))
                .build()
                .err(),
            Some(ConfigError::InvalidResource("/relative".into()))
        );
    }
}
