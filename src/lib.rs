//! Portcullis: HTTP authentication failures that are *correct* on the server and
//! *recoverable* on the client.
//!
//! - [`server`] (feature `server`, the `auth-layer` crate): a Tower layer that authenticates
//!   requests and answers failures with the exact RFC 6750 / RFC 9110 / RFC 9457 contract.
//! - [`client`] (feature `client`, the `refresh-layer` crate): a Tower layer for HTTP clients
//!   that injects credentials per origin, refreshes once for any number of concurrent 401s and
//!   retries exactly once.
//! - [`wire`] (the `portcullis-wire` crate, always): the contract both speak — challenge
//!   grammar, [`ErrorCode`](wire::ErrorCode), the problem body.
//! - `testkit` (feature `testkit`, the `portcullis-testkit` crate): an in-process identity
//!   provider, a token endpoint and loopback HTTP helpers for your integration tests.
#![deny(missing_docs)]

pub use portcullis_wire as wire;

#[cfg(feature = "server")]
pub use auth_layer as server;
#[cfg(feature = "client")]
pub use refresh_layer as client;

#[cfg(feature = "testkit")]
pub use portcullis_testkit as testkit;

/// The README's examples compile (they are run as doctests).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
