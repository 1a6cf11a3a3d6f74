//! The failure modes a test can put the token endpoint in.

use std::time::Duration;

/// How the token endpoint behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpointMode {
    /// Answer normally.
    Normal,
    /// Answer every token request with 500.
    Fail500,
    /// Answer every token request with `invalid_grant`.
    InvalidGrant,
    /// Answer normally, after a delay.
    Delay(Duration),
    /// Do the work at once (a refresh token is rotated and the old one spent), then send the
    /// answer after a delay: a slow network after the server has committed.
    AnswerLate(Duration),
}
