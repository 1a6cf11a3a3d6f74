use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use crate::body::AuthBody;
use crate::context::LayerContext;
use crate::credential::CredentialKind;
use crate::error::{AuthError, ErrorCode};
use crate::future::ResponseFuture;
use crate::principal::Principal;
use crate::response::misconfiguration::no_auth_layer;
use crate::response::problem::Responder;
use crate::state::layer_context;

/// A rule a principal must satisfy. Closures `Fn(&Principal) -> bool` are rules too, refusing
/// with 403 `forbidden`.
pub trait AccessPolicy: Clone + Send + Sync + 'static {
    /// `Ok` to let the request through; the error decides the answer (usually 403).
    fn check(&self, principal: &Principal) -> Result<(), AuthError>;
}

/// Requires scopes (from `scope` or `scp`); refuses with 403 `insufficient_scope`.
#[derive(Debug, Clone)]
pub struct ScopePolicy {
    scopes: Arc<[String]>,
    any: bool,
}

impl AccessPolicy for ScopePolicy {
    fn check(&self, p: &Principal) -> Result<(), AuthError> {
        let ok = if self.any {
            self.scopes.iter().any(|s| p.has_scope(s))
        } else {
            self.scopes.iter().all(|s| p.has_scope(s))
        };
        if ok {
            Ok(())
        } else {
            Err(AuthError::insufficient_scope(self.scopes.iter().cloned()))
        }
    }
}

/// Requires a role; refuses with 403 `forbidden` (no challenge: a new token would not help).
#[derive(Debug, Clone)]
pub struct RolePolicy {
    roles: Arc<[String]>,
}

impl AccessPolicy for RolePolicy {
    fn check(&self, p: &Principal) -> Result<(), AuthError> {
        if self.roles.iter().any(|r| p.has_role(r)) {
            Ok(())
        } else {
            Err(AuthError::with_detail(
                ErrorCode::Forbidden,
                "the principal has none of the roles this resource requires",
            ))
        }
    }
}

/// Requires the request to have been authenticated with one of some credential kinds (an API
/// key only, say, on a machine-to-machine route); refuses with 403 `forbidden`, naming the
/// kinds the route accepts.
#[derive(Debug, Clone)]
pub struct CredentialPolicy {
    kinds: Arc<[CredentialKind]>,
    detail: Arc<str>,
}

impl AccessPolicy for CredentialPolicy {
    fn check(&self, p: &Principal) -> Result<(), AuthError> {
        if self.kinds.contains(&p.kind()) {
            Ok(())
        } else {
            Err(AuthError::with_detail(
                ErrorCode::Forbidden,
                self.detail.to_string(),
            ))
        }
    }
}

/// A predicate over the principal; refuses with 403 `forbidden`.
impl<F> AccessPolicy for F
where
    F: Fn(&Principal) -> bool + Clone + Send + Sync + 'static,
{
    fn check(&self, p: &Principal) -> Result<(), AuthError> {
        if self(p) {
            Ok(())
        } else {
            Err(AuthError::new(ErrorCode::Forbidden))
        }
    }
}

/// Applies an [`AccessPolicy`] to every request of the wrapped service.
#[derive(Debug, Clone)]
#[must_use]
pub struct PolicyLayer<P> {
    policy: P,
}

/// Requires scopes: `RequireScope::all(["read", "write"])` or `RequireScope::any([...])`.
pub type RequireScope = PolicyLayer<ScopePolicy>;
/// Requires one of some roles: `RequireRole::any(["admin"])`.
pub type RequireRole = PolicyLayer<RolePolicy>;
/// Requires a credential kind: `RequireCredential::any_of([CredentialKind::ApiKey])`.
pub type RequireCredential = PolicyLayer<CredentialPolicy>;
/// Requires a predicate: `RequirePolicy::new(|p: &Principal| ...)`.
pub type RequirePolicy<F> = PolicyLayer<F>;

fn strings<I, S>(items: I) -> Arc<[String]>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl PolicyLayer<ScopePolicy> {
    /// Every one of `scopes` is required.
    pub fn all<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PolicyLayer::new(ScopePolicy {
            scopes: strings(scopes),
            any: false,
        })
    }

    /// At least one of `scopes` is required.
    pub fn any<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PolicyLayer::new(ScopePolicy {
            scopes: strings(scopes),
            any: true,
        })
    }
}

impl PolicyLayer<RolePolicy> {
    /// At least one of `roles` is required.
    pub fn any<I, S>(roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PolicyLayer::new(RolePolicy {
            roles: strings(roles),
        })
    }
}

impl PolicyLayer<CredentialPolicy> {
    /// The request must have been authenticated with one of `kinds`.
    ///
    /// ```
    /// use auth_layer::{CredentialKind, RequireCredential};
    /// use axum::{Router, routing::post};
    /// // Machine clients only: a browser session cookie or a user's token is refused here.
    /// let app: Router = Router::new()
    ///     .route("/deploy", post(|| async { "ok" }).route_layer(RequireCredential::any_of([CredentialKind::ApiKey])));
    /// ```
    pub fn any_of(kinds: impl IntoIterator<Item = CredentialKind>) -> Self {
        let kinds: Arc<[CredentialKind]> = kinds.into_iter().collect();
        let names: Vec<_> = kinds.iter().map(|k| k.as_str()).collect();
        PolicyLayer::new(CredentialPolicy {
            detail: format!(
                "this resource accepts only these credentials: {}",
                names.join(", ")
            )
            .into(),
            kinds,
        })
    }
}

impl<P: AccessPolicy> PolicyLayer<P> {
    /// Any [`AccessPolicy`], a closure `|p: &Principal| -> bool` included.
    pub fn new(policy: P) -> Self {
        PolicyLayer { policy }
    }
}

impl<S, P: Clone> Layer<S> for PolicyLayer<P> {
    type Service = PolicyService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        PolicyService {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service of a [`PolicyLayer`].
#[derive(Debug, Clone)]
pub struct PolicyService<S, P> {
    inner: S,
    policy: P,
}

impl<S, P> PolicyService<S, P> {
    portcullis_wire::inner_service_accessors!();
}

impl<S, P, ReqB, ResB> Service<Request<ReqB>> for PolicyService<S, P>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    P: AccessPolicy,
{
    type Response = Response<AuthBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let verdict = match req.extensions().get::<Principal>() {
            Some(p) => self.policy.check(p),
            // Anonymous (optional mode): authentication is required.
            None if req.extensions().get::<LayerContext>().is_some() => {
                Err(AuthError::new(ErrorCode::MissingCredentials))
            }
            // No auth layer at all: a server misconfiguration, not the client's mistake.
            None => {
                return ResponseFuture::ready(
                    no_auth_layer::<bytes::Bytes>("route policy").map(AuthBody::problem),
                );
            }
        };
        match verdict {
            Ok(()) => ResponseFuture::inner(self.inner.call(req)),
            Err(err) => ResponseFuture::ready(refusal(
                req.extensions(),
                &err,
                "route policy refused the request",
            )),
        }
    }
}

/// The answer to a request a policy refuses after authentication: rendered by the layer that
/// authenticated it (its realm, metadata and problem shape) and counted in its metrics.
pub(crate) fn refusal<B>(
    extensions: &http::Extensions,
    err: &AuthError,
    why: &'static str,
) -> Response<AuthBody<B>> {
    let context = layer_context(extensions);
    let responder = context
        .map(|c| c.responder().clone())
        .unwrap_or_else(Responder::fallback);
    if let Some(c) = context {
        c.metrics().record_reject(err.code());
    }
    tracing::debug!(
        target: "portcullis::auth",
        decision = "forbid",
        code = err.code().as_str(),
        subject = extensions.get::<Principal>().and_then(Principal::subject),
        "{why}"
    );
    responder.respond(err).map(AuthBody::problem)
}
