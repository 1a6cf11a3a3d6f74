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
//!
//! # Example
//! ```
//! use auth_layer::jwt::{JwtAuthenticator, JwtKey};
//! use auth_layer::{AuthLayer, Principal, RequireScope};
//! use axum::{Router, routing::get};
//! use jsonwebtoken::Algorithm;
//!
//! # fn main() -> Result<(), auth_layer::ConfigError> {
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
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod apikey;
mod authenticator;
mod authorize;
mod body;
pub mod cors;
mod credentials;
mod csrf;
mod error;
#[cfg(feature = "axum")]
mod extract;
pub mod jwt;
mod metrics;
mod response;
mod revocation;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

pub use apikey::ApiKeys;
pub use authenticator::{
    Authentication, Authenticator, BoxAuthFuture, CredentialKind, Principal, PrincipalBuilder,
};
pub use authorize::{
    FnPolicy, Policy, PolicyLayer, PolicyService, RequirePolicy, RequireRole, RequireScope,
    RolePolicy, ScopePolicy,
};
pub use body::AuthBody;
pub use credentials::Credential;
pub use csrf::Csrf;
pub use error::{AuthError, ConfigError, ErrorCode};
#[cfg(feature = "axum")]
pub use extract::{AuthRejection, Claims};
pub use metrics::AuthMetrics;
pub use response::{Problem, ProblemJson, ProblemRenderer, RenderedProblem};
pub use revocation::{Denylist, Revocation};

use credentials::Sources;
use csrf::CsrfCheck;
use response::{Responder, ResponderConfig};

/// Lets route policies and extractors answer with the layer's realm and renderer, and count
/// their refusals in the layer's metrics. One extension (not two): each insert costs.
#[derive(Clone)]
pub(crate) struct LayerContext {
    pub(crate) responder: Arc<Responder>,
    pub(crate) metrics: Arc<AuthMetrics>,
}

/// RFC 9728 OAuth 2.0 Protected Resource Metadata, served by the layer and advertised in its
/// Bearer challenges (`resource_metadata="…"`), as MCP servers and RFC 9728 clients expect.
///
/// ```
/// use auth_layer::ProtectedResource;
/// let meta = ProtectedResource::new("https://api.example.com/v1")
///     .authorization_server("https://id.example.com")
///     .scopes_supported(["read", "write"]);
/// assert_eq!(meta.metadata_path(), "/.well-known/oauth-protected-resource/v1");
/// ```
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProtectedResource {
    resource: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorization_servers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes_supported: Vec<String>,
    bearer_methods_supported: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<String>,
}

impl ProtectedResource {
    /// Metadata for the resource identified by `resource` (an absolute `https` or `http` URL).
    pub fn new(resource: impl Into<String>) -> Self {
        ProtectedResource {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            bearer_methods_supported: vec!["header"],
            resource_name: None,
        }
    }

    /// An authorization server that issues tokens for this resource.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// The scopes this resource understands.
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// A human-readable name.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    fn uri(&self) -> Option<http::Uri> {
        let uri: http::Uri = self.resource.parse().ok()?;
        (uri.scheme().is_some() && uri.authority().is_some()).then_some(uri)
    }

    /// The path the metadata is served at (RFC 9728 §3.1: the well-known segment goes between
    /// the host and the resource's path).
    pub fn metadata_path(&self) -> String {
        let path = self.uri().map(|u| u.path().to_owned()).unwrap_or_default();
        let path = path.trim_end_matches('/');
        format!("/.well-known/oauth-protected-resource{path}")
    }

    fn metadata_url(&self) -> Option<String> {
        let uri = self.uri()?;
        Some(format!(
            "{}://{}{}",
            uri.scheme_str()?,
            uri.authority()?,
            self.metadata_path()
        ))
    }
}

struct Shared {
    sources: Sources,
    bearer: Option<Arc<dyn Authenticator>>,
    cookie: Option<Arc<dyn Authenticator>>,
    api_key: Option<Arc<dyn Authenticator>>,
    optional: bool,
    pass_preflights: bool,
    csrf: Option<CsrfCheck>,
    responder: Arc<Responder>,
    metrics: Arc<AuthMetrics>,
    metadata: Option<(String, Bytes)>,
}

/// Authenticates every request of the wrapped service; see the [crate docs](crate).
///
/// Holds only configuration (behind an `Arc`): cloning it and applying it to many services is
/// cheap, and all of them share one set of [`AuthMetrics`].
#[derive(Clone)]
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

    /// The layer's decision counters.
    pub fn metrics(&self) -> Arc<AuthMetrics> {
        self.shared.metrics.clone()
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Configures an [`AuthLayer`]; see [`AuthLayer::builder`].
pub struct AuthLayerBuilder {
    realm: String,
    bearer: Option<Arc<dyn Authenticator>>,
    cookie: Option<(String, Arc<dyn Authenticator>)>,
    api_key: Option<(String, Arc<dyn Authenticator>)>,
    api_key_scheme: String,
    csrf: Option<Csrf>,
    optional: bool,
    pass_preflights: bool,
    allow_multiple: bool,
    type_base: Option<String>,
    renderer: Option<Arc<dyn ProblemRenderer>>,
    resource: Option<ProtectedResource>,
}

impl Default for AuthLayerBuilder {
    fn default() -> Self {
        AuthLayerBuilder {
            realm: "api".into(),
            bearer: None,
            cookie: None,
            api_key: None,
            api_key_scheme: "ApiKey".into(),
            csrf: Some(Csrf::default()),
            optional: false,
            pass_preflights: false,
            allow_multiple: false,
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

    /// How cookie-authenticated unsafe requests prove they come from our pages (default:
    /// double submit, cookie `csrf_token` = header `x-csrf-token`, and the request must come
    /// from the API's own origin; see [`Csrf`] to trust your app's origin). `None` turns the
    /// check off — only do that when the cookie is `SameSite=Strict` and nothing else can
    /// send it.
    pub fn csrf(mut self, csrf: Option<Csrf>) -> Self {
        self.csrf = csrf;
        self
    }

    /// Accept an API key in the header `header`, checked by `authenticator` (usually
    /// [`ApiKeys`]). Failures name the scheme set with [`api_key_scheme`](Self::api_key_scheme).
    pub fn api_key(mut self, header: impl Into<String>, authenticator: impl Authenticator) -> Self {
        self.api_key = Some((header.into(), Arc::new(authenticator)));
        self
    }

    /// The challenge scheme for API keys (default `ApiKey`).
    pub fn api_key_scheme(mut self, scheme: impl Into<String>) -> Self {
        self.api_key_scheme = scheme.into();
        self
    }

    /// Let requests without any credential through, anonymously (no [`Principal`] in their
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

    /// Check the configuration and build the layer.
    pub fn build(self) -> Result<AuthLayer, ConfigError> {
        if self.bearer.is_none() && self.cookie.is_none() && self.api_key.is_none() {
            return Err(ConfigError::Incomplete(
                "accept at least one of: bearer, cookie, api_key",
            ));
        }
        if let Some((name, _)) = &self.cookie
            && (name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)))
        {
            return Err(ConfigError::InvalidValue {
                what: "cookie name",
                why: "a cookie name is an RFC 6265 token",
            });
        }
        let api_key_header = match &self.api_key {
            Some((h, _)) => Some(HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                ConfigError::InvalidValue {
                    what: "API key header",
                    why: "not a valid header name",
                }
            })?),
            None => None,
        };
        let (metadata_url, metadata) = match &self.resource {
            Some(r) => {
                let url = r.metadata_url().ok_or(ConfigError::InvalidValue {
                    what: "protected resource",
                    why: "the resource must be an absolute URL",
                })?;
                let json = serde_json::to_vec(r).map_err(|_| ConfigError::InvalidValue {
                    what: "protected resource",
                    why: "cannot be serialised",
                })?;
                (Some(url), Some((r.metadata_path(), Bytes::from(json))))
            }
            None => (None, None),
        };
        let defaults = ResponderConfig::default();
        let responder = Responder::new(ResponderConfig {
            realm: self.realm,
            bearer: self.bearer.is_some() || self.cookie.is_some(),
            api_key_scheme: self.api_key.as_ref().map(|_| self.api_key_scheme.clone()),
            resource_metadata: metadata_url,
            type_base: self.type_base.unwrap_or(defaults.type_base),
            renderer: self.renderer.unwrap_or(defaults.renderer),
        })?;
        let csrf = match (&self.cookie, self.csrf) {
            (Some(_), Some(c)) => Some(c.compile()?),
            _ => None,
        };
        Ok(AuthLayer {
            shared: Arc::new(Shared {
                sources: Sources {
                    bearer: self.bearer.is_some(),
                    cookie: self.cookie.as_ref().map(|(n, _)| n.clone()),
                    api_key: api_key_header,
                    allow_multiple: self.allow_multiple,
                },
                bearer: self.bearer,
                cookie: self.cookie.map(|(_, a)| a),
                api_key: self.api_key.map(|(_, a)| a),
                optional: self.optional,
                pass_preflights: self.pass_preflights,
                csrf,
                responder: Arc::new(responder),
                metrics: Arc::default(),
                metadata,
            }),
        })
    }
}

/// The service of an [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

fn is_preflight<B>(req: &Request<B>) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(http::header::ORIGIN)
        && req
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

impl Shared {
    fn authenticator(&self, kind: CredentialKind) -> Option<&Arc<dyn Authenticator>> {
        match kind {
            CredentialKind::Bearer => self.bearer.as_ref(),
            CredentialKind::Cookie => self.cookie.as_ref(),
            CredentialKind::ApiKey => self.api_key.as_ref(),
        }
    }

    fn handles<B>(&self, req: &mut Request<B>) {
        req.extensions_mut().insert(LayerContext {
            responder: self.responder.clone(),
            metrics: self.metrics.clone(),
        });
    }

    /// Cookie-authenticated unsafe requests need their CSRF proof. Decided by where the
    /// credential was found, not by what the authenticator put in the principal: a browser
    /// sends the cookie on its own, whatever principal it maps to.
    fn csrf<B>(&self, req: &Request<B>, found_in: CredentialKind) -> Result<(), AuthError> {
        match &self.csrf {
            Some(check) if found_in == CredentialKind::Cookie => check.check(req),
            _ => Ok(()),
        }
    }

    /// A preflight that reached the layer: no CORS layer outside answered it. Answered here
    /// so that no handler runs unauthenticated; without CORS headers the browser refuses the
    /// cross-origin request, as it should when no CORS policy allows it.
    fn preflight_answer<B>(&self) -> Response<AuthBody<B>> {
        tracing::debug!(target: "portcullis::auth", decision = "preflight", "preflight answered by the auth layer: put a CORS layer outside it to answer preflights");
        let mut res = Response::new(AuthBody::problem(Bytes::new()));
        *res.status_mut() = StatusCode::NO_CONTENT;
        res
    }

    fn accept<B>(&self, req: &mut Request<B>, principal: Principal) {
        self.metrics.record_accept();
        tracing::debug!(
            target: "portcullis::auth",
            decision = "accept",
            credential = principal.kind().as_str(),
            subject = principal.subject(),
            kid = principal.key_id(),
            iss = principal.issuer(),
            "request authenticated"
        );
        self.handles(req);
        req.extensions_mut().insert(principal);
    }

    fn reject<B>(&self, err: &AuthError, kind: Option<CredentialKind>) -> Response<AuthBody<B>> {
        self.metrics.record_reject(err.code());
        let credential = kind.map_or("none", CredentialKind::as_str);
        if err.status().is_server_error() {
            tracing::warn!(target: "portcullis::auth", decision = "unavailable", code = err.code().as_str(), credential, "cannot authenticate: {}", err.detail());
        } else {
            tracing::debug!(target: "portcullis::auth", decision = "reject", code = err.code().as_str(), credential, "authentication failed: {}", err.detail());
        }
        self.responder.respond(err).map(AuthBody::problem)
    }

    /// Credentials are secrets: make sure nothing downstream (a trace layer, a proxy) prints
    /// them.
    fn mark_sensitive<B>(&self, req: &mut Request<B>) {
        let headers = req.headers_mut();
        if let Some(v) = headers.get_mut(AUTHORIZATION) {
            v.set_sensitive(true);
        }
        if let Some(name) = &self.sources.api_key
            && let http::header::Entry::Occupied(mut e) = headers.entry(name)
        {
            e.iter_mut().for_each(|v| v.set_sensitive(true));
        }
        if self.sources.cookie.is_some()
            && let http::header::Entry::Occupied(mut e) = headers.entry(COOKIE)
        {
            e.iter_mut().for_each(|v| v.set_sensitive(true));
        }
    }

    fn metadata_response<B>(json: &Bytes) -> Response<AuthBody<B>> {
        let mut res = Response::new(AuthBody::problem(json.clone()));
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=3600"),
        );
        *res.status_mut() = StatusCode::OK;
        res
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for AuthService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Send + 'static,
{
    type Response = Response<AuthBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let shared = &self.shared;
        if is_preflight(&req) {
            if shared.pass_preflights {
                return ResponseFuture::inner(self.inner.call(req));
            }
            return ResponseFuture::ready(shared.preflight_answer());
        }
        if let Some((path, json)) = &shared.metadata
            && req.uri().path() == path
            && matches!(*req.method(), Method::GET | Method::HEAD)
        {
            return ResponseFuture::ready(Shared::metadata_response(json));
        }
        let credential = match shared.sources.extract(req.headers()) {
            Ok(Some(c)) => c,
            Ok(None) if shared.optional => {
                shared.metrics.record_anonymous();
                shared.handles(&mut req);
                return ResponseFuture::inner(self.inner.call(req));
            }
            Ok(None) => {
                return ResponseFuture::ready(
                    shared.reject(&AuthError::new(ErrorCode::MissingCredentials), None),
                );
            }
            Err(e) => return ResponseFuture::ready(shared.reject(&e, None)),
        };
        shared.mark_sensitive(&mut req);
        let kind = credential.kind();
        let Some(authenticator) = shared.authenticator(kind) else {
            // Unreachable by construction: a source is only searched when it has an authenticator.
            return ResponseFuture::ready(
                shared.reject(&AuthError::new(ErrorCode::MissingCredentials), None),
            );
        };
        let authentication = match authenticator.recall(&credential) {
            Some(verdict) => Authentication::Ready(verdict),
            None if authenticator.checks_bearer_syntax() => authenticator.authenticate(&credential),
            None => match credential.check_syntax() {
                Ok(()) => authenticator.authenticate(&credential),
                Err(e) => Authentication::Ready(Err(e)),
            },
        };
        match authentication {
            Authentication::Ready(Ok(principal)) => {
                if let Err(e) = shared.csrf(&req, kind) {
                    return ResponseFuture::ready(shared.reject(&e, Some(kind)));
                }
                shared.accept(&mut req, principal);
                ResponseFuture::inner(self.inner.call(req))
            }
            Authentication::Ready(Err(e)) => ResponseFuture::ready(shared.reject(&e, Some(kind))),
            Authentication::Pending(fut) => {
                // The ready service goes into the future; a fresh clone stays behind and will
                // be driven to readiness by the next `poll_ready`.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let shared = self.shared.clone();
                ResponseFuture::boxed(async move {
                    match fut.await.and_then(|p| shared.csrf(&req, kind).map(|()| p)) {
                        Ok(principal) => {
                            shared.accept(&mut req, principal);
                            inner.call(req).await.map(|r| r.map(AuthBody::inner))
                        }
                        Err(e) => Ok(shared.reject(&e, Some(kind))),
                    }
                })
            }
        }
    }
}

type BoxResponseFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<AuthBody<B>>, E>> + Send>>;

pin_project! {
    /// The response future of [`AuthService`] and [`PolicyService`].
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Inner { #[pin] fut: F },
        Boxed { fut: BoxResponseFuture<B, E> },
        Ready { res: Option<Response<AuthBody<B>>> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn inner(fut: F) -> Self {
        ResponseFuture {
            kind: Kind::Inner { fut },
        }
    }

    pub(crate) fn ready(res: Response<AuthBody<B>>) -> Self {
        ResponseFuture {
            kind: Kind::Ready { res: Some(res) },
        }
    }

    pub(crate) fn reject(responder: &Responder, err: &AuthError) -> Self {
        ResponseFuture::ready(responder.respond(err).map(AuthBody::problem))
    }

    fn boxed(fut: impl Future<Output = Result<Response<AuthBody<B>>, E>> + Send + 'static) -> Self {
        ResponseFuture {
            kind: Kind::Boxed { fut: Box::pin(fut) },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<AuthBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { fut } => fut.poll(cx).map(|r| r.map(|res| res.map(AuthBody::inner))),
            KindProj::Boxed { fut } => fut.as_mut().poll(cx),
            KindProj::Ready { res } => Poll::Ready(Ok(res
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}
