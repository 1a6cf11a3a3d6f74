//! The [`Authenticator`] trait, the one extension point of the server layer; the
//! [`Authentication`] it answers with; and how the layer runs authenticators (`engine`), with
//! the sealed fast path only this crate's own authenticators have (`fast_path`).
//!
//! Dependencies run one way: authentication ← fast_path ← extension_point ← engine.

mod authentication;
pub(crate) mod engine;
mod extension_point;
pub(crate) mod fast_path;

pub use authentication::Authentication;
pub(crate) use authentication::Outcome;
pub use extension_point::Authenticator;
