//! CSRF protection for cookie-authenticated requests.
//!
//! A browser attaches cookies to requests other sites make it send; a bearer header it does
//! not. So only requests *authenticated by cookie* with an unsafe method (anything but GET,
//! HEAD, OPTIONS) need a proof that the page making them is ours. Two checks, both
//! required:
//! - **where the request comes from**: tower-http's cross-origin protection (the scheme of Go
//!   1.25): `Sec-Fetch-Site` must be `same-origin` or `none`, or `Origin` must be a trusted
//!   origin or the request's own host. Requests that carry neither header (old browsers, and
//!   every client that is not a browser) pass this check, which is why the token below is
//!   needed too.
//! - **a token bound to the session** ([`CsrfPolicy::session_bound`]): a header holding
//!   `base64url(HMAC-SHA256(key, label ‖ session))`, where *session* is the value of the very
//!   cookie the layer authenticated the request with, and *key* is a [`CsrfKey`] the app
//!   configures (the same on every replica). The app hands the token to its page when it sets
//!   the session cookie ([`CsrfKey::mint`]). A cookie and header pair planted by a sibling
//!   subdomain or a plain-`http` man in the middle proves nothing: without the key and the
//!   victim's (`HttpOnly`) session cookie nobody can compute the token.
//!
//! Failing either is 403 `csrf_failed`, with the layer's problem body.
//!
//! A page on another origin of the same site (`app.example.com` calling `api.example.com`, or
//! two ports of `localhost`) is cross-origin: name it with [`CsrfPolicy::trusted_origin`].
//!
//! # Example
//! ```
//! use portcullis::server::{ApiKeys, AuthLayer, CsrfKey, CsrfPolicy};
//! use axum::extract::State;
//! use axum::http::header::SET_COOKIE;
//! use axum::response::IntoResponse;
//! use axum::{Router, routing::post};
//!
//! # fn main() -> Result<(), portcullis::server::ConfigError> {
//! // From your secret store: at least 32 bytes, the same on every replica.
//! let key = CsrfKey::new(b"read-me-from-the-secret-store-not-the-source")?;
//! # let sessions = ApiKeys::new();
//! let auth = AuthLayer::builder()
//!     .cookie("sid", sessions)
//!     .csrf(CsrfPolicy::session_bound(key.clone()).trusted_origin("https://app.example.com"))
//!     .build()?;
//!
//! /// Signs in: sets the session cookie and gives the page the CSRF token of that session,
//! /// which the page sends back in `x-csrf-token` on every POST, PUT, PATCH and DELETE.
//! async fn sign_in(State(key): State<CsrfKey>) -> impl IntoResponse {
//!     let session = "s3ss10n-from-your-store";
//!     let cookie = format!("sid={session}; Path=/; HttpOnly; Secure; SameSite=Lax");
//!     ([(SET_COOKIE, cookie)], key.mint(session))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/transfer", post(|| async { "sent" }))
//!     .layer(auth)
//!     .merge(Router::new().route("/sign-in", post(sign_in)).with_state(key));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

mod check;
mod key;
mod policy;

pub(crate) use check::CsrfCheck;
pub use key::CsrfKey;
pub use policy::CsrfPolicy;
