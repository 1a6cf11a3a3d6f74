//! Every cause id (and `ok`) is the verdict or a cause of at least one situation; the
//! situations' tests check that the doctor says what their table expects.

use std::collections::BTreeSet;

use crate::world::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cause_id_is_produced_by_some_situation() {
    let w = World::start().await;
    let cases: Vec<_> = [
        crate::tokens::header_cases(&w),
        crate::tokens::claim_cases(&w),
        crate::tokens::quiet_server_cases(&w),
        crate::keys::cases(&w),
        crate::cors::cases(&w),
        crate::servers::cases(&w),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(cases.len() >= 20);
    let produced: BTreeSet<&str> = cases
        .iter()
        .flat_map(|c| c.causes.iter().copied().chain([c.verdict]))
        .collect();
    let all = [
        "missing_credentials",
        "wrong_scheme",
        "malformed_header",
        "token_expired",
        "token_not_yet_valid",
        "clock_skew",
        "wrong_audience",
        "wrong_issuer",
        "unknown_key",
        "algorithm_not_allowed",
        "bad_signature",
        "insufficient_scope",
        "forbidden",
        "missing_claims",
        "token_revoked",
        "key_set_unavailable",
        "cors_origin_not_allowed",
        "cors_credentials_not_allowed",
        "cors_challenge_not_exposed",
        "preflight_rejected",
        "server_error",
        "ok",
    ];
    let missing: Vec<_> = all.iter().filter(|id| !produced.contains(**id)).collect();
    assert!(missing.is_empty(), "no situation produced {missing:?}");
}
