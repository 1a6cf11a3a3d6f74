//! The refresh layer in front of a `reqwest::Client` (feature `reqwest`).
//!
//! - [`ReqwestService`] is a `reqwest::Client` as a Tower service of `http` requests, so
//!   [`RefreshLayer`] (and tower-http's `FollowRedirect`) can wrap it, and an
//!   [`OAuth2`](crate::OAuth2) source can post its token requests through it. Its client never
//!   follows a redirect.
//! - [`ReqwestClient`] is the whole stack behind two methods, [`get`](ReqwestClient::get) and
//!   [`execute`](ReqwestClient::execute), that take and return reqwest's own types.
//!
//! # Redirects
//! A `reqwest::Client` follows redirects by itself, up to ten by default, inside the layer,
//! where the layer sees none of the hops: reqwest drops `Authorization` and `Cookie` when a
//! hop changes origin but keeps every other header, so an API-key header would reach the other
//! origin (and come back on A → B → A), and that origin's `401` would reach the layer as if the
//! credential had been refused, and start a refresh and a retry. So [`ReqwestService::new`]
//! takes a `reqwest::ClientBuilder` and sets `redirect::Policy::none()` on it; there is no way
//! to hand it a built `reqwest::Client`, whose policy cannot be checked.
//!
//! [`ReqwestClient`] follows redirects with tower-http's `FollowRedirect` *outside* the layer,
//! with [`RefreshLayer::redirect_policy`]: every hop then goes through the layer as a request
//! of its own, so the layer checks each hop's origin itself (a hop to another origin gets no
//! credential, and its `401` is returned as it is), the policy keeps a chain that left the
//! origins from getting the credential back (A → B → A), and a `401` from an allowed origin
//! sends only that hop again, not the whole chain. Compose [`ReqwestService`] yourself the
//! same way when you need other layers in the stack.
//!
//! # Example
//! ```no_run
//! use portcullis::client::reqwest::{ReqwestClient, ReqwestService};
//! use portcullis::client::{OAuth2, RefreshLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // One reqwest client (one connection pool) for the token endpoint and the API.
//! let http = ReqwestService::new(reqwest::Client::builder())?;
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
    /// Build the client from `builder`, with its redirects turned off (any policy set on
    /// `builder` is replaced): redirects are followed outside the layer, where each hop's
    /// origin is checked.
    pub fn new(builder: ClientBuilder) -> Result<Self, ::reqwest::Error> {
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
        let pending = Request::try_from(req.map(Body::wrap)).map(|r| self.client.execute(r));
        Box::pin(async move { Ok(with_url(pending?.await?)) })
    }
}

/// `res` as an `http` response that still knows its URL: reqwest's conversion drops it, and
/// its conversion back reads it from this extension.
fn with_url(res: Response) -> http::Response<Body> {
    let mut url = http::Response::builder().url(res.url().clone());
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
        let policy = layer.redirect_policy();
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
    pub async fn execute(&self, req: Request) -> Result<Response, Error<::reqwest::Error>> {
        let req = http::Request::<Body>::try_from(req).map_err(Error::Inner)?;
        let res = self.stack.clone().oneshot(req).await?;
        Ok(Response::from(res))
    }
}
