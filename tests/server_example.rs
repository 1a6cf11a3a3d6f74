//! The server example's command-line contract: the first stdout line names the real address,
//! `--jwks-url` switches to another provider's keys, bad flags exit 2, SIGTERM stops it cleanly.

mod support;

use std::process::Stdio;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use portcullis::testkit::{TestIssuer, TestTokenEndpoint};
use std::sync::Arc;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

async fn start(args: &[&str]) -> (Child, String) {
    let args: Vec<&str> = ["--listen", "127.0.0.1:0"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    start_example("server", &args).await
}

fn addr(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

#[tokio::test]
async fn first_line_has_the_real_port_and_sigterm_stops_it() {
    let (mut child, url) = start(&[
        "--allow-origin",
        "http://localhost:3000",
        "--access-ttl",
        "30",
    ])
    .await;
    let a = addr(&url);
    assert_ne!(a.port(), 0);
    let c = client();
    assert_eq!(
        send(&c, req_to(a, "/public").body(empty()).unwrap())
            .await
            .status,
        200
    );
    send(&c, req_to(a, "/api/me").body(empty()).unwrap())
        .await
        .assert_problem(401, "missing_credentials");
    let discovery = send(
        &c,
        req_to(a, "/.well-known/openid-configuration")
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!(discovery.json()["issuer"], url);
    let pid = child.id().unwrap() as i32;
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn jwks_url_verifies_another_providers_tokens() {
    let outside = Arc::new(TestIssuer::new("https://outside.test"));
    let provider = TestTokenEndpoint::new(outside.clone(), "outside-api", "x", "y");
    let p = serve(provider.router()).await;
    let jwks = format!("http://{p}/.well-known/jwks.json");
    let (_child, url) = start(&[
        "--jwks-url",
        &jwks,
        "--issuer",
        "https://outside.test",
        "--audience",
        "outside-api",
    ])
    .await;
    let a = addr(&url);
    let mut claims = outside.access_claims("zoe", "outside-api", "", 60);
    claims.as_object_mut().unwrap().remove("scope");
    claims["scp"] = serde_json::json!(["admin"]);
    let t = outside.mint(Algorithm::RS256, claims);
    let r = send(&client(), bearer_req(a, "/api/admin", &t)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["sub"], "zoe");
    // The embedded provider's own tokens are not accepted in this mode.
    let wrong_aud = outside.mint(
        Algorithm::RS256,
        outside.access_claims("zoe", "demo-api", "", 60),
    );
    let r = send(&client(), bearer_req(a, "/api/me", &wrong_aud)).await;
    r.assert_problem(401, "invalid_audience");
}

#[tokio::test]
async fn bad_arguments_exit_2_with_usage() {
    for args in [
        &["--bogus"][..],
        &["--access-ttl", "soon"],
        &["--jwks-url", "http://x/jwks"],
        // Keys over plain http are refused unless the provider is on loopback.
        &[
            "--jwks-url",
            "http://id.example/jwks",
            "--issuer",
            "https://id.example",
            "--audience",
            "api",
        ],
        &["--allow-origin", "*"],
    ] {
        let out = std::process::Command::new(example_bin("server"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

fn token_request(
    a: std::net::SocketAddr,
    basic: Option<&str>,
    form: &str,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    use base64::Engine;
    let mut req = http::Request::post(format!("http://{a}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(pair) = basic {
        let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
        req = req.header("authorization", format!("Basic {b64}"));
    }
    req.body(http_body_util::Full::from(form.to_owned()))
        .unwrap()
}

/// People copy examples: the embedded provider must not hand out tokens to a client that does
/// not authenticate, nor scopes the client was not registered for.
#[tokio::test]
async fn the_example_provider_wants_the_secret_and_grants_registered_scopes_only() {
    let (_child, url) = start(&[]).await;
    let a = addr(&url);
    let c = client();
    let code = |r: &Reply| r.json()["error"].as_str().unwrap_or_default().to_owned();
    let r = send(
        &c,
        token_request(
            a,
            None,
            "grant_type=client_credentials&client_id=demo&scope=admin",
        ),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), code(&r)),
        (401, "invalid_client".into())
    );
    let r = send(
        &c,
        token_request(a, Some("demo:wrong"), "grant_type=client_credentials"),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), code(&r)),
        (401, "invalid_client".into())
    );
    let r = send(
        &c,
        token_request(
            a,
            Some("demo:demo-secret"),
            "grant_type=client_credentials&scope=read+admin",
        ),
    )
    .await;
    assert_eq!((r.status.as_u16(), code(&r)), (400, "invalid_scope".into()));
    let r = send(
        &c,
        token_request(
            a,
            Some("demo:demo-secret"),
            "grant_type=client_credentials&scope=read+write",
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["scope"], "read write");
    let login = |scope: &str| {
        http::Request::post(format!("http://{a}/session/login"))
            .header("content-type", "application/json")
            .body(http_body_util::Full::from(
                serde_json::json!({"username": "alice", "password": "demo", "scope": scope})
                    .to_string(),
            ))
            .unwrap()
    };
    let r = send(&c, login("read admin")).await;
    assert_eq!((r.status.as_u16(), code(&r)), (400, "invalid_scope".into()));
    assert!(
        r.headers.get("set-cookie").is_none(),
        "no session for a refused login"
    );
    assert_eq!(send(&c, login("read")).await.status, 200);
}

/// Listening where other machines can reach it, the example says loudly that it is a demo.
#[tokio::test]
async fn a_non_loopback_listen_address_prints_a_warning() {
    // The first stderr line once the address is printed (the warning comes before it).
    async fn warning(listen: &str) -> String {
        let mut child = Command::new(example_bin("server"))
            .args(["--listen", listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let listening = tokio::time::timeout(Duration::from_secs(20), out.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(listening.starts_with("listening on "), "{listening}");
        child.kill().await.unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
        err.next_line().await.unwrap().unwrap_or_default()
    }
    let w = warning("0.0.0.0:0").await;
    assert!(w.starts_with("WARNING: listening on 0.0.0.0:"), "{w}");
    assert_eq!(warning("127.0.0.1:0").await, "", "quiet on loopback");
}

/// Signs in as `user` at the example's `/session/login`; returns the session cookie's value
/// and the CSRF token the sign-in handed out.
async fn sign_in(c: &LoopbackClient, a: std::net::SocketAddr, user: &str) -> (String, String) {
    let req = http::Request::post(format!("http://{a}/session/login"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::from(
            serde_json::json!({"username": user, "password": "demo"}).to_string(),
        ))
        .unwrap();
    let r = send(c, req).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let session = r
        .headers
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            v.to_str()
                .unwrap()
                .strip_prefix("access_token=")
                .map(|s| s.split(';').next().unwrap().to_owned())
        })
        .expect("a session cookie");
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_owned();
    (session, csrf)
}

/// The CSRF token is bound to the session it was minted for. A sibling subdomain (or a
/// plain-http man in the middle) can plant a `csrf_token` cookie of its choosing for the
/// whole site, and a request can then carry that cookie and a matching header next to the
/// victim's real session cookie, from a trusted page or from a client that sends no `Origin`
/// at all: the pair proves nothing about the session, so it must be refused. So must the
/// token of another session (the attacker's own sign-in).
#[tokio::test]
async fn a_planted_csrf_pair_next_to_a_valid_session_is_403_csrf_failed() {
    const APP: &str = "http://localhost:3000";
    let (_child, url) = start(&["--allow-origin", APP]).await;
    let a = addr(&url);
    let c = client();
    let (alice, alice_csrf) = sign_in(&c, a, "alice").await;
    let (_, mallory_csrf) = sign_in(&c, a, "mallory").await;
    let echo = |cookie_csrf: &str, header: &str, from_app: bool| {
        let mut req = http::Request::post(format!("http://{a}/api/echo"))
            .header("content-type", "text/plain")
            .header(
                "cookie",
                format!("access_token={alice}; csrf_token={cookie_csrf}"),
            )
            .header("x-csrf-token", header);
        if from_app {
            req = req
                .header("origin", APP)
                .header("sec-fetch-site", "same-site");
        }
        req.body(http_body_util::Full::from("hello")).unwrap()
    };
    for from_app in [true, false] {
        send(&c, echo("planted", "planted", from_app))
            .await
            .assert_problem(403, "csrf_failed");
        send(&c, echo(&mallory_csrf, &mallory_csrf, from_app))
            .await
            .assert_problem(403, "csrf_failed");
        let r = send(&c, echo(&alice_csrf, &alice_csrf, from_app)).await;
        assert_eq!(
            (r.status.as_u16(), &r.body[..]),
            (200, &b"hello"[..]),
            "the token minted for alice's session, from_app {from_app}"
        );
    }
}

/// `--csrf-key-env` names the variable holding the CSRF key (base64, at least 32 bytes): the
/// tokens are minted with it, and a key that cannot be used stops the server (exit 2) without
/// printing the variable's value.
#[tokio::test]
async fn the_csrf_key_comes_from_the_variable_csrf_key_env_names() {
    use base64::Engine;
    let secret = b"a csrf key from the environment, 32+ bytes";
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let (_child, url) = start_example_with_env(
        "server",
        &["--listen", "127.0.0.1:0", "--csrf-key-env", "DEMO_CSRF_KEY"],
        &[("DEMO_CSRF_KEY", &b64)],
    )
    .await;
    let a = addr(&url);
    let c = client();
    let (session, token) = sign_in(&c, a, "alice").await;
    let key = portcullis::server::CsrfKey::new(secret).unwrap();
    assert_eq!(token, key.mint(&session));
    let post = http::Request::post(format!("http://{a}/api/echo"))
        .header("cookie", format!("access_token={session}"))
        .header("x-csrf-token", &token)
        .body(http_body_util::Full::from("hi"))
        .unwrap();
    assert_eq!(send(&c, post).await.status, 200);

    let short = base64::engine::general_purpose::STANDARD.encode("only-sixteen-byt");
    for value in [Some(short.as_str()), Some("not base64!"), None] {
        let mut cmd = std::process::Command::new(example_bin("server"));
        cmd.args(["--listen", "127.0.0.1:0", "--csrf-key-env", "DEMO_CSRF_KEY"]);
        match value {
            Some(v) => cmd.env("DEMO_CSRF_KEY", v),
            None => cmd.env_remove("DEMO_CSRF_KEY"),
        };
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{value:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--csrf-key-env"), "{err}");
        if let Some(v) = value {
            assert!(!err.contains(v), "{err}");
        }
    }
}
