//! The Portcullis test kit, for your integration tests (add it as a dev-dependency):
//!
//! - [`TestIssuer`]: an in-process identity provider with fresh signing keys of every JWS
//!   family (generated at start, never committed), token minting with chosen claims, and the
//!   matching verification keys and JWKS.
//! - [`TestTokenEndpoint`]: an RFC 6749 token endpoint (`client_credentials`, `refresh_token` with
//!   rotation and reuse detection) to serve on loopback, with failure modes to test clients.
//! - [`TestAuthorizationServer`]: that endpoint as an authorization server for a person's
//!   sign-in: `/authorize` that redirects at once (PKCE `S256`, RFC 9207 `iss`), dynamic client
//!   registration, the `authorization_code` grant, with [failure modes](AuthorizeMode).
//! - [`loopback`]: serve a router on `127.0.0.1:0`, call it, and check answers against the wire
//!   contract.
//! - [`redis_process`]: a `redis-server` of the test's own, for suites that share state through Redis.
//! - [`eventually`]: wait for what another task or process does, up to a deadline.
//!
//! ```
//! use portcullis::testkit::TestIssuer;
//! use portcullis::server::jsonwebtoken::Algorithm;
//! let issuer = TestIssuer::new("https://id.test");
//! let token = issuer.mint(Algorithm::ES256, serde_json::json!({"sub": "alice", "exp": 4102444800u64}));
//! assert_eq!(token.split('.').count(), 3);
//! ```

#![deny(missing_docs)]

mod authorization;
mod client_assertion;
mod endpoint_mode;
mod eventually;
mod issuer;
pub mod loopback;
pub mod redis_process;
mod token_endpoint;

pub use authorization::{
    AuthorizeMode, HOSTILE_DESCRIPTION, SeenAuthorizeRequest, SeenRedemption,
    TestAuthorizationServer, TestClient,
};
pub use endpoint_mode::TokenEndpointMode;
pub use eventually::{POLL_INTERVAL, StillFalse, eventually};
pub use issuer::{ALGORITHMS, TestIssuer, es256_key_pair, now, random_hex};
pub use token_endpoint::{SeenTokenRequest, TestTokenEndpoint};
