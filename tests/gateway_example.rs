//! The gateway example over real HTTP: callers are authenticated by the auth layer, and the
//! upstream sees only the gateway's own credential (refresh layer), never the caller's.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn gateway_authenticates_callers_and_calls_upstream_with_its_own_credential() {
    let mut child = Command::new(example_bin("gateway"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway example is built by cargo test");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    let gateway: std::net::SocketAddr = next()
        .await
        .strip_prefix("listening on http://")
        .unwrap()
        .parse()
        .unwrap();
    let upstream: std::net::SocketAddr = next()
        .await
        .strip_prefix("upstream (API and identity provider) on http://")
        .unwrap()
        .parse()
        .unwrap();
    let c = client();

    // alice signs in at the identity provider; her token is in the session cookie.
    let login = http::Request::post(format!("http://{upstream}/session/login"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            br#"{"username":"alice","password":"demo"}"#,
        )))
        .unwrap();
    let r = send(&c, login).await;
    let token = r
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

    send(&c, req_to(gateway, "/api/me").body(empty()).unwrap())
        .await
        .assert_problem(401, "missing_credentials");
    let r = send(&c, bearer_req(gateway, "/api/me", &token)).await;
    assert_eq!(r.status, 200);
    // The upstream saw the gateway's client_credentials token (subject "demo"), not alice's.
    assert_eq!(r.json()["sub"], "demo");
    let r = send(
        &c,
        req_to(gateway, "/api/me")
            .header("authorization", "Bearer not.a.token")
            .body(empty())
            .unwrap(),
    )
    .await;
    r.assert_problem(401, "token_malformed");
    assert_eq!(r.challenge("Bearer").param("realm"), Some("gateway"));
}
