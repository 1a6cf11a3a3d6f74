//! Situations about the server itself: its metadata (RFC 9728), its redirects, its errors
//! and refusals that name nothing.

use crate::support::{Case, case, check};
use crate::world::World;

/// The table: situation, verdict, causes in order, the doctor's arguments.
pub(crate) fn cases(w: &World) -> Vec<Case> {
    let t = &w.tokens;
    let mcp = w.mcp();
    let l = w.l;
    vec![
        case(
            "Portcullis with RFC 9728 metadata, a token for it",
            "ok",
            &[],
            &[&mcp, "--token", &t.for_mcp],
        )
        .output_has(&["[ok  ] aud: names", "[ok  ] iss: "]),
        case(
            "Portcullis reading a claim the token lacks",
            "missing_claims",
            &["missing_claims"],
            &[&w.url(w.rs, "/tenant"), "--token", &t.for_mcp],
        )
        .detail_has(&["lacks a claim"]),
        case(
            "Portcullis with RFC 9728 metadata, a token for another API",
            "wrong_audience",
            &["wrong_audience"],
            &[&mcp, "--token", &t.valid],
        )
        .detail_has(&["demo-api", "/mcp"]),
        case(
            "RFC 9728 metadata names the resource",
            "wrong_audience",
            &["wrong_audience"],
            &[&w.url(l, "/rs"), "--token", &t.legacy_other_aud],
        )
        .detail_has(&["somebody-else", "/rs"]),
        case(
            "a sign-in redirect, no credentials",
            "missing_credentials",
            &["missing_credentials"],
            &[&w.url(l, "/behind-proxy")],
        )
        .detail_has(&["/oauth2/start", "instead of a 401"]),
        case(
            "a sign-in redirect for a bearer token",
            "wrong_scheme",
            &["wrong_scheme"],
            &[&w.url(l, "/behind-proxy"), "--token", &t.legacy_valid],
        )
        .detail_has(&["not bearer tokens"]),
        case(
            "server error",
            "server_error",
            &["server_error"],
            &[&w.url(l, "/boom"), "--token", &t.legacy_valid],
        ),
        case(
            "not found",
            "server_error",
            &["server_error"],
            &[&w.url(l, "/nowhere"), "--token", &t.legacy_valid],
        ),
        case(
            "plain 403",
            "forbidden",
            &["forbidden"],
            &[&w.url(l, "/forbidden"), "--token", &t.legacy_valid],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_reads_the_servers_metadata_redirects_and_errors() {
    let w = World::start().await;
    check(&cases(&w), &w.secrets()).await;
}
