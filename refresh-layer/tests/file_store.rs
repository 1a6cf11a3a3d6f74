//! Processes sharing one credential file ([`FileStore`]) refresh a rotating refresh token
//! once between them: real OS processes (this test binary run again as workers), one real
//! token endpoint on 127.0.0.1 that counts `refresh_token` grants and revokes a refresh
//! token's family when one is presented twice.

mod common;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use portcullis_testkit::{TestTokenEndpoint, TokenEndpointMode, eventually};
use refresh_layer::source::shared_grant::{NewSeed, SharedGrant};
use refresh_layer::store::FileStore;
use refresh_layer::{OAuth2, RefreshLayer};
use tower::{Layer, ServiceExt};

use common::http;
use common::processes::{self, TempDir, Workers};

/// Set in a worker's environment: its number. The test then plays one process of the CLI.
const WORKER: &str = "PORTCULLIS_FILE_STORE_WORKER";
const DIR: &str = "PORTCULLIS_FILE_STORE_DIR";
const TOKEN_URL: &str = "PORTCULLIS_FILE_STORE_TOKEN_URL";
const SEED: &str = "PORTCULLIS_FILE_STORE_SEED";

const PROCESSES: usize = 2;
const CLIENT: &str = "cli";
const SECRET: &str = "cli-secret";
/// Where the workers' requests go: never reached, the API is a function in each worker.
const API: &str = "http://127.0.0.1:9";
/// How long the token endpoint takes to answer: the worker that refreshes holds the lease
/// this long, so a worker started with it finds the refresh under way.
const TOKEN_DELAY: Duration = Duration::from_millis(400);
/// The bound on every wait, here and in the workers.
const DEADLINE: Duration = Duration::from_secs(30);

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// The API: echoes the `Authorization` header it got; without one, a Bearer challenge.
async fn echo(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(auth) = req.headers().get(http::header::AUTHORIZATION) else {
        let res = Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("www-authenticate", "Bearer realm=\"api\"")
            .body(Full::default())
            .unwrap();
        return Ok(res);
    };
    Ok(Response::new(Full::new(Bytes::copy_from_slice(
        auth.as_bytes(),
    ))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_one_file_refresh_once() {
    if let Ok(n) = std::env::var(WORKER) {
        return worker(&n).await;
    }
    let (endpoint, token_url) = TestTokenEndpoint::start("api", CLIENT, SECRET).await;
    endpoint.set_mode(TokenEndpointMode::Delay(TOKEN_DELAY));
    let seed = endpoint.issue_refresh_token("alice", "read");
    let dir = TempDir(
        std::env::temp_dir().join(format!("portcullis-file-store-it-{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();

    let mut workers = Workers(
        (0..PROCESSES)
            .map(|n| spawn_worker(n, &dir.0, &token_url, &seed))
            .collect(),
    );
    // Every worker is up and waiting; then all go at once.
    eventually(DEADLINE, || async {
        (0..PROCESSES).all(|n| dir.0.join(format!("ready-{n}")).exists())
    })
    .await
    .expect("every worker started");
    std::fs::write(dir.0.join("go"), b"").unwrap();

    let mut reports = Vec::new();
    for child in &mut workers.0 {
        reports.push(finish(child).await);
    }

    // Exactly one refresh reached the identity provider, and nothing was presented twice.
    assert_eq!(endpoint.refresh_grants(), 1, "{reports:?}");
    assert_eq!(endpoint.reuse_detected(), 0);
    // Every process sends the one access token it produced.
    let tokens: Vec<&str> = reports.iter().map(|r| r.token.as_str()).collect();
    assert!(tokens[0].starts_with("Bearer "), "{tokens:?}");
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    // They asked at the same moment: the last one started before the first refresh could
    // have been answered, so it had to wait for another process's lease.
    let starts: Vec<u128> = reports.iter().map(|r| r.started_ms).collect();
    let spread = starts.iter().max().unwrap() - starts.iter().min().unwrap();
    assert!(
        spread < TOKEN_DELAY.as_millis(),
        "workers started {spread} ms apart"
    );

    let file = dir.0.join("tokens.json");
    assert_file(&file, &tokens[0]["Bearer ".len()..]);
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tokens.json"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["tokens.json", "tokens.json.lock"],
        "no temporary file left"
    );
}

/// The file holds one grant: the seed (version 1) and the one refresh over it (version 2),
/// the access token the workers sent, no lease; owner-only on unix.
fn assert_file(file: &Path, access_token: &str) {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let grants = doc["grants"].as_object().unwrap();
    assert_eq!(grants.len(), 1, "{:?}", grants.keys());
    let entry = grants.values().next().unwrap();
    assert_eq!(entry["stored"]["version"], 2);
    assert_eq!(entry["stored"]["tokens"]["access_token"], access_token);
    assert!(entry.get("lease").is_none(), "released by the commit");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}

fn spawn_worker(n: usize, dir: &Path, token_url: &str, seed: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "two_processes_sharing_one_file_refresh_once",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WORKER, n.to_string())
        .env(DIR, dir)
        .env(TOKEN_URL, token_url)
        .env(SEED, seed)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What a worker printed.
#[derive(Debug)]
struct Report {
    token: String,
    started_ms: u128,
}

/// Wait for a worker, and read its report.
async fn finish(child: &mut Child) -> Report {
    let out = processes::finish(child, DEADLINE).await;
    let field = |name: &str| {
        out.lines()
            // The harness prints `test … ` on the line the first report starts.
            .find_map(|l| l.split_once(name).map(|(_, v)| v))
            .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
            .to_owned()
    };
    Report {
        token: field("AUTHORIZATION "),
        started_ms: field("STARTED_MS ").parse().unwrap(),
    }
}

/// One process of the CLI: its own FileStore on the shared file, its own SharedGrant and
/// layer, one request once every worker is ready.
async fn worker(n: &str) {
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    let token_url = std::env::var(TOKEN_URL).unwrap();
    let seed = std::env::var(SEED).unwrap();
    std::fs::write(dir.join(format!("ready-{n}")), b"").unwrap();
    eventually(DEADLINE, || async { dir.join("go").exists() })
        .await
        .expect("the test says go");
    let started_ms = unix_ms();
    let auth = tokio::time::timeout(DEADLINE, async {
        let oauth = OAuth2::builder(&token_url, CLIENT)
            .client_secret(SECRET)
            .scope("read")
            .refresh_token(&seed, http())
            .unwrap();
        let store = Arc::new(FileStore::open(dir.join("tokens.json")).unwrap());
        let grant = SharedGrant::builder(oauth, store, "cli", NewSeed::Replace)
            .lease_ttl(Duration::from_secs(5))
            .poll_every(Duration::from_millis(20))
            .build()
            .unwrap();
        let layer = RefreshLayer::builder(grant)
            .allow_origin(API)
            .build()
            .unwrap();
        let api = layer.layer(tower::service_fn(echo));
        let req = Request::get(format!("{API}/me"))
            .body(Full::default())
            .unwrap();
        let res = api.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    })
    .await
    .expect("the worker has its credential in time");
    println!("STARTED_MS {started_ms}");
    println!("AUTHORIZATION {auth}");
}
