//! What to do about each cause.

use super::header::BEARER_FIX;
use crate::report::CauseId;

/// The fix for each cause, where the detail already says what was seen.
pub(super) fn fix(id: CauseId) -> &'static str {
    use CauseId::*;
    match id {
        MissingCredentials => {
            "send the token as `Authorization: Bearer <token>` (or the session cookie the API reads, under its exact name)"
        }
        WrongScheme | MalformedHeader => BEARER_FIX,
        ClockSkew => {
            "synchronise the clocks (NTP) of the server and the identity provider; a server leeway of a minute absorbs small drift"
        }
        TokenExpired => {
            "get a new access token (refresh it) and refresh shortly before `exp` from now on"
        }
        TokenNotYetValid => {
            "wait until the token's `nbf`, or fix the identity provider's clock if `iat`/`nbf` lie in the future"
        }
        WrongIssuer => {
            "get the token from the issuer the API trusts, or add this issuer to the API's configuration"
        }
        MissingClaims => {
            "have the identity provider put the claims this API reads into this client's tokens (a claim mapper, or the scope that carries them), or request a token made for this API; refreshing gives a token with the same claims"
        }
        WrongAudience => {
            "request a token for this API (the `audience` or `resource` parameter at the token endpoint), or make the API accept this audience"
        }
        UnknownKey => {
            "get a new token (the key that signed it is no longer published), or let the server refetch its key set"
        }
        AlgorithmNotAllowed => {
            "sign with the algorithm the key is published for; servers allow a fixed list (never `none`, never HS with a public key)"
        }
        BadSignature => {
            "the token was altered or signed with another key: get a fresh token from the issuer"
        }
        TokenRevoked => {
            "sign in again or get a new token; the old one was revoked (logout, password change, admin action)"
        }
        InsufficientScope => {
            "request a token with the missing scopes (and allow them for the client at the identity provider)"
        }
        Forbidden => {
            "this identity is not allowed here: ask for the role or permission, or use another account"
        }
        KeySetUnavailable => "make the key set (jwks_uri) reachable from the server, then retry",
        ServerError => "look at the server's logs: this is not a credentials problem",
        PreflightRejected
        | CorsOriginNotAllowed
        | CorsCredentialsNotAllowed
        | CorsChallengeNotExposed => "fix the server's CORS configuration",
    }
}
