//! A Tower layer for HTTP clients that makes authentication failures recoverable.
//!
//! - Injects a credential (bearer, API key, cookie, basic) only into requests for the
//!   [origins](RefreshLayerBuilder::allow_origin) it belongs to, as sensitive header values.
//! - Refreshes before expiry (within a configurable skew).
//! - On a `401` that names a bad or expired credential it refreshes **once** — one refresh for
//!   any number of concurrent failures — and retries the request **exactly once**. The second
//!   answer is final. `403`, `insufficient_scope` and `invalid_request` never refresh.
//! - Never loops, never hangs: refreshes run in their own task, callers wait at most the
//!   refresh timeout, failures back off, `invalid_grant` stops refreshing until a new
//!   credential is set.
//!
//! # Which requests are retried
//! A `401` from an authentication layer (Portcullis's server layer, most gateways) is decided
//! before any handler runs, so sending the request again cannot do its work twice, whatever
//! its method: that is why every method is retried by default. If your server may answer
//! `401` after acting on a request, restrict the retry with
//! [`retry_only`](RefreshLayerBuilder::retry_only); the credential is still refreshed for the
//! requests that follow.
//!
//! Only a `401` to a request that carried the layer's credential is taken as a verdict on it.
//! A redirect followed inside the layer may drop the credential on the way (it must, when the
//! chain leaves the credential's origins); use [`RefreshLayer::redirect_policy`] there, so the
//! layer knows whether the last hop carried it.
//!
//! # Example
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use refresh_layer::{OAuth2, RefreshLayer};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! // The token endpoint is called through the plain client, never through the layer.
//! let source = OAuth2::client_credentials(
//!     "http://127.0.0.1:8080/oauth/token", "demo", "demo-secret", http.clone(),
//! )?;
//! let layer = RefreshLayer::builder(source)
//!     .allow_origin("http://127.0.0.1:8080")
//!     .build()?;
//! let handle = layer.handle();
//! let mut api = ServiceBuilder::new().layer(layer).service(http);
//! let req = http::Request::get("http://127.0.0.1:8080/api/me").body(Full::default())?;
//! let res = api.ready().await?.call(req).await?;
//! println!("{} after {} refreshes", res.status(), handle.refreshes());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cache;
mod credential;
mod error;
mod failure;
mod redirect;
mod replay;
mod source;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::{Layer, Service, ServiceExt};

pub use credential::{Credential, InvalidCredential, InvalidOrigin, MAX_LIFETIME, Origin};
pub use error::{BoxError, Error, RefreshError};
pub use failure::{AuthFailure, Challenge, ChallengeParseError, ProblemDetails, parse_challenges};
pub use redirect::{LeftCredentialScope, ScopedRedirect};
pub use source::{
    ClientAuth, CredentialSource, FetchFuture, FnSource, OAuth2, TokenHttp, TokenSet, from_fn,
    parse_token_response,
};

use cache::{Cell, Timing};
use redirect::CredentialTrail;

/// Request extension: send this request exactly as it is, without a credential and without
/// refresh (token endpoint calls carry it, so a misconfigured stack cannot loop).
#[derive(Debug, Clone, Copy)]
pub struct SkipCredential;

/// Response extension: what the layer did for this response (unless the layer was built with
/// [`report_outcome(false)`](RefreshLayerBuilder::report_outcome)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshOutcome {
    /// A credential was attached.
    pub credential_sent: bool,
    /// The first answer was a refreshable 401, so the credential was refreshed (or found
    /// already replaced) and the request sent a second time; this response is that answer.
    pub retried: bool,
    /// The generation of the credential the returned response was obtained with.
    pub generation: Option<u64>,
}

/// Response extension on a retried response: what the first answer (the refreshable 401)
/// said, for logs and diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct RetriedAfter(pub AuthFailure);

/// Decides whether a response to a request that carried our credential calls for a refresh.
pub type RefreshPredicate = Arc<dyn Fn(StatusCode, &HeaderMap) -> bool + Send + Sync>;

/// The default predicate: `401`, unless its Bearer challenge says `insufficient_scope` or
/// `invalid_request` (a new token would not help).
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// let mut h = HeaderMap::new();
/// assert!(refresh_layer::refresh_on_401(StatusCode::UNAUTHORIZED, &h));
/// assert!(!refresh_layer::refresh_on_401(StatusCode::FORBIDDEN, &h));
/// h.insert("www-authenticate", r#"Bearer realm="api", error="invalid_request""#.parse().unwrap());
/// assert!(!refresh_layer::refresh_on_401(StatusCode::UNAUTHORIZED, &h));
/// ```
pub fn refresh_on_401(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::UNAUTHORIZED
        && !AuthFailure::challenges_of(headers).iter().any(|c| {
            c.is("Bearer")
                && matches!(
                    c.param("error"),
                    Some("insufficient_scope" | "invalid_request")
                )
        })
}

/// A configuration mistake found when the layer is built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An origin could not be parsed.
    #[error(transparent)]
    Origin(#[from] InvalidOrigin),
    /// No origin was allowed: the credential would never be sent.
    #[error(
        "allow at least one origin: a credential is only ever sent to the origins it belongs to"
    )]
    NoOrigin,
}

struct Shared {
    cell: Arc<Cell>,
    scope: Arc<[Origin]>,
    keep_existing: bool,
    max_replay: usize,
    predicate: RefreshPredicate,
    /// `None`: every method is retried.
    retry_methods: Option<Arc<[Method]>>,
    report: bool,
}

/// Injects, refreshes and retries; see the [crate docs](crate).
///
/// Clones (and every service made from them) share one credential cell.
#[derive(Clone)]
pub struct RefreshLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for RefreshLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshLayer")
            .field("scope", &self.shared.scope)
            .finish_non_exhaustive()
    }
}

/// Observes and steers the credential cell of a [`RefreshLayer`].
#[derive(Clone)]
pub struct CredentialHandle {
    cell: Arc<Cell>,
}

impl fmt::Debug for CredentialHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialHandle")
            .field("generation", &self.generation())
            .field("refreshes", &self.refreshes())
            .finish()
    }
}

impl CredentialHandle {
    /// How many refreshes were started.
    pub fn refreshes(&self) -> u64 {
        self.cell.refreshes()
    }

    /// How many refreshes failed.
    pub fn failures(&self) -> u64 {
        self.cell.failures()
    }

    /// The generation of the current credential (`None` before the first).
    pub fn generation(&self) -> Option<u64> {
        self.cell.generation()
    }

    /// Replace the credential (after a new sign-in); clears any backoff. A refresh that is
    /// under way when this is called does not overwrite it: its result is dropped.
    pub fn set(&self, credential: Credential) {
        self.cell.set(credential);
    }

    /// Sign out: drop the credential and the source's refresh token, and drop the result of
    /// any refresh under way. Requests in scope then fail with [`RefreshError::SignedOut`]
    /// (nothing is sent, the token endpoint is not called) until [`set`](Self::set) or
    /// [`set_refresh_token`](Self::set_refresh_token).
    pub fn clear(&self) {
        self.cell.clear();
    }

    /// Start again from a new refresh token (a new sign-in, another account): the current
    /// access token belonged to the previous one and is dropped, as is the result of any
    /// refresh under way; the next request refreshes with `refresh_token`. Returns `false`
    /// (and changes nothing) when the layer's source keeps no refresh token.
    pub fn set_refresh_token(&self, refresh_token: &str) -> bool {
        self.cell.set_refresh_token(refresh_token)
    }
}

impl RefreshLayer {
    /// Start configuring a layer whose credentials come from `source`.
    pub fn builder(source: impl CredentialSource) -> RefreshLayerBuilder {
        RefreshLayerBuilder {
            source: Arc::new(source),
            initial: None,
            origins: Vec::new(),
            timing: Timing {
                skew: Duration::from_secs(30),
                timeout: Duration::from_secs(30),
                exchange_limit: Duration::from_secs(120),
                backoff_initial: Duration::from_millis(500),
                backoff_max: Duration::from_secs(30),
            },
            keep_existing: true,
            max_replay: 64 * 1024,
            predicate: Arc::new(refresh_on_401),
            retry_methods: None,
            report: true,
        }
    }

    /// A handle on the shared credential cell.
    pub fn handle(&self) -> CredentialHandle {
        CredentialHandle {
            cell: self.shared.cell.clone(),
        }
    }

    /// A `tower_http::follow_redirect` policy that keeps this layer's credential inside its
    /// origins (see [`ScopedRedirect`]). Inside the layer it also tells the layer whether a
    /// redirect's last hop still carried the credential, so a 401 there refreshes only when it
    /// did.
    pub fn redirect_policy(&self) -> ScopedRedirect {
        self.shared
            .cell
            .tracks_redirects
            .store(true, std::sync::atomic::Ordering::Relaxed);
        ScopedRedirect::new(
            Default::default(),
            self.shared.scope.clone(),
            self.shared.cell.clone(),
        )
    }
}

/// Configures a [`RefreshLayer`]; see [`RefreshLayer::builder`].
pub struct RefreshLayerBuilder {
    source: Arc<dyn CredentialSource>,
    initial: Option<Credential>,
    origins: Vec<String>,
    timing: Timing,
    keep_existing: bool,
    max_replay: usize,
    predicate: RefreshPredicate,
    retry_methods: Option<Arc<[Method]>>,
    report: bool,
}

impl RefreshLayerBuilder {
    /// Send the credential to this origin (`scheme://host[:port]`); may be given several times.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Start with this credential instead of fetching one on the first request.
    pub fn initial_credential(mut self, credential: Credential) -> Self {
        self.initial = Some(credential);
        self
    }

    /// Refresh a credential this long before it expires (default 30 s), but never earlier
    /// than half its lifetime: a token valid for 10 s is refreshed 4–5 s before it expires, not
    /// before every request. Up to a fifth of the window is taken off at random per
    /// credential, so replicas do not refresh in step.
    pub fn skew(mut self, skew: Duration) -> Self {
        self.timing.skew = skew;
        self
    }

    /// How long a request waits for a refresh before it fails with
    /// [`RefreshError::Timeout`] (default 30 s). The token request itself goes on: the server
    /// may have rotated the refresh token already, and its answer is stored when it comes.
    pub fn refresh_timeout(mut self, timeout: Duration) -> Self {
        self.timing.timeout = timeout;
        self
    }

    /// How long the token request itself may take before it is abandoned (default 120 s).
    /// Abandoning it may lose a refresh token the server rotated meanwhile, so keep this well
    /// above the token endpoint's slowest answers.
    pub fn refresh_exchange_limit(mut self, limit: Duration) -> Self {
        self.timing.exchange_limit = limit;
        self
    }

    /// After a failed refresh wait `initial`, doubling per further failure up to `max`
    /// (defaults 0.5 s and 30 s).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.timing.backoff_initial = initial;
        self.timing.backoff_max = max;
        self
    }

    /// Buffer request bodies up to this size so they can be sent again (default 64 KiB).
    /// Larger or streaming bodies are sent once; their 401 is returned as it is.
    pub fn max_replay_body(mut self, bytes: usize) -> Self {
        self.max_replay = bytes;
        self
    }

    /// Replace a credential the request already carries (default: leave such requests alone).
    pub fn replace_existing(mut self, replace: bool) -> Self {
        self.keep_existing = !replace;
        self
    }

    /// Retry after a refreshable 401 only requests with these methods (default: every method;
    /// see [the crate docs](crate#which-requests-are-retried)). A refreshable 401 to another
    /// method is returned as it is, and the credential is refreshed in the background for
    /// the requests that follow.
    pub fn retry_only(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.retry_methods = Some(methods.into_iter().collect());
        self
    }

    /// Decide yourself which responses refresh (default [`refresh_on_401`]).
    pub fn refresh_if(
        mut self,
        predicate: impl Fn(StatusCode, &HeaderMap) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Arc::new(predicate);
        self
    }

    /// Put a [`RefreshOutcome`] into every response (default `true`). It costs an allocation
    /// per response (the response's extension map); turn it off where that matters and the
    /// `portcullis::client` tracing events are enough. [`AuthFailure`] on 401/403 responses
    /// and [`RetriedAfter`] on retried ones are added either way.
    pub fn report_outcome(mut self, report: bool) -> Self {
        self.report = report;
        self
    }

    /// Check the configuration and build.
    pub fn build(self) -> Result<RefreshLayer, ConfigError> {
        if self.origins.is_empty() {
            return Err(ConfigError::NoOrigin);
        }
        let scope = self
            .origins
            .iter()
            .map(|o| Origin::parse(o))
            .collect::<Result<Arc<[Origin]>, _>>()?;
        Ok(RefreshLayer {
            shared: Arc::new(Shared {
                cell: Arc::new(Cell::new(self.source, self.timing, self.initial)),
                scope,
                keep_existing: self.keep_existing,
                max_replay: self.max_replay,
                predicate: self.predicate,
                retry_methods: self.retry_methods,
                report: self.report,
            }),
        })
    }
}

impl<S> Layer<S> for RefreshLayer {
    type Service = RefreshService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RefreshService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of a [`RefreshLayer`].
#[derive(Clone)]
pub struct RefreshService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for RefreshService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// `outcome` is `None` when the layer was built with `report_outcome(false)`.
fn annotate<B>(mut res: Response<B>, outcome: Option<RefreshOutcome>) -> Response<B> {
    if matches!(
        res.status(),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    ) {
        let failure = AuthFailure {
            status: res.status(),
            challenges: AuthFailure::challenges_of(res.headers()),
            problem: None,
        };
        res.extensions_mut().insert(failure);
    }
    if let Some(outcome) = outcome {
        res.extensions_mut().insert(outcome);
    }
    res
}

const UNTOUCHED: RefreshOutcome = RefreshOutcome {
    credential_sent: false,
    retried: false,
    generation: None,
};

/// The largest failure body read before a retry.
const MAX_FAILURE_BODY: usize = 16 * 1024;

async fn read_failure<B>(res: Response<B>) -> AuthFailure
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = res.into_parts();
    let read =
        http_body_util::BodyExt::collect(http_body_util::Limited::new(body, MAX_FAILURE_BODY));
    let bytes = match tokio::time::timeout(Duration::from_secs(1), read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    AuthFailure::parse(parts.status, &parts.headers, &bytes)
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
        ResB: Body,
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
        if !retry.should_retry(&res) {
            return Ok(annotate(res, sent));
        }
        retry.after(res).await
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

fn sent(generation: u64) -> RefreshOutcome {
    RefreshOutcome {
        credential_sent: true,
        retried: false,
        generation: Some(generation),
    }
}

fn untouched<ResB, E>(
    res: Result<Response<ResB>, E>,
    report: bool,
) -> Result<Response<ResB>, Error<E>> {
    res.map(|r| annotate(r, report.then_some(UNTOUCHED)))
        .map_err(Error::Inner)
}

/// What the one retry needs: the service, the request's head and its buffered body (`None`
/// when it could not be buffered), and the generation of the credential the first attempt
/// carried.
struct Retry<S, B> {
    shared: Arc<Shared>,
    inner: S,
    parts: http::request::Parts,
    body: Option<Bytes>,
    generation: u64,
    trail: Option<CredentialTrail>,
    // The body type the retry is rebuilt as.
    _body: std::marker::PhantomData<fn() -> B>,
}

impl<S, B> Retry<S, B> {
    /// Whether the first answer calls for the one retry. A refreshable 401 that cannot be
    /// retried (a body that was not buffered, a method not to retry) still refreshes the
    /// credential, in the background, for the requests that follow.
    fn should_retry<ResB>(&self, res: &Response<ResB>) -> bool {
        if !(self.shared.predicate)(res.status(), res.headers()) {
            return false;
        }
        if !self.carried_credential(res) {
            tracing::debug!(target: "portcullis::client", status = res.status().as_u16(), "not refreshed: the refused request did not carry the credential (a redirect dropped it)");
            return false;
        }
        let why_not = if self.body.is_none() {
            "the request body could not be buffered"
        } else if self
            .shared
            .retry_methods
            .as_ref()
            .is_some_and(|m| !m.contains(&self.parts.method))
        {
            "its method is not retried"
        } else {
            return true;
        };
        tracing::debug!(target: "portcullis::client", status = res.status().as_u16(), "not retried: {why_not}; refreshing for the next requests");
        self.shared
            .cell
            .refresh_after_in_background(self.generation);
        false
    }

    /// Did the request this answer is for carry the credential? Yes, unless a redirect was
    /// followed inside the layer and its last hop went without it.
    fn carried_credential<ResB>(&self, res: &Response<ResB>) -> bool {
        if let Some(carried) = self.trail.as_ref().and_then(|t| t.last_hop_carried()) {
            return carried;
        }
        // No `ScopedRedirect` saw this request. An answer for another URI came through a
        // redirect followed inside the layer, whose hops may have dropped the credential:
        // not a verdict on it.
        res.extensions()
            .get::<tower_http::follow_redirect::RequestUri>()
            .is_none_or(|u| u.0 == self.parts.uri)
    }
}

impl<S, B, ResB> Retry<S, B>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    B: From<Bytes>,
    ResB: Body,
    ResB::Error: Into<BoxError>,
{
    /// The first answer was a refreshable 401: refresh (or take the credential that already
    /// replaced ours) and send the request once more.
    async fn after(mut self, res: Response<ResB>) -> Result<Response<ResB>, Error<S::Error>> {
        // Read what the server said (a small problem body, bounded in size and time): it is
        // what the caller sees in `RetriedAfter`, and draining it lets the connection be reused.
        let first_failure = read_failure(res).await;
        let fresh = self
            .shared
            .cell
            .refresh_after(self.generation)
            .await
            .map_err(Error::Refresh)?;
        tracing::debug!(target: "portcullis::client", failed_generation = self.generation, generation = fresh.generation, "retrying once with the refreshed credential");
        let mut second = Request::from_parts(self.parts, B::from(self.body.unwrap_or_default()));
        fresh.credential.inject(&mut second);
        let mut res = self
            .inner
            .ready()
            .await
            .map_err(Error::Inner)?
            .call(second)
            .await
            .map_err(Error::Inner)?;
        res.extensions_mut().insert(RetriedAfter(first_failure));
        let report = self.shared.report;
        Ok(annotate(
            res,
            report.then_some(RefreshOutcome {
                credential_sent: true,
                retried: true,
                generation: Some(fresh.generation),
            }),
        ))
    }
}

type BoxResponseFuture<ResB, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResB>, Error<E>>> + Send>>;

pin_project! {
    /// The response future of [`RefreshService`].
    ///
    /// A bodiless request with a fresh credential (the common case) is not boxed: it holds the
    /// inner future next to what the one retry needs; only a refresh, a body to buffer, or a
    /// retry moves to a boxed future.
    pub struct ResponseFuture<S, B, ResB>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B, ResB>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, ResB>
    where
        S: Service<Request<B>>,
    {
        First {
            #[pin]
            fut: S::Future,
            outcome: Option<RefreshOutcome>,
            // `None` when the response is returned whatever it is.
            retry: Option<Retry<S, B>>,
        },
        Boxed {
            fut: BoxResponseFuture<ResB, S::Error>,
        },
    }
}

impl<S, B, ResB> Future for ResponseFuture<S, B, ResB>
where
    S: Service<Request<B>, Response = Response<ResB>> + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: From<Bytes> + Send + 'static,
    ResB: Body + Send + 'static,
    ResB::Data: Send,
    ResB::Error: Into<BoxError>,
{
    type Output = Result<Response<ResB>, Error<S::Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let boxed = match self.as_mut().project().state.project() {
            StateProj::Boxed { fut } => return fut.as_mut().poll(cx),
            StateProj::First {
                fut,
                outcome,
                retry,
            } => {
                let res = std::task::ready!(fut.poll(cx)).map_err(Error::Inner)?;
                match retry.take() {
                    Some(r) if r.should_retry(&res) => Box::pin(r.after(res)),
                    _ => return Poll::Ready(Ok(annotate(res, *outcome))),
                }
            }
        };
        self.as_mut()
            .project()
            .state
            .set(State::Boxed { fut: boxed });
        self.poll(cx)
    }
}

impl<S, B, ResB> Service<Request<B>> for RefreshService<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResB: Body + Send + 'static,
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
        let first = |fut, outcome, retry| ResponseFuture {
            state: State::First {
                fut,
                outcome,
                retry,
            },
        };
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
        ResponseFuture {
            state: State::Boxed {
                fut: Box::pin(shared.clone().run(inner, req)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
            Err(ConfigError::NoOrigin)
        ));
        assert!(
            RefreshLayer::builder(c)
                .allow_origin("not a url")
                .build()
                .is_err()
        );
    }
}
