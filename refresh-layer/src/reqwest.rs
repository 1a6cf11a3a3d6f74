//! The refresh layer in front of a `reqwest::Client` (feature `reqwest`).
//!
//! - [`ReqwestService`] is a `reqwest::Client` as a Tower service of `http` requests, so
//!   [`RefreshLayer`] (and tower-http's `FollowRedirect`) can wrap it, and an
//!   [`OAuth2`](crate::OAuth2) source can post its token requests through it. Its client never
//!   follows a redirect. [`ReqwestService::new`] builds that client itself, with nothing that
//!   sends anything by itself; [`ReqwestService::from_builder_unscoped`] takes your
//!   `reqwest::ClientBuilder` (see [its risk](#what-a-client-sends-by-itself)).
//! - [`ReqwestClient`] is the whole stack behind two methods, [`get`](ReqwestClient::get) and
//!   [`execute`](ReqwestClient::execute), that take and return reqwest's own types.
//!
//! # Redirects
//! A `reqwest::Client` follows redirects by itself, up to ten by default, inside the layer,
//! where the layer sees none of the hops: reqwest drops `Authorization` and `Cookie` when a
//! hop changes origin but keeps every other header, so an API-key header would reach the other
//! origin (and come back on A → B → A), and that origin's `401` would reach the layer as if the
//! credential had been refused, and start a refresh and a retry. So a [`ReqwestService`]'s
//! client always has `redirect::Policy::none()`; there is no way to hand it a built
//! `reqwest::Client`, whose policy cannot be checked.
//!
//! [`ReqwestClient`] follows redirects with tower-http's `FollowRedirect` *outside* the layer,
//! with [`RefreshLayer::redirect_policy`]: every hop then goes through the layer as a request
//! of its own, so the layer checks each hop's origin itself (a hop to another origin gets no
//! credential, and its `401` is returned as it is), the policy keeps a chain that left the
//! origins from getting the credential back (A → B → A), and a `401` from an allowed origin
//! sends only that hop again, not the whole chain. Compose [`ReqwestService`] yourself the
//! same way when you need other layers in the stack. One refresh (and one retry) per redirect
//! chain: a hop's refusal after the chain's refresh is returned as it is.
//!
//! # What a client sends by itself
//! A `reqwest::ClientBuilder`'s `default_headers`, its cookie store (`cookie_store`,
//! `cookie_provider`) and a proxy's credentials are added by reqwest to every request, after
//! the layer and the redirect policy had their say, and reqwest offers no way to read them
//! back: an `Authorization` or API-key default header would reach every origin, every
//! redirect hop and the token endpoint. So [`ReqwestService::new`] takes no builder, and the
//! constructor that does is named for its risk, [`ReqwestService::from_builder_unscoped`]:
//! put no credential in that builder.
//!
//! A builder of reqwest 0.13 sends through the proxy named in `HTTP_PROXY` / `HTTPS_PROXY` /
//! `ALL_PROXY` (and honours `NO_PROXY`) when those are set in the environment: a request to an
//! `http://` origin then passes its credential to that proxy in plaintext (an `https://`
//! origin is tunnelled through it). [`ReqwestService::new`] turns that off (`no_proxy()`); a
//! builder given to `from_builder_unscoped` keeps what it says.
//!
//! # Query-parameter credentials
//! With [`Credential::api_key_query`](crate::Credential::api_key_query), what reqwest reports
//! back is the URL without the secret: a response's `url()` (so `error_for_status()`'s
//! message) and a reqwest error's URL are the request's URL before the credential was added.
//!
//! # Timeouts
//! A `reqwest::Request`'s own timeout ([`RequestBuilder::timeout`](::reqwest::RequestBuilder::timeout))
//! bounds a [`ReqwestClient`] call as a whole, until the answer's head: every redirect hop,
//! the refresh and the retry. Past it, the call ends with [`Error::Timeout`]. The body is
//! read after the call: once a redirect crossed origins, tower-http has dropped reqwest's own
//! per-request timeout from the hop, so bound the body read yourself when the server may be
//! hostile.
//!
//! # Example
//! ```no_run
//! use portcullis::client::reqwest::{ReqwestClient, ReqwestService};
//! use portcullis::client::{OAuth2, RefreshLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // One reqwest client (one connection pool) for the token endpoint and the API.
//! let http = ReqwestService::new()?;
//! let source = OAuth2::builder("https://id.example.com/oauth/token", "my-client")
//!     .client_secret("my-secret")
//!     .client_credentials(http.clone())?;
//! let layer = RefreshLayer::builder(source)
//!     .allow_origin("https://api.example.com") // the only origin that ever sees the token
//!     .build()?;
//! let api = ReqwestClient::new(layer, http);
//! let me: reqwest::Response = api.get("https://api.example.com/me").await?;
//! println!("{}", me.text().await?);
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::reqwest::{Body, ClientBuilder, IntoUrl, Method, Request, Response, ResponseBuilderExt};
use bytes::Bytes;
use tower::{Layer, Service, ServiceExt};
use tower_http::follow_redirect::FollowRedirect;

use crate::credential::QueryCredentialUri;
use crate::error::{BoxError, Error};
use crate::layer::RefreshLayer;
use crate::redirect::ScopedRedirect;
use crate::service::RefreshService;

/// A `reqwest::Client` that follows no redirect, as a Tower service of `http` requests:
/// what [`RefreshLayer`] wraps (see the [module docs](self)).
///
/// Any request body of `Bytes` is taken (`reqwest::Body`, `http_body_util::Full<Bytes>`, …),
/// so it also serves as an [`OAuth2`](crate::OAuth2) source's token client. Clones share one
/// connection pool.
#[derive(Debug, Clone)]
pub struct ReqwestService {
    client: ::reqwest::Client,
}

impl ReqwestService {
    /// A client of its own, with reqwest's defaults, its redirects off and no proxy: no
    /// default headers, no cookie store, no proxy from the environment (which would see an
    /// `http://` origin's credential in plaintext), nothing the client adds to or sends past a
    /// request by itself. A proxy, like every other setting, is yours to give through
    /// [`from_builder_unscoped`](Self::from_builder_unscoped). Fails only when reqwest cannot
    /// set up its TLS.
    pub fn new() -> Result<Self, ::reqwest::Error> {
        Self::from_builder_unscoped(ClientBuilder::new().no_proxy())
    }

    /// Build the client from your `builder` (timeouts, TLS roots, a user agent, a proxy…),
    /// with its redirects turned off (any policy set on `builder` is replaced): redirects are
    /// followed outside the layer, where each hop's origin is checked.
    ///
    /// **Unscoped:** whatever the builder sends by itself — `default_headers`, its cookie
    /// store, proxy credentials — goes to every origin, never scoped by the layer: reqwest adds
    /// it after the layer and the redirect policy ran, on every hop and to the token endpoint
    /// too. Put no credential there; give it to the layer
    /// ([`RefreshLayer::builder`](crate::RefreshLayer::builder)).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use portcullis::client::reqwest::ReqwestService;
    ///
    /// // Settings that send nothing by themselves.
    /// let builder = reqwest::Client::builder()
    ///     .connect_timeout(Duration::from_secs(5))
    ///     .user_agent("my-app/1.0");
    /// let http = ReqwestService::from_builder_unscoped(builder)?;
    /// # let _ = http;
    /// # Ok::<(), reqwest::Error>(())
    /// ```
    pub fn from_builder_unscoped(builder: ClientBuilder) -> Result<Self, ::reqwest::Error> {
        let client = builder
            .redirect(::reqwest::redirect::Policy::none())
            .build()?;
        Ok(ReqwestService { client })
    }
}

/// What [`ReqwestService`] answers with.
type Sent = Pin<Box<dyn Future<Output = Result<http::Response<Body>, ::reqwest::Error>> + Send>>;

impl<B> Service<http::Request<B>> for ReqwestService
where
    B: http_body::Body + Send + Sync + 'static,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = ::reqwest::Error;
    type Future = Sent;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // reqwest's pool takes every request at once.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let shown = shown_url(&req);
        let pending = Request::try_from(req.map(Body::wrap)).map(|r| self.client.execute(r));
        Box::pin(async move {
            let hide = |e: ::reqwest::Error| match &shown {
                Some(url) => e.with_url(url.clone()),
                None => e,
            };
            let res = pending.map_err(hide)?.await.map_err(hide)?;
            let url = shown.clone().unwrap_or_else(|| res.url().clone());
            Ok(with_url(res, url))
        })
    }
}

/// The URL to report for `req` (a response's, an error's): the one before the layer added a
/// query-parameter credential to it, when it did, so the secret stays out of what the caller
/// logs. Only while the request still goes to the URI the layer made (nothing between the
/// layer and this service changed it).
fn shown_url<B>(req: &http::Request<B>) -> Option<::reqwest::Url> {
    let note = req.extensions().get::<QueryCredentialUri>()?;
    if *req.uri() != note.sent {
        return None;
    }
    // A URI that does not parse as a URL has no URL to show: reqwest's own conversion fails
    // on it too, before sending.
    ::reqwest::Url::parse(&note.before.to_string()).ok()
}

/// `res` as an `http` response that still knows a URL (`url`): reqwest's conversion drops
/// it, and its conversion back reads it from this extension.
fn with_url(res: Response, url: ::reqwest::Url) -> http::Response<Body> {
    let mut url = http::Response::builder().url(url);
    let mut out = http::Response::from(res);
    if let Some(ext) = url.extensions_mut() {
        out.extensions_mut().extend(std::mem::take(ext));
    }
    out
}

/// The stack a [`ReqwestClient`] sends through.
type Stack = FollowRedirect<RefreshService<ReqwestService>, ScopedRedirect>;

/// A [`RefreshLayer`] over a [`ReqwestService`], with redirects followed outside the layer
/// under [`RefreshLayer::redirect_policy`]: reqwest's requests in, reqwest's responses out.
///
/// Clones share the layer's credential and the client's connection pool.
#[derive(Debug, Clone)]
pub struct ReqwestClient {
    stack: Stack,
}

impl ReqwestClient {
    /// Put `layer` in front of `http`, and follow redirects around both (see the
    /// [module docs](self#redirects) for why outside).
    pub fn new(layer: RefreshLayer, http: ReqwestService) -> Self {
        let policy = layer.outer_redirect_policy();
        ReqwestClient {
            stack: FollowRedirect::with_policy(layer.layer(http), policy),
        }
    }

    /// `GET url`. A URL reqwest cannot take is [`Error::Inner`], as reqwest's builder error.
    pub async fn get(&self, url: impl IntoUrl) -> Result<Response, Error<::reqwest::Error>> {
        let url = url.into_url().map_err(Error::Inner)?;
        self.execute(Request::new(Method::GET, url)).await
    }

    /// Send `req` (made with `reqwest::Request::new`, or any `reqwest::Client`'s request
    /// builder and `build()`). Its body is sent again after a refresh only when it is a
    /// small body of known size ([`max_replay_body`](crate::RefreshLayerBuilder::max_replay_body));
    /// a stream is sent once, and its `401` returned.
    ///
    /// The request's timeout (`reqwest::RequestBuilder::timeout`) bounds the whole call until
    /// the answer's head — every redirect hop, the refresh and the retry — and is
    /// [`Error::Timeout`] past it: reqwest alone would apply it to each hop, and tower-http's
    /// redirect filter drops it on a hop to another origin, so a server redirecting to one
    /// that never answers would hold the call forever.
    pub async fn execute(&self, req: Request) -> Result<Response, Error<::reqwest::Error>> {
        let limit = req.timeout().copied();
        let req = http::Request::<Body>::try_from(req).map_err(Error::Inner)?;
        let call = self.stack.clone().oneshot(req);
        let res = match limit {
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .map_err(|_| Error::Timeout(limit))??,
            None => call.await?,
        };
        Ok(Response::from(res))
    }
}
