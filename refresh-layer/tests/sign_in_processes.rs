//! Two CLI processes sharing one signed-in file ([`FileStore`]) refresh the person's token
//! once between them: real OS processes (this test binary run again as workers), the
//! testkit's authorization server on 127.0.0.1 (rotating refresh tokens, reuse revokes the
//! family), and an API behind the real `AuthLayer`.
//!
//! The parent signs the person in once (a `401`, dynamic registration, `/authorize`, the
//! code), with a one-second access token; once it has expired, both workers start at the
//! same moment, each an `AuthorizationCode` over the same file, and call the API.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use auth_layer::jwt::JwtAuthenticator;
use auth_layer::{AuthLayer, Principal, ProtectedResource};
use axum::Router;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use portcullis_testkit::{
    TestAuthorizationServer, TestIssuer, TestTokenEndpoint, TokenEndpointMode, eventually,
};
use refresh_layer::RefreshLayer;
use refresh_layer::source::authorization_code::{
    AuthorizationCode, AuthorizationRequest, AuthorizeFuture, FollowRedirects, UserAgent,
};
use refresh_layer::store::FileStore;
use tower::{Layer, ServiceExt};

use common::processes::{self, TempDir, Workers};
use common::{bind, http};

const WORKER: &str = "PORTCULLIS_SIGN_IN_WORKER";
const DIR: &str = "PORTCULLIS_SIGN_IN_DIR";
const RESOURCE: &str = "PORTCULLIS_SIGN_IN_RESOURCE";
const PROCESSES: usize = 2;
/// Read from the authorization endpoint's answer, never connected to.
const REDIRECT: &str = "http://127.0.0.1:8976/callback";
/// How long the token endpoint takes to answer a refresh: the worker refreshing holds the
/// lease this long, so the other one, started with it, finds the refresh under way.
const TOKEN_DELAY: Duration = Duration::from_millis(400);
const DEADLINE: Duration = Duration::from_secs(30);

/// The person's sign-in for `resource`, kept in the file under `dir`.
fn source(resource: &str, dir: &Path) -> AuthorizationCode {
    let store = Arc::new(FileStore::open(dir.join("sign-in.json")).unwrap());
    AuthorizationCode::builder(resource, Slow(FollowRedirects::new(REDIRECT, http())))
        .store(store, "alice")
        .build(http())
        .unwrap()
}

/// A person who takes a moment in the browser: long enough for the other process to start
/// its own sign-in, were it allowed to.
struct Slow(FollowRedirects);

impl UserAgent for Slow {
    fn redirect_uri(&self) -> String {
        self.0.redirect_uri()
    }

    fn authorize(&self, request: AuthorizationRequest) -> AuthorizeFuture {
        let inner = self.0.authorize(request);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            inner.await
        })
    }
}

/// `GET resource` through a layer over `source`: the status and the body.
async fn call(resource: &str, source: AuthorizationCode) -> (StatusCode, String) {
    let origin = resource.trim_end_matches("/mcp").to_owned();
    let layer = RefreshLayer::builder(source)
        .allow_origin(origin)
        .build()
        .unwrap();
    let req = Request::get(resource).body(Full::default()).unwrap();
    let res = layer.layer(http()).oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The API: `/mcp`, answering the caller's subject, behind `AuthLayer` with RFC 9728 metadata.
async fn start_api(server: &TestAuthorizationServer, api: tokio::net::TcpListener, resource: &str) {
    let mut jwt = JwtAuthenticator::builder().audience(resource);
    for k in server.token_endpoint().issuer().verification_keys() {
        jwt = jwt.key(k);
    }
    let layer = AuthLayer::builder()
        .bearer(jwt.build().unwrap())
        .resource_metadata(
            ProtectedResource::new(resource)
                .authorization_server(server.issuer())
                .challenge_scope("read"),
        )
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/mcp",
            get(|p: Principal| async move { p.subject().unwrap_or_default().to_owned() }),
        )
        .layer(layer);
    tokio::spawn(async move { axum::serve(api, app).await.unwrap() });
}

/// The identity provider, the API, and a directory for the shared file.
struct World {
    endpoint: TestTokenEndpoint,
    server: TestAuthorizationServer,
    resource: String,
    dir: TempDir,
}

async fn world(name: &str) -> World {
    let (as_listener, as_addr) = bind().await;
    let (api_listener, api_addr) = bind().await;
    let resource = format!("http://{api_addr}/mcp");
    let issuer = Arc::new(TestIssuer::new(format!("http://{as_addr}")));
    let endpoint = TestTokenEndpoint::new(issuer, &resource, "unused", "unused-secret");
    endpoint.set_access_ttl(Duration::from_secs(1));
    let server = TestAuthorizationServer::new(endpoint.clone());
    let app = server.router();
    tokio::spawn(async move { axum::serve(as_listener, app).await.unwrap() });
    start_api(&server, api_listener, &resource).await;
    let dir =
        TempDir(std::env::temp_dir().join(format!("portcullis-{name}-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    World {
        endpoint,
        server,
        resource,
        dir,
    }
}

/// Start the workers of `test` together; the access token each one used.
async fn run_workers(test: &str, w: &World) -> Vec<String> {
    let mut workers = Workers(
        (0..PROCESSES)
            .map(|n| spawn_worker(test, n, &w.dir.0, &w.resource))
            .collect(),
    );
    eventually(DEADLINE, || async {
        (0..PROCESSES).all(|n| w.dir.0.join(format!("ready-{n}")).exists())
    })
    .await
    .expect("every worker started");
    std::fs::write(w.dir.0.join("go"), b"").unwrap();
    let mut tokens = Vec::new();
    for child in &mut workers.0 {
        tokens.push(finish(child).await);
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_signed_in_through_one_file_refresh_once() {
    const NAME: &str = "two_processes_signed_in_through_one_file_refresh_once";
    if let Ok(n) = std::env::var(WORKER) {
        return worker(&n).await;
    }
    let w = world(NAME).await;
    // The person signs in once, in this process.
    let (status, _) = call(&w.resource, source(&w.resource, &w.dir.0)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(w.server.authorize_requests().len(), 1);
    // Past the access token's second; each refresh is slow enough to overlap.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    w.endpoint.set_mode(TokenEndpointMode::Delay(TOKEN_DELAY));
    let tokens = run_workers(NAME, &w).await;

    // One refresh between the two processes, with the stored refresh token, never presented
    // twice; no second trip through the browser.
    assert_eq!(w.endpoint.refresh_grants(), 1, "{tokens:?}");
    assert_eq!(w.endpoint.reuse_detected(), 0);
    assert_eq!(w.server.authorize_requests().len(), 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
}

/// Two processes started together with nothing stored: one trip to the browser, one
/// registration; the other process takes up the sign-in the first stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_with_nothing_stored_sign_in_once() {
    const NAME: &str = "two_processes_with_nothing_stored_sign_in_once";
    if let Ok(n) = std::env::var(WORKER) {
        return worker(&n).await;
    }
    let w = world(NAME).await;
    let tokens = run_workers(NAME, &w).await;
    assert_eq!(w.server.authorize_requests().len(), 1, "{tokens:?}");
    assert_eq!(w.server.registrations().len(), 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
}

fn spawn_worker(test: &str, n: usize, dir: &Path, resource: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(WORKER, n.to_string())
        .env(DIR, dir)
        .env(RESOURCE, resource)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait for a worker; the token it used.
async fn finish(child: &mut Child) -> String {
    let out = processes::finish(child, DEADLINE).await;
    out.lines()
        .find_map(|l| l.split_once("ACCESS ").map(|(_, v)| v.to_owned()))
        .unwrap_or_else(|| panic!("no ACCESS in:\n{out}"))
}

/// One CLI process: its own store and source over the shared file, one call to the API.
async fn worker(n: &str) {
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    let resource = std::env::var(RESOURCE).unwrap();
    std::fs::write(dir.join(format!("ready-{n}")), b"").unwrap();
    eventually(DEADLINE, || async { dir.join("go").exists() })
        .await
        .expect("the test says go");
    let source = source(&resource, &dir);
    let (status, body) = tokio::time::timeout(DEADLINE, call(&resource, source.clone()))
        .await
        .expect("the worker has its answer in time");
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = source.tokens().and_then(|t| t.access_token).unwrap();
    println!("ACCESS {access}");
}
