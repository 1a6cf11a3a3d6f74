//! The time rules of a token (`exp`, `nbf`, `iat`, with the leeway for clock skew), decided
//! here only: the verifier and the verified-token cache both ask this module.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{AuthError, ErrorCode};

/// Clock skew tolerated between the issuer and this server, both ways, unless
/// [`leeway`](super::JwtAuthenticatorBuilder::leeway) says otherwise.
pub(super) const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// Seconds since the epoch, now (0 on a clock set before 1970, which refuses nothing early).
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The first second at which a token with this `exp` is refused as expired: a verified token
/// is served from the cache only before it.
pub(super) fn expired_from(exp: u64, leeway: u64) -> u64 {
    exp.saturating_add(leeway)
}

/// Refuse a token whose time claims say it is not valid `now`: expired (`exp`, first), or
/// not valid yet (`nbf`, then `iat`, in the future beyond the leeway).
pub(super) fn check_times(
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    now: u64,
    leeway: u64,
) -> Result<(), AuthError> {
    if exp.is_some_and(|exp| now >= expired_from(exp, leeway)) {
        return Err(AuthError::new(ErrorCode::TokenExpired));
    }
    let future = |t: Option<u64>| t.is_some_and(|t| t > now.saturating_add(leeway));
    if future(nbf) {
        return Err(AuthError::with_detail(
            ErrorCode::TokenNotYetValid,
            "the token's nbf is in the future",
        ));
    }
    if future(iat) {
        return Err(AuthError::with_detail(
            ErrorCode::TokenNotYetValid,
            "the token's iat is in the future",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_expired_from_exp_plus_leeway_and_early_past_now_plus_leeway() {
        let code = |r: Result<(), AuthError>| r.err().map(|e| e.code());
        assert_eq!(code(check_times(Some(100), None, None, 159, 60)), None);
        assert_eq!(
            code(check_times(Some(100), None, None, 160, 60)),
            Some(ErrorCode::TokenExpired)
        );
        assert_eq!(code(check_times(None, Some(160), Some(160), 100, 60)), None);
        assert_eq!(
            code(check_times(None, Some(161), None, 100, 60)),
            Some(ErrorCode::TokenNotYetValid)
        );
        assert_eq!(
            code(check_times(None, None, Some(161), 100, 60)),
            Some(ErrorCode::TokenNotYetValid)
        );
    }
}
