//! What the doctor found: causes with stable ids, the checks behind them, and the two ways of
//! printing them (for people, and one JSON object for scripts).
//!
//! Every text in a report may carry a peer's words, so it is held as [`Untrusted`] and shown
//! only escaped; [`Report::to_text`] prints nothing else but static words and numbers. Details
//! keep the words as they came (quoted with [`quoted`], never with `{:?}`, which would escape
//! them a second time), so the JSON output carries them exactly.

use serde::Serialize;
use serde_json::{Value, json};

use crate::untrusted::{Shown, ShownJson, Untrusted};

/// The stable cause ids (documented in the README; scripts switch on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CauseId {
    // Declared in the order a person should fix them, so sorting by id is that order. A page
    // cannot see any answer until the browser lets the request through, so those come first;
    // a server that fails or cannot get its keys says nothing about the token; then what was
    // sent, the token, what the identity may do; and last what hides a refusal from a page.
    /// The preflight is refused (a challenged `OPTIONS`, a method or header not allowed).
    PreflightRejected,
    /// `Access-Control-Allow-Origin` does not name the page's origin.
    CorsOriginNotAllowed,
    /// Credentials are sent but the answer does not allow them (`*`, no `-Credentials: true`).
    CorsCredentialsNotAllowed,
    /// The server failed, or answered with a status that is not about credentials.
    ServerError,
    /// The server cannot fetch the signing keys.
    KeySetUnavailable,
    /// Nothing that counts as a credential was sent (or arrived).
    MissingCredentials,
    /// `Authorization` has another scheme than Bearer, or none.
    WrongScheme,
    /// `Authorization: Bearer` is written wrong (spacing, quotes, twice), or the token is not one.
    MalformedHeader,
    /// The server's clock and the token's times disagree only because of clock drift.
    ClockSkew,
    /// `exp` has passed.
    TokenExpired,
    /// `nbf` or `iat` lies ahead.
    TokenNotYetValid,
    /// `iss` is not the issuer the API trusts.
    WrongIssuer,
    /// `aud` is not this API.
    WrongAudience,
    /// The `kid` is not in the key set.
    UnknownKey,
    /// The `alg` is refused (`none`, a mismatch with the key, HS/RS confusion).
    AlgorithmNotAllowed,
    /// The signature does not verify.
    BadSignature,
    /// The token was revoked.
    TokenRevoked,
    /// A required scope is missing.
    InsufficientScope,
    /// Known, but not allowed.
    Forbidden,
    /// Authentic and current, but the API reads claims the token lacks (or has with another
    /// type): a Portcullis server's `invalid_claims`.
    MissingClaims,
    /// A refusal's `WWW-Authenticate` is hidden from the page (`Access-Control-Expose-Headers`).
    CorsChallengeNotExposed,
}

impl CauseId {
    /// The wire id.
    pub(crate) fn as_str(self) -> &'static str {
        use CauseId::*;
        match self {
            PreflightRejected => "preflight_rejected",
            CorsOriginNotAllowed => "cors_origin_not_allowed",
            CorsCredentialsNotAllowed => "cors_credentials_not_allowed",
            ServerError => "server_error",
            KeySetUnavailable => "key_set_unavailable",
            MissingCredentials => "missing_credentials",
            WrongScheme => "wrong_scheme",
            MalformedHeader => "malformed_header",
            ClockSkew => "clock_skew",
            TokenExpired => "token_expired",
            TokenNotYetValid => "token_not_yet_valid",
            WrongIssuer => "wrong_issuer",
            WrongAudience => "wrong_audience",
            UnknownKey => "unknown_key",
            AlgorithmNotAllowed => "algorithm_not_allowed",
            BadSignature => "bad_signature",
            TokenRevoked => "token_revoked",
            InsufficientScope => "insufficient_scope",
            Forbidden => "forbidden",
            MissingClaims => "missing_claims",
            CorsChallengeNotExposed => "cors_challenge_not_exposed",
        }
    }

    /// Whether a browser would keep the page from seeing any answer at all.
    pub(crate) fn blocks_the_page(self) -> bool {
        matches!(
            self,
            CauseId::PreflightRejected
                | CauseId::CorsOriginNotAllowed
                | CauseId::CorsCredentialsNotAllowed
        )
    }
}

/// One cause: what is wrong and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Cause {
    /// The stable id.
    pub id: CauseId,
    /// What was seen.
    pub detail: Untrusted,
    /// What to do.
    pub fix: Untrusted,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// As it should be.
    Pass,
    /// Wrong, and it explains a failure.
    Fail,
    /// Odd, worth knowing, not the reason.
    Warn,
    /// Could not be checked (and why).
    Skip,
}

/// One thing the doctor looked at.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    /// What was looked at (`server_clock`, `exp`, `jwks`, `preflight`, …).
    pub name: &'static str,
    /// How it came out.
    pub outcome: Outcome,
    /// What was seen.
    pub detail: Untrusted,
}

impl Check {
    /// A check.
    pub(crate) fn new(name: &'static str, outcome: Outcome, detail: impl Into<String>) -> Self {
        Check {
            name,
            outcome,
            detail: Untrusted::from(detail.into()),
        }
    }
}

/// A word in a detail, in double quotes, as it came (the text output escapes it).
pub(crate) fn quoted(word: &str) -> String {
    format!("\"{word}\"")
}

/// Words in a detail, as `["a", "b"]`, as they came (the text output escapes them).
pub(crate) fn quoted_list<I>(words: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let words: Vec<String> = words.into_iter().map(|w| quoted(w.as_ref())).collect();
    format!("[{}]", words.join(", "))
}

/// The whole finding.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    /// The status of the request as sent.
    pub status: Option<u16>,
    /// The causes, in the order to fix them.
    pub causes: Vec<Cause>,
    /// The token's header and claims (never the token).
    pub token: Option<Value>,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// The first cause's id, or `ok`.
    pub(crate) fn verdict(&self) -> &'static str {
        self.causes.first().map_or("ok", |c| c.id.as_str())
    }

    /// Add a cause unless one with that id is already there (the first one found is the more
    /// specific: it came from the server's own words).
    pub(crate) fn cause(&mut self, id: CauseId, detail: impl Into<String>, fix: impl Into<String>) {
        if !self.causes.iter().any(|c| c.id == id) {
            self.causes.push(Cause {
                id,
                detail: Untrusted::from(detail.into()),
                fix: Untrusted::from(fix.into()),
            });
        }
    }

    /// Record a check.
    pub(crate) fn check(
        &mut self,
        name: &'static str,
        outcome: Outcome,
        detail: impl Into<String>,
    ) {
        self.checks.push(Check::new(name, outcome, detail));
    }

    /// The whole report as one JSON object.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "verdict": self.verdict(),
            "status": self.status,
            "causes": self.causes,
            "token": self.token,
            "checks": self.checks,
        })
    }

    /// The report for people: the verdict, then each cause with its fix, then the token and
    /// the checks. What is not a static word or a number is shown escaped ([`Untrusted`],
    /// [`Shown`], [`ShownJson`]), so each report line is one of ours.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        let status = self
            .status
            .map(|s| {
                let reason = http::StatusCode::from_u16(s)
                    .ok()
                    .and_then(|c| c.canonical_reason())
                    .unwrap_or("");
                format!("{s} {reason}")
            })
            .unwrap_or_default();
        match self.causes.first() {
            None => out.push_str(&format!("verdict: ok ({status}, nothing wrong found)\n")),
            Some(c) => out.push_str(&format!("verdict: {} ({status})\n", c.id.as_str())),
        }
        for (i, c) in self.causes.iter().enumerate() {
            out.push_str(&format!(
                "\n{}. {}: {}\n   fix: {}\n",
                i + 1,
                c.id.as_str(),
                c.detail,
                c.fix
            ));
        }
        if let Some(token) = &self.token {
            out.push_str("\ntoken (decoded, not verified):\n");
            for part in ["header", "claims"] {
                if let Some(Value::Object(m)) = token.get(part) {
                    out.push_str(&format!("  {part}:\n"));
                    for (k, v) in m {
                        out.push_str(&format!("    {}: {}", Shown(k), ShownJson(v)));
                        if let Some(Value::String(when)) = token.get("times").and_then(|t| t.get(k))
                        {
                            out.push_str(&format!("  ({})", Shown(when)));
                        }
                        out.push('\n');
                    }
                }
            }
            if let Some(Value::String(why)) = token.get("not_a_jwt") {
                out.push_str(&format!("  not a JWT: {}\n", Shown(why)));
            }
        }
        if !self.checks.is_empty() {
            out.push_str("\nchecks:\n");
            for c in &self.checks {
                let mark = match c.outcome {
                    Outcome::Pass => "ok  ",
                    Outcome::Fail => "FAIL",
                    Outcome::Warn => "warn",
                    Outcome::Skip => "skip",
                };
                out.push_str(&format!("  [{mark}] {}: {}\n", c.name, c.detail));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_the_order_to_fix_them() {
        let mut ids = vec![
            CauseId::CorsChallengeNotExposed,
            CauseId::TokenExpired,
            CauseId::PreflightRejected,
            CauseId::MissingCredentials,
        ];
        ids.sort();
        assert_eq!(
            ids,
            [
                CauseId::PreflightRejected,
                CauseId::MissingCredentials,
                CauseId::TokenExpired,
                CauseId::CorsChallengeNotExposed
            ]
        );
    }

    #[test]
    fn serialized_ids_are_the_documented_ones() {
        for id in [
            CauseId::ClockSkew,
            CauseId::CorsCredentialsNotAllowed,
            CauseId::KeySetUnavailable,
        ] {
            assert_eq!(serde_json::to_value(id).unwrap(), id.as_str());
        }
    }

    #[test]
    fn every_line_of_the_text_is_one_of_ours() {
        let forged = "\u{1b}[2J\r\nverdict: ok\n\u{9b}1m\u{202e}";
        let mut r = Report {
            status: Some(401),
            token: Some(json!({"claims": {forged: forged}, "not_a_jwt": forged})),
            ..Report::default()
        };
        r.cause(CauseId::TokenRevoked, forged, forged);
        r.check("problem", Outcome::Pass, forged);
        let text = r.to_text();
        let lines: Vec<&str> = text.lines().collect();
        // verdict, blank, cause, fix, blank, token, claims, one claim, not a JWT, blank,
        // checks, one check: twelve lines, whatever the words held.
        assert_eq!(lines.len(), 12, "{text}");
        let starts = lines
            .iter()
            .filter(|l| l.trim_start().starts_with("verdict"));
        assert_eq!(starts.count(), 1, "{text}");
        assert!(lines[0].starts_with("verdict: token_revoked"), "{text}");
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
            "{text:?}"
        );
        // JSON keeps the words.
        assert_eq!(r.to_json()["causes"][0]["detail"], forged);
        assert_eq!(r.to_json()["checks"][0]["detail"], forged);
    }

    #[test]
    fn the_verdict_is_the_first_cause_or_ok() {
        let mut r = Report::default();
        assert_eq!(r.verdict(), "ok");
        r.cause(CauseId::TokenExpired, "a", "b");
        r.cause(CauseId::TokenExpired, "ignored", "ignored");
        assert_eq!(r.causes.len(), 1);
        assert_eq!(r.to_json()["verdict"], "token_expired");
        assert!(r.to_text().starts_with("verdict: token_expired"));
    }
}
