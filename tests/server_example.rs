//! The server example's command-line contract: the first stdout line names the real address,
//! `--jwks-url` switches to another provider's keys, bad flags exit 2, SIGTERM stops it cleanly.

mod support;

use std::process::Stdio;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use portcullis::testkit::{TestIssuer, TokenEndpoint};
use std::sync::Arc;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn exe() -> std::path::PathBuf {
    let here = std::env::current_exe().unwrap();
    here.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("server")
}

async fn start(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(exe())
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the server example is built by cargo test");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line}"))
        .to_owned();
    (child, url)
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
    let provider = TokenEndpoint::new(outside.clone(), "outside-api", "x", "y");
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
    let r = send(
        &client(),
        req_to(a, "/api/admin")
            .header("authorization", format!("Bearer {t}"))
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["sub"], "zoe");
    // The embedded provider's own tokens are not accepted in this mode.
    let wrong_aud = outside.mint(
        Algorithm::RS256,
        outside.access_claims("zoe", "demo-api", "", 60),
    );
    let r = send(
        &client(),
        req_to(a, "/api/me")
            .header("authorization", format!("Bearer {wrong_aud}"))
            .body(empty())
            .unwrap(),
    )
    .await;
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
        let out = std::process::Command::new(exe())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}
