//! The registered claims (RFC 7519 §4.1, RFC 9068 §2.2) read from every token, and the user's
//! own claims type read in the same pass over the payload.
//!
//! # One pass
//! An API that reads its own claims (`.claims::<MyClaims>()`) would otherwise have its payload
//! parsed twice: once into [`Registered`], once into `MyClaims` — about a third of an HS256
//! verification. [`read_with`] instead hands `MyClaims`'s `Deserialize` a deserializer that
//! watches the object go by ([`Tee`]): every member is passed straight through, except the few
//! registered ones, whose (short) values are captured as raw JSON, read into [`Registered`],
//! and then given to `MyClaims` from that text. `#[serde(flatten)]` was the other way to get
//! both from one call; it buffers the whole object into serde's `Content` tree first, which
//! costs more than the second parse it saves.

mod registered;
mod roles;
mod tee;
mod values;

pub use registered::CHECKABLE_CLAIMS;
pub(crate) use registered::{Registered, read, roles_claim};
pub(crate) use roles::RolesClaim;
pub(crate) use tee::read_with;
