//! What the doctor knows while it judges, and the comparisons it judges with.

use http::StatusCode;

use crate::keys::KeyVerdict;
use crate::report::CauseId;
use crate::token::{Decoded, relative};

/// Differences between the two clocks smaller than this are the `Date` header's one-second
/// resolution and the round trip, not drift.
pub(crate) const CLOCK_TOLERANCE: i64 = 5;

/// URLs equal but for a trailing slash (issuers and resources are written both ways).
pub(crate) fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// A duration as people say it (`2 h`, `40 s`).
pub(crate) fn seconds(d: i64) -> String {
    relative(d, 0).trim_start_matches("in ").to_owned()
}

/// Everything the doctor knows while it judges.
pub(crate) struct Facts<'a> {
    /// The status of the request as sent.
    pub status: StatusCode,
    /// This machine's clock.
    pub local_now: i64,
    /// The server's clock (`Date`).
    pub server_now: Option<i64>,
    /// The token, when it is a JWT.
    pub token: Option<&'a Decoded>,
    /// The issuers the API trusts (`--issuer`, else the resource's metadata).
    pub expected_issuers: Vec<String>,
    /// The audience the API is (`--audience`, else the resource's metadata).
    pub expected_audience: Option<String>,
    /// What the issuer's key set says of the token.
    pub keys: Option<KeyVerdict>,
    /// The scopes the server says the request needs.
    pub required_scopes: Vec<String>,
    /// The cause the server's own words name.
    pub stated: Option<CauseId>,
    /// The server's description of the failure.
    pub description: String,
    /// Whether anything that counts as a credential was sent.
    pub credentials_sent: bool,
    /// The schemes the server's challenges ask for.
    pub schemes: Vec<String>,
    /// Where a redirect points (`Location`).
    pub location: Option<String>,
}
