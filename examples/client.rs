//! The refresh layer around hyper-util's client, calling the example server.
//!
//! ```text
//! cargo run --example server -- --listen 127.0.0.1:8080 &
//! cargo run --example client -- [--base http://127.0.0.1:8080] [--calls 5]
//! ```
//!
//! It signs in with `client_credentials` (`demo` / `demo-secret`), then prints one line per call:
//! status, what the server said, and what the client did (refreshed? retried?).

use bytes::Bytes;
use clap::Parser;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis::client::{AuthFailure, OAuth2, RefreshLayer, RefreshOutcome, RetriedAfter};
use tower::{ServiceBuilder, ServiceExt};

/// Calls the example server through the refresh layer.
#[derive(Parser)]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// How many calls to make.
    #[arg(long, default_value_t = 5)]
    calls: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args { base, calls } = Args::parse();
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let source = OAuth2::builder(&format!("{base}/oauth/token"), "demo")
        .client_secret("demo-secret")
        .scope("read")
        .client_credentials(http.clone())?;
    let layer = RefreshLayer::builder(source)
        .allow_origin(base.clone())
        .build()?;
    let handle = layer.handle();
    let api = ServiceBuilder::new().layer(layer).service(http);

    let paths = ["/api/me", "/api/admin", "/public"];
    for i in 0..calls {
        let path = paths[i % paths.len()];
        let res = match api
            .clone()
            .oneshot(Request::get(format!("{base}{path}")).body(Full::default())?)
            .await
        {
            Ok(res) => res,
            Err(e) => {
                println!("GET {path:<11} -> error: {e}");
                continue;
            }
        };
        let outcome = res.extensions().get::<RefreshOutcome>().copied();
        let first = res
            .extensions()
            .get::<RetriedAfter>()
            .map(|r| r.0.to_string());
        let failure = res.extensions().get::<AuthFailure>().cloned();
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        let said = match failure {
            Some(mut f) => {
                f.problem = serde_json::from_slice(&body).ok();
                f.to_string()
            }
            None => String::from_utf8_lossy(&body).into_owned(),
        };
        let did = match (outcome, first) {
            (Some(o), Some(first)) if o.retried => {
                format!("first answer {first}; refreshed, retried once")
            }
            (Some(o), _) if o.credential_sent => format!(
                "sent credential generation {}",
                o.generation.unwrap_or_default()
            ),
            _ => "sent without credential".into(),
        };
        println!("GET {path:<11} -> {status} {said} | {did}");
    }
    println!("token requests made: {}", handle.refreshes());
    Ok(())
}
