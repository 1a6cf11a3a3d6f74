//! Situations about the credentials sent: how the header is written, and what the token's
//! claims say (time, audience, issuer, scopes), against servers that say why and servers
//! that do not.

use crate::support::{Case, case, check};
use crate::world::World;

/// How the credentials are written: situation, verdict, causes in order, the arguments.
pub(crate) fn header_cases(w: &World) -> Vec<Case> {
    let t = &w.tokens;
    let me = w.me();
    let header = |value: String| format!("Authorization: {value}");
    vec![
        case("valid token", "ok", &[], &[&me, "--token", &t.valid]),
        case(
            "no credentials",
            "missing_credentials",
            &["missing_credentials"],
            &[&me],
        ),
        case(
            "another scheme",
            "wrong_scheme",
            &["wrong_scheme"],
            &[&me, "-H", &header(format!("Token {}", t.valid))],
        ),
        case(
            "token without a scheme",
            "wrong_scheme",
            &["wrong_scheme"],
            &[&me, "-H", &header(t.valid.clone())],
        ),
        case(
            "two spaces after Bearer (RFC 6750 allows them)",
            "ok",
            &[],
            &[&me, "-H", &header(format!("Bearer  {}", t.valid))],
        ),
        case(
            "the token in quotes",
            "malformed_header",
            &["malformed_header"],
            &[&me, "-H", &header(format!("Bearer \"{}\"", t.valid))],
        )
        .detail_has(&["quotes"]),
        case(
            "the prefix stored with the token",
            "malformed_header",
            &["malformed_header"],
            &[&me, "--token", &format!("Bearer {}", t.valid)],
        )
        .detail_has(&["Bearer Bearer"]),
    ]
}

/// What the token's claims say, to a server that says why: situation, verdict, causes in
/// order, the arguments.
pub(crate) fn claim_cases(w: &World) -> Vec<Case> {
    let t = &w.tokens;
    let me = w.me();
    let d = w.d;
    let issuer = format!("http://{d}");
    vec![
        case(
            "expired",
            "token_expired",
            &["token_expired"],
            &[&me, "--token", &t.expired],
        )
        .detail_has(&["ago"]),
        case(
            "not valid yet",
            "token_not_yet_valid",
            &["token_not_yet_valid"],
            &[&me, "--token", &t.future],
        )
        .detail_has(&["in 10 min"]),
        case(
            "another audience",
            "wrong_audience",
            &["wrong_audience"],
            &[&me, "--token", &t.other_aud],
        )
        .detail_has(&["billing-api"]),
        case(
            "another issuer",
            "wrong_issuer",
            &["wrong_issuer"],
            &[&me, "--token", &t.other_iss, "--issuer", &issuer],
        )
        .detail_has(&["/idp"]),
        case(
            "missing scope",
            "insufficient_scope",
            &["insufficient_scope"],
            &[&w.url(d, "/api/admin"), "--token", &t.read_only],
        )
        .detail_has(&["admin"]),
        case(
            "a session cookie, expired",
            "token_expired",
            &["token_expired"],
            &[&me, "--cookie", &format!("access_token={}", t.expired)],
        ),
    ]
}

/// What the token's claims say, to a server that says little or nothing: situation, verdict,
/// causes in order, the arguments.
pub(crate) fn quiet_server_cases(w: &World) -> Vec<Case> {
    let t = &w.tokens;
    let l = w.l;
    vec![
        case(
            "plain 401, expired token",
            "token_expired",
            &["token_expired"],
            &[&w.url(l, "/plain"), "--token", &t.legacy_expired],
        ),
        case(
            "plain 401, no credentials",
            "missing_credentials",
            &["missing_credentials"],
            &[&w.url(l, "/plain")],
        ),
        case(
            "the server's clock is ahead",
            "clock_skew",
            &["clock_skew"],
            &[&w.url(l, "/skewed"), "--token", &t.legacy_valid],
        ),
        case(
            "the server asks for Basic only",
            "wrong_scheme",
            &["wrong_scheme"],
            &[&w.url(l, "/basic-only"), "--token", &t.legacy_valid],
        )
        .detail_has(&["Basic"]),
        case(
            "a server that echoes the token",
            "token_revoked",
            &["token_revoked"],
            &[&w.url(l, "/echo"), "--token", &t.legacy_valid],
        )
        .output_has(&["description \"bad token Bearer [redacted]\""]),
        case(
            "an opaque token refused without a word",
            "token_revoked",
            &["token_revoked"],
            &[&w.url(l, "/plain"), "--token", "opaque-0123456789abcdef"],
        )
        .detail_has(&["opaque", "introspection"]),
        case(
            "RFC 6750 scope challenge",
            "insufficient_scope",
            &["insufficient_scope"],
            &[&w.url(l, "/scoped"), "--token", &t.legacy_valid],
        )
        .detail_has(&["orders:write", "it has read"]),
        case(
            "revoked",
            "token_revoked",
            &["token_revoked"],
            &[&w.url(l, "/revoked"), "--token", &t.legacy_valid],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_names_what_is_wrong_with_how_the_credentials_are_written() {
    let w = World::start().await;
    check(&header_cases(&w), &w.secrets()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_names_what_is_wrong_with_the_tokens_claims() {
    let w = World::start().await;
    check(&claim_cases(&w), &w.secrets()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_finds_the_cause_a_quiet_server_does_not_name() {
    let w = World::start().await;
    check(&quiet_server_cases(&w), &w.secrets()).await;
}
