//! [`AuthService`]: finds the credential, authenticates it, and either calls the inner service
//! with the [`Principal`] in the request's extensions or answers the failure.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tower::Service;

use crate::authenticator::Outcome;
use crate::authenticator::engine::Engine;
use crate::body::AuthBody;
use crate::credential::{CredentialKind, Found};
use crate::error::{AuthError, ErrorCode};
use crate::future::ResponseFuture;
use crate::principal::Principal;
use crate::state::Shared;

/// The service of an [`AuthLayer`](crate::AuthLayer).
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> AuthService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        AuthService { inner, shared }
    }

    portcullis_wire::inner_service_accessors!();
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
    fn authenticator(&self, kind: CredentialKind) -> Option<&Engine> {
        self.engines.get(kind)
    }

    /// An anonymous request (optional mode) still names the layer that let it through.
    fn handles<B>(&self, req: &mut Request<B>) {
        req.extensions_mut().insert(self.context.clone());
    }

    /// Cookie-authenticated unsafe requests need their CSRF proof. Decided by where the
    /// credential was found, not by what the authenticator put in the principal: a browser
    /// sends the cookie on its own, whatever principal it maps to. A session-bound token is
    /// checked against `found`, the very cookie value the authenticator is given.
    fn csrf<B>(&self, req: &Request<B>, found: &Found<'_>) -> Result<(), AuthError> {
        match &self.csrf {
            Some(check) if found.kind() == CredentialKind::Cookie => {
                check.check(req, found.secret_bytes())
            }
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
        req.extensions_mut()
            .insert(principal.with_context(self.context.clone()));
        if self.strip {
            self.strip_credentials(req.headers_mut());
        }
    }

    /// Remove every place this layer reads a credential from (not only the one it used: with
    /// `allow_multiple_credentials` the others were never checked, and must not travel on
    /// either).
    fn strip_credentials(&self, headers: &mut http::HeaderMap) {
        if self.sources.bearer {
            headers.remove(AUTHORIZATION);
        }
        if let Some(name) = &self.sources.api_key {
            headers.remove(name);
        }
        if let Some(name) = &self.sources.cookie {
            crate::sources::remove_cookie(headers, name);
        }
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

    /// No credential this layer reads: 401 `missing_credentials`, unless this is a copy made
    /// by `accepting` and the request carries a credential of another kind its original
    /// reads. That client is authenticated, just not in a way this route takes, so it gets a
    /// 403 without challenge: a 401 would send it to refresh its token and retry, for nothing.
    /// Looked for only here, on the way to a refusal.
    fn reject_missing<B>(&self, headers: &http::HeaderMap) -> Response<AuthBody<B>> {
        if let Some(wrong_kind) = &self.wrong_kind
            && self.sources.carries_unread(headers)
        {
            return self.reject(wrong_kind, None);
        }
        self.reject(&AuthError::new(ErrorCode::MissingCredentials), None)
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
        if let Some((paths, json)) = &shared.metadata
            && paths.iter().any(|p| p == req.uri().path())
            && matches!(*req.method(), Method::GET | Method::HEAD)
        {
            return ResponseFuture::ready(Shared::metadata_response(json));
        }
        let found = match shared.sources.extract(req.headers()) {
            Ok(Some(found)) => found,
            Ok(None) if shared.optional => {
                shared.metrics.record_anonymous();
                // A copy made by `accepting` may pass a credential it does not read: it is
                // still a secret, marked and (when stripping) removed like any other. (A full
                // layer found none in any place it has: nothing to mark or strip.)
                if shared.wrong_kind.is_some() {
                    shared.mark_sensitive(&mut req);
                    if shared.strip {
                        shared.strip_credentials(req.headers_mut());
                    }
                }
                shared.handles(&mut req);
                return ResponseFuture::inner(self.inner.call(req));
            }
            Ok(None) => return ResponseFuture::ready(shared.reject_missing(req.headers())),
            Err(e) => return ResponseFuture::ready(shared.reject(&e, None)),
        };
        let kind = found.kind();
        let Some(authenticator) = shared.authenticator(kind) else {
            // Unreachable by construction: a source is only searched when it has an authenticator.
            return ResponseFuture::ready(
                shared.reject(&AuthError::new(ErrorCode::MissingCredentials), None),
            );
        };
        // Authenticated while the credential is still borrowed from the headers: a cache hit
        // never copies it (the borrow ends here, before the headers are marked).
        let authentication = authenticator.authenticate(&found);
        // Decided now, on the credential the authenticator was given; it counts only once that
        // credential is accepted (a bad one is answered 401, not 403).
        let csrf = shared.csrf(&req, &found);
        shared.mark_sensitive(&mut req);
        match authentication.0 {
            Outcome::Ready(Ok(principal)) => {
                if let Err(e) = csrf {
                    return ResponseFuture::ready(shared.reject(&e, Some(kind)));
                }
                shared.accept(&mut req, principal);
                ResponseFuture::inner(self.inner.call(req))
            }
            Outcome::Ready(Err(e)) => ResponseFuture::ready(shared.reject(&e, Some(kind))),
            Outcome::Pending(fut) => {
                // The ready service goes into the future; a fresh clone stays behind and will
                // be driven to readiness by the next `poll_ready`.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let shared = self.shared.clone();
                ResponseFuture::boxed(async move {
                    match fut.await.and_then(|p| csrf.map(|()| p)) {
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    use http::HeaderMap;
    use tower::{Layer, ServiceExt, service_fn};

    use crate::{ApiKeys, AuthLayer, Principal};

    /// A copy reads only the API key, yet the bearer header and the credential cookie, which
    /// its original reads, are marked sensitive on their way to the handler, and removed
    /// with `strip_credentials`.
    #[tokio::test]
    async fn a_copy_marks_and_strips_places_it_does_not_read() {
        for strip in [false, true] {
            let keys =
                ApiKeys::new().with_key("k1", Principal::builder(CredentialKind::ApiKey).build());
            let full = AuthLayer::builder()
                .bearer(keys.clone())
                .cookie("sid", keys.clone())
                .disable_csrf_protection()
                .api_key("x-api-key", keys)
                .strip_credentials(strip)
                .build()
                .unwrap();
            let copy = full.accepting([CredentialKind::ApiKey]).unwrap();
            let seen = Arc::new(Mutex::new(HeaderMap::new()));
            let record = seen.clone();
            let svc = copy.layer(service_fn(move |req: Request<()>| {
                *record.lock().unwrap() = req.headers().clone();
                async { Ok::<_, std::convert::Infallible>(Response::new(())) }
            }));
            let req = Request::builder()
                .header("authorization", "Bearer not-read-here")
                .header("cookie", "sid=not-read-either; theme=dark")
                .header("x-api-key", "k1")
                .body(())
                .unwrap();
            let res = svc.oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let seen = seen.lock().unwrap();
            if strip {
                assert!(!seen.contains_key("authorization"));
                assert!(!seen.contains_key("x-api-key"));
                assert_eq!(seen["cookie"], "theme=dark");
            } else {
                assert!(seen["authorization"].is_sensitive());
                assert!(seen["x-api-key"].is_sensitive());
                assert_eq!(seen["cookie"], "sid=not-read-either; theme=dark");
            }
            assert!(seen.get_all("cookie").iter().all(HeaderValue::is_sensitive));
        }
    }
}
