//! What the token itself and the scopes say, beside the server's answer.

use super::facts::{CLOCK_TOLERANCE, Facts, same_url, seconds};
use crate::keys::KeyVerdict;
use crate::report::{CauseId, Outcome, Report, quoted, quoted_list};
use crate::token::{Decoded, date, relative};

/// What the token's claims and its key say.
pub(super) fn token_findings(
    f: &Facts<'_>,
    t: &Decoded,
    found: &mut Vec<(CauseId, String)>,
    report: &mut Report,
) {
    time_findings(f, t, found, report);
    identity_findings(f, t, found, report);
    key_findings(f, found);
}

/// `exp`, `nbf` and `iat`, by this machine's clock and by the server's.
fn time_findings(
    f: &Facts<'_>,
    t: &Decoded,
    found: &mut Vec<(CauseId, String)>,
    report: &mut Report,
) {
    let local = f.local_now;
    if let Some(exp) = t.time("exp") {
        let here = exp <= local;
        let there = f.server_now.map(|s| exp <= s);
        match (here, there) {
            (true, Some(true) | None) => found.push((CauseId::TokenExpired, format!("the token expired {} (at {})", relative(exp, local), date(exp)))),
            (false, Some(true)) => found.push((CauseId::ClockSkew, format!(
                "the token expires {} by this machine's clock, but the server's clock reads {}, {} ahead and past the token's exp ({})",
                relative(exp, local),
                date(f.server_now.unwrap_or(local)),
                seconds(f.server_now.unwrap_or(local) - local),
                date(exp)
            ))),
            (true, Some(false)) => report.check("exp", Outcome::Warn, format!("expired by this machine's clock ({}), not by the server's", relative(exp, local))),
            (false, _) => report.check("exp", Outcome::Pass, format!("expires {} ({})", relative(exp, local), date(exp))),
        }
    } else {
        report.check(
            "exp",
            Outcome::Warn,
            "the token has no exp: it never expires",
        );
    }
    for name in ["nbf", "iat"] {
        let Some(at) = t.time(name) else { continue };
        let here = at > local + CLOCK_TOLERANCE;
        let there = f.server_now.map(|s| at > s + CLOCK_TOLERANCE);
        match (here, there) {
            (true, Some(true) | None) => found.push((CauseId::TokenNotYetValid, format!(
                "the token's {name} is {} ({}): the identity provider's clock is ahead, or the token is used too early",
                relative(at, local),
                date(at)
            ))),
            (false, Some(true)) => found.push((CauseId::ClockSkew, format!(
                "the token's {name} has passed by this machine's clock, but the server's clock ({}) is behind it",
                date(f.server_now.unwrap_or(local))
            ))),
            _ => report.check(name, Outcome::Pass, format!("{} ({})", relative(at, local), date(at))),
        }
    }
}

/// `iss` and `aud`, against what the API expects.
fn identity_findings(
    f: &Facts<'_>,
    t: &Decoded,
    found: &mut Vec<(CauseId, String)>,
    report: &mut Report,
) {
    let iss = t.iss().unwrap_or("");
    if !f.expected_issuers.is_empty() {
        if f.expected_issuers.iter().any(|e| same_url(e, iss)) {
            report.check("iss", Outcome::Pass, format!("{} is trusted", quoted(iss)));
        } else {
            found.push((
                CauseId::WrongIssuer,
                format!(
                    "the token's iss is {}; the API trusts {}",
                    quoted(iss),
                    quoted_list(&f.expected_issuers)
                ),
            ));
        }
    }
    let aud = t.aud();
    if let Some(expected) = &f.expected_audience {
        if aud.iter().any(|a| same_url(a, expected)) {
            report.check("aud", Outcome::Pass, format!("names {}", quoted(expected)));
        } else {
            found.push((
                CauseId::WrongAudience,
                format!(
                    "the token's aud is {}; the API is {}",
                    quoted_list(&aud),
                    quoted(expected)
                ),
            ));
        }
    }
}

/// What the issuer's key set says of the token.
fn key_findings(f: &Facts<'_>, found: &mut Vec<(CauseId, String)>) {
    match &f.keys {
        Some(KeyVerdict::UnknownKey { kid, known }) => found.push((CauseId::UnknownKey, format!(
            "the token's kid {} is not in the issuer's key set (it has {}): the key was rotated away or the token comes from elsewhere",
            quoted(kid),
            quoted_list(known)
        ))),
        Some(KeyVerdict::AlgorithmNotAllowed(why)) => found.push((CauseId::AlgorithmNotAllowed, why.clone())),
        Some(KeyVerdict::BadSignature) => found.push((CauseId::BadSignature, "the signature does not verify with the key the token names".into())),
        Some(KeyVerdict::Unavailable(why)) if f.stated == Some(CauseId::KeySetUnavailable) => {
            found.push((CauseId::KeySetUnavailable, why.clone()));
        }
        _ => {}
    }
}

/// The scopes the endpoint needs that the token lacks.
pub(super) fn scope_findings(f: &Facts<'_>, found: &mut Vec<(CauseId, String)>) {
    if f.required_scopes.is_empty() {
        return;
    }
    let has: Vec<&str> = f.token.map(Decoded::scopes).unwrap_or_default();
    let missing: Vec<&str> = f
        .required_scopes
        .iter()
        .map(String::as_str)
        .filter(|s| !has.contains(s))
        .collect();
    let detail = if missing.is_empty() || f.token.is_none() {
        format!(
            "the endpoint needs the scope(s) {}",
            f.required_scopes.join(" ")
        )
    } else {
        format!(
            "the token lacks the scope(s) {} (it has {})",
            missing.join(" "),
            if has.is_empty() {
                "none".to_owned()
            } else {
                has.join(" ")
            }
        )
    };
    found.push((CauseId::InsufficientScope, detail));
}
