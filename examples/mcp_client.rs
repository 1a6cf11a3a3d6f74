//! An MCP client over hyper-util and the refresh layer: `tools/list`, then `tools/call` of
//! the first tool, over streamable HTTP. It starts without a token; the server's 401 leads
//! the credential source to the authorization server, and the layer retries once.
//!
//! Two ways to get a token:
//! - a person signs in (the default): [`AuthorizationCode`] with PKCE, the client registered
//!   as the authorization server allows — the credentials in `MCP_CONFORMANCE_CONTEXT` when
//!   they were registered for that server (`client_id`, `client_secret`, `issuer`), else
//!   the client ID metadata document named by `--client-metadata-document`, else dynamic
//!   registration. The browser step is the system browser and a loopback listener, or, with
//!   `--follow-redirects`, a user agent that reads the redirect of an authorization server
//!   that answers at once (test servers, the MCP conformance suite);
//! - `--machine`: the `client_credentials` grant with the context's `client_id` and
//!   `client_secret` (or `private_key_pem` and `signing_algorithm`), sent only to the
//!   authorization server named by `--issuer` or the context's `issuer`.
//!
//! It speaks the MCP protocol version given by `--protocol-version` (or
//! `MCP_CONFORMANCE_PROTOCOL_VERSION`; default 2025-11-25): `2025-11-25` opens with
//! `initialize`; `2026-07-28` is stateless — no `initialize`, every request carries an
//! `MCP-Protocol-Version` header and the version and capabilities in `params._meta`.
//!
//! It follows the client contract of the MCP conformance suite
//! (`@modelcontextprotocol/conformance`): the server URL is the last argument, and the
//! context, when there is one, is JSON in `MCP_CONFORMANCE_CONTEXT`.
//!
//! `--call NAME` (or `--call 'NAME={"arg":…}'`, repeated) calls those tools in order instead
//! of the first one. Against `cargo run --example mcp_server` (which prints its URL, its
//! authorization server and its demo client's credentials):
//!
//! ```text
//! MCP_CONFORMANCE_CONTEXT='{"client_id":"mcp-client","client_secret":"mcp-secret"}' \
//!     cargo run --example mcp_client -- --machine --issuer http://127.0.0.1:3001 \
//!     --call whoami --call 'add_note={"text":"hi"}' http://127.0.0.1:3000/mcp
//! ```

use std::error::Error;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis::client::jsonwebtoken::Algorithm;
use portcullis::client::source::authorization_code::{
    AuthorizationCode, FollowRedirects, LoopbackBrowser, RegisteredClient,
};
use portcullis::client::source::discovery::Discovery;
use portcullis::client::{AuthFailure, CredentialSource, RefreshLayer, RefreshService};
use portcullis::wire::client_auth::ClientKey;
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

type Http = Client<HttpConnector, Full<Bytes>>;
type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The stateless protocol version: no `initialize`, the version on every request.
const STATELESS: &str = "2026-07-28";
/// The largest answer read.
const MAX_BODY: usize = 1024 * 1024;
/// How long a person has to sign in.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);

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

/// An MCP client: `tools/list`, then `tools/call`, with the refresh layer.
#[derive(Parser)]
struct Args {
    /// A machine client: the `client_credentials` grant instead of a person's sign-in.
    #[arg(long)]
    machine: bool,
    /// The only authorization server the client's credentials go to.
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// Risky, machine clients only: send the client's credentials to whichever authorization
    /// server the resource names (for a test run whose server is started on a random port).
    #[arg(long)]
    trust_any_authorization_server: bool,
    /// The https URL of this client's client ID metadata document.
    #[arg(long, value_name = "URL")]
    client_metadata_document: Option<String>,
    /// Risky: for an MCP 2025-03-26 server with no metadata at all, sign in at the default
    /// endpoints of its origin, assuming PKCE support nothing states.
    #[arg(long)]
    allow_2025_03_26_default_endpoints: bool,
    /// Risky (mix-up): accept an authorization response without RFC 9207 `iss` from an
    /// authorization server the resource named and that does not advertise sending it, as
    /// MCP 2026-07-28 allows. Without it such a response is refused unless the server was
    /// named with --issuer.
    #[arg(long)]
    accept_authorization_responses_without_iss: bool,
    /// Read the redirect from the authorization endpoint's answer instead of a browser (for
    /// authorization servers that redirect at once).
    #[arg(long)]
    follow_redirects: bool,
    /// The MCP protocol version to speak (default: MCP_CONFORMANCE_PROTOCOL_VERSION, else
    /// 2025-11-25).
    #[arg(long, value_name = "VERSION")]
    protocol_version: Option<String>,
    /// A tool to call, with its JSON arguments (repeatable; default: the first tool listed).
    #[arg(long = "call", value_name = "NAME[=JSON]")]
    calls: Vec<String>,
    /// The MCP server's URL.
    url: String,
}

async fn run() -> Result<()> {
    let args = Args::parse();
    let mut calls = Vec::new();
    for call in &args.calls {
        calls.push(match call.split_once('=') {
            Some((name, a)) => (name.to_owned(), serde_json::from_str::<Value>(a)?),
            None => (call.clone(), json!({})),
        });
    }
    let version = args
        .protocol_version
        .clone()
        .or_else(|| std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").ok())
        .unwrap_or_else(|| "2025-11-25".to_owned());
    let mut context: Value = match std::env::var("MCP_CONFORMANCE_CONTEXT") {
        Ok(text) => serde_json::from_str(&text)?,
        Err(_) => json!({}),
    };
    if let Some(issuer) = &args.issuer {
        context["issuer"] = Value::String(issuer.clone());
    }
    let source: Arc<dyn CredentialSource> = if args.machine {
        Arc::new(machine_source(&args, &context)?)
    } else {
        Arc::new(person_source(&args, &context).await?)
    };
    let mut session = Session::new(&args.url, source, version)?;
    session.open().await?;
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

/// A person's sign-in: pre-registered credentials for the context's issuer, else a client ID
/// metadata document, else dynamic registration.
async fn person_source(args: &Args, context: &Value) -> Result<AuthorizationCode> {
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let mut builder = if args.follow_redirects {
        // Never contacted: the authorization server's answer is read, not followed.
        let agent = FollowRedirects::new("http://127.0.0.1:8976/callback", http.clone());
        AuthorizationCode::builder(&args.url, agent)
    } else {
        AuthorizationCode::builder(&args.url, LoopbackBrowser::bind().await?)
    };
    builder = builder
        .client_name("portcullis-mcp-client")
        .sign_in_timeout(SIGN_IN_TIMEOUT);
    if let (Some(issuer), Some(id)) = (context["issuer"].as_str(), context["client_id"].as_str()) {
        let mut client = RegisteredClient::new(issuer, id);
        if let Some(secret) = context["client_secret"].as_str() {
            client = client.client_secret(secret);
        }
        builder = builder.registered_client(client);
    }
    if let Some(url) = &args.client_metadata_document {
        builder = builder.client_metadata_document(url);
    }
    if args.accept_authorization_responses_without_iss {
        builder = builder.accept_authorization_responses_without_iss();
    }
    if args.allow_2025_03_26_default_endpoints {
        builder = builder.allow_2025_03_26_default_endpoints();
    }
    Ok(builder.build(http)?)
}

/// A machine client: `client_credentials` with the context's credentials.
fn machine_source(args: &Args, context: &Value) -> Result<Discovery> {
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let client_id = context["client_id"]
        .as_str()
        .ok_or("--machine needs a client_id in MCP_CONFORMANCE_CONTEXT")?;
    let mut builder = Discovery::builder(&args.url, client_id);
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
        None if args.trust_any_authorization_server => {
            eprintln!(
                "mcp_client: --trust-any-authorization-server: the credentials go to whichever \
                 authorization server the resource names"
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
    /// The version this client speaks.
    version: String,
    /// The version sent in the header: the stateless one always, else the negotiated one.
    header_version: Option<String>,
}

impl Session {
    fn new(url: &str, source: Arc<dyn CredentialSource>, version: String) -> Result<Self> {
        let uri: Uri = url.parse()?;
        let origin = format!(
            "{}://{}",
            uri.scheme_str().ok_or("the server URL has no scheme")?,
            uri.authority().ok_or("the server URL has no host")?
        );
        let layer = RefreshLayer::builder(source)
            .allow_origin(origin)
            .step_up(true)
            // A person may take a while in the browser.
            .refresh_timeout(SIGN_IN_TIMEOUT)
            .refresh_exchange_limit(SIGN_IN_TIMEOUT)
            .build()?;
        let header_version = (version == STATELESS).then(|| version.clone());
        Ok(Session {
            url: uri,
            api: layer.layer(Client::builder(TokioExecutor::new()).build_http()),
            next_id: 1,
            session_id: None,
            version,
            header_version,
        })
    }

    /// `initialize` for the stateful protocol versions; nothing for the stateless one.
    async fn open(&mut self) -> Result<()> {
        if self.version == STATELESS {
            return Ok(());
        }
        let init = self
            .request(
                "initialize",
                json!({
                    "protocolVersion": self.version,
                    "capabilities": {},
                    "clientInfo": client_info(),
                }),
            )
            .await?;
        if let Some(v) = init["protocolVersion"].as_str() {
            self.header_version = Some(v.to_owned());
        }
        println!(
            "initialized: {}",
            init["serverInfo"]["name"].as_str().unwrap_or("?")
        );
        self.notify("notifications/initialized").await
    }

    async fn post(&mut self, message: Value) -> Result<(StatusCode, Option<String>, Bytes)> {
        let mut req = Request::post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream");
        if let Some(id) = &self.session_id {
            req = req.header("mcp-session-id", id);
        }
        if let Some(v) = &self.header_version {
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

    /// `params` with the stateless protocol's `_meta` (the version, the capabilities).
    fn with_meta(&self, mut params: Value) -> Value {
        if self.version == STATELESS {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": self.version,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": client_info(),
            });
        }
        params
    }

    /// A JSON-RPC request; its result, or the JSON-RPC error as an error.
    async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let params = self.with_meta(params);
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

fn client_info() -> Value {
    json!({"name": "portcullis-mcp-client", "version": env!("CARGO_PKG_VERSION")})
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
