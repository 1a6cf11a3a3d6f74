//! The servers the doctor is run against (the demo server, a Portcullis resource server),
//! running the doctor itself, and the one loop that checks a table of situations.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use portcullis::server::jwt::{JwksKeySource, JwtAuthenticator};
use portcullis::server::{AuthLayer, ProtectedResource};
use portcullis::testkit::TestIssuer;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::demo_app::{self, AUDIENCE, DemoApi, DemoConfig};

/// The origin of the browser page the CORS situations are judged for.
pub(crate) const APP: &str = "http://app.test";

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_portcullis")
}

pub(crate) async fn bind() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

pub(crate) fn spawn(listener: TcpListener, app: Router) {
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// The demo server, its provider embedded, CORS for `APP`.
pub(crate) async fn demo() -> (SocketAddr, DemoApi) {
    let (l, addr) = bind().await;
    let api = DemoApi::new(config(addr)).unwrap();
    spawn(l, api.router());
    (addr, api)
}

pub(crate) fn config(addr: SocketAddr) -> DemoConfig {
    DemoConfig {
        issuer: format!("http://{addr}"),
        access_ttl: Duration::from_secs(300),
        allow_origins: vec![APP.to_owned()],
        secure_cookies: false,
        shared_revocations: None,
        csrf_key: demo_app::demo_csrf_key(),
    }
}

/// The demo server in `--jwks-url` mode.
pub(crate) async fn demo_with_jwks(jwks_url: &str, issuer: &str) -> SocketAddr {
    let (l, addr) = bind().await;
    let keys = JwksKeySource::builder(jwks_url)
        .allow_http(true)
        .build()
        .unwrap();
    let api = DemoApi::with_keys(config(addr), keys, issuer, AUDIENCE).unwrap();
    spawn(l, api.router());
    addr
}

/// The claims `/tenant` reads: tokens of the demo's provider carry no `tenant`.
#[derive(Clone, serde::Deserialize)]
struct TenantClaims {
    #[allow(dead_code)]
    tenant: String,
}

/// A Portcullis resource server that publishes RFC 9728 metadata (resource `/mcp`, issuer the
/// demo's provider) and takes only tokens whose audience is that resource; its `/tenant`
/// reads a `tenant` claim the provider's tokens do not carry (`invalid_claims`).
pub(crate) async fn resource_server(issuer: &TestIssuer) -> SocketAddr {
    let (l, addr) = bind().await;
    let resource = format!("http://{addr}/mcp");
    let jwt = || {
        issuer.verification_keys().into_iter().fold(
            JwtAuthenticator::builder()
                .issuer(issuer.issuer())
                .audience(resource.clone()),
            |b, k| b.key(k),
        )
    };
    let tenant = AuthLayer::builder()
        .realm("mcp")
        .bearer(jwt().claims::<TenantClaims>().build().unwrap())
        .claims::<TenantClaims>()
        .build()
        .unwrap();
    let jwt = jwt().build().unwrap();
    let layer = AuthLayer::builder()
        .realm("mcp")
        .bearer(jwt)
        .resource_metadata(ProtectedResource::new(resource).authorization_server(issuer.issuer()))
        .build()
        .unwrap();
    spawn(
        l,
        // `/tenant` behind both layers: the outer one (which also serves the metadata for
        // every path) lets the token through, the route's own refuses its claims.
        Router::new()
            .route("/tenant", any(|| async { "ok" }))
            .route_layer(tenant)
            .route("/mcp", any(|| async { "ok" }))
            .layer(layer),
    );
    addr
}

/// One situation: the doctor's arguments and what it must say.
pub(crate) struct Case {
    /// What is set up wrong (or right).
    pub name: &'static str,
    /// The doctor's arguments after `doctor`.
    pub args: Vec<String>,
    /// The verdict (`ok` exits 0, any other 1).
    pub verdict: &'static str,
    /// Every cause expected, in order.
    pub causes: &'static [&'static str],
    /// Words a cause's detail must contain (the missing scope, a kid, …).
    pub detail_has: &'static [&'static str],
    /// Words the text output (for people) must contain.
    pub output_has: &'static [&'static str],
}

/// A situation with no words required beyond its causes.
pub(crate) fn case(
    name: &'static str,
    verdict: &'static str,
    causes: &'static [&'static str],
    args: &[&str],
) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        verdict,
        causes,
        detail_has: &[],
        output_has: &[],
    }
}

impl Case {
    pub(crate) fn detail_has(mut self, words: &'static [&'static str]) -> Self {
        self.detail_has = words;
        self
    }

    pub(crate) fn output_has(mut self, words: &'static [&'static str]) -> Self {
        self.output_has = words;
        self
    }
}

/// What one run of the binary printed, and its exit code.
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run the binary with `args`.
pub(crate) async fn run(args: &[impl AsRef<std::ffi::OsStr>]) -> Run {
    let out = tokio::process::Command::new(bin())
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("the doctor ends by itself")
        .expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        // Lossy is safe for the hostile-output oracle: a replacement character is not
        // forbidden, and a raw control byte stays what it was.
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run every situation of `cases` (as text for people, then as JSON) and fail with every one
/// that went wrong: a verdict, cause list or exit code other than expected, a missing word, a
/// cause without detail or fix, or one of `secrets` in the output.
pub(crate) async fn check(cases: &[Case], secrets: &[&str]) {
    let mut wrong = Vec::new();
    for c in cases {
        let mut args = vec!["doctor".to_owned()];
        args.extend(c.args.iter().cloned());
        let text = run(&args).await;
        check_text(c, &text, &mut wrong);
        args.push("--json".into());
        let r = run(&args).await;
        let Ok(v) = serde_json::from_str::<Value>(&r.stdout) else {
            wrong.push(format!("{}: not JSON: {} {}", c.name, r.stdout, r.stderr));
            continue;
        };
        check_json(c, &v, r.code, &text, &mut wrong);
        for s in secrets {
            let sig = s.rsplit_once('.').map_or(*s, |(_, sig)| sig);
            if [&r.stdout, &r.stderr, &text.stdout, &text.stderr]
                .iter()
                .any(|o| o.contains(sig))
            {
                wrong.push(format!("{}: the output holds a token", c.name));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} situations went wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n\n")
    );
}

/// For people: the verdict first, then every cause by id with a fix, in the same order.
fn check_text(c: &Case, text: &Run, wrong: &mut Vec<String>) {
    let mut expected_lines = vec![format!("verdict: {}", c.verdict)];
    for (i, id) in c.causes.iter().enumerate() {
        expected_lines.push(format!("{}. {id}: ", i + 1));
    }
    let mut at = 0;
    for line in &expected_lines {
        match text.stdout[at..].find(line.as_str()) {
            Some(i) => at += i + line.len(),
            None => {
                wrong.push(format!(
                    "{}: the text lacks {line:?} in order:\n{}",
                    c.name, text.stdout
                ));
                break;
            }
        }
    }
    if text.stdout.matches("   fix: ").count() != c.causes.len() {
        wrong.push(format!(
            "{}: not one fix per cause:\n{}",
            c.name, text.stdout
        ));
    }
}

/// For programs: the verdict, the causes in order, the exit code, the words asked for, and
/// a detail and a fix for every cause.
fn check_json(c: &Case, v: &Value, code: i32, text: &Run, wrong: &mut Vec<String>) {
    let causes: Vec<&str> = v["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let expected_code = if c.verdict == "ok" { 0 } else { 1 };
    let details = v["causes"].to_string();
    if v["verdict"] != c.verdict || causes != c.causes || code != expected_code {
        wrong.push(format!(
            "{}: verdict {} causes {causes:?} exit {code} (expected {} {:?}): {v:#}",
            c.name, v["verdict"], c.verdict, c.causes
        ));
    } else if let Some(w) = c.detail_has.iter().find(|w| !details.contains(*w)) {
        wrong.push(format!(
            "{}: the causes do not say {w:?}: {details}",
            c.name
        ));
    } else if let Some(w) = c.output_has.iter().find(|w| !text.stdout.contains(*w)) {
        wrong.push(format!(
            "{}: the output does not say {w:?}: {}",
            c.name, text.stdout
        ));
    }
    for cause in v["causes"].as_array().unwrap() {
        if cause["fix"].as_str().is_none_or(str::is_empty)
            || cause["detail"].as_str().is_none_or(str::is_empty)
        {
            wrong.push(format!(
                "{}: a cause without detail or fix: {cause}",
                c.name
            ));
        }
    }
}
