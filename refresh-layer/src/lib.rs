//! A Tower layer for HTTP clients that makes authentication failures recoverable.
//!
//! - Injects a credential (bearer, API key, cookie, basic) only into requests for the
//!   [origins](RefreshLayerBuilder::allow_origin) it belongs to, as sensitive header values.
//! - Refreshes before expiry (within a configurable skew).
//! - On a `401` that names a bad or expired credential it refreshes **once** — one refresh for
//!   any number of concurrent failures — and retries the request **exactly once**. The second
//!   answer is final. `403`, `insufficient_scope` and `invalid_request` never refresh, unless
//!   opted into: [step-up](RefreshLayerBuilder::step_up) for `insufficient_scope`, and
//!   [revoked tokens](RefreshLayerBuilder::refresh_on_revoked_token) for a `403` whose problem
//!   body says `token_revoked`.
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
//! use portcullis::client::{OAuth2, RefreshLayer};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! // The token endpoint is called through the plain client, never through the layer.
//! let source = OAuth2::builder("http://127.0.0.1:8080/oauth/token", "demo")
//!     .client_secret("demo-secret")
//!     .client_credentials(http.clone())?;
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
//!
//! # Where things are
//! The everyday names are at the crate root. Credential sources beyond the built-in
//! [`OAuth2`] and [`from_fn`] live under [`source`] ([`source::discovery`],
//! [`source::shared_grant`], and a person's sign-in, [`source::authorization_code`]); the stores a shared grant keeps its token set in under
//! [`store`]. With feature `reqwest`, the `reqwest` module puts the layer in front of a
//! `reqwest::Client`. The wire-level types a server's answer is read into ([`AuthFailure`]'s
//! challenges and problem body) are `portcullis::wire`'s.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod credential;
mod credential_cell;
mod decision;
mod error;
mod failure;
pub mod future;
mod handle;
mod layer;
mod outcome;
mod redirect;
mod replay;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
mod retry;
mod service;
pub mod source;
mod state;
pub mod store;

pub use credential::{Credential, InvalidCredential, MAX_LIFETIME, Placement};
pub use decision::refresh_on_401;
pub use error::{
    AuthorizationError, BoxError, BuildError, DiscoveryError, Error, RefreshError, SignInError,
    StoreError,
};
pub use failure::AuthFailure;
pub use handle::{CredentialHandle, SignIn};
/// The JOSE implementation client assertions are signed with: its
/// [`Algorithm`](jsonwebtoken::Algorithm) names a client key's
/// ([`ClientKey`](portcullis_wire::client_auth::ClientKey)).
pub use jsonwebtoken;
pub use layer::{RefreshLayer, RefreshLayerBuilder};
pub use outcome::{RefreshOutcome, RetriedAfter, SkipCredential};
pub use redirect::{LeftCredentialScope, ScopedRedirect};
pub use service::RefreshService;
pub use source::credential_source::{CredentialSource, FetchFuture};
pub use source::from_fn::{FnSource, from_fn};
pub use source::oauth2::{OAuth2, OAuth2Builder};

/// What the fuzz targets reach: not part of the API, and not kept stable.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::source::token_response::{TokenSet, parse_token_response};
    pub use portcullis_wire::parse_challenges;
}
