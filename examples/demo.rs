//! `cargo run --example demo`: the server and the client of Portcullis, in one process, on
//! loopback. Each row is one story: what was sent, what came back, what the client did.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis::client::{
    Credential, CredentialHandle, OAuth2, RefreshLayer, RefreshOutcome, RefreshService,
    RetriedAfter,
};
use portcullis_examples_support::demo_app::{self, CLIENT_ID, CLIENT_SECRET, DemoApi, DemoConfig};
use tower::{ServiceBuilder, ServiceExt};

type Http = Client<HttpConnector, Full<Bytes>>;

const PAGE_ORIGIN: &str = "http://localhost:3000";

struct Row {
    story: &'static str,
    request: String,
    status: String,
    code: String,
    client: String,
}

async fn read(res: http::Response<hyper::body::Incoming>) -> (u16, String, http::HeaderMap) {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|j| j["code"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "-".into());
    (status, code, headers)
}

type Error = Box<dyn std::error::Error>;

/// The demo API on loopback, and a plain client to call it.
struct Stage {
    http: Http,
    base: String,
    demo: DemoApi,
}

impl Stage {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client holding an expired access token and a refresh token for `subject`.
    fn refreshing(&self, subject: &str) -> Result<RefreshLayer, Error> {
        let refresh_token = self.demo.tokens.issue_refresh_token(subject, "read");
        let expired = Credential::bearer(&self.demo.tokens.access_token(subject, "read", -120))?;
        let source = OAuth2::builder(&self.url("/oauth/token"), CLIENT_ID)
            .client_secret(CLIENT_SECRET)
            .refresh_token(&refresh_token, self.http.clone())?;
        Ok(RefreshLayer::builder(source)
            .allow_origin(self.base.clone())
            .initial_credential(expired)
            .build()?)
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let demo = DemoApi::new(DemoConfig {
        issuer: base.clone(),
        access_ttl: Duration::from_secs(60),
        allow_origins: vec![PAGE_ORIGIN.into()],
        secure_cookies: true,
        shared_revocations: None,
        csrf_key: demo_app::demo_csrf_key(),
    })?;
    let app = demo.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("demo API and identity provider listening on {base}\n");

    let stage = Stage {
        http: Client::builder(TokioExecutor::new()).build_http(),
        base,
        demo,
    };
    let mut rows = bare_client_rows(&stage).await?;
    let layer = stage.refreshing("alice")?;
    let handle = layer.handle();
    let client = ServiceBuilder::new()
        .layer(layer)
        .service(stage.http.clone());
    rows.push(expired_token_row(&stage, &client, &handle).await?);
    rows.push(burst_row(&stage).await?);
    rows.push(missing_scope_row(&stage, &client).await?);
    rows.push(preflight_row(&stage).await?);
    print_table(&rows, &stage.demo);
    Ok(())
}

/// 1-3: what a bare client gets for missing, foreign and malformed credentials.
async fn bare_client_rows(stage: &Stage) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    for (story, auth, shown) in [
        ("no token", None, "GET /api/me"),
        (
            "wrong scheme",
            Some("Basic ZGVtbzpkZW1v"),
            "GET /api/me  Authorization: Basic …",
        ),
        (
            "malformed",
            Some("Bearer two tokens"),
            "GET /api/me  Authorization: Bearer two tokens",
        ),
    ] {
        let mut req = Request::get(stage.url("/api/me"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = stage.http.request(req.body(Full::default())?).await?;
        let (status, code, headers) = read(res).await;
        let challenge = headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        rows.push(Row {
            story,
            request: shown.into(),
            status: status.to_string(),
            code,
            client: format!("challenge: {challenge}"),
        });
    }
    Ok(rows)
}

/// 4: an expired access token: the refresh layer refreshes once and retries once.
async fn expired_token_row(
    stage: &Stage,
    client: &RefreshService<Http>,
    handle: &CredentialHandle,
) -> Result<Row, Error> {
    let res = client
        .clone()
        .oneshot(Request::get(stage.url("/api/me")).body(Full::default())?)
        .await?;
    let first = res.extensions().get::<RetriedAfter>().map(|r| r.0.clone());
    let (status, code, _) = read(res).await;
    let (first_status, first_code) = first
        .as_ref()
        .map(|f| {
            (
                f.status.as_u16().to_string(),
                f.code().map_or("-", |c| c.as_str()).to_owned(),
            )
        })
        .unwrap_or(("-".into(), "-".into()));
    Ok(Row {
        story: "expired token",
        request: "GET /api/me  (expired access token)".into(),
        status: format!("{first_status} → {status}"),
        code: if code == "-" {
            first_code
        } else {
            format!("{first_code} → {code}")
        },
        client: format!("refreshed {}×, retried once", handle.refreshes()),
    })
}

/// 5: a burst of 100 concurrent requests, all with the same expired token.
async fn burst_row(stage: &Stage) -> Result<Row, Error> {
    let before = stage.demo.tokens.calls();
    let burst = ServiceBuilder::new()
        .layer(stage.refreshing("bob")?)
        .service(stage.http.clone());
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let svc = burst.clone();
            let req = Request::get(stage.url("/api/me")).body(Full::default());
            tokio::spawn(async move {
                let res = svc
                    .oneshot(req.expect("valid request"))
                    .await
                    .map_err(|e| e.to_string())?;
                let first = res
                    .extensions()
                    .get::<RetriedAfter>()
                    .and_then(|r| r.0.code().map(|c| c.as_str().to_owned()));
                Ok::<_, String>((res.status().as_u16(), first))
            })
        })
        .collect();
    let (mut ok, mut first_codes) = (0, std::collections::BTreeMap::<String, usize>::new());
    for t in tasks {
        let (status, first) = t.await??;
        ok += usize::from(status == 200);
        *first_codes
            .entry(first.unwrap_or_else(|| "none".into()))
            .or_default() += 1;
    }
    Ok(Row {
        story: "burst, expired",
        request: "100 × GET /api/me concurrently".into(),
        status: format!("{ok} × 200"),
        code: first_codes
            .iter()
            .map(|(c, n)| format!("{n}× {c}"))
            .collect::<Vec<_>>()
            .join(", "),
        client: format!(
            "token endpoint called {}× for all 100",
            stage.demo.tokens.calls() - before
        ),
    })
}

/// 6: authenticated but lacking a scope: 403, and the client does not refresh.
async fn missing_scope_row(stage: &Stage, client: &RefreshService<Http>) -> Result<Row, Error> {
    let before = stage.demo.tokens.calls();
    let res = client
        .clone()
        .oneshot(Request::get(stage.url("/api/admin")).body(Full::default())?)
        .await?;
    let retried = res
        .extensions()
        .get::<RefreshOutcome>()
        .is_some_and(|o| o.retried);
    let (status, code, headers) = read(res).await;
    let challenge = headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(Row {
        story: "missing scope",
        request: "GET /api/admin  (token with scope read)".into(),
        status: status.to_string(),
        code,
        client: format!(
            "not refreshed (retried: {retried}, token calls +{}); {challenge}",
            stage.demo.tokens.calls() - before
        ),
    })
}

/// 7: a browser preflight is answered by CORS, never challenged.
async fn preflight_row(stage: &Stage) -> Result<Row, Error> {
    let req = Request::options(stage.url("/api/me"))
        .header("origin", PAGE_ORIGIN)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .body(Full::default())?;
    let (status, _, headers) = read(stage.http.request(req).await?).await;
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    Ok(Row {
        story: "preflight",
        request: format!("OPTIONS /api/me  Origin: {PAGE_ORIGIN}"),
        status: status.to_string(),
        code: "-".into(),
        client: format!(
            "allow-origin {}, allow-credentials {}, allow-headers {}, no challenge: {}",
            h("access-control-allow-origin"),
            h("access-control-allow-credentials"),
            h("access-control-allow-headers"),
            !headers.contains_key("www-authenticate")
        ),
    })
}

fn print_table(rows: &[Row], demo: &DemoApi) {
    let w = |f: fn(&Row) -> usize| rows.iter().map(f).max().unwrap_or(0);
    let (w0, w1, w2, w3) = (
        w(|r| r.story.len()),
        w(|r| r.request.chars().count()),
        w(|r| r.status.chars().count()),
        w(|r| r.code.chars().count()),
    );
    println!(
        "{:w0$} | {:w1$} | {:w2$} | {:w3$} | what the client saw or did",
        "story", "request", "status", "code"
    );
    println!("{}", "-".repeat(w0 + w1 + w2 + w3 + 40));
    for r in rows {
        println!(
            "{:w0$} | {:w1$} | {:w2$} | {:w3$} | {}",
            r.story, r.request, r.status, r.code, r.client
        );
    }
    println!(
        "\nserver decisions: {} accepted; rejected: {}",
        demo.metrics.accepted(),
        demo.metrics
            .snapshot()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{c}={n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
