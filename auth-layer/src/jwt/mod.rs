//! JWT bearer tokens verified with `jsonwebtoken`'s cryptography.
//!
//! The token is split once, only `alg`/`kid`/`typ` are read from the header, the signature is
//! verified with `jsonwebtoken::crypto` (HMAC keys are set up once, not per token), and the
//! claims are parsed once: into the registered claims the layer checks and, if you ask for
//! them, into your own type in the same pass.
//!
//! # Example
//! ```
//! use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
//! use portcullis::server::jsonwebtoken::Algorithm;
//!
//! #[derive(Clone, serde::Deserialize)]
//! struct MyClaims { org_id: String }
//!
//! let jwt = JwtAuthenticator::builder()
//!     .key(JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::HS256]).unwrap())
//!     .issuer("https://id.example.com")
//!     .audience("orders-api")
//!     .claims::<MyClaims>()
//!     .build()
//!     .unwrap();
//! # let _ = jwt;
//! ```

mod authenticator;
mod builder;
mod cache;
mod claims;
mod header;
#[cfg(feature = "jwks")]
mod jwks;
mod key_map;
mod keys;
mod time;

pub use authenticator::{JwtAuthenticator, MAX_TOKEN_LEN};
pub use builder::JwtAuthenticatorBuilder;
pub use cache::CacheStats;
pub use claims::CHECKABLE_CLAIMS;
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use jwks::{JwksDiscoveryBuilder, JwksKeySource, JwksKeySourceBuilder};
pub use keys::{JwtKey, KeyFuture, KeyLookup, KeySource};
