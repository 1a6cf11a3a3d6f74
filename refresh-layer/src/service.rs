//! [`RefreshService`]: injects the credential into requests for its origins, and sends a
//! request once more after a refreshable 401.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower::Service;

use crate::credential::Credential;
use crate::error::{BoxError, Error};
use crate::future::ResponseFuture;
use crate::outcome::{SkipCredential, UNTOUCHED, annotate, sent, untouched};
use crate::redirect::{CredentialTrail, LeftCredentialScope};
use crate::replay;
use crate::retry::{Next, Retry};
use crate::state::Shared;

/// The service of a [`RefreshLayer`](crate::RefreshLayer).
#[derive(Clone)]
pub struct RefreshService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> RefreshService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        RefreshService { inner, shared }
    }

    portcullis_wire::inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for RefreshService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn in_scope<B>(&self, req: &Request<B>) -> bool {
        req.extensions().get::<SkipCredential>().is_none()
            && req.extensions().get::<LeftCredentialScope>().is_none()
            && self.scope.iter().any(|o| o.matches(req.uri()))
    }

    /// The path that may wait (a refresh before sending, a body to buffer): boxed.
    async fn run<S, B, ResB>(
        self: Arc<Self>,
        mut inner: S,
        req: Request<B>,
    ) -> Result<Response<ResB>, Error<S::Error>>
    where
        S: Service<Request<B>, Response = Response<ResB>>,
        B: Body<Data = Bytes> + From<Bytes>,
        B::Error: Into<BoxError>,
        ResB: Body + Unpin,
        ResB::Error: Into<BoxError>,
    {
        // Carrying its own credential (kept by default): sent untouched, and no refresh is
        // started for it.
        let keeps_own =
            |req: &Request<B>, c: &Credential| self.keep_existing && c.already_present(req);
        if self
            .cell
            .peek()
            .is_some_and(|c| keeps_own(&req, &c.credential))
        {
            return untouched(inner.call(req).await, self.report);
        }
        let current = self.cell.current().await.map_err(Error::Refresh)?;
        if keeps_own(&req, &current.credential) {
            return untouched(inner.call(req).await, self.report);
        }
        let (parts, body) = req.into_parts();
        let (first_body, replay) = match replay::buffer(body, self.max_replay)
            .await
            .map_err(Error::Body)?
        {
            Ok(bytes) => (B::from(bytes.clone()), Some(bytes)),
            Err(body) => (body, None),
        };
        let mut first = Request::from_parts(parts.clone(), first_body);
        current.credential.inject(&mut first);
        let trail = self.trail(&mut first);
        let res = inner.call(first).await.map_err(Error::Inner)?;
        let sent = self.report.then(|| sent(current.generation));
        let retry = Retry {
            shared: self,
            inner,
            parts,
            body: replay,
            generation: current.generation,
            trail,
            _body: std::marker::PhantomData,
        };
        match retry.next(&res) {
            Next::Return => Ok(annotate(res, sent)),
            next => retry.settle(next, res, sent).await,
        }
    }

    /// When a [`ScopedRedirect`] may follow this request's redirects, give the request a trail
    /// for it to mark (one allocation, only for layers that handed out a redirect policy).
    fn trail<B>(&self, req: &mut Request<B>) -> Option<CredentialTrail> {
        if !self
            .cell
            .tracks_redirects
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return None;
        }
        let trail = CredentialTrail::default();
        req.extensions_mut().insert(trail.clone());
        Some(trail)
    }
}

impl<S, B, ResB> Service<Request<B>> for RefreshService<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResB: Body + Send + Unpin + 'static,
    ResB::Data: Send,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<ResB>;
    type Error = Error<S::Error>;
    type Future = ResponseFuture<S, B, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::Inner)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The readied service goes into the future; the clone left behind is readied by the
        // next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = &self.shared;
        let report = shared.report;
        let first = ResponseFuture::first;
        if !shared.in_scope(&req) {
            return first(inner.call(req), report.then_some(UNTOUCHED), None);
        }
        // Fast path: nothing to wait for, no body to buffer (the request is rebuilt with an
        // empty body if it has to be sent again).
        if req.body().is_end_stream()
            && let Some(current) = shared.cell.fresh()
        {
            if shared.keep_existing && current.credential.already_present(&req) {
                return first(inner.call(req), report.then_some(UNTOUCHED), None);
            }
            let (parts, body) = req.into_parts();
            let mut req = Request::from_parts(parts.clone(), body);
            current.credential.inject(&mut req);
            let trail = shared.trail(&mut req);
            let fut = inner.call(req);
            let retry = Retry {
                shared: shared.clone(),
                inner,
                parts,
                body: Some(Bytes::new()),
                generation: current.generation,
                trail,
                _body: std::marker::PhantomData,
            };
            return first(fut, report.then(|| sent(current.generation)), Some(retry));
        }
        ResponseFuture::boxed(Box::pin(shared.clone().run(inner, req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthFailure, BuildError, RefreshLayer, RefreshOutcome, RetriedAfter, from_fn};
    use http::StatusCode;
    use http_body_util::Full;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tower::{Layer, ServiceExt};

    #[tokio::test(start_paused = true)]
    async fn credential_within_skew_is_refreshed_before_sending() {
        let n = Arc::new(AtomicUsize::new(0));
        let counter = n.clone();
        let source = from_fn(move || {
            let i = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(Credential::bearer(&format!("t{i}"))
                    .unwrap()
                    .expires_in(Duration::from_secs(60)))
            }
        });
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        let inner = tower::service_fn(move |req: Request<Full<Bytes>>| {
            let log = log.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push(req.headers()["authorization"].to_str().unwrap().to_owned());
                Ok::<_, std::convert::Infallible>(Response::new(Full::<Bytes>::default()))
            }
        });
        let layer = RefreshLayer::builder(source)
            .allow_origin("http://api.test")
            .skew(Duration::from_secs(30))
            .build()
            .unwrap();
        let svc = layer.layer(inner);
        let get = || {
            Request::get("http://api.test/x")
                .body(Full::default())
                .unwrap()
        };
        svc.clone().oneshot(get()).await.unwrap();
        tokio::time::advance(Duration::from_secs(25)).await;
        svc.clone().oneshot(get()).await.unwrap();
        tokio::time::advance(Duration::from_secs(15)).await; // 20 s left < 24..30 s window
        let res = svc.clone().oneshot(get()).await.unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            ["Bearer t0", "Bearer t0", "Bearer t1"]
        );
        assert!(
            !res.extensions().get::<RefreshOutcome>().unwrap().retried,
            "refreshed before, not after"
        );
        assert_eq!(layer.handle().refreshes(), 2);
    }

    /// Without outcome reports a response carries no `RefreshOutcome`, and the one retry still
    /// happens and is still described by `RetriedAfter` and, on a final 401, `AuthFailure`.
    #[tokio::test]
    async fn outcome_reports_can_be_turned_off() {
        let n = Arc::new(AtomicUsize::new(0));
        let counter = n.clone();
        let source = from_fn(move || {
            let i = counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok(Credential::bearer(&format!("t{i}")).unwrap()) }
        });
        // `/ok` accepts only t1; `/never` refuses everything.
        let inner = tower::service_fn(|req: Request<Full<Bytes>>| async move {
            let ok = req.headers()["authorization"] == "Bearer t1" && req.uri().path() == "/ok";
            let mut res = Response::new(Full::<Bytes>::default());
            if !ok {
                *res.status_mut() = StatusCode::UNAUTHORIZED;
            }
            Ok::<_, std::convert::Infallible>(res)
        });
        let svc = RefreshLayer::builder(source)
            .allow_origin("http://api.test")
            .report_outcome(false)
            .build()
            .unwrap()
            .layer(inner);
        let get = |path: &str| {
            Request::get(format!("http://api.test{path}"))
                .body(Full::default())
                .unwrap()
        };
        // t0 is fetched first, refused, refreshed to t1, retried: 200.
        let res = svc.clone().oneshot(get("/ok")).await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.extensions().get::<RefreshOutcome>().is_none());
        assert!(res.extensions().get::<RetriedAfter>().is_some());
        // A path that always refuses: refreshed once to t2, retried once, 401 returned.
        let res = svc.clone().oneshot(get("/never")).await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.extensions().get::<RefreshOutcome>().is_none());
        assert!(res.extensions().get::<AuthFailure>().is_some());
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_layer_without_origins_is_refused() {
        let c = Credential::bearer("t").unwrap();
        assert!(matches!(
            RefreshLayer::builder(c.clone()).build(),
            Err(BuildError::NoOrigin)
        ));
        assert!(
            RefreshLayer::builder(c)
                .allow_origin("not a url")
                .build()
                .is_err()
        );
    }
}
