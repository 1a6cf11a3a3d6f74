//! Judging: from what was sent, what the server said and what the checks found, the causes,
//! each with its detail and its fix. The server's own words (a problem `code`, an RFC 6750
//! `error`) name a cause; what the doctor sees itself confirms it, explains it (a clock that
//! is off), or finds what a server that says nothing does not.

mod facts;
mod findings;
mod fixes;
mod header;
mod words;

use http::StatusCode;

use crate::keys::KeyVerdict;
use crate::report::{CauseId, Outcome, Report, quoted, quoted_list};
use crate::token::{self, Decoded, date, relative};
use findings::{scope_findings, token_findings};
use fixes::fix;

pub(crate) use facts::{CLOCK_TOLERANCE, Facts, same_url, seconds};
pub(crate) use header::{SentHeader, inspect_authorization};
pub(crate) use words::stated;

/// A cause and its detail, as found before the server's answer decides which count.
type Finding = (CauseId, String);

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
pub(crate) fn diagnose(
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
    not_about_credentials(f, refused, report);

    // Local findings are judged on every answer; they become causes only when the server
    // refused the request (the server has the last word on what it accepts).
    let found = local_findings(f, sent, decoded, report);
    if !refused {
        unrefused(status, found, report);
        return;
    }

    // The server's own reason first, with what was seen here when it agrees.
    if let Some(id) = f.stated {
        stated_cause(f, id, &found, report);
    }
    for (id, detail) in &found {
        report.cause(*id, detail.clone(), fix(*id));
    }
    if report.causes.iter().all(|c| c.id.blocks_the_page()) {
        // Nothing named: say the most likely reason, and that it is a deduction.
        let (id, detail) = deduced(f, sent, decoded, sign_in);
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

/// A server error (the key set it cannot fetch, or its own failure), or an answer that is
/// not about credentials at all.
fn not_about_credentials(f: &Facts<'_>, refused: bool, report: &mut Report) {
    let status = f.status;
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
}

/// What the doctor sees itself: the credentials sent, how they are written, the token's
/// claims, keys and scopes.
fn local_findings(
    f: &Facts<'_>,
    sent: &SentHeader,
    decoded: Option<&Result<Decoded, token::NotAJwt>>,
    report: &mut Report,
) -> Vec<Finding> {
    let mut found: Vec<Finding> = Vec::new();
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
    found
}

/// An answer that is not a refusal: what was found is only a warning.
fn unrefused(status: StatusCode, found: Vec<Finding>, report: &mut Report) {
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
}

/// The cause the server names, with what was seen here: a clock that disagrees on a time
/// claim, the local finding that agrees, else the server's words and the claim they are about.
fn stated_cause(f: &Facts<'_>, id: CauseId, found: &[Finding], report: &mut Report) {
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

/// The most likely reason of a refusal nothing names.
fn deduced(
    f: &Facts<'_>,
    sent: &SentHeader,
    decoded: Option<&Result<Decoded, token::NotAJwt>>,
    sign_in: Option<&str>,
) -> Finding {
    if let Some(to) = sign_in {
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
    } else if f.status == StatusCode::FORBIDDEN {
        (
            CauseId::Forbidden,
            "the server knows who this is and refuses: it names no missing scope".to_owned(),
        )
    } else if f.status == StatusCode::BAD_REQUEST {
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
    }
}
