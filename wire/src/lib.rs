//! The HTTP authentication wire contract that both Portcullis layers speak, in one place.
//!
//! - [`grammar`]: the character classes of RFC 9110, RFC 6750, RFC 6265 and RFC 3986.
//! - `WWW-Authenticate` challenges: parsing ([`parse_challenges`] into [`Challenge`]s) and
//!   rendering ([`ChallengeBuilder`]).
//! - [`ErrorCode`]: the stable codes of the problem body, with their statuses.
//! - [`form`]: `application/x-www-form-urlencoded` bodies (RFC 6749 Appendix B).
//! - [`Origin`]: scheme, host and effective port, compared the same way on every side.
//! - The RFC 9457 problem body ([`PROBLEM_JSON`]), written ([`Problem`]) and read
//!   ([`ProblemDetails`]).
//! - [`well_known`]: where metadata documents live (RFC 9728, RFC 8414, OpenID Connect).
//! - [`client_auth`] (feature `client-auth`): how a client authenticates at a token or
//!   introspection endpoint (client secrets, `private_key_jwt`).
//! - [`https`] (feature `https`): the connector for outgoing calls, rustls with the system's
//!   roots.
//! - [`single_flight`] (feature `single-flight`): one task works, the others wait.
//! - [`buffered_client`] (feature `buffered-client`): an HTTP client with bounded, whole
//!   response bodies.
//! - [`redis_link`] (feature `redis`): connecting to Redis and following channels, the same
//!   way on both sides.
//!
//! The server (`auth-layer`) and the client (`refresh-layer`) depend on this crate and on no
//! other part of each other, so what one writes the other reads with the same code.
//!
//! # Example
//! ```
//! use portcullis::wire::{ChallengeBuilder, ErrorCode, parse_challenges};
//!
//! let code = ErrorCode::TokenExpired;
//! let sent = ChallengeBuilder::new("Bearer")
//!     .unwrap()
//!     .param("realm", "api")
//!     .param("error", code.bearer_error().unwrap())
//!     .finish();
//! let read = parse_challenges(&sent).unwrap();
//! assert_eq!(read[0].param("error"), Some("invalid_token"));
//! ```
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "buffered-client")]
#[cfg_attr(docsrs, doc(cfg(feature = "buffered-client")))]
pub mod buffered_client;
mod challenge;
#[cfg(feature = "client-auth")]
#[cfg_attr(docsrs, doc(cfg(feature = "client-auth")))]
pub mod client_auth;
mod error_code;
pub mod form;
pub mod grammar;
#[cfg(feature = "https")]
#[cfg_attr(docsrs, doc(cfg(feature = "https")))]
pub mod https;
mod macros;
mod origin;
mod problem;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis_link;
#[cfg(feature = "single-flight")]
#[cfg_attr(docsrs, doc(cfg(feature = "single-flight")))]
pub mod single_flight;
pub mod well_known;

pub use challenge::{
    Challenge, ChallengeBuilder, ChallengeParseError, InvalidScheme, parse_challenges,
};
pub use error_code::ErrorCode;
pub use origin::{InvalidOrigin, Origin};
pub use problem::{PROBLEM_JSON, Problem, ProblemDetails};
