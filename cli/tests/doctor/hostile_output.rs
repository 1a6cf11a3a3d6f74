//! A hostile server and a hostile token against `portcullis doctor` and `decode`: whatever a
//! peer writes (a problem `detail`, challenge parameters, metadata and key-set members, a
//! token's claim names and values) reaches the terminal only escaped, never as a control or
//! bidirectional character, and never as a line of its own; JSON output carries it exactly.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::http::Response;
use axum::routing::{any, get};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::support::{bind, run, spawn};

/// Clear the screen, home the cursor, write the clipboard (OSC 52), forge a report line after a
/// carriage return, start an 8-bit CSI (U+009B), reverse the text (U+202E), and hide a few
/// invisible characters, a DEL and a backslash at the end.
const PAYLOAD: &str = "\u{1b}[2J\u{1b}[H\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}\r\nverdict: ok (200 OK, nothing wrong found)\n\u{9b}31m\u{202e}kO\u{200b}\u{feff}\u{7f}\\";

/// The same, as the text output must show it: C0 and DEL as `\xHH` (`\n`, `\r`, `\t` by
/// name), everything from U+0080 as `\u{…}`, a backslash doubled. Written out by hand.
const PAYLOAD_SHOWN: &str = r"\x1b[2J\x1b[H\x1b]52;c;ZWNobyBwd25lZA==\x07\r\nverdict: ok (200 OK, nothing wrong found)\n\u{9b}31m\u{202e}kO\u{200b}\u{feff}\x7f\\";

/// A claim name that is itself hostile.
const KEY: &str = "x\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{202e}";
const KEY_SHOWN: &str = r"x\x1b]52;c;cm0gLXJmIH4=\x07\u{202e}";

/// A scope a server requires, with an 8-bit CSI and a left-to-right isolate in it.
const SCOPE: &str = "orders:write\u{9b}2J\u{2066}";
const SCOPE_SHOWN: &str = r"orders:write\u{9b}2J\u{2066}";

/// The scope the token holds instead, with an 8-bit SGR and a right-to-left override.
const HELD: &str = "admin\u{202e}\u{9b}0m";
const HELD_SHOWN: &str = r"admin\u{202e}\u{9b}0m";

/// The oracle, independent of the code under test: C0, DEL and C1 (`char::is_control`), and the
/// bidirectional and zero-width characters by name.
fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// Every character of `out` but its own line ends is allowed.
fn assert_clean(what: &str, out: &str) {
    for (i, c) in out.chars().enumerate() {
        if c != '\n' && forbidden(c) {
            let around: String = out.chars().skip(i.saturating_sub(30)).take(60).collect();
            panic!("{what}: raw {c:?} at char {i}, in {around:?}");
        }
    }
}

/// The report's one verdict line is its first, and it is not the forged one.
fn assert_one_verdict(out: &str) {
    let verdicts: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("verdict:"))
        .collect();
    assert_eq!(verdicts.len(), 1, "{out:?}");
    assert!(out.starts_with(verdicts[0]), "{out:?}");
    assert!(!verdicts[0].starts_with("verdict: ok"), "{out:?}");
}

fn problem(status: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/problem+json")
        .header("www-authenticate", r#"Bearer error="invalid_token""#)
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// An API and its identity provider that put hostile words everywhere the doctor reads.
async fn hostile_server() -> SocketAddr {
    let (l, addr) = bind().await;
    let base = format!("http://{addr}");
    let app = Router::new()
        // The problem body's `detail` is the cause's words.
        .route(
            "/revoked",
            any(|| async {
                problem(
                    401,
                    json!({"status": 401, "code": "token_revoked", "detail": PAYLOAD}),
                )
            }),
        )
        // A required scope the token lacks, both hostile.
        .route(
            "/scoped",
            any(|| async {
                problem(
                    403,
                    json!({"status": 403, "code": "insufficient_scope", "detail": PAYLOAD, "required_scopes": [SCOPE]}),
                )
            }),
        )
        // Header values carry no control character but a tab; the challenge's own words.
        .route(
            "/described",
            any(|| async {
                Response::builder()
                    .status(401)
                    .header(
                        "www-authenticate",
                        "Bearer error=\"invalid_token\tverdict: ok\", error_description=\"revoked\tverdict: ok\", resource_metadata=\"http://127.0.0.1:9/m\tverdict: ok\"",
                    )
                    .body(Body::empty())
                    .unwrap()
            }),
        )
        // An identity provider whose key set names the token's key with a hostile type.
        .route(
            "/idp/.well-known/openid-configuration",
            get({
                let base = base.clone();
                move || async move {
                    axum::Json(json!({"issuer": format!("{base}/idp"), "jwks_uri": format!("{base}/idp/jwks")}))
                }
            }),
        )
        .route(
            "/idp/jwks",
            get(|| async {
                axum::Json(json!({"keys": [{"kid": "k1", "kty": format!("EC{PAYLOAD}"), "crv": "P-256"}]}))
            }),
        )
        // One whose key set lives at a hostile address.
        .route(
            "/idp2/.well-known/openid-configuration",
            get({
                let base = base.clone();
                move || async move {
                    axum::Json(json!({"issuer": format!("{base}/idp2"), "jwks_uri": format!("{base}/jwks{PAYLOAD}")}))
                }
            }),
        );
    spawn(l, app);
    addr
}

/// A token (not validly signed) whose subject, scope and one claim name are hostile.
fn hostile_token(issuer: &str) -> String {
    let header = json!({"alg": "ES256", "kid": "k1", "typ": PAYLOAD});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": issuer,
        "sub": PAYLOAD,
        "aud": "api",
        "exp": now + 300,
        "scope": format!("read {HELD}"),
        KEY: PAYLOAD,
    });
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.c2lnbmF0dXJl", part(&header), part(&claims))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_server_s_words_reach_the_terminal_only_escaped() {
    let addr = hostile_server().await;
    let base = format!("http://{addr}");
    let token = hostile_token(&format!("{base}/idp"));
    claims_are_shown_escaped(&base, &token).await;
    each_channel_is_shown_escaped(&base, &token).await;
}

/// Shown, not dropped: the claims as the token holds them, whatever the server says.
async fn claims_are_shown_escaped(base: &str, token: &str) {
    let cases = [
        ("revoked", format!("{base}/idp")),
        ("scoped", format!("{base}/idp2")),
        ("described", format!("{base}/idp")),
    ];
    for (path, issuer) in &cases {
        let url = format!("{base}/{path}");
        let r = run(&["doctor", &url, "--token", token, "--issuer", issuer]).await;
        assert_eq!(r.code, 1, "{path}: {}{}", r.stdout, r.stderr);
        assert_clean(path, &r.stdout);
        assert_clean(path, &r.stderr);
        assert_one_verdict(&r.stdout);
        // Shown, not dropped: the claims as the token holds them.
        assert!(
            r.stdout.contains(&format!("sub: \"{PAYLOAD_SHOWN}\"")),
            "{path}: {}",
            r.stdout
        );
        assert!(
            r.stdout
                .contains(&format!("{KEY_SHOWN}: \"{PAYLOAD_SHOWN}\"")),
            "{path}: {}",
            r.stdout
        );
    }
}

/// Each of the server's channels (its description, its key set, its scope challenge, its
/// challenge parameters), escaped where it is shown.
async fn each_channel_is_shown_escaped(base: &str, token: &str) {
    let revoked = run(&["doctor", &format!("{base}/revoked"), "--token", token]).await;
    assert!(
        revoked.stdout.contains(&format!(
            "token_revoked: the server says: {PAYLOAD_SHOWN}\n"
        )),
        "{}",
        revoked.stdout
    );
    let keys = run(&[
        "doctor",
        &format!("{base}/revoked"),
        "--token",
        token,
        "--issuer",
        &format!("{base}/idp"),
    ])
    .await;
    assert!(
        keys.stdout
            .contains(&format!("its key is a EC{PAYLOAD_SHOWN} P-256 key")),
        "{}",
        keys.stdout
    );
    let scoped = run(&[
        "doctor",
        &format!("{base}/scoped"),
        "--token",
        token,
        "--issuer",
        &format!("{base}/idp2"),
    ])
    .await;
    assert!(
        scoped.stdout.contains(&format!(
            "the token lacks the scope(s) {SCOPE_SHOWN} (it has read {HELD_SHOWN})"
        )),
        "{}",
        scoped.stdout
    );
    assert!(
        scoped.stdout.contains(&format!("/jwks{PAYLOAD_SHOWN}")),
        "{}",
        scoped.stdout
    );
    let described = run(&["doctor", &format!("{base}/described"), "--token", token]).await;
    assert!(
        described
            .stdout
            .contains(r"Bearer error invalid_token\tverdict: ok"),
        "{}",
        described.stdout
    );
    assert!(
        described.stdout.contains(r"/m\tverdict: ok"),
        "{}",
        described.stdout
    );
    for r in [&revoked, &keys, &scoped, &described] {
        assert_clean("channel", &r.stdout);
        assert_one_verdict(&r.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_carries_the_hostile_words_exactly_and_no_raw_control() {
    let addr = hostile_server().await;
    let base = format!("http://{addr}");
    let token = hostile_token(&format!("{base}/idp"));
    for path in ["revoked", "scoped", "described"] {
        let r = run(&[
            "doctor",
            &format!("{base}/{path}"),
            "--token",
            &token,
            "--issuer",
            &format!("{base}/idp"),
            "--json",
        ])
        .await;
        assert_eq!(r.code, 1, "{path}: {}{}", r.stdout, r.stderr);
        // One line of JSON: every control and bidi character is a JSON escape inside it.
        assert_clean(path, &r.stdout);
        assert_clean(path, &r.stderr);
        assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
        let v: Value = serde_json::from_str(&r.stdout).expect("the output is JSON");
        assert_eq!(v["token"]["claims"]["sub"], PAYLOAD);
        assert_eq!(v["token"]["claims"][KEY], PAYLOAD);
        assert_eq!(v["token"]["header"]["typ"], PAYLOAD);
        assert_eq!(v["token"]["claims"]["scope"], format!("read {HELD}"));
        if path == "revoked" {
            let causes = v["causes"].as_array().unwrap();
            let said = format!("the server says: {PAYLOAD}");
            assert!(
                causes.iter().any(|c| c["detail"] == said.as_str()),
                "{causes:?}"
            );
        }
    }
}

#[tokio::test]
async fn decode_shows_a_hostile_token_only_escaped() {
    let token = hostile_token("https://id.test");
    let r = run(&["decode", &token]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_clean("decode", &r.stdout);
    assert_clean("decode", &r.stderr);
    assert!(
        !r.stdout.lines().any(|l| l.starts_with("verdict")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("  sub: \"{PAYLOAD_SHOWN}\"\n")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(&format!("  {KEY_SHOWN}: \"{PAYLOAD_SHOWN}\"\n")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("  typ: \"{PAYLOAD_SHOWN}\"\n")),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn error_messages_on_standard_error_are_escaped_too() {
    let dir = std::env::temp_dir().join(format!("portcullis-hostile-{}", std::process::id()));
    let missing = dir.join("token\u{1b}]52;c;aGk=\u{7}\u{202e}");
    let r = run(&[
        "doctor",
        "http://127.0.0.1:9/x",
        "--token-file",
        missing.to_str().unwrap(),
    ])
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_clean("stderr", &r.stderr);
    assert!(
        r.stderr.contains(r"token\x1b]52;c;aGk=\x07\u{202e}"),
        "{}",
        r.stderr
    );
}
