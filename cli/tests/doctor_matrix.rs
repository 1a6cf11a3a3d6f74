//! `portcullis doctor` against real servers on loopback: the demo server (embedded provider,
//! and `--jwks-url` mode with a key set served here), and a small API that is not Portcullis
//! and is set up wrong the ways APIs commonly are. Each situation has its expected verdict and
//! causes; every cause id is produced by at least one of them.

use portcullis_examples_support::demo_app;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Response};
use axum::routing::{any, get};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use demo_app::{AUDIENCE, DemoApi, DemoConfig};
use jsonwebtoken::{Algorithm, Header};
use portcullis::server::jwt::{JwksConfig, JwksKeySource, JwtAuthenticator};
use portcullis::server::{AuthLayer, ProtectedResource};
use portcullis::testkit::{TestIssuer, now};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const APP: &str = "http://app.test";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_portcullis")
}

async fn bind() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

fn spawn(listener: TcpListener, app: Router) {
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// The demo server, its provider embedded, CORS for `APP`.
async fn demo() -> (SocketAddr, DemoApi) {
    let (l, addr) = bind().await;
    let api = DemoApi::new(config(addr)).unwrap();
    spawn(l, api.router());
    (addr, api)
}

fn config(addr: SocketAddr) -> DemoConfig {
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
async fn demo_with_jwks(jwks_url: &str, issuer: &str) -> SocketAddr {
    let (l, addr) = bind().await;
    let keys = JwksKeySource::builder()
        .config(JwksConfig::default().allow_http(true))
        .build(jwks_url)
        .unwrap();
    let api = DemoApi::with_keys(config(addr), keys, issuer, AUDIENCE).unwrap();
    spawn(l, api.router());
    addr
}

/// A Portcullis resource server that publishes RFC 9728 metadata (resource `/mcp`, issuer the
/// demo's provider) and takes only tokens whose audience is that resource.
async fn resource_server(issuer: &TestIssuer) -> SocketAddr {
    let (l, addr) = bind().await;
    let resource = format!("http://{addr}/mcp");
    let jwt = issuer
        .verification_keys()
        .into_iter()
        .fold(
            JwtAuthenticator::builder()
                .issuer(issuer.issuer())
                .audience(resource.clone()),
            |b, k| b.key(k),
        )
        .build()
        .unwrap();
    let layer = AuthLayer::builder()
        .realm("mcp")
        .bearer(jwt)
        .resource_metadata(ProtectedResource::new(resource).authorization_server(issuer.issuer()))
        .build()
        .unwrap();
    spawn(
        l,
        Router::new()
            .route("/mcp", any(|| async { "ok" }))
            .layer(layer),
    );
    addr
}

/// An identity provider's metadata and key set under `prefix`: the keys of `issuer`, with
/// every `kid` renamed when `rotated` (the token's key is gone), or a 500 when `broken`.
fn idp_routes(prefix: &str, issuer: Arc<TestIssuer>, rotated: bool, broken: bool) -> Router {
    let base = issuer.issuer().to_owned();
    let meta = json!({"issuer": base, "jwks_uri": format!("{base}/jwks")});
    let mut jwks = serde_json::to_value(issuer.jwks()).unwrap();
    if rotated {
        for k in jwks["keys"].as_array_mut().unwrap() {
            let kid = k["kid"].as_str().unwrap().to_owned();
            k["kid"] = json!(format!("{kid}-2027"));
        }
    }
    Router::new()
        .route(
            &format!("{prefix}/.well-known/openid-configuration"),
            get(move || {
                let m = meta.clone();
                async move { axum::Json(m) }
            }),
        )
        .route(
            &format!("{prefix}/jwks"),
            get(move || {
                let j = jwks.clone();
                async move {
                    if broken {
                        Response::builder()
                            .status(500)
                            .body(Body::from("down"))
                            .unwrap()
                    } else {
                        axum::Json(j).into_response()
                    }
                }
            }),
        )
}

use axum::response::IntoResponse;

fn reply(status: u16, headers: &[(&str, String)]) -> Response<Body> {
    let mut r = Response::builder().status(status);
    for (n, v) in headers {
        r = r.header(*n, v);
    }
    r.body(Body::empty()).unwrap()
}

fn exp_of(headers: &HeaderMap) -> Option<i64> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let payload = auth.strip_prefix("Bearer ")?.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["exp"].as_i64()
}

/// An API that is not Portcullis, set up wrong in the common ways, with its own identity
/// providers (`/idp`, and `/old-idp` whose key set rotated the token's key away).
async fn legacy() -> (
    SocketAddr,
    Arc<TestIssuer>,
    Arc<TestIssuer>,
    Arc<TestIssuer>,
) {
    let (l, addr) = bind().await;
    let idp = Arc::new(TestIssuer::new(format!("http://{addr}/idp")));
    let old = Arc::new(TestIssuer::new(format!("http://{addr}/old-idp")));
    let down = Arc::new(TestIssuer::new(format!("http://{addr}/down-idp")));
    let base = format!("http://{addr}");
    let app = Router::new()
        // A plain 401: no challenge, no body.
        .route("/plain", any(|| async { reply(401, &[]) }))
        .route("/boom", any(|| async { reply(500, &[]) }))
        .route("/forbidden", any(|| async { reply(403, &[]) }))
        .route(
            "/scoped",
            any(|| async {
                reply(403, &[("www-authenticate", r#"Bearer realm="legacy", error="insufficient_scope", scope="orders:write""#.into())])
            }),
        )
        .route(
            "/revoked",
            any(|| async {
                reply(401, &[("www-authenticate", r#"Bearer error="invalid_token", error_description="token revoked""#.into())])
            }),
        )
        // Its clock runs two hours ahead, and it judges `exp` by it.
        .route(
            "/skewed",
            any(|headers: HeaderMap| async move {
                let its_now = now() + 7_200;
                let date = httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(its_now));
                match exp_of(&headers) {
                    Some(exp) if exp > its_now as i64 => reply(200, &[("date", date)]),
                    _ => reply(401, &[("date", date), ("www-authenticate", r#"Bearer error="invalid_token""#.into())]),
                }
            }),
        )
        // CORS that authenticates the preflight.
        .route(
            "/preflight-challenged",
            any(|method: Method| async move {
                if method == Method::OPTIONS {
                    reply(401, &[("www-authenticate", r#"Bearer realm="legacy""#.into())])
                } else {
                    reply(200, &[("access-control-allow-origin", APP.into())])
                }
            }),
        )
        // CORS that lets the page read the status but not the challenge.
        .route(
            "/unexposed",
            any(|method: Method, headers: HeaderMap| async move {
                let cors = [
                    ("access-control-allow-origin", APP.to_owned()),
                    ("access-control-allow-headers", "authorization".to_owned()),
                ];
                if method == Method::OPTIONS {
                    return reply(204, &cors);
                }
                match exp_of(&headers) {
                    Some(exp) if exp > now() as i64 => reply(200, &cors),
                    _ => {
                        let mut h = cors.to_vec();
                        h.push(("www-authenticate", r#"Bearer error="invalid_token", error_description="The access token expired""#.into()));
                        reply(401, &h)
                    }
                }
            }),
        )
        // Sign-in redirects instead of 401 (oauth2-proxy, session middlewares).
        .route(
            "/behind-proxy",
            any(|| async { reply(302, &[("location", "/oauth2/start?rd=%2Fbehind-proxy".into())]) }),
        )
        // Only Basic is asked for.
        .route("/basic-only", any(|| async { reply(401, &[("www-authenticate", r#"Basic realm="legacy""#.into())]) }))
        // CORS headers on successes only: the refusal is written before CORS runs.
        .route(
            "/cors-on-success-only",
            any(|method: Method, headers: HeaderMap| async move {
                let cors = [
                    ("access-control-allow-origin", APP.to_owned()),
                    ("access-control-allow-headers", "authorization".to_owned()),
                ];
                if method == Method::OPTIONS {
                    return reply(204, &cors);
                }
                match exp_of(&headers) {
                    Some(exp) if exp > now() as i64 => reply(200, &cors),
                    _ => reply(401, &[("www-authenticate", r#"Bearer error="invalid_token""#.into())]),
                }
            }),
        )
        // A careless server that repeats the credential it was sent.
        .route(
            "/echo",
            any(|headers: HeaderMap| async move {
                let sent = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                reply(401, &[("www-authenticate", format!(r#"Bearer error="invalid_token", error_description="bad token {sent}""#))])
            }),
        )
        // Any origin, with credentials: browsers refuse the combination.
        .route(
            "/star",
            any(|| async {
                reply(200, &[("access-control-allow-origin", "*".into()), ("access-control-allow-credentials", "true".into())])
            }),
        )
        // An RFC 9728 resource: its metadata names the resource and the issuer it trusts.
        .route(
            "/rs",
            any(move || {
                let meta = format!(r#"Bearer error="invalid_token", resource_metadata="http://{addr}/.well-known/oauth-protected-resource/rs""#);
                async move { reply(401, &[("www-authenticate", meta)]) }
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/rs",
            get(move || {
                let doc = json!({"resource": format!("{base}/rs"), "authorization_servers": [format!("{base}/idp")]});
                async move { axum::Json(doc) }
            }),
        )
        .merge(idp_routes("/idp", idp.clone(), false, false))
        .merge(idp_routes("/old-idp", old.clone(), true, false))
        .merge(idp_routes("/down-idp", down.clone(), false, true));
    spawn(l, app);
    (addr, idp, old, down)
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    verdict: &'static str,
    /// Every cause expected, in order.
    causes: &'static [&'static str],
    /// Words a cause's detail must contain (the missing scope, a kid, …).
    detail_has: &'static [&'static str],
    /// Words the text output (for people) must contain.
    output_has: &'static [&'static str],
}

fn case(
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
    fn detail_has(mut self, words: &'static [&'static str]) -> Self {
        self.detail_has = words;
        self
    }

    fn output_has(mut self, words: &'static [&'static str]) -> Self {
        self.output_has = words;
        self
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run(args: &[String]) -> Run {
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
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn tampered(token: &str, other: &str) -> String {
    let (head, _) = token.rsplit_once('.').unwrap();
    let (_, sig) = other.rsplit_once('.').unwrap();
    format!("{head}.{sig}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_names_the_right_cause_in_every_situation() {
    let (d, api) = demo().await;
    let (l, idp, old, down) = legacy().await;
    // The demo verifying keys from the legacy server's providers (`--jwks-url` mode).
    let rotated_api = demo_with_jwks(&format!("{}/jwks", old.issuer()), old.issuer()).await;
    let down_api = demo_with_jwks(&format!("{}/jwks", down.issuer()), down.issuer()).await;

    let rs = resource_server(&api.issuer).await;
    let url = |addr: SocketAddr, path: &str| format!("http://{addr}{path}");
    let t = &api.tokens;
    let valid = t.access_token("alice", "read write", 300);
    let read_only = t.access_token("alice", "read", 300);
    let expired = t.access_token("alice", "read", -300);
    let iss = api.issuer.clone();
    let future = iss.mint(Algorithm::ES256, {
        let mut c = iss.access_claims("alice", AUDIENCE, "read", 900);
        c["nbf"] = json!(now() + 630);
        c
    });
    let other_aud = iss.mint(
        Algorithm::ES256,
        iss.access_claims("alice", "billing-api", "read", 300),
    );
    let other_iss = iss.mint(Algorithm::ES256, {
        let mut c = iss.access_claims("alice", AUDIENCE, "read", 300);
        c["iss"] = json!(format!("http://{l}/idp"));
        c
    });
    let gone_kid = iss.mint_with_header(
        Header {
            kid: Some("retired-2025".into()),
            ..Header::new(Algorithm::ES256)
        },
        iss.access_claims("alice", AUDIENCE, "read", 300),
    );
    // HS256 with the secret, naming the published P-256 key: algorithm confusion.
    let confused = iss.mint_with_header(
        Header {
            kid: Some(iss.kid(Algorithm::ES256).into()),
            ..Header::new(Algorithm::HS256)
        },
        iss.access_claims("alice", AUDIENCE, "read", 300),
    );
    let forged = tampered(&valid, &read_only);
    let mcp = url(rs, "/mcp");
    let for_mcp = iss.mint(
        Algorithm::ES256,
        iss.access_claims("alice", &mcp, "read", 300),
    );
    let legacy_valid = idp.mint(
        Algorithm::RS256,
        idp.access_claims("bob", "legacy", "read", 1_800),
    );
    let legacy_hs = idp.mint(
        Algorithm::HS256,
        idp.access_claims("bob", "legacy", "read", 600),
    );
    let legacy_expired = idp.mint(
        Algorithm::RS256,
        idp.access_claims("bob", "legacy", "read", -600),
    );
    let legacy_other_aud = idp.mint(
        Algorithm::RS256,
        idp.access_claims("bob", "somebody-else", "read", 600),
    );
    let from_old = old.mint(
        Algorithm::ES256,
        old.access_claims("bob", AUDIENCE, "read", 600),
    );
    let from_down = down.mint(
        Algorithm::ES256,
        down.access_claims("bob", AUDIENCE, "read", 600),
    );

    let me = url(d, "/api/me");

    let cases = vec![
        case("valid token", "ok", &[], &[&me, "--token", &valid]),
        case(
            "valid token, allowed origin",
            "ok",
            &[],
            &[&me, "--token", &valid, "--origin", APP],
        ),
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
            &[&me, "-H", &format!("Authorization: Token {valid}")],
        ),
        case(
            "token without a scheme",
            "wrong_scheme",
            &["wrong_scheme"],
            &[&me, "-H", &format!("Authorization: {valid}")],
        ),
        case(
            "two spaces after Bearer (RFC 6750 allows them)",
            "ok",
            &[],
            &[&me, "-H", &format!("Authorization: Bearer  {valid}")],
        ),
        case(
            "the token in quotes",
            "malformed_header",
            &["malformed_header"],
            &[&me, "-H", &format!("Authorization: Bearer \"{valid}\"")],
        )
        .detail_has(&["quotes"]),
        case(
            "the prefix stored with the token",
            "malformed_header",
            &["malformed_header"],
            &[&me, "--token", &format!("Bearer {valid}")],
        )
        .detail_has(&["Bearer Bearer"]),
        case(
            "expired",
            "token_expired",
            &["token_expired"],
            &[&me, "--token", &expired],
        )
        .detail_has(&["ago"]),
        case(
            "not valid yet",
            "token_not_yet_valid",
            &["token_not_yet_valid"],
            &[&me, "--token", &future],
        )
        .detail_has(&["in 10 min"]),
        case(
            "another audience",
            "wrong_audience",
            &["wrong_audience"],
            &[&me, "--token", &other_aud],
        )
        .detail_has(&["billing-api"]),
        case(
            "another issuer",
            "wrong_issuer",
            &["wrong_issuer"],
            &[
                &me,
                "--token",
                &other_iss,
                "--issuer",
                &format!("http://{d}"),
            ],
        )
        .detail_has(&["/idp"]),
        case(
            "a kid the issuer does not publish",
            "unknown_key",
            &["unknown_key"],
            &[&me, "--token", &gone_kid],
        )
        .detail_has(&["retired-2025"]),
        case(
            "HS256 naming a public key",
            "algorithm_not_allowed",
            &["algorithm_not_allowed"],
            &[&me, "--token", &confused],
        ),
        case(
            "a signature from another token",
            "bad_signature",
            &["bad_signature"],
            &[&me, "--token", &forged],
        ),
        case(
            "missing scope",
            "insufficient_scope",
            &["insufficient_scope"],
            &[&url(d, "/api/admin"), "--token", &read_only],
        )
        .detail_has(&["admin"]),
        case(
            "origin not allowed",
            "cors_origin_not_allowed",
            &["cors_origin_not_allowed"],
            &[&me, "--token", &valid, "--origin", "http://evil.test"],
        ),
        case(
            "jwks-url mode, the token's key rotated away",
            "unknown_key",
            &["unknown_key"],
            &[&url(rotated_api, "/api/me"), "--token", &from_old],
        )
        .detail_has(&["p256"]),
        case(
            "jwks-url mode, the key set is down",
            "key_set_unavailable",
            &["key_set_unavailable"],
            &[&url(down_api, "/api/me"), "--token", &from_down],
        ),
        case(
            "plain 401, expired token",
            "token_expired",
            &["token_expired"],
            &[&url(l, "/plain"), "--token", &legacy_expired],
        ),
        case(
            "plain 401, key rotated away",
            "unknown_key",
            &["unknown_key"],
            &[&url(l, "/plain"), "--token", &from_old],
        ),
        case(
            "plain 401, no credentials",
            "missing_credentials",
            &["missing_credentials"],
            &[&url(l, "/plain")],
        ),
        case(
            "the server's clock is ahead",
            "clock_skew",
            &["clock_skew"],
            &[&url(l, "/skewed"), "--token", &legacy_valid],
        ),
        case(
            "a challenged preflight",
            "preflight_rejected",
            &["preflight_rejected"],
            &[
                &url(l, "/preflight-challenged"),
                "--token",
                &legacy_valid,
                "--origin",
                APP,
            ],
        ),
        case(
            "challenge not exposed",
            "token_expired",
            &["token_expired", "cors_challenge_not_exposed"],
            &[
                &url(l, "/unexposed"),
                "--token",
                &legacy_expired,
                "--origin",
                APP,
            ],
        ),
        case(
            "any origin with cookies",
            "cors_credentials_not_allowed",
            &["cors_credentials_not_allowed"],
            &[&url(l, "/star"), "--cookie", "session=abc", "--origin", APP],
        ),
        case(
            "the server asks for Basic only",
            "wrong_scheme",
            &["wrong_scheme"],
            &[&url(l, "/basic-only"), "--token", &legacy_valid],
        )
        .detail_has(&["Basic"]),
        case(
            "CORS headers on successes only",
            "cors_origin_not_allowed",
            &["cors_origin_not_allowed", "token_expired"],
            &[
                &url(l, "/cors-on-success-only"),
                "--token",
                &legacy_expired,
                "--origin",
                APP,
            ],
        )
        .detail_has(&["Network Error", "outside (before) the authentication layer"]),
        case(
            "a server that echoes the token",
            "token_revoked",
            &["token_revoked"],
            &[&url(l, "/echo"), "--token", &legacy_valid],
        )
        .output_has(&["description \"bad token Bearer [redacted]\""]),
        case(
            "an opaque token refused without a word",
            "token_revoked",
            &["token_revoked"],
            &[&url(l, "/plain"), "--token", "opaque-0123456789abcdef"],
        )
        .detail_has(&["opaque", "introspection"]),
        case(
            "the page is on the API's own origin",
            "ok",
            &[],
            &[&me, "--token", &valid, "--origin", &format!("http://{d}")],
        )
        .output_has(&["browsers apply no CORS"]),
        case(
            "Portcullis with RFC 9728 metadata, a token for it",
            "ok",
            &[],
            &[&mcp, "--token", &for_mcp],
        )
        .output_has(&["[ok  ] aud: names", "[ok  ] iss: "]),
        case(
            "Portcullis with RFC 9728 metadata, a token for another API",
            "wrong_audience",
            &["wrong_audience"],
            &[&mcp, "--token", &valid],
        )
        .detail_has(&["demo-api", "/mcp"]),
        case(
            "plain 401, an HS256 token",
            "bad_signature",
            &["bad_signature"],
            &[&url(l, "/plain"), "--token", &legacy_hs],
        )
        .detail_has(&["shared secret"]),
        case(
            "a sign-in redirect, no credentials",
            "missing_credentials",
            &["missing_credentials"],
            &[&url(l, "/behind-proxy")],
        )
        .detail_has(&["/oauth2/start", "instead of a 401"]),
        case(
            "a sign-in redirect for a bearer token",
            "wrong_scheme",
            &["wrong_scheme"],
            &[&url(l, "/behind-proxy"), "--token", &legacy_valid],
        )
        .detail_has(&["not bearer tokens"]),
        case(
            "server error",
            "server_error",
            &["server_error"],
            &[&url(l, "/boom"), "--token", &legacy_valid],
        ),
        case(
            "not found",
            "server_error",
            &["server_error"],
            &[&url(l, "/nowhere"), "--token", &legacy_valid],
        ),
        case(
            "plain 403",
            "forbidden",
            &["forbidden"],
            &[&url(l, "/forbidden"), "--token", &legacy_valid],
        ),
        case(
            "RFC 6750 scope challenge",
            "insufficient_scope",
            &["insufficient_scope"],
            &[&url(l, "/scoped"), "--token", &legacy_valid],
        )
        .detail_has(&["orders:write", "it has read"]),
        case(
            "revoked",
            "token_revoked",
            &["token_revoked"],
            &[&url(l, "/revoked"), "--token", &legacy_valid],
        ),
        case(
            "RFC 9728 metadata names the resource",
            "wrong_audience",
            &["wrong_audience"],
            &[&url(l, "/rs"), "--token", &legacy_other_aud],
        )
        .detail_has(&["somebody-else", "/rs"]),
        case(
            "a session cookie, expired",
            "token_expired",
            &["token_expired"],
            &[&me, "--cookie", &format!("access_token={expired}")],
        ),
    ];

    let mut produced = BTreeSet::new();
    let mut wrong = Vec::new();
    let secrets = [
        &valid,
        &read_only,
        &expired,
        &future,
        &other_aud,
        &other_iss,
        &gone_kid,
        &confused,
        &forged,
        &legacy_valid,
        &legacy_hs,
        &legacy_expired,
        &legacy_other_aud,
        &from_old,
        &from_down,
        &for_mcp,
    ];
    for c in &cases {
        let mut args = vec!["doctor".to_owned()];
        args.extend(c.args.iter().cloned());
        // For people: the verdict first, then every cause by id with a fix, in the same order.
        let text = run(&args).await;
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
        args.push("--json".into());
        let r = run(&args).await;
        let Ok(v) = serde_json::from_str::<Value>(&r.stdout) else {
            wrong.push(format!("{}: not JSON: {} {}", c.name, r.stdout, r.stderr));
            continue;
        };
        let causes: Vec<&str> = v["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        produced.extend(causes.iter().map(|s| s.to_string()));
        produced.insert(v["verdict"].as_str().unwrap().to_owned());
        let expected_code = if c.verdict == "ok" { 0 } else { 1 };
        let details = v["causes"].to_string();
        if v["verdict"] != c.verdict || causes != c.causes || r.code != expected_code {
            wrong.push(format!(
                "{}: verdict {} causes {causes:?} exit {} (expected {} {:?}): {v:#}",
                c.name, v["verdict"], r.code, c.verdict, c.causes
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
        for s in secrets {
            let sig = s.rsplit_once('.').unwrap().1;
            if [&r.stdout, &r.stderr, &text.stdout, &text.stderr]
                .iter()
                .any(|o| o.contains(sig))
            {
                wrong.push(format!("{}: the output holds a token", c.name));
            }
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
    assert!(
        wrong.is_empty(),
        "{} of {} situations went wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n\n")
    );
    assert!(cases.len() >= 20);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_read_the_cause_and_its_fix() {
    let (d, api) = demo().await;
    let expired = api.tokens.access_token("alice", "read", -300);
    let r = run(&[
        "doctor".into(),
        format!("http://{d}/api/me"),
        "--token".into(),
        expired.clone(),
    ])
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let first = r.stdout.lines().next().unwrap();
    assert_eq!(first, "verdict: token_expired (401 Unauthorized)");
    assert!(
        r.stdout
            .contains("1. token_expired: the token expired 5 min ago"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("   fix: get a new access token"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("GMT, 5 min ago)"), "{}", r.stdout);
    assert!(!r.stdout.contains(&expired), "{}", r.stdout);

    let valid = api.tokens.access_token("alice", "read", 300);
    let r = run(&[
        "doctor".into(),
        format!("http://{d}/api/me"),
        "--token".into(),
        valid,
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("verdict: ok (200 OK"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("[ok  ] signature: verifies with key \"p256\""),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_come_from_a_variable_or_a_file_and_usage_errors_exit_2() {
    let (d, api) = demo().await;
    let valid = api.tokens.access_token("alice", "read", 300);
    let me = format!("http://{d}/api/me");
    let dir = std::env::temp_dir().join(format!("portcullis-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{valid}\n")).unwrap();
    let r = run(&[
        "doctor".into(),
        me.clone(),
        "--token-file".into(),
        file.display().to_string(),
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    let out = tokio::process::Command::new(bin())
        .args(["doctor", &me, "--token-env", "DOCTOR_TEST_TOKEN"])
        .env("DOCTOR_TEST_TOKEN", &valid)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    let both = run(&[
        "doctor".into(),
        me.clone(),
        "--token".into(),
        "a".into(),
        "--token-env".into(),
        "X".into(),
    ])
    .await;
    assert_eq!(both.code, 2, "{}", both.stderr);
    let unset = run(&[
        "doctor".into(),
        me.clone(),
        "--token-env".into(),
        "PORTCULLIS_SURELY_UNSET".into(),
    ])
    .await;
    assert_eq!(unset.code, 2);
    assert!(
        unset.stderr.contains("PORTCULLIS_SURELY_UNSET is not set"),
        "{}",
        unset.stderr
    );
    let header = run(&[
        "doctor".into(),
        me.clone(),
        "--token".into(),
        "a".into(),
        "-H".into(),
        "Authorization: Bearer b".into(),
    ])
    .await;
    assert_eq!(header.code, 2);
    let relative = run(&["doctor".into(), "/api/me".into()]).await;
    assert_eq!(relative.code, 2, "{}", relative.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_be_reached_exits_3() {
    // A port that was just free: nothing listens there any more.
    let (l, addr) = bind().await;
    drop(l);
    let r = run(&["doctor".into(), format!("http://{addr}/x"), "--json".into()]).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["verdict"], "unreachable");
    assert!(r.stderr.contains("cannot reach"), "{}", r.stderr);
}

#[tokio::test]
async fn decode_prints_claims_with_dates_never_the_signature() {
    let issuer = TestIssuer::new("https://id.test");
    let token = issuer.mint(
        Algorithm::ES256,
        issuer.access_claims("carol", "api", "read", 240),
    );
    let r = run(&["decode".into(), token.clone()]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("sub: \"carol\""), "{}", r.stdout);
    assert!(r.stdout.contains("alg: \"ES256\""), "{}", r.stdout);
    assert!(
        r.stdout.contains("GMT, in 4 min)") || r.stdout.contains("GMT, in 3 min)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(token.rsplit_once('.').unwrap().1));

    let mut child = tokio::process::Command::new(bin())
        .args(["decode", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("Bearer {token}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("carol"));

    let bad = run(&["decode".into(), "not-a-token".into()]).await;
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("1 dot-separated part"),
        "{}",
        bad.stderr
    );
}
