//! Situations a browser page meets: preflights, and answers it may or may not read.

use crate::support::{APP, Case, case, check};
use crate::world::World;

/// The table: situation, verdict, causes in order, the doctor's arguments.
pub(crate) fn cases(w: &World) -> Vec<Case> {
    let t = &w.tokens;
    let me = w.me();
    let l = w.l;
    let own = format!("http://{}", w.d);
    vec![
        case(
            "valid token, allowed origin",
            "ok",
            &[],
            &[&me, "--token", &t.valid, "--origin", APP],
        ),
        case(
            "origin not allowed",
            "cors_origin_not_allowed",
            &["cors_origin_not_allowed"],
            &[&me, "--token", &t.valid, "--origin", "http://evil.test"],
        ),
        case(
            "a challenged preflight",
            "preflight_rejected",
            &["preflight_rejected"],
            &[
                &w.url(l, "/preflight-challenged"),
                "--token",
                &t.legacy_valid,
                "--origin",
                APP,
            ],
        ),
        case(
            "challenge not exposed",
            "token_expired",
            &["token_expired", "cors_challenge_not_exposed"],
            &[
                &w.url(l, "/unexposed"),
                "--token",
                &t.legacy_expired,
                "--origin",
                APP,
            ],
        ),
        case(
            "any origin with cookies",
            "cors_credentials_not_allowed",
            &["cors_credentials_not_allowed"],
            &[
                &w.url(l, "/star"),
                "--cookie",
                "session=abc",
                "--origin",
                APP,
            ],
        ),
        case(
            "CORS headers on successes only",
            "cors_origin_not_allowed",
            &["cors_origin_not_allowed", "token_expired"],
            &[
                &w.url(l, "/cors-on-success-only"),
                "--token",
                &t.legacy_expired,
                "--origin",
                APP,
            ],
        )
        .detail_has(&["Network Error", "outside (before) the authentication layer"]),
        case(
            "the page is on the API's own origin",
            "ok",
            &[],
            &[&me, "--token", &t.valid, "--origin", &own],
        )
        .output_has(&["browsers apply no CORS"]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_judges_what_a_browser_page_would_get() {
    let w = World::start().await;
    check(&cases(&w), &w.secrets()).await;
}
