//! Situations about the token's key, algorithm and signature, judged against the issuer's
//! published key set.

use crate::support::{Case, case, check};
use crate::world::World;

/// The table: situation, verdict, causes in order, the doctor's arguments.
pub(crate) fn cases(w: &World) -> Vec<Case> {
    let t = &w.tokens;
    let me = w.me();
    let l = w.l;
    vec![
        case(
            "a kid the issuer does not publish",
            "unknown_key",
            &["unknown_key"],
            &[&me, "--token", &t.gone_kid],
        )
        .detail_has(&["retired-2025"]),
        case(
            "HS256 naming a public key",
            "algorithm_not_allowed",
            &["algorithm_not_allowed"],
            &[&me, "--token", &t.confused],
        ),
        case(
            "a signature from another token",
            "bad_signature",
            &["bad_signature"],
            &[&me, "--token", &t.forged],
        ),
        case(
            "jwks-url mode, the token's key rotated away",
            "unknown_key",
            &["unknown_key"],
            &[&w.url(w.rotated_api, "/api/me"), "--token", &t.from_old],
        )
        .detail_has(&["p256"]),
        case(
            "jwks-url mode, the key set is down",
            "key_set_unavailable",
            &["key_set_unavailable"],
            &[&w.url(w.down_api, "/api/me"), "--token", &t.from_down],
        ),
        case(
            "plain 401, key rotated away",
            "unknown_key",
            &["unknown_key"],
            &[&w.url(l, "/plain"), "--token", &t.from_old],
        ),
        case(
            "plain 401, an HS256 token",
            "bad_signature",
            &["bad_signature"],
            &[&w.url(l, "/plain"), "--token", &t.legacy_hs],
        )
        .detail_has(&["shared secret"]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_names_what_is_wrong_with_the_key_and_signature() {
    let w = World::start().await;
    check(&cases(&w), &w.secrets()).await;
}
