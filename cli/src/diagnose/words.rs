//! The server's own words: the cause a problem `code`, an RFC 6750 `error` or the usual
//! servers' descriptions name.

use portcullis_wire::ErrorCode;

use crate::report::CauseId;

/// The cause a server's own words name: the problem body's `code`, else the challenge's
/// `error` (and, for `invalid_token`, what its description says).
pub(crate) fn stated(
    code: Option<ErrorCode>,
    error: Option<&str>,
    description: &str,
) -> Option<CauseId> {
    use ErrorCode as E;
    if let Some(code) = code {
        return Some(match code {
            E::MissingCredentials => CauseId::MissingCredentials,
            E::UnsupportedScheme => CauseId::WrongScheme,
            E::InvalidRequest | E::TokenMalformed => CauseId::MalformedHeader,
            E::InvalidSignature => CauseId::BadSignature,
            E::AlgorithmNotAllowed => CauseId::AlgorithmNotAllowed,
            E::UnknownKey | E::InvalidApiKey => CauseId::UnknownKey,
            E::TokenExpired => CauseId::TokenExpired,
            E::TokenNotYetValid => CauseId::TokenNotYetValid,
            E::InvalidIssuer => CauseId::WrongIssuer,
            // A token of the wrong type or without a claim the API needs was made for another
            // purpose (an ID token sent to an API is the usual one).
            E::InvalidAudience | E::InvalidTokenType | E::MissingClaim => CauseId::WrongAudience,
            E::InvalidClaims => CauseId::MissingClaims,
            E::TokenRevoked => CauseId::TokenRevoked,
            E::InsufficientScope => CauseId::InsufficientScope,
            E::Forbidden | E::CsrfFailed => CauseId::Forbidden,
            E::KeySetUnavailable => CauseId::KeySetUnavailable,
            _ => return None,
        });
    }
    match error {
        Some("invalid_request") => Some(CauseId::MalformedHeader),
        Some("insufficient_scope") => Some(CauseId::InsufficientScope),
        Some("invalid_token") | None => described(description),
        Some(_) => None,
    }
}

/// What the usual servers' descriptions of an `invalid_token` say (jsonwebtoken-based and
/// express-jwt APIs, Spring Security, ASP.NET Core, Keycloak adapters): the words they use,
/// most specific first.
fn described(description: &str) -> Option<CauseId> {
    let d = description.to_ascii_lowercase();
    let says = |words: &[&str]| words.iter().any(|w| d.contains(w));
    Some(if says(&["expired"]) {
        CauseId::TokenExpired
    } else if says(&["not yet valid", "not valid yet", "nbf", "before"]) {
        CauseId::TokenNotYetValid
    } else if says(&["revoked", "not active", "inactive"]) {
        CauseId::TokenRevoked
    } else if says(&["audience"]) {
        CauseId::WrongAudience
    } else if says(&["issuer"]) {
        CauseId::WrongIssuer
    } else if says(&["matching key", "key was not found", "unknown key", "kid"]) {
        CauseId::UnknownKey
    } else if says(&["algorithm"]) {
        CauseId::AlgorithmNotAllowed
    } else if says(&["signature"]) {
        CauseId::BadSignature
    } else if says(&["malformed", "decode"]) {
        CauseId::MalformedHeader
    } else if says(&[
        "no authorization token",
        "no token",
        "token missing",
        "missing token",
        "no credentials",
    ]) {
        CauseId::MissingCredentials
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_s_words_name_the_cause() {
        assert_eq!(
            stated(Some(ErrorCode::InvalidAudience), None, ""),
            Some(CauseId::WrongAudience)
        );
        assert_eq!(
            stated(None, Some("invalid_token"), "The access token expired"),
            Some(CauseId::TokenExpired)
        );
        assert_eq!(
            stated(None, Some("invalid_token"), "token revoked"),
            Some(CauseId::TokenRevoked)
        );
        assert_eq!(stated(None, Some("invalid_token"), ""), None);
        assert_eq!(
            stated(None, Some("insufficient_scope"), ""),
            Some(CauseId::InsufficientScope)
        );
        assert_eq!(stated(None, None, ""), None);
        assert_eq!(stated(None, Some("invalid_client"), "expired"), None);
    }

    #[test]
    fn the_usual_servers_descriptions_are_understood() {
        let cases = [
            // express-jwt / jsonwebtoken (Node)
            ("jwt expired", CauseId::TokenExpired),
            (
                "jwt audience invalid. expected: orders",
                CauseId::WrongAudience,
            ),
            (
                "jwt issuer invalid. expected: https://id",
                CauseId::WrongIssuer,
            ),
            ("invalid signature", CauseId::BadSignature),
            ("jwt malformed", CauseId::MalformedHeader),
            (
                "No authorization token was found",
                CauseId::MissingCredentials,
            ),
            // Spring Security
            ("Jwt expired at 2026-12-01T07:00:00Z", CauseId::TokenExpired),
            (
                "An error occurred while attempting to decode the Jwt: Signed JWT rejected: Another algorithm expected, or no matching key(s) found",
                CauseId::UnknownKey,
            ),
            // ASP.NET Core
            (
                "The token expired at '12/01/2026 07:00:00'",
                CauseId::TokenExpired,
            ),
            ("The signature key was not found", CauseId::UnknownKey),
            ("The signature is invalid", CauseId::BadSignature),
            ("The audience 'api://x' is invalid", CauseId::WrongAudience),
            (
                "The token is not valid before '12/01/2026 08:00:00'",
                CauseId::TokenNotYetValid,
            ),
            // RFC 7662 introspection-based servers
            ("token is not active", CauseId::TokenRevoked),
        ];
        for (description, id) in cases {
            assert_eq!(
                stated(None, Some("invalid_token"), description),
                Some(id),
                "{description}"
            );
        }
    }
}
