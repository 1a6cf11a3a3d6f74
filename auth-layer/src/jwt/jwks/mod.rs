//! Keys from a JWKS URL (RFC 7517) or OpenID Connect discovery, cached and rotated.
//!
//! - Keys are cached by `kid` for the response's `Cache-Control: max-age`, kept within
//!   configured bounds, and refreshed in the background once most of that time has passed.
//! - A refresh that fails keeps the last good set (stale-if-error, with a warning); garbage from
//!   the provider (HTML, truncated JSON, huge bodies, keys of the wrong type) never replaces it.
//! - Only public keys are taken from a fetched key set: the document is public, so a symmetric
//!   (`oct`) key in it would let anyone who can read it mint tokens. Such keys are skipped.
//!   Several keys may share a `kid` (one per algorithm); a token's key is picked by `kid` and
//!   `alg`.
//! - Keys are fetched over `https` only, unless [`allow_http`](JwksKeySourceBuilder::allow_http) says otherwise
//!   (tests, loopback); an `https` issuer's discovery document may never name an `http`
//!   `jwks_uri`.
//! - A token with an unknown `kid` causes one refetch — shared by every request waiting for it,
//!   and at most one per `refetch_interval` — then `unknown_key`.
//! - When the keys cannot be fetched and the token's key is not cached, the answer is 503
//!   `key_set_unavailable` with `Retry-After`: the client's credential may be fine.
//!
//! # Example
//! ```no_run
//! use portcullis::server::jwt::{JwksKeySource, JwtAuthenticator};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = JwksKeySource::discover("https://id.example.com").await?;
//! let jwt = JwtAuthenticator::builder()
//!     .key_source(keys)
//!     .issuer("https://id.example.com")
//!     .audience("orders-api")
//!     .build()?;
//! # let _ = jwt; Ok(()) }
//! ```

mod builder;
mod discovery;
mod fetch;
mod key_set;
mod settings;
mod source;

pub use builder::{JwksDiscoveryBuilder, JwksKeySourceBuilder};
pub use source::JwksKeySource;
