//! Client side (work in progress).
#![deny(missing_docs)]
mod failure;
pub use failure::{AuthFailure, Challenge, ChallengeParseError, ProblemDetails, parse_challenges};
