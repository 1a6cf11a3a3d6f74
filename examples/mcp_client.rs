//! An MCP client over hyper-util and the refresh layer: `initialize`, `tools/list`, then
//! `tools/call` of the first tool, over streamable HTTP. It starts without a token; the
//! server's 401 leads the [`Discovery`] source to the authorization server, which gives a
//! `client_credentials` token for this server's URL, and the layer retries once.
//!
//! It follows the client contract of the MCP conformance suite
//! (`@modelcontextprotocol/conformance`): the server URL is the last argument,
//! `MCP_CONFORMANCE_SCENARIO` names the scenario, `MCP_CONFORMANCE_CONTEXT` is JSON with
//! `client_id` and either `client_secret` or `private_key_pem` and `signing_algorithm`.
//!
//! `--call NAME` (or `--call 'NAME={"arg":…}'`, repeated) calls those tools in order instead
//! of the first one. The client's credentials go only to the authorization server named by
//! `--issuer URL` or the context's `issuer` (exactly as that server writes its identifier).
//! Against `cargo run --example mcp_server` (which prints its URL, its authorization server
//! and its demo client's credentials):
//!
//! ```text
//! MCP_CONFORMANCE_CONTEXT='{"client_id":"mcp-client","client_secret":"mcp-secret"}' \
//!     cargo run --example mcp_client -- --issuer http://127.0.0.1:3001 \
//!     --call whoami --call 'add_note={"text":"hi"}' http://127.0.0.1:3000/mcp
//! ```
//!
//! The authorization-code grant (a person signing in through a browser) is not this
//! client's: it needs pre-registered client credentials and says so.

use std::error::Error;
use std::process::ExitCode;
use std::str::FromStr;

use bytes::Bytes;
use clap::Parser;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis::client::jsonwebtoken::Algorithm;
use portcullis::client::source::discovery::Discovery;
use portcullis::client::{AuthFailure, RefreshLayer, RefreshService};
use portcullis::wire::client_auth::ClientKey;
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

type Http = Client<HttpConnector, Full<Bytes>>;
type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The protocol version this client speaks.
const PROTOCOL_VERSION: &str = "2025-11-25";
/// The largest answer read.
const MAX_BODY: usize = 1024 * 1024;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp_client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An MCP client: `initialize`, `tools/list`, then `tools/call`, with the refresh layer.
#[derive(Parser)]
struct Args {
    /// The only authorization server the client's credentials go to.
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// A tool to call, with its JSON arguments (repeatable; default: the first tool listed).
    #[arg(long = "call", value_name = "NAME[=JSON]")]
    calls: Vec<String>,
    /// The MCP server's URL.
    url: String,
}

async fn run() -> Result<()> {
    let Args { issuer, calls, url } = Args::parse();
    let url = &url;
    let mut parsed = Vec::new();
    for call in &calls {
        parsed.push(match call.split_once('=') {
            Some((name, args)) => (name.to_owned(), serde_json::from_str::<Value>(args)?),
            None => (call.clone(), json!({})),
        });
    }
    let mut calls = parsed;
    if let Ok(scenario) = std::env::var("MCP_CONFORMANCE_SCENARIO") {
        eprintln!("mcp_client: scenario {scenario}");
    }
    let mut context: Value = match std::env::var("MCP_CONFORMANCE_CONTEXT") {
        Ok(text) => serde_json::from_str(&text)?,
        Err(_) => json!({}),
    };
    if let Some(issuer) = issuer {
        context["issuer"] = Value::String(issuer);
    }
    let mut session = Session::new(url, source(url, &context)?)?;
    let init = session
        .request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "portcullis-mcp-client", "version": env!("CARGO_PKG_VERSION")},
            }),
        )
        .await?;
    if let Some(v) = init["protocolVersion"].as_str() {
        session.protocol_version = Some(v.to_owned());
    }
    println!(
        "initialized: {}",
        init["serverInfo"]["name"].as_str().unwrap_or("?")
    );
    session.notify("notifications/initialized").await?;
    let tools = session.request("tools/list", json!({})).await?;
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    println!("tools: {}", names.join(", "));
    if calls.is_empty()
        && let Some(first) = names.first()
    {
        calls.push(((*first).to_owned(), json!({})));
    }
    for (name, arguments) in calls {
        let result = session
            .request("tools/call", json!({"name": name, "arguments": arguments}))
            .await?;
        println!("{name}: {}", result["content"]);
    }
    Ok(())
}

/// The credential source the context describes.
fn source(url: &str, context: &Value) -> Result<Discovery> {
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let client_id = context["client_id"].as_str().ok_or(
        "no client_id in MCP_CONFORMANCE_CONTEXT: this client uses pre-registered client \
         credentials (client_credentials grant), not the authorization-code grant",
    )?;
    let mut builder = Discovery::builder(url, client_id);
    if let Some(pem) = context["private_key_pem"].as_str() {
        let alg = context["signing_algorithm"].as_str().unwrap_or("ES256");
        let alg = Algorithm::from_str(alg).map_err(|_| format!("unknown algorithm {alg}"))?;
        builder = builder.private_key_jwt(ClientKey::from_pem(pem.as_bytes(), alg)?);
    }
    if let Some(secret) = context["client_secret"].as_str() {
        builder = builder.client_secret(secret);
    }
    builder = match context["issuer"].as_str() {
        Some(issuer) => builder.trust_issuer(issuer),
        // The conformance suite's client-credentials scenarios hand over credentials issued by
        // an authorization server the suite starts on a random port and names only in the
        // resource's metadata: there is nothing to pin before the run. A real client knows who
        // issued its credentials and pins it (--issuer); never ship this branch.
        None if std::env::var_os("MCP_CONFORMANCE_SCENARIO").is_some() => {
            eprintln!(
                "mcp_client: no issuer given: the credentials go to whichever authorization \
                 server the resource names (conformance run only)"
            );
            builder.trust_any_authorization_server()
        }
        None => {
            return Err(
                "name the authorization server that issued these credentials: \
                        --issuer URL (or \"issuer\" in MCP_CONFORMANCE_CONTEXT)"
                    .into(),
            );
        }
    };
    Ok(builder.client_credentials(http)?)
}

/// One MCP session over streamable HTTP.
struct Session {
    url: Uri,
    api: RefreshService<Http>,
    next_id: u64,
    session_id: Option<String>,
    protocol_version: Option<String>,
}

impl Session {
    fn new(url: &str, source: Discovery) -> Result<Self> {
        let uri: Uri = url.parse()?;
        let origin = format!(
            "{}://{}",
            uri.scheme_str().ok_or("the server URL has no scheme")?,
            uri.authority().ok_or("the server URL has no host")?
        );
        let layer = RefreshLayer::builder(source)
            .allow_origin(origin)
            .step_up(true)
            .build()?;
        Ok(Session {
            url: uri,
            api: layer.layer(Client::builder(TokioExecutor::new()).build_http()),
            next_id: 1,
            session_id: None,
            protocol_version: None,
        })
    }

    async fn post(&mut self, message: Value) -> Result<(StatusCode, Option<String>, Bytes)> {
        let mut req = Request::post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream");
        if let Some(id) = &self.session_id {
            req = req.header("mcp-session-id", id);
        }
        if let Some(v) = &self.protocol_version {
            req = req.header("mcp-protocol-version", v);
        }
        let req = req.body(Full::new(Bytes::from(message.to_string())))?;
        let res = self.api.clone().oneshot(req).await?;
        if let Some(id) = res.headers().get("mcp-session-id") {
            self.session_id = Some(id.to_str()?.to_owned());
        }
        let status = res.status();
        if let Some(failure) = res.extensions().get::<AuthFailure>().cloned() {
            return Err(format!("refused: {failure}").into());
        }
        let content_type = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Limited::new(res.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| -> Box<dyn Error> { e })?
            .to_bytes();
        Ok((status, content_type, body))
    }

    /// A JSON-RPC request; its result, or the JSON-RPC error as an error.
    async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let (status, content_type, body) = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        if !status.is_success() {
            return Err(format!("{method}: HTTP {status}").into());
        }
        let answer = if content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("text/event-stream"))
        {
            sse_messages(&body)
                .into_iter()
                .find(|m| m["id"] == json!(id))
                .ok_or_else(|| format!("{method}: no answer in the event stream"))?
        } else {
            serde_json::from_slice(&body)?
        };
        if let Some(error) = answer.get("error") {
            return Err(format!("{method}: {error}").into());
        }
        Ok(answer["result"].clone())
    }

    async fn notify(&mut self, method: &str) -> Result<()> {
        let (status, _, _) = self
            .post(json!({"jsonrpc": "2.0", "method": method}))
            .await?;
        if !status.is_success() {
            return Err(format!("{method}: HTTP {status}").into());
        }
        Ok(())
    }
}

/// The JSON messages of a `text/event-stream` body: each event's `data:` lines joined.
fn sse_messages(body: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    text.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            (!data.is_empty())
                .then(|| serde_json::from_str(&data.join("\n")).ok())
                .flatten()
        })
        .collect()
}
