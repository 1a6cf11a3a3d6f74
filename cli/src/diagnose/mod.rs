//! Judging: from what was sent, what the server said and what the checks found, the causes,
//! each with its detail and its fix. The server's own words (a problem `code`, an RFC 6750
//! `error`) name a cause; what the doctor sees itself confirms it, explains it (a clock that
//! is off), or finds what a server that says nothing does not.

mod findings;

use http::StatusCode;
use portcullis_wire::ErrorCode;
use portcullis_wire::grammar::is_b64token;

use crate::keys::KeyVerdict;
use crate::report::{CauseId, Outcome, Report, quoted, quoted_list};
use crate::token::{self, Decoded, date, relative};
use findings::{scope_findings, token_findings};

/// Differences between the two clocks smaller than this are the `Date` header's one-second
/// resolution and the round trip, not drift.
pub const CLOCK_TOLERANCE: i64 = 5;

/// What the `Authorization` header as sent looks like, and the token in it.
#[derive(Debug, Default, PartialEq)]
pub struct SentHeader {
    /// What is wrong with it, if anything.
    pub problem: Option<(CauseId, String)>,
    /// The token in it, when one can be found (also in a malformed header).
    pub token: Option<String>,
}

const BEARER_FIX: &str =
    "send exactly `Authorization: Bearer <token>`: the scheme, one space, the token alone";

/// Read an `Authorization` value the way a strict RFC 6750 server does.
pub fn inspect_authorization(value: &str) -> SentHeader {
    let looks_like_jwt = |t: &str| token::decode(t).is_ok();
    let Some((scheme, rest)) = value.split_once(' ') else {
        let detail = if looks_like_jwt(value) {
            "the Authorization header holds the token alone: the `Bearer ` scheme is missing"
                .to_owned()
        } else if value.is_empty() {
            return SentHeader {
                problem: Some((
                    CauseId::MalformedHeader,
                    "the Authorization header is empty".into(),
                )),
                token: None,
            };
        } else {
            "the Authorization header has no scheme".to_owned()
        };
        return SentHeader {
            problem: Some((CauseId::WrongScheme, detail)),
            token: looks_like_jwt(value).then(|| value.to_owned()),
        };
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        let inner = rest.trim();
        return SentHeader {
            problem: Some((
                CauseId::WrongScheme,
                format!(
                    "the Authorization scheme is {}; the API expects Bearer",
                    quoted(scheme)
                ),
            )),
            token: looks_like_jwt(inner).then(|| inner.to_owned()),
        };
    }
    // RFC 6750 §2.1: `Bearer 1*SP b64token`; a field value's trailing whitespace is not part
    // of it (RFC 9110 §5.5).
    let rest = rest.trim_start_matches(' ').trim_end();
    let last = rest.split_ascii_whitespace().last().unwrap_or("");
    let token = Some(last.trim_matches('"').to_owned()).filter(|t| !t.is_empty());
    let problem = if rest.is_empty() {
        Some("`Bearer` is followed by no token".to_owned())
    } else if rest.len() > 7
        && rest
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
    {
        Some(
            "the scheme is written twice (`Bearer Bearer …`): the token was stored with its prefix"
                .to_owned(),
        )
    } else if rest.contains(char::is_whitespace) {
        Some("the token contains whitespace".to_owned())
    } else if rest.starts_with('"') {
        Some("the token is in quotes".to_owned())
    } else if !is_b64token(rest.as_bytes()) {
        Some("the token has characters RFC 6750 does not allow in a bearer token".to_owned())
    } else {
        None
    };
    SentHeader {
        problem: problem.map(|p| (CauseId::MalformedHeader, p)),
        token,
    }
}

/// The cause a server's own words name: the problem body's `code`, else the challenge's
/// `error` (and, for `invalid_token`, what its description says).
pub fn stated(code: Option<ErrorCode>, error: Option<&str>, description: &str) -> Option<CauseId> {
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

/// The fix for each cause, where the detail already says what was seen.
fn fix(id: CauseId) -> &'static str {
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

/// URLs equal but for a trailing slash (issuers and resources are written both ways).
pub fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// A duration as people say it (`2 h`, `40 s`).
pub fn seconds(d: i64) -> String {
    relative(d, 0).trim_start_matches("in ").to_owned()
}

/// Everything the doctor knows while it judges.
pub struct Facts<'a> {
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

/// Whether a redirect goes to a sign-in page (oauth2-proxy, Spring Security, session
/// middlewares): an authentication failure that an API client sees as a redirect, not a 401.
fn to_sign_in(location: &str) -> bool {
    let l = location.to_ascii_lowercase();
    [
        "login",
        "signin",
        "sign-in",
        "sign_in",
        "/oauth2/start",
        "authorize",
        "/auth",
        "sso",
    ]
    .iter()
    .any(|w| l.contains(w))
}

/// Name the causes from the facts.
pub fn diagnose(
    f: &Facts<'_>,
    sent: &SentHeader,
    decoded: Option<&Result<Decoded, token::NotAJwt>>,
    report: &mut Report,
) {
    let status = f.status;
    let sign_in = f
        .location
        .as_deref()
        .filter(|l| status.is_redirection() && to_sign_in(l));
    let refused = matches!(status.as_u16(), 400 | 401 | 403) || sign_in.is_some();
    if status.is_server_error() {
        if f.stated == Some(CauseId::KeySetUnavailable) {
            let here = match &f.keys {
                Some(KeyVerdict::Unavailable(why)) => format!("; from here too: {why}"),
                _ => String::new(),
            };
            report.cause(
                CauseId::KeySetUnavailable,
                format!(
                    "the server cannot fetch the keys that verify tokens ({status}: {}){here}",
                    f.description
                ),
                fix(CauseId::KeySetUnavailable),
            );
        } else {
            report.cause(
                CauseId::ServerError,
                format!("the server failed with {status}"),
                fix(CauseId::ServerError),
            );
        }
    } else if !refused && !status.is_success() && !status.is_redirection() {
        report.cause(
            CauseId::ServerError,
            format!("the server answered {status}, which is not about credentials"),
            "check the URL and the method: this is not a credentials problem",
        );
    }

    // Local findings are judged on every answer; they become causes only when the server
    // refused the request (the server has the last word on what it accepts).
    let mut found: Vec<(CauseId, String)> = Vec::new();
    if !f.credentials_sent {
        found.push((
            CauseId::MissingCredentials,
            "the request carries no credentials (no Authorization header, no cookie)".into(),
        ));
    } else if f.stated == Some(CauseId::MissingCredentials) {
        found.push((CauseId::MissingCredentials, "the server saw no credentials although the request carried some: the API reads another cookie or header, or something on the way strips it".into()));
    }
    if let Some((id, detail)) = &sent.problem {
        found.push((*id, detail.clone()));
    } else if sent.token.is_some()
        && !f.schemes.is_empty()
        && !f.schemes.iter().any(|s| s.eq_ignore_ascii_case("bearer"))
    {
        found.push((
            CauseId::WrongScheme,
            format!(
                "the server asks for {}, not Bearer: it does not take bearer tokens here",
                quoted_list(&f.schemes)
            ),
        ));
    }
    if let Some(Err(why)) = decoded
        && f.stated == Some(CauseId::MalformedHeader)
        && sent.problem.is_none()
    {
        found.push((
            CauseId::MalformedHeader,
            format!("the bearer token is not a JWT: {why}"),
        ));
    }
    if let Some(t) = f.token {
        token_findings(f, t, &mut found, report);
    }
    if f.status == StatusCode::FORBIDDEN || f.stated == Some(CauseId::InsufficientScope) {
        scope_findings(f, &mut found);
    }

    if !refused {
        let why = if status.is_success() || status.is_redirection() {
            "the server accepted the request anyway"
        } else {
            "not the reason for this answer"
        };
        for (id, detail) in found {
            if id != CauseId::MissingCredentials {
                report.check(
                    "token",
                    Outcome::Warn,
                    format!("{}: {detail} ({why})", id.as_str()),
                );
            }
        }
        return;
    }

    // The server's own reason first, with what was seen here when it agrees.
    if let Some(id) = f.stated {
        let time_claim_disagrees = matches!(id, CauseId::TokenExpired | CauseId::TokenNotYetValid)
            && f.token.is_some()
            && !found.iter().any(|(i, _)| *i == id);
        if time_claim_disagrees {
            let local = match (id, f.token) {
                (CauseId::TokenExpired, Some(t)) => t.time("exp").map(|e| {
                    format!(
                        "it expires {} by this machine's clock",
                        relative(e, f.local_now)
                    )
                }),
                (_, Some(t)) => t.time("nbf").or(t.time("iat")).map(|n| {
                    format!(
                        "it is valid from {} by this machine's clock",
                        relative(n, f.local_now)
                    )
                }),
                _ => None,
            };
            report.cause(
                CauseId::ClockSkew,
                format!(
                    "the server says {} but {}: the server's clock is off{}",
                    id.as_str(),
                    local.unwrap_or_else(|| "this machine's clock disagrees".into()),
                    f.server_now
                        .map(|s| format!(" (its Date is {})", date(s)))
                        .unwrap_or_default()
                ),
                fix(CauseId::ClockSkew),
            );
        } else if let Some((_, detail)) = found.iter().find(|(i, _)| *i == id) {
            report.cause(id, detail.clone(), fix(id));
        } else {
            let said = if f.description.is_empty() {
                id.as_str().to_owned()
            } else {
                f.description.clone()
            };
            let seen = match (id, f.token) {
                (CauseId::WrongAudience, Some(t)) => {
                    format!("; the token's aud is {}", quoted_list(t.aud()))
                }
                (CauseId::WrongIssuer, Some(t)) => {
                    format!("; the token's iss is {}", quoted(t.iss().unwrap_or("")))
                }
                _ => String::new(),
            };
            report.cause(id, format!("the server says: {said}{seen}"), fix(id));
        }
    }
    for (id, detail) in &found {
        report.cause(*id, detail.clone(), fix(*id));
    }
    if report.causes.iter().all(|c| c.id.blocks_the_page()) {
        // Nothing named: say the most likely reason, and that it is a deduction.
        let (id, detail) = if let Some(to) = sign_in {
            if sent.token.is_some() {
                (
                    CauseId::WrongScheme,
                    format!(
                        "the server answers the bearer token with a redirect to its sign-in page ({to}): this route takes a browser session (a cookie), not bearer tokens"
                    ),
                )
            } else {
                (
                    CauseId::MissingCredentials,
                    format!(
                        "the session sent was not accepted: the server redirects to sign in ({to}); the cookie expired, or the API reads another one"
                    ),
                )
            }
        } else if status == StatusCode::FORBIDDEN {
            (
                CauseId::Forbidden,
                "the server knows who this is and refuses: it names no missing scope".to_owned(),
            )
        } else if status == StatusCode::BAD_REQUEST {
            (
                CauseId::MalformedHeader,
                "the server answered 400 without saying why; check how the credentials are written"
                    .to_owned(),
            )
        } else if let Some(Err(_)) = decoded {
            (CauseId::TokenRevoked, "the server refuses an opaque token (not a JWT, so nothing in it can be read here): it is expired, revoked or from another server; ask the issuer's introspection endpoint whether it is active".to_owned())
        } else if f.keys == Some(KeyVerdict::NotChecked) {
            (CauseId::BadSignature, "the server refuses a token signed with a shared secret, which nobody but the server and the issuer can check: a secret from another environment is the usual reason".to_owned())
        } else if f.keys == Some(KeyVerdict::Verified) {
            (CauseId::TokenRevoked, "the token is well formed, in date, from the expected issuer and signed by a published key, yet refused: most likely revoked (or a policy of the server)".to_owned())
        } else {
            (CauseId::BadSignature, "the server refuses the token and nothing checked here explains it; its signature could not be checked here (pass --issuer)".to_owned())
        };
        report.cause(id, detail, fix(id));
    }
    if let Some(to) = sign_in
        && let Some(c) = report.causes.iter_mut().find(|c| !c.id.blocks_the_page())
        && !c.detail.raw().contains(to)
    {
        c.detail.push_str(&format!(
            "; the server answers with a redirect to its sign-in page ({to}) instead of a 401, which API clients follow into an HTML page"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.e30.c2ln";

    fn problem(value: &str) -> Option<CauseId> {
        inspect_authorization(value).problem.map(|(id, _)| id)
    }

    #[test]
    fn authorization_values_are_read_like_a_strict_server() {
        assert_eq!(problem(&format!("Bearer {JWT}")), None);
        assert_eq!(problem(&format!("bearer {JWT}")), None);
        assert_eq!(problem(JWT), Some(CauseId::WrongScheme));
        assert_eq!(problem(&format!("Token {JWT}")), Some(CauseId::WrongScheme));
        // One or more spaces (RFC 6750 `1*SP`), not a tab.
        assert_eq!(problem(&format!("Bearer  {JWT}")), None);
        assert_eq!(
            problem(&format!("Bearer \t{JWT}")),
            Some(CauseId::MalformedHeader)
        );
        assert_eq!(
            problem(&format!("Bearer {JWT} {JWT}")),
            Some(CauseId::MalformedHeader)
        );
        assert_eq!(
            problem(&format!("Bearer Bearer {JWT}")),
            Some(CauseId::MalformedHeader)
        );
        assert_eq!(
            problem(&format!("Bearer \"{JWT}\"")),
            Some(CauseId::MalformedHeader)
        );
        assert_eq!(problem("Bearer "), Some(CauseId::MalformedHeader));
        assert_eq!(problem(""), Some(CauseId::MalformedHeader));
        // The token is still found, so it can be read.
        assert_eq!(
            inspect_authorization(&format!("Bearer Bearer {JWT}"))
                .token
                .as_deref(),
            Some(JWT)
        );
        assert_eq!(
            inspect_authorization(&format!("JWT {JWT}"))
                .token
                .as_deref(),
            Some(JWT)
        );
    }

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

    proptest::proptest! {
        #[test]
        fn any_header_value_is_judged_without_panicking(v in "\\PC{0,40}") {
            let _ = inspect_authorization(&v);
            let _ = token::decode(&v);
        }

        #[test]
        fn a_well_formed_bearer_header_is_never_faulted(t in "[A-Za-z0-9._~+/-]{1,40}=*") {
            let read = inspect_authorization(&format!("Bearer {t}"));
            proptest::prop_assert_eq!(read.problem, None);
            proptest::prop_assert_eq!(read.token.as_deref(), Some(t.as_str()));
        }
    }
}
